// End-to-end: the launch scripts users start jobs with (scripts/run-local.sh,
// scripts/demo.sh), run for real against this build's programs. They must
// run the job, exit with its status, and leave no process behind, also when
// a component dies mid-job.
#include <signal.h>

#include <cerrno>
#include <deque>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

const std::filesystem::path k_source_dir = ZFARM_SOURCE_DIR;

// PIDs of the children of `parent` whose command name is `comm` (or any).
std::set<pid_t> children_of(pid_t parent, const std::string& comm = "") {
    std::set<pid_t> out;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream stat(entry.path() / "stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        // pid (comm) state ppid ...: comm may hold spaces, so split at the last ')'.
        const auto open = line.find('('), close = line.rfind(')');
        if (open == std::string::npos || close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 2));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid != parent || state == 'Z') continue;
        if (!comm.empty() && line.substr(open + 1, close - open - 1) != comm) continue;
        out.insert(static_cast<pid_t>(std::stol(name)));
    }
    return out;
}

class Scripts : public ::testing::Test {
  protected:
    // bash SCRIPT ARGS..., with this build's programs (ZFARM_BUILD_DIR).
    child_process& run(const std::string& script, const std::vector<std::string>& args) {
        std::vector<std::string> argv{"ZFARM_BUILD_DIR=" + bin_dir().parent_path().string(),
                                      "TMPDIR=" + dir.path().string(), "bash",
                                      (k_source_dir / "scripts" / script).string()};
        argv.insert(argv.end(), args.begin(), args.end());
        return programs.emplace_back("/usr/bin/env", argv, dir.path(),
                                     script + "-" + std::to_string(programs.size()));
    }

    temp_dir dir;
    std::deque<child_process> programs;
};

TEST_F(Scripts, RunLocalRunsAJobAndExitsWithItsStatus) {
    const auto out = dir.path() / "run";
    auto& p = run("run-local.sh", {"-j", "2", "--dir", out.string(), "--demo", "30", "--dispatch",
                                   "credit", "--job", "local"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 0) << p.stderr_text();
    EXPECT_TRUE(is_summary_line(p.stdout_text(), "local", 30, 30, 0, 2)) << p.stdout_text();
    EXPECT_TRUE(has_each_id_once(read_results(out / "results.jsonl"), 30));
    for (const char* log : {"sink.log", "ventilator.log", "worker-1.log", "worker-2.log"})
        EXPECT_TRUE(std::filesystem::exists(out / log)) << log;
    EXPECT_NE(p.stderr_text().find("logs in " + out.string()), std::string::npos)
        << p.stderr_text();
}

TEST_F(Scripts, RunLocalRunsACommandJobAndReportsItsFailures) {
    const auto out = dir.path() / "run";
    const auto input = dir.path() / "input.txt";
    std::ofstream(input) << "0\n0\n4\n";
    auto& p = run("run-local.sh",
                  {"-j", "2", "--allow-exec", "--dir", out.string(), "--input", input.string(),
                   "--retries", "0", "--job", "cmds", "--", "sh", "-c", "exit $0"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 1) << p.stderr_text();
    EXPECT_TRUE(is_summary_line(p.stdout_text(), "cmds", 3, 2, 1, 2)) << p.stdout_text();
}

TEST_F(Scripts, RunLocalTellsTheVentilatorHowManyWorkersItStarted) {
    const auto out = dir.path() / "run";
    auto& p =
        run("run-local.sh", {"-j", "2", "--dir", out.string(), "--sleep", "40", "--ms", "50"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 0) << p.stderr_text();
    EXPECT_NE(read_file(out / "ventilator.log").find("2 of 2 expected worker(s) connected"),
              std::string::npos)
        << read_file(out / "ventilator.log");
    // The user's own --expect-workers wins: one worker of two is too few
    // (and on a loaded machine it may not even have connected by then).
    auto& few =
        run("run-local.sh", {"-j", "1", "--dir", (dir / "few").string(), "--expect-workers", "2",
                             "--connect-deadline", "2", "--sleep", "100", "--ms", "100"});
    ASSERT_EQ(few.wait_for_exit(k_exit_timeout), 2) << few.stderr_text();
    EXPECT_TRUE(std::regex_search(few.stderr_text(),
                                  std::regex("[01] of 2 expected worker\\(s\\) connected")))
        << few.stderr_text();
}

TEST_F(Scripts, RunLocalStopsEverythingWhenTheSinkDies) {
    const auto out = dir.path() / "run";
    auto& p =
        run("run-local.sh", {"-j", "2", "--dir", out.string(), "--sleep", "100000", "--ms", "10"});
    // The script is bash under env (exec'd): its children are the programs.
    std::set<pid_t> sinks, all;
    ASSERT_TRUE(wait_until(
        [&] {
            sinks = children_of(p.pid(), "zfarm-sink");
            all = children_of(p.pid());
            return !sinks.empty() && count_lines(out / "results.jsonl") >= 10;
        },
        k_start_timeout));
    ::kill(*sinks.begin(), SIGKILL);
    EXPECT_EQ(p.wait_for_exit(k_exit_timeout), 1);
    EXPECT_NE(p.stderr_text().find("sink exited before the job finished"), std::string::npos)
        << p.stderr_text();
    for (pid_t child : all)
        EXPECT_TRUE(wait_until([&] { return process_gone(child); }, k_start_timeout))
            << "process " << child << " was left running";
}

TEST_F(Scripts, DemoRunsTheGuideWorkloadAndSummarisesTheBalance) {
    auto& p = run("demo.sh", {"-j", "2", "--demo", "20"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 0) << p.stderr_text();
    const auto text = p.stdout_text();
    for (const char* line : {"20 tasks, 20 ok, 0 failed", "makespan:", "per worker:", "results:"})
        EXPECT_NE(text.find(line), std::string::npos) << line << " in\n" << text;
}

}  // namespace
}  // namespace zfarm::test
