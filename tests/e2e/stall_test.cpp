// A stalled worker does not stall the pipeline (PROTOCOL.md 8.1, rule 4):
// while one worker is stopped (SIGSTOP), and before the sink declares it
// lost, the others keep recording results. In push dispatch the stalled
// worker holds on to what libzmq queued for it, and the tasks it holds stop
// counting against the in-flight budget once they are overdue; in credit
// dispatch it simply stops granting credit.
#include <signal.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

class Stall : public ::testing::TestWithParam<std::string> {
  protected:
    pipeline farm{GetParam()};
};

TEST_P(Stall, OtherWorkersKeepRecordingWhileOneIsStopped) {
    constexpr std::uint64_t n = 8000;
    // The default liveness timeout (3 s): the others must make progress
    // well within it, before the stopped worker's loss could help them.
    farm.start_sink({"--once"});
    for (int i = 0; i < 3; ++i)
        farm.start_worker({"--exit-when-done"});
    farm.start_ventilator({"--sleep", std::to_string(n), "--ms", "1", "--job", "stall"});
    ASSERT_TRUE(wait_until([&] { return count_lines(farm.output()) >= 1000; }, k_start_timeout));

    auto* stopped = farm.workers()[0];
    stopped->signal(SIGSTOP);
    const auto before = count_lines(farm.output());
    auto declared_lost = [&] {
        return farm.sink().stderr_text().find(" lost:") != std::string::npos;
    };
    ASSERT_TRUE(
        wait_until([&] { return declared_lost() || count_lines(farm.output()) >= before + 300; },
                   k_start_timeout));
    const auto progress = count_lines(farm.output()) - before;
    std::printf(
        "[stall] %s: %zu result(s) recorded while a worker was stopped, before it was "
        "declared lost\n",
        farm.dispatch().c_str(), progress);
    EXPECT_GE(progress, 300u) << "the pipeline stalled with its worker";

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    stopped->signal(SIGCONT);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_TRUE(has_each_id_once(read_results(farm.output()), n));
}

// PROTOCOL.md 7.9, rule 2: a sink that could not read for a while (here
// SIGSTOP; in the field a stalled disk) does not count that time as its
// workers' silence, so it does not declare the whole fleet lost on resuming.
TEST_P(Stall, StoppedSinkDeclaresNoWorkerLostWhenItResumes) {
    constexpr std::uint64_t n = 4000;
    farm.start_sink({"--once"});
    for (int i = 0; i < 2; ++i)
        farm.start_worker({"--exit-when-done"});
    farm.start_ventilator({"--sleep", std::to_string(n), "--ms", "2", "--job", "sink-stall"});
    ASSERT_TRUE(wait_until([&] { return count_lines(farm.output()) >= 200; }, k_start_timeout));

    farm.sink().signal(SIGSTOP);
    // The pause is the fault itself: longer than the liveness timeout (2.5 s)
    // plus the lag of a check.
    std::this_thread::sleep_for(std::chrono::seconds(4));
    farm.sink().signal(SIGCONT);

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    const auto log = farm.sink().stderr_text();
    EXPECT_NE(log.find("sink was paused for "), std::string::npos) << log;
    EXPECT_EQ(log.find(" lost:"), std::string::npos) << log;
    EXPECT_TRUE(has_each_id_once(read_results(farm.output()), n));
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, Stall, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
