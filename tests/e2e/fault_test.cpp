// Fault injection: real processes really killed or stopped mid-job. Each test
// reports, Jepsen-style, what was attempted and what the sink recorded, and
// passes only when nothing was lost and nothing was recorded twice
// (PROTOCOL.md 11: every task of a job is recorded exactly once).
#include <signal.h>

#include <map>

#include <gtest/gtest.h>

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

void print(const fault_report& r, const std::string& what) {
    std::printf(
        "[fault] %s: attempted %llu, recorded ok %llu, failed %llu, lost %llu, duplicates "
        "recorded %llu, re-sent %llu\n",
        what.c_str(), static_cast<unsigned long long>(r.attempted),
        static_cast<unsigned long long>(r.recorded_ok), static_cast<unsigned long long>(r.failed),
        static_cast<unsigned long long>(r.lost),
        static_cast<unsigned long long>(r.duplicates_recorded),
        static_cast<unsigned long long>(r.retried));
}

class Faults : public ::testing::TestWithParam<std::string> {
  protected:
    pipeline farm{GetParam()};
    // Detect a silent worker within 2 s; leases far longer, so recovery in
    // these tests comes from LOST, not from lease expiry.
    std::vector<std::string> sink_args{"--once", "--liveness-timeout", "2"};

    // A sink, `workers` workers and a ventilator running `n` sleep tasks of
    // `ms` each as `job`; returns once `recorded` results are in.
    void start_job(std::uint64_t n, int workers, int ms, const std::string& job,
                   std::uint64_t recorded) {
        farm.start_sink(sink_args);
        for (int i = 0; i < workers; ++i)
            farm.start_worker({"--exit-when-done"});
        farm.start_ventilator({"--sleep", std::to_string(n), "--ms", std::to_string(ms), "--lease",
                               "60", "--job", job});
        ASSERT_TRUE(
            wait_until([&] { return count_lines(farm.output()) >= recorded; }, k_start_timeout));
    }

    // After the ventilator exited: the sink exits 0, and the job's n ids are
    // each recorded once. Prints the report; returns the results.
    std::vector<nlohmann::json> expect_nothing_lost(std::uint64_t n, const std::string& fault) {
        EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
        auto results = read_results(farm.output());
        const auto report = tally(results, n);
        print(report, fault + ", " + farm.dispatch());
        EXPECT_EQ(report.lost, 0u);
        EXPECT_EQ(report.duplicates_recorded, 0u);
        return results;
    }
};

// 11.3: a worker killed with SIGKILL mid-job loses nothing: the sink declares
// it lost and the ventilator sends its tasks again.
TEST_P(Faults, WorkerKilledMidJobLosesNothing) {
    constexpr std::uint64_t n = 3000;
    ASSERT_NO_FATAL_FAILURE(start_job(n, 4, 2, "kill9", n / 4));
    farm.workers()[1]->kill();

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    const auto results = expect_nothing_lost(n, "kill -9 one of 4 workers");
    EXPECT_TRUE(has_each_id_once(results, n));
}

// 11.3: a worker stopped (SIGSTOP) longer than the liveness timeout is lost;
// its tasks are sent again, the job does not stall while it is stopped, and
// its late results after SIGCONT are dropped as duplicates.
TEST_P(Faults, StoppedWorkerDoesNotStallTheJob) {
    constexpr std::uint64_t n = 1500;
    ASSERT_NO_FATAL_FAILURE(start_job(n, 3, 2, "sigstop", n / 5));
    auto* victim = farm.workers()[0];
    victim->signal(SIGSTOP);
    // The job completes while the victim is still stopped.
    const auto rc = farm.ventilator().wait_for_exit(k_exit_timeout);
    victim->signal(SIGCONT);
    ASSERT_EQ(rc, 0);
    expect_nothing_lost(n, "SIGSTOP one of 3 workers");
}

// Issue 3, test 2: every worker killed halfway through, new ones started
// later: the job completes, each id recorded once.
TEST_P(Faults, AllWorkersKilledAndReplacedLosesNothing) {
    constexpr std::uint64_t n = 2000;
    ASSERT_NO_FATAL_FAILURE(start_job(n, 4, 2, "massacre", n / 2));
    for (auto* w : farm.workers())
        w->kill();
    // The sink declares them all lost before any replacement joins.
    ASSERT_TRUE(wait_until(
        [&] {
            const auto log = farm.sink().stderr_text();
            std::size_t lost = 0;
            for (auto at = log.find(" lost:"); at != std::string::npos;
                 at = log.find(" lost:", at + 1))
                ++lost;
            return lost >= 4;
        },
        k_start_timeout));
    for (int i = 0; i < 4; ++i)
        farm.start_worker({"--exit-when-done"});

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    expect_nothing_lost(n, "kill -9 all 4 workers at 50 %, then 4 new ones");
}

// Issue 3, test 7: SIGTERM mid-task drains the worker: it finishes what it
// holds, says BYE and exits 0; nothing is lost or recorded twice.
TEST_P(Faults, TerminatedWorkerDrainsAndLosesNothing) {
    constexpr std::uint64_t n = 400;
    ASSERT_NO_FATAL_FAILURE(start_job(n, 3, 10, "drain", n / 4));
    auto* leaving = farm.workers()[0];
    leaving->signal(SIGTERM);
    EXPECT_EQ(leaving->wait_for_exit(k_exit_timeout), 0);

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    expect_nothing_lost(n, "SIGTERM one of 3 workers mid-job");
}

// 11: a task whose attempts run out (--retries) is recorded failed with the
// reason of each attempt, and the job still completes (exit 1).
TEST_P(Faults, TaskIsRecordedFailedWhenItsAttemptsRunOut) {
    farm.start_sink(sink_args);
    farm.start_worker();
    farm.start_ventilator({"--sleep", "1", "--ms", "600000", "--retries", "0", "--job", "doomed"});
    ASSERT_TRUE(wait_until(
        [&] { return farm.ventilator().stderr_text().find("all 1 task(s)") != std::string::npos; },
        k_start_timeout));
    // The sink must know the worker to declare it lost (else the lease, much
    // later, would catch the task).
    ASSERT_TRUE(
        wait_until([&] { return farm.sink().stderr_text().find("joined") != std::string::npos; },
                   k_start_timeout));
    farm.workers()[0]->kill();

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1);
    const auto results = read_results(farm.output());
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].value("status", ""), "failed");
    EXPECT_NE(results[0].value("error", "").find("attempt 1: "), std::string::npos)
        << results[0].dump();
    EXPECT_NE(results[0].value("error", "").find("lost"), std::string::npos) << results[0].dump();
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, Faults, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
