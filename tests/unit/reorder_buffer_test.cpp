// Unit tests for sink/reorder_buffer.hpp and --keep-order in
// sink/result_recorder.hpp: each job's results written in id order, a held
// result acknowledged only once written (PROTOCOL.md 7.3 rule 4), and what
// is held listed for lease renewal.
#include "reorder_buffer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "result_recorder.hpp"
#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using zfarm::proto::ack;
using zfarm::proto::result;
using zfarm::proto::task_status;
using zfarm::sink::job_table;
using zfarm::sink::recorder_options;
using zfarm::sink::reorder_buffer;
using zfarm::sink::result_recorder;
using zfarm::sink::result_writer;
using zfarm::unit::temp_dir;
using outcome = job_table::record_outcome;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

result res(std::uint64_t id, task_status status = task_status::ok, std::uint32_t attempt = 1,
           const std::string& job = "j") {
    result r{job,
             id,
             attempt,
             "w1",
             status,
             10,
             "out" + std::to_string(id),
             status == task_status::ok ? "" : "boom"};
    return r;
}

// A recorder with --keep-order over a JSON Lines file.
class KeepOrder {
  public:
    explicit KeepOrder(std::size_t memory = std::size_t{1} << 30)
        : writer_(result_writer::open(dir_.file("out.jsonl")).value()),
          recorder_(jobs_, writer_, nullptr, recorder_options{true, memory}) {}

    outcome add(result r) { return recorder_.add(r, t0); }
    // Flushes and returns the ids written since the last call, in file order.
    std::vector<std::uint64_t> written() {
        EXPECT_TRUE(recorder_.flush());
        std::vector<std::uint64_t> ids;
        const std::string text = dir_.read("out.jsonl");
        std::size_t start = 0;
        for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
            ids.push_back(nlohmann::json::parse(text.substr(start, nl - start)).at("id"));
        std::vector<std::uint64_t> fresh(ids.begin() + static_cast<long>(seen_), ids.end());
        seen_ = ids.size();
        return fresh;
    }
    // The ids of every ACK taken now (flushes first), and the failed ones.
    std::pair<std::vector<std::uint64_t>, std::vector<std::uint64_t>> acked() {
        EXPECT_TRUE(recorder_.flush());
        std::vector<std::uint64_t> ids, failed;
        for (const ack& a : recorder_.take_acks()) {
            ids.insert(ids.end(), a.ids.begin(), a.ids.end());
            failed.insert(failed.end(), a.failed.begin(), a.failed.end());
        }
        return {ids, failed};
    }

    temp_dir dir_;
    job_table jobs_;
    result_writer writer_;
    result_recorder recorder_;

  private:
    std::size_t seen_ = 0;
};

using ids = std::vector<std::uint64_t>;

TEST(ReorderBuffer, HoldsAndReleasesInIdOrder) {
    reorder_buffer b;
    EXPECT_TRUE(b.hold(res(5)));
    EXPECT_TRUE(b.hold(res(3)));
    EXPECT_TRUE(b.hold(res(9)));
    EXPECT_FALSE(b.hold(res(3))) << "an id held already";
    EXPECT_EQ(b.size(), 3u);
    EXPECT_EQ(b.ids(), (ids{3, 5, 9}));
    EXPECT_GT(b.bytes(), 3 * sizeof(result));
    ids out;
    b.release_below(6, [&](const result& r) { out.push_back(r.id); });
    EXPECT_EQ(out, (ids{3, 5}));
    EXPECT_TRUE(b.contains(9));
    EXPECT_FALSE(b.contains(5));
    b.release_all([&](const result& r) { out.push_back(r.id); });
    EXPECT_EQ(out, (ids{3, 5, 9}));
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.bytes(), 0u);
}

TEST(ReorderBuffer, ReleasesTheHighestPossibleId) {
    reorder_buffer b;
    b.hold(res(UINT64_MAX));
    ids out;
    b.release_lowest([&](const result& r) { out.push_back(r.id); });
    EXPECT_EQ(out, (ids{UINT64_MAX}));
    EXPECT_TRUE(b.empty());
}

TEST(ReorderBuffer, OutOfOrderArrivalIsWrittenInIdOrder) {
    KeepOrder k;
    EXPECT_EQ(k.add(res(2)), outcome::added);
    EXPECT_EQ(k.add(res(1)), outcome::added);
    EXPECT_EQ(k.written(), ids{}) << "id 0 is awaited";
    EXPECT_EQ(k.recorder_.held("j"), (ids{1, 2}));
    EXPECT_TRUE(k.acked().first.empty()) << "a held result is not acknowledged";
    EXPECT_EQ(k.add(res(0)), outcome::added);
    EXPECT_EQ(k.add(res(4)), outcome::added);
    EXPECT_EQ(k.written(), (ids{0, 1, 2}));
    EXPECT_EQ(k.acked().first, (ids{0, 1, 2})) << "acknowledged once written";
    EXPECT_EQ(k.recorder_.held("j"), ids{4});
    EXPECT_TRUE(k.recorder_.holds("j", 4));
    EXPECT_FALSE(k.recorder_.holds("j", 2));
    EXPECT_FALSE(k.recorder_.holds("other", 4));
    EXPECT_EQ(k.add(res(3)), outcome::added);
    EXPECT_EQ(k.written(), (ids{3, 4}));
    EXPECT_TRUE(k.recorder_.held("j").empty());
}

TEST(ReorderBuffer, InOrderArrivalHoldsNothing) {
    KeepOrder k;
    for (std::uint64_t id = 0; id < 100; ++id) {
        EXPECT_EQ(k.add(res(id)), outcome::added);
        EXPECT_TRUE(k.recorder_.held("j").empty());
    }
    EXPECT_EQ(k.written().size(), 100u);
}

TEST(ReorderBuffer, DuplicateOfAHeldResultIsDroppedAndAcknowledgedOnceWritten) {
    KeepOrder k;
    k.add(res(1));
    result dup = res(1, task_status::ok, 2);
    dup.output = "second copy";
    EXPECT_EQ(k.add(dup), outcome::duplicate);
    EXPECT_TRUE(k.acked().first.empty()) << "not acknowledged while held";
    EXPECT_EQ(k.recorder_.duplicates(), 1u);
    k.add(res(0));
    EXPECT_EQ(k.written(), (ids{0, 1}));
    EXPECT_EQ(k.acked().first, (ids{0, 1}));
    EXPECT_EQ(k.dir_.read("out.jsonl").find("second copy"), std::string::npos);
    // A duplicate of a written result is acknowledged again at once (5.4 rule 4).
    EXPECT_EQ(k.add(res(1)), outcome::duplicate);
    EXPECT_EQ(k.acked().first, ids{1});
}

TEST(ReorderBuffer, FailedAttemptThatWillBeRetriedIsNotHeld) {
    KeepOrder k;
    k.jobs_.open("j", t0)->retries = 2;
    EXPECT_EQ(k.add(res(1, task_status::failed, 1)), outcome::retry);
    EXPECT_TRUE(k.recorder_.held("j").empty()) << "not final: neither held nor written";
    EXPECT_EQ(k.add(res(1, task_status::ok, 2)), outcome::added);
    EXPECT_EQ(k.recorder_.held("j"), ids{1});
    EXPECT_EQ(k.add(res(0, task_status::failed, 1)), outcome::retry);
    EXPECT_EQ(k.written(), ids{}) << "id 0 is retried: id 1 waits";
    EXPECT_EQ(k.add(res(0, task_status::failed, 3)), outcome::added) << "the last attempt";
    EXPECT_EQ(k.written(), (ids{0, 1}));
    const auto [acked, failed] = k.acked();
    EXPECT_EQ(acked, (ids{0, 1}));
    EXPECT_EQ(failed, ids{0});
}

TEST(ReorderBuffer, CancelledJobDropsWhatItHeld) {
    KeepOrder k;
    k.jobs_.open("j", t0);
    k.add(res(1));
    k.add(res(2));
    ASSERT_TRUE(k.jobs_.cancel("j"));
    k.recorder_.cancel("j");
    EXPECT_TRUE(k.recorder_.held("j").empty());
    EXPECT_EQ(k.written(), ids{});
    EXPECT_TRUE(k.acked().first.empty());
    EXPECT_EQ(k.add(res(0)), outcome::duplicate) << "stragglers of a cancelled job";
    EXPECT_EQ(k.written(), ids{});
}

TEST(ReorderBuffer, JobsAreOrderedEachOnItsOwn) {
    KeepOrder k;
    k.add(res(1, task_status::ok, 1, "a"));
    k.add(res(0, task_status::ok, 1, "b"));
    EXPECT_EQ(k.written(), ids{0});
    EXPECT_EQ(k.recorder_.held("a"), ids{1});
    EXPECT_TRUE(k.recorder_.held("b").empty());
}

TEST(ReorderBuffer, ResultsBeyondTheTotalAreWrittenWhenTheJobCompletes) {
    KeepOrder k;
    k.add(res(5));  // recorded before JOB_CLOSE said the total
    k.add(res(1));
    k.jobs_.find("j")->total = 2;
    EXPECT_EQ(k.written(), ids{});
    k.add(res(0));
    EXPECT_EQ(k.written(), (ids{0, 1, 5}));
    EXPECT_TRUE(k.recorder_.held("j").empty());
}

TEST(ReorderBuffer, RestoredIdsAreNotWaitedFor) {
    // --resume with --keep-order: ids an earlier run wrote are recorded, so
    // the floor passes them.
    KeepOrder k;
    k.jobs_.restore("j", 0, true, "w");
    k.jobs_.restore("j", 2, true, "w");
    k.add(res(3));
    EXPECT_EQ(k.written(), ids{});
    k.add(res(1));
    EXPECT_EQ(k.written(), (ids{1, 3}));
}

TEST(ReorderBuffer, BeyondTheMemoryBoundHeldResultsAreWrittenOutOfOrder) {
    const std::size_t one = reorder_buffer::footprint(res(1));
    KeepOrder k(3 * one + one / 2);  // room for three
    k.add(res(1));
    k.add(res(2));
    k.add(res(3));
    EXPECT_EQ(k.written(), ids{});
    k.add(res(4));
    EXPECT_EQ(k.written(), ids{1}) << "the lowest held result goes out first";
    EXPECT_EQ(k.recorder_.written_out_of_order(), 1u);
    EXPECT_EQ(k.recorder_.held("j"), (ids{2, 3, 4}));
    k.add(res(0));
    EXPECT_EQ(k.written(), (ids{0, 2, 3, 4}));
    EXPECT_EQ(k.acked().first, (ids{1, 0, 2, 3, 4}));
}

}  // namespace
