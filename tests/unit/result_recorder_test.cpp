// Unit tests for sink/result_recorder.hpp without --keep-order: what is
// written, the ACKs of a batch and their `failed` ids (PROTOCOL.md 5.8
// rule 7), and the job log written with the results.
#include "result_recorder.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using zfarm::proto::ack;
using zfarm::proto::result;
using zfarm::proto::task_status;
using zfarm::sink::job_log;
using zfarm::sink::job_table;
using zfarm::sink::result_recorder;
using zfarm::sink::result_writer;
using zfarm::unit::temp_dir;
using outcome = job_table::record_outcome;
using ids = std::vector<std::uint64_t>;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

result res(std::uint64_t id, task_status status = task_status::ok, const std::string& job = "j") {
    return result{job, id, 1, "w1", status, 10, "", status == task_status::ok ? "" : "boom"};
}

struct Recorder : ::testing::Test {
    temp_dir dir;
    job_table jobs;
    result_writer writer = result_writer::open(dir.file("out.jsonl")).value();
    result_recorder recorder{jobs, writer, nullptr};

    outcome add(result r) { return recorder.add(r, t0); }
    std::vector<ack> acks() {
        EXPECT_TRUE(recorder.flush());
        return recorder.take_acks();
    }
};

TEST_F(Recorder, AcknowledgesEachRecordedIdListingTheFailedOnes) {
    // 5.8 rule 7: "`failed`: those of `ids` whose recorded result is failed".
    add(res(0));
    add(res(1, task_status::failed));
    add(res(2));
    add(res(0, task_status::ok, "other"));
    const auto a = acks();
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].job, "j");
    EXPECT_EQ(a[0].ids, (ids{0, 1, 2}));
    EXPECT_EQ(a[0].failed, ids{1});
    EXPECT_TRUE(a[0].running.empty());
    EXPECT_EQ(a[1].job, "other");
    EXPECT_TRUE(a[1].failed.empty());
    EXPECT_TRUE(acks().empty()) << "taken";
}

TEST_F(Recorder, DuplicateOfAFailedResultIsListedFailedToo) {
    // 5.8 rule 7: "(including duplicates of a failed one)".
    add(res(4, task_status::failed));
    acks();
    EXPECT_EQ(add(res(4, task_status::ok)), outcome::duplicate);
    EXPECT_EQ(add(res(5)), outcome::added);
    EXPECT_EQ(add(res(5, task_status::failed)), outcome::duplicate);
    const auto a = acks();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].ids, (ids{4, 5, 5}));
    EXPECT_EQ(a[0].failed, ids{4}) << "what counts is the recorded result";
}

TEST_F(Recorder, RestoredFailuresAreKnownToo) {
    jobs.restore("j", 3, false, "w");
    EXPECT_EQ(add(res(3)), outcome::duplicate);
    const auto a = acks();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].failed, ids{3});
}

TEST_F(Recorder, AnswerToJobOpenHasNoIds) {
    recorder.answer_open("j");
    const auto a = acks();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_TRUE(a[0].ids.empty());
    EXPECT_TRUE(a[0].failed.empty());
}

TEST_F(Recorder, LongBatchesAreSplitWithTheirFailedIds) {
    const std::uint64_t n = zfarm::proto::k_max_ids_per_message + 10;
    for (std::uint64_t id = 0; id < n; ++id)
        add(res(id, id % 50000 == 7 ? task_status::failed : task_status::ok));
    const auto a = acks();
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].ids.size(), zfarm::proto::k_max_ids_per_message);
    EXPECT_EQ(a[1].ids.size(), 10u);
    EXPECT_EQ(a[0].failed, (ids{7, 50007}));
    EXPECT_TRUE(a[1].failed.empty());
}

TEST_F(Recorder, RetriedFailureIsNeitherWrittenNorAcknowledged) {
    jobs.open("j", t0)->retries = 1;
    EXPECT_EQ(add(res(0, task_status::failed)), outcome::retry);
    const auto a = acks();
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(dir.read("out.jsonl"), "");
}

TEST_F(Recorder, JobLogIsWrittenWithTheResults) {
    auto log = job_log::open(dir.file("joblog"));
    ASSERT_TRUE(log) << log.error();
    result_recorder with_log{jobs, writer, &*log};
    result r = res(0);
    r.kind = "echo";
    r.started_us = 1'000'000;
    with_log.add(r, t0);
    EXPECT_EQ(dir.read("joblog"), std::string(job_log::k_header));
    ASSERT_TRUE(with_log.flush());
    EXPECT_EQ(dir.read("joblog"),
              std::string(job_log::k_header) + "1\tw1\t1.000\t     0.000\t0\t0\t0\t0\techo\n");
}

}  // namespace
