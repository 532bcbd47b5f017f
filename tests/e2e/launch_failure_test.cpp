// End-to-end: launch-failure detection (zfarm-ventilator --expect-workers,
// --min-workers, --connect-deadline). A worker pointed at a wrong address
// never connects: by the deadline the ventilator says how many came, and
// cancels the job with exit status 2 when too few did, instead of waiting
// forever; or goes on with those it has when --min-workers allows.
#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

class LaunchFailure : public ::testing::TestWithParam<std::string> {
  protected:
    // A worker whose tasks and credit endpoints point where nothing listens.
    child_process& start_lost_worker(pipeline& p) {
        const std::string nowhere = tcp_endpoint(free_tcp_port());
        lost_.emplace_back("zfarm-worker",
                           std::vector<std::string>{"--tasks", nowhere, "--credit", nowhere,
                                                    "--results", tcp_endpoint(p.ports().results),
                                                    "--control", tcp_endpoint(p.ports().control)},
                           p.dir().path(), "lost-worker");
        return lost_.back();
    }
    std::deque<child_process> lost_;
};

TEST_P(LaunchFailure, TooFewWorkersByTheDeadlineCancelTheJobWithExit2) {
    pipeline p(GetParam());
    p.start_sink({"--once"});
    p.start_worker({"--exit-when-done"});
    start_lost_worker(p);
    const auto started = std::chrono::steady_clock::now();
    // 3 s of work for the one worker: still running at the deadline.
    auto& v = p.start_ventilator(
        {"--sleep", "30", "--ms", "100", "--expect-workers", "2", "--connect-deadline", "2"});
    ASSERT_EQ(v.wait_for_exit(k_exit_timeout), 2);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
    const std::string out = v.stdout_text();
    EXPECT_NE(out.find("cancelled: 1 of 2 expected worker(s) connected within 2 s"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("fewer than the 2 required"), std::string::npos) << out;
    if (GetParam() == "credit") {  // the one that came is named (HOST-PID-SUFFIX)
        EXPECT_NE(out.find("-" + std::to_string(p.workers().front()->pid()) + "-"),
                  std::string::npos)
            << out;
    }
    EXPECT_NE(v.stderr_text().find("error"), std::string::npos);
}

TEST_P(LaunchFailure, MinWorkersLetsTheJobGoOnWithThoseThatCame) {
    pipeline p(GetParam());
    p.start_sink({"--once"});
    p.start_worker({"--exit-when-done"});
    start_lost_worker(p);
    auto& v = p.start_ventilator({"--sleep", "20", "--ms", "100", "--expect-workers", "2",
                                  "--min-workers", "1", "--connect-deadline", "1"});
    ASSERT_EQ(v.wait_for_exit(k_exit_timeout), 0) << v.stderr_text();
    EXPECT_NE(v.stderr_text().find("1 of 2 expected worker(s) connected"), std::string::npos);
    EXPECT_TRUE(has_each_id_once(read_results(p.output()), 20));
}

TEST_P(LaunchFailure, AllExpectedWorkersAreReportedWhenTheyCome) {
    pipeline p(GetParam());
    p.start(2, {"--sleep", "20", "--ms", "10", "--expect-workers", "2"});
    ASSERT_EQ(p.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_NE(p.ventilator().stderr_text().find("2 of 2 expected worker(s) connected"),
              std::string::npos)
        << p.ventilator().stderr_text();
}

INSTANTIATE_TEST_SUITE_P(Dispatch, LaunchFailure, ::testing::Values("push", "credit"));

TEST(LaunchFailureUsage, MinWorkersAboveExpectedIsAUsageError) {
    pipeline p;
    auto& v = p.start_ventilator({"--echo", "1", "--expect-workers", "2", "--min-workers", "3"});
    EXPECT_EQ(v.wait_for_exit(k_exit_timeout), 2);
    EXPECT_NE(v.stderr_text().find("--min-workers is more than --expect-workers"),
              std::string::npos);
}

}  // namespace
}  // namespace zfarm::test
