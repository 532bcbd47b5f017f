// Network faults, real ones: a worker in its own network namespace, joined to
// the host by a veth pair, while the sink, the ventilator and the other
// workers run on the host. Its cable is pulled mid-job (11.3: "a cut
// network"). Each test reports, Jepsen-style, what was attempted and what the
// sink recorded, and passes only when nothing was lost and nothing was
// recorded twice
// (PROTOCOL.md 11.1: every task of a job is recorded once).
//
// Needs root, iproute2 and iptables; without them the tests skip and say why.
#include <map>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "support/netns.hpp"
#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

struct fault_report {
    std::uint64_t attempted = 0;
    std::uint64_t recorded_ok = 0;
    std::uint64_t failed = 0;
    std::uint64_t lost = 0;
    std::uint64_t duplicates_recorded = 0;
    std::uint64_t retried = 0;  // recorded with attempts > 1: the work was sent again
};

fault_report tally(const std::vector<nlohmann::json>& results, std::uint64_t n) {
    fault_report r;
    r.attempted = n;
    std::map<std::uint64_t, int> seen;
    for (const auto& j : results) {
        const auto id = j.value("id", std::uint64_t{0});
        if (++seen[id] > 1) ++r.duplicates_recorded;
        (j.value("status", "") == "ok" ? r.recorded_ok : r.failed)++;
        if (j.value("attempts", 1) > 1) ++r.retried;
    }
    for (std::uint64_t id = 0; id < n; ++id)
        if (!seen.contains(id)) ++r.lost;
    return r;
}

std::string describe(const fault_report& r) {
    return "attempted " + std::to_string(r.attempted) + ", recorded ok " +
           std::to_string(r.recorded_ok) + ", failed " + std::to_string(r.failed) + ", lost " +
           std::to_string(r.lost) + ", duplicates recorded " +
           std::to_string(r.duplicates_recorded) + ", re-sent " + std::to_string(r.retried);
}

double epoch_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string fixed(double x, int decimals = 1) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
    return buf;
}

// The worker in the namespace, by its --id.
constexpr const char* k_cut_off = "netns-worker";

class Partition : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        std::string why_not;
        ns_ = network_namespace::create(why_not);
        if (!ns_) GTEST_SKIP() << "cannot give a worker its own network namespace: " << why_not;
        farm_.emplace(GetParam(), ns_->host_address());
    }

    // The results recorded so far by `worker`, parsed (only those lines).
    std::vector<nlohmann::json> recorded_by(const std::string& worker) const {
        std::vector<nlohmann::json> out;
        const std::string needle = "\"worker\":\"" + worker + "\"";
        for (const auto& line : read_lines(farm_->output()))
            if (line.find(needle) != std::string::npos)
                out.push_back(nlohmann::json::parse(line, nullptr, false));
        return out;
    }

    bool sink_logged(const std::string& text) {
        return farm_->sink().stderr_text().find(text) != std::string::npos;
    }

    // Declared in this order so that the pipeline's programs are killed before
    // the namespace goes.
    std::unique_ptr<network_namespace> ns_;
    std::optional<pipeline> farm_;
};

// Issue 3, test 8 (partition): a worker's cable is pulled for 10 s mid-job,
// then plugged back in. The sink declares it lost and its tasks are sent
// again (11.3); the job goes on without it; after the heal it rejoins (7.9,
// rule 3) and runs new tasks. Nothing is lost, nothing recorded twice.
TEST_P(Partition, CutOffWorkerLosesNothingAndRejoinsAfterTheHeal) {
    auto& farm = *farm_;
    constexpr std::uint64_t n = 2400;
    constexpr auto cut_for = std::chrono::seconds(10);
    farm.start_sink({"--once"});
    farm.start_worker({"--exit-when-done"});
    farm.start_worker({"--exit-when-done"});
    farm.start_worker_under(ns_->exec_prefix(), {"--exit-when-done", "--id", k_cut_off});
    farm.start_ventilator({"--sleep", std::to_string(n), "--ms", "20", "--job", "partition"});
    // The namespaced worker does its share before the cut.
    ASSERT_TRUE(wait_until([&] { return recorded_by(k_cut_off).size() >= 20; }, k_start_timeout))
        << "the worker in " << ns_->name() << " recorded nothing before the cut";

    std::string why;
    const auto cut_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(ns_->cut(why)) << why;
    std::optional<double> declared_lost_after;
    if (wait_until([&] { return sink_logged(std::string("worker ") + k_cut_off + " lost"); },
                   std::chrono::duration_cast<std::chrono::milliseconds>(cut_for)))
        declared_lost_after = seconds_since(cut_at);
    // Holding the partition is the fault itself.
    std::this_thread::sleep_until(cut_at + cut_for);
    const double healed_epoch = epoch_seconds();
    const auto healed_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(ns_->heal(why)) << why;
    const double cut_off_for = std::chrono::duration<double>(healed_at - cut_at).count();

    std::optional<double> rejoined_after;
    if (wait_until([&] { return sink_logged(std::string("worker ") + k_cut_off + " rejoined"); },
                   k_start_timeout))
        rejoined_after = seconds_since(healed_at);
    const auto started_after_heal = [&] {
        std::size_t count = 0;
        for (const auto& r : recorded_by(k_cut_off))
            if (r.value("start", 0.0) >= healed_epoch) ++count;
        return count;
    };
    std::optional<double> first_new_result_after;
    if (wait_until([&] { return started_after_heal() >= 1; }, k_start_timeout))
        first_new_result_after = seconds_since(healed_at);

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    const auto results = read_results(farm.output());
    const auto report = tally(results, n);
    const auto after_heal = started_after_heal();
    std::printf(
        "[fault] partition (iptables DROP both ways on the veth, no RST), %s: %s; worker cut "
        "off %s s, declared lost %s, rejoined %s, %zu result(s) started after the heal\n",
        farm.dispatch().c_str(), describe(report).c_str(), fixed(cut_off_for).c_str(),
        declared_lost_after ? (fixed(*declared_lost_after) + " s into the cut").c_str() : "never",
        rejoined_after ? (fixed(*rejoined_after) + " s after the heal").c_str() : "never",
        after_heal);
    EXPECT_EQ(report.lost, 0u);
    EXPECT_EQ(report.duplicates_recorded, 0u);
    EXPECT_TRUE(has_each_id_once(results, n));
    EXPECT_TRUE(declared_lost_after) << "the sink never declared the cut-off worker lost";
    EXPECT_TRUE(rejoined_after) << "the cut-off worker never rejoined";
    EXPECT_TRUE(first_new_result_after) << "the cut-off worker ran nothing new after the heal";
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, Partition, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
