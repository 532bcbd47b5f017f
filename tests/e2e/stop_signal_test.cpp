// End-to-end: SIGINT and SIGTERM end every program cleanly and promptly
// (DESIGN.md, "Graceful stop"), even when its peers are not there.
#include <csignal>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

constexpr auto k_stop_bound = std::chrono::seconds(10);

class StopSignal : public ::testing::TestWithParam<int> {
  protected:
    // Waits until `p` has logged `line` (so its handlers are installed), then
    // sends the signal under test.
    void signal_once_up(child_process& p, const std::string& line) {
        ASSERT_TRUE(wait_until([&] { return p.stderr_text().find(line) != std::string::npos; },
                               k_start_timeout))
            << p.name() << " never logged \"" << line << "\"";
        p.signal(GetParam());
    }

    pipeline farm;
};

TEST_P(StopSignal, IdleSinkExitsZero) {
    auto& sink = farm.start_sink();
    signal_once_up(sink, "sink up");
    EXPECT_EQ(sink.wait_for_exit(k_stop_bound), 0);
}

TEST_P(StopSignal, IdleWorkerWithoutPeersExitsZero) {
    auto& worker = farm.start_worker();
    signal_once_up(worker, "up:");
    EXPECT_EQ(worker.wait_for_exit(k_stop_bound), 0);
}

TEST_P(StopSignal, IdleWorkerConnectedToASinkExitsZero) {
    farm.start_sink();
    auto& worker = farm.start_worker();
    ASSERT_TRUE(
        wait_until([&] { return farm.sink().stderr_text().find("joined") != std::string::npos; },
                   k_start_timeout));
    signal_once_up(worker, "up:");
    EXPECT_EQ(worker.wait_for_exit(k_stop_bound), 0);
    EXPECT_TRUE(
        wait_until([&] { return farm.sink().stderr_text().find("left") != std::string::npos; },
                   k_start_timeout))
        << "the worker did not say BYE";
}

TEST_P(StopSignal, VentilatorWaitingForAMissingSinkExitsOne) {
    auto& ventilator = farm.start_ventilator({"--demo", "10", "--job", "nosink"});
    signal_once_up(ventilator, "ventilator up");
    EXPECT_EQ(ventilator.wait_for_exit(k_stop_bound), 1);
    EXPECT_EQ(ventilator.stdout_text(), "") << "an interrupted job prints no summary";
}

TEST_P(StopSignal, VentilatorInTheMiddleOfAJobExitsOne) {
    farm.start_sink();
    farm.start_worker();
    auto& ventilator =
        farm.start_ventilator({"--sleep", "1000", "--ms", "50", "--job", "interrupted"});
    ASSERT_TRUE(wait_until([&] { return count_lines(farm.output()) > 0; }, k_start_timeout));
    ventilator.signal(GetParam());
    EXPECT_EQ(ventilator.wait_for_exit(k_stop_bound), 1);
}

INSTANTIATE_TEST_SUITE_P(IntAndTerm, StopSignal, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& sig) {
                             return std::string(sig.param == SIGINT ? "SIGINT" : "SIGTERM");
                         });

}  // namespace
}  // namespace zfarm::test
