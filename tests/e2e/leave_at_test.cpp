// End-to-end: zfarm-worker --leave-at (PROTOCOL.md 9.3, rule 4). At its
// leave time a worker takes no new task and hands its queued ones back;
// --leave-grace later it abandons the running ones and hands them back too;
// then it says BYE and exits 0, and another worker runs what it handed back,
// each task recorded once.
#include <chrono>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

constexpr auto k_leave_bound = std::chrono::seconds(10);

bool logged(child_process& p, const std::string& text) {
    return p.stderr_text().find(text) != std::string::npos;
}

TEST(LeaveAt, WorkerHandsBackQueuedThenRunningTasksAndAnotherRunsThem) {
    pipeline farm("push");
    farm.start_sink({"--once"});
    // The tasks wait for a worker; push dispatch deals all four to the first
    // one as it connects: one runs, three queue.
    farm.start_ventilator({"--sleep", "4", "--ms", "6000", "--job", "leave"});
    const auto started = std::chrono::steady_clock::now();
    // It leaves 3 s from now, and abandons its running task 1 s later, 2 s
    // before that task would end.
    auto& leaver = farm.start_worker({"--id", "leaver", "--leave-at", "+3", "--leave-grace", "1"});

    ASSERT_EQ(leaver.wait_for_exit(k_leave_bound), 0) << leaver.stderr_text();
    EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(4))
        << "it left before its leave time and grace";
    EXPECT_TRUE(logged(leaver, "leaving: 3 queued task(s) handed back")) << leaver.stderr_text();
    EXPECT_TRUE(logged(leaver, "0 ok, 0 failed")) << leaver.stderr_text();
    EXPECT_TRUE(
        wait_until([&] { return logged(farm.sink(), "worker leaver left"); }, k_start_timeout))
        << "no BYE";
    EXPECT_EQ(count_lines(farm.output()), 0u) << "the leaver recorded a result";

    // All four come back to the next worker at once, without waiting for a
    // lease or a liveness timeout.
    auto& next = farm.start_worker({"--id", "next", "--threads", "4", "--exit-when-done"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0)
        << farm.ventilator().stderr_text();
    EXPECT_TRUE(logged(farm.ventilator(), "worker leaver gone: 4 task(s) of job leave sent again"))
        << farm.ventilator().stderr_text();
    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, 4));
    for (const auto& r : results) {
        EXPECT_EQ(r["status"], "ok") << r;
        EXPECT_EQ(r["worker"], "next") << r;
    }
    EXPECT_EQ(next.wait_for_exit(k_exit_timeout), 0);
}

TEST(LeaveAt, IdleWorkerLeavesAtAUnixTime) {
    pipeline farm;
    farm.start_sink();
    const auto at = std::chrono::system_clock::now() + std::chrono::seconds(2);
    const auto at_s = std::chrono::duration<double>(at.time_since_epoch()).count();
    auto& worker = farm.start_worker({"--id", "timed", "--leave-at", std::to_string(at_s)});
    ASSERT_EQ(worker.wait_for_exit(k_leave_bound), 0) << worker.stderr_text();
    EXPECT_GE(std::chrono::system_clock::now(), at) << "it left early";
    EXPECT_TRUE(
        wait_until([&] { return logged(farm.sink(), "worker timed left"); }, k_start_timeout))
        << "no BYE";
}

TEST(LeaveAt, RefusesATimeItCannotRead) {
    temp_dir dir;
    for (const char* bad : {"soon", "+", "-5", "+1s", "1e99", "nan"}) {
        child_process worker("zfarm-worker", {"--connect", "127.0.0.1", "--leave-at", bad},
                             dir.path(), std::string("worker-") + bad);
        EXPECT_EQ(worker.wait_for_exit(k_exit_timeout), 2) << bad;
        EXPECT_NE(worker.stderr_text().find("--leave-at takes Unix seconds or +SECONDS"),
                  std::string::npos)
            << bad << ": " << worker.stderr_text();
    }
}

}  // namespace
}  // namespace zfarm::test
