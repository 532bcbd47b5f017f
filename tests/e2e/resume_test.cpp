// Resuming after the sink or the ventilator died (PROTOCOL.md 10.1, 11.4,
// 11.5): the sink rebuilds what it recorded from its output file, cutting a
// torn last line; a ventilator started with --resume sends only what is not
// recorded; a ventilator that loses its sink asks the restarted one what it
// recorded and sends again what died with the old one. Each kill test passes
// only when every task is recorded exactly once.
#include <fstream>

#include <gtest/gtest.h>

#include "support/fault_report.hpp"
#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

void append(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << text;
}

std::string result_line(const std::string& job, std::uint64_t id) {
    return R"({"job":")" + job + R"(","id":)" + std::to_string(id) +
           R"(,"status":"ok","attempts":1,"worker":"earlier","ms":1.0,"start":0.0,"output":""})" +
           "\n";
}

// 10.1: the sink restores the file's results, cuts the torn last line, and a
// resuming ventilator sends only the ids the file does not have.
TEST(Resume, VentilatorSendsOnlyWhatTheResumedSinkHasNotRecorded) {
    pipeline farm("credit");
    for (std::uint64_t id : {0, 1, 2, 3, 4, 6, 7, 9})
        append(farm.output(), result_line("again", id));
    const std::string torn = R"({"job":"again","id":5,"sta)";  // a crash mid-line
    append(farm.output(), torn);
    farm.start_sink({"--once", "--resume"});
    farm.start_worker({"--exit-when-done"});
    farm.start_ventilator({"--sleep", "12", "--ms", "1", "--job", "again", "--resume"});

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0)
        << farm.ventilator().stderr_text();
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    const auto results = read_results(farm.output());  // fails on any torn or bad line
    EXPECT_TRUE(has_each_id_once(results, 12));
    std::set<std::uint64_t> ran;
    for (const auto& r : results)
        if (r.value("worker", "") != "earlier") ran.insert(r.value("id", std::uint64_t{0}));
    EXPECT_EQ(ran, (std::set<std::uint64_t>{5, 8, 10, 11}));
    const auto sink_log = farm.sink().stderr_text();
    EXPECT_NE(sink_log.find("resumed 8 result(s) of 1 job(s)"), std::string::npos) << sink_log;
    EXPECT_NE(sink_log.find("torn last line of " + std::to_string(torn.size()) + " byte(s)"),
              std::string::npos)
        << sink_log;
    EXPECT_NE(
        farm.ventilator().stderr_text().find("8 task(s) recorded by an earlier run were skipped"),
        std::string::npos)
        << farm.ventilator().stderr_text();
    EXPECT_NE(farm.ventilator().stdout_text().find("12 tasks, 12 ok"), std::string::npos)
        << farm.ventilator().stdout_text();
}

// 10.1: a resumed job that had finished is all recorded: nothing is sent.
TEST(Resume, ResumingAFinishedJobSendsNothing) {
    pipeline farm("push");
    farm.start(1, {"--echo", "20"}, "finished");
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    ASSERT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);

    farm.start_sink({"--once", "--resume"});
    farm.start_ventilator({"--echo", "20", "--job", "finished", "--resume"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0)
        << farm.ventilator().stderr_text();
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_TRUE(has_each_id_once(read_results(farm.output()), 20));
    EXPECT_NE(farm.ventilator().stderr_text().find("20 task(s) recorded by an earlier run"),
              std::string::npos)
        << farm.ventilator().stderr_text();
}

TEST(Resume, SinkRefusesALineThatIsNotAResult) {
    pipeline farm;
    append(farm.output(), result_line("j", 0) + "hello\n" + result_line("j", 1));
    farm.start_sink({"--resume"});
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 2);
    const auto err = farm.sink().stderr_text();
    EXPECT_NE(err.find(farm.output().string() + ":2: not a zfarm result line: not JSON"),
              std::string::npos)
        << err;
}

class Restarts : public ::testing::TestWithParam<std::string> {
  protected:
    pipeline farm{GetParam()};
    static constexpr std::uint64_t n = 4000;
    std::chrono::system_clock::time_point killed_at;
    // 5 ms tasks: seconds of work left after the kill point, even on a
    // loaded machine (the kill must come before the job ends).
    std::vector<std::string> workload{"--sleep", std::to_string(n), "--ms",
                                      "5",       "--job",           "phoenix"};

    void start_and_wait_for_half() {
        farm.start_sink({"--once", "--liveness-timeout", "2"});
        for (int i = 0; i < 4; ++i)
            farm.start_worker({"--exit-when-done"});
        farm.start_ventilator(workload);
        ASSERT_TRUE(
            wait_until([&] { return count_lines(farm.output()) >= n / 2; }, k_start_timeout));
    }

    // Reports the fault (Jepsen-style, the kill counted) and checks that
    // every task was recorded exactly once.
    void expect_each_once(const std::string& fault) {
        const auto results = read_results(farm.output());
        auto report = tally(results, n);
        report.kills = 1;
        report.longest_wait_s = longest_wait(results, {killed_at});
        report.duplicate_deliveries = duplicate_deliveries(farm.sink().stderr_text());
        print(report, fault + ", " + farm.dispatch());
        EXPECT_EQ(report.lost, 0u);
        EXPECT_EQ(report.duplicates_recorded, 0u);
        EXPECT_TRUE(has_each_id_once(results, n));
    }
};

// Issue 3, test 6: the sink killed with SIGKILL at 50 % and restarted with
// --resume: the job completes, every task recorded exactly once.
TEST_P(Restarts, SinkKilledAndResumedRecordsEachTaskOnce) {
    ASSERT_NO_FATAL_FAILURE(start_and_wait_for_half());
    killed_at = std::chrono::system_clock::now();
    farm.sink().kill();
    farm.start_sink({"--once", "--resume", "--liveness-timeout", "2"});

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_NE(farm.ventilator().stderr_text().find("sink reconnected"), std::string::npos);
    expect_each_once("kill -9 the sink at 50 %, restart it with --resume");
}

// Issue 3, test 6: the ventilator killed with SIGKILL at 50 % and started
// again with --resume: it sends only what is not recorded, and the job
// completes with every task recorded exactly once.
TEST_P(Restarts, VentilatorKilledAndResumedRecordsEachTaskOnce) {
    ASSERT_NO_FATAL_FAILURE(start_and_wait_for_half());
    killed_at = std::chrono::system_clock::now();
    farm.ventilator().kill();
    auto resumed = workload;
    resumed.push_back("--resume");
    farm.start_ventilator(resumed);

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_NE(farm.ventilator().stderr_text().find("job phoenix resumed"), std::string::npos);
    expect_each_once("kill -9 the ventilator at 50 %, restart it with --resume");
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, Restarts, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
