// End-to-end: command jobs (`zfarm-ventilator -- CMD ARG...`, the exec kind
// of PROTOCOL.md 6.4) on workers started with --allow-exec, and the same job
// run by GNU parallel for comparison.
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

class Exec : public ::testing::TestWithParam<std::string> {
  protected:
    std::string write_input(const std::vector<std::string>& lines) {
        return write_lines(farm.dir() / "input.txt", lines);
    }

    std::map<std::uint64_t, nlohmann::json> results_by_id() {
        return read_results_by_id(farm.output());
    }

    void start_workers(int n, const std::vector<std::string>& extra = {"--allow-exec"}) {
        std::vector<std::string> args{"--exit-when-done"};
        args.insert(args.end(), extra.begin(), extra.end());
        for (int i = 0; i < n; ++i)
            farm.start_worker(args);
    }

    pipeline farm{GetParam()};
};

// Inputs a shell would mangle: spaces, quotes, globs, substitutions, a
// leading dash, non-ASCII text.
const std::vector<std::string> k_awkward = {
    "plain", "two words", "it's",    "say \"hi\"", "*",           "$(echo injected)",
    "`id`",  "-n",        "a;b|c&d", "naïve café", "back\\slash", "",
};

TEST_P(Exec, RunsEachLineAsAnArgumentWithoutAShell) {
    const auto input = write_input(k_awkward);
    farm.start_sink({"--once"});
    start_workers(2);
    farm.start_ventilator({"--input", input, "--job", "argv", "--", "printf", "<%s>", "{}"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);

    auto by_id = results_by_id();
    ASSERT_EQ(by_id.size(), k_awkward.size());
    for (std::size_t i = 0; i < k_awkward.size(); ++i) {
        const auto& r = by_id[i];
        EXPECT_EQ(r.value("status", ""), "ok") << r.dump();
        EXPECT_EQ(r.value("output", ""), "<" + k_awkward[i] + ">") << r.dump();
        EXPECT_EQ(r.value("exit", -1), 0) << r.dump();
        EXPECT_EQ(r.value("signal", -1), 0) << r.dump();
        EXPECT_FALSE(r.value("host", "").empty()) << r.dump();
        EXPECT_FALSE(r.value("cmd", "").empty()) << r.dump();
    }
}

TEST_P(Exec, ShellModeQuotesEachLineSafely) {
    const auto input = write_input(k_awkward);
    farm.start_sink({"--once"});
    start_workers(2);
    farm.start_ventilator(
        {"--input", input, "--job", "shell", "--shell", "--", "printf '<%s>' {} | tr a-z A-Z"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);

    auto by_id = results_by_id();
    ASSERT_EQ(by_id.size(), k_awkward.size());
    for (std::size_t i = 0; i < k_awkward.size(); ++i) {
        std::string upper = "<" + k_awkward[i] + ">";
        for (auto& c : upper)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        EXPECT_EQ(by_id[i].value("output", ""), upper) << by_id[i].dump();
    }
}

TEST_P(Exec, NonZeroExitIsFailedRetriedAndRecordedWithItsOutput) {
    const auto input = write_input({"0", "3"});
    farm.start_sink({"--once"});
    start_workers(2);
    farm.start_ventilator({"--input", input, "--job", "exits", "--retries", "1", "--shell", "--",
                           "echo out {}; echo err {} >&2; exit {}"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1);

    auto by_id = results_by_id();
    ASSERT_EQ(by_id.size(), 2u);
    EXPECT_EQ(by_id[0].value("status", ""), "ok");
    const auto& bad = by_id[1];
    EXPECT_EQ(bad.value("status", ""), "failed") << bad.dump();
    EXPECT_EQ(bad.value("attempts", 0), 2) << bad.dump();
    EXPECT_EQ(bad.value("exit", -1), 3) << bad.dump();
    EXPECT_EQ(bad.value("output", ""), "out 3\n") << bad.dump();
    EXPECT_EQ(bad.value("stderr", ""), "err 3\n") << bad.dump();
    const std::string error = bad.value("error", "");
    EXPECT_NE(error.find("attempt 1: exit code 3; attempt 2: exit code 3"), std::string::npos)
        << bad.dump();
}

TEST_P(Exec, CommandThatCannotStartFailsTheTaskNotTheWorker) {
    const auto input = write_input({"x"});
    farm.start_sink({"--once"});
    start_workers(1);
    farm.start_ventilator({"--input", input, "--job", "missing", "--retries", "0", "--",
                           "/nonexistent/zfarm-no-such-command"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.workers()[0]->wait_for_exit(k_exit_timeout), 0);
    auto by_id = results_by_id();
    const std::string error = by_id[0].value("error", "");
    EXPECT_NE(error.find("cannot run '/nonexistent/zfarm-no-such-command'"), std::string::npos)
        << by_id[0].dump();
}

TEST_P(Exec, WorkerWithoutAllowExecRefusesAndGoesOn) {
    const auto input = write_input({"a", "b"});
    farm.start_sink({"--once"});
    start_workers(1, {});
    farm.start_ventilator({"--input", input, "--job", "refused", "--retries", "0", "--", "true"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.workers()[0]->wait_for_exit(k_exit_timeout), 0);
    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, 2));
    for (const auto& r : results)
        EXPECT_NE(r.value("error", "").find("start it with --allow-exec"), std::string::npos)
            << r.dump();
}

TEST_P(Exec, TimeoutKillsTheCommandAndItsChildren) {
    const auto input = write_input({"x"});
    const auto pid_file = farm.dir() / "background.pid";
    farm.start_sink({"--once"});
    start_workers(1);
    // The command's background child would keep running for 300 s.
    farm.start_ventilator({"--input", input, "--job", "slow", "--retries", "0", "--task-timeout",
                           "1", "--shell", "--",
                           "sleep 300 & echo $! >" + pid_file.string() + "; sleep 300 # {}"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1);
    auto by_id = results_by_id();
    const auto& r = by_id[0];
    EXPECT_NE(r.value("error", "").find("timed out after 1000 ms"), std::string::npos) << r.dump();
    EXPECT_LT(r.value("ms", 1e9), 30000.0) << r.dump();
    EXPECT_NE(r.value("signal", 0), 0) << r.dump();
    EXPECT_EQ(farm.workers()[0]->wait_for_exit(k_exit_timeout), 0);

    // The background child was in the command's process group: killed too
    // (gone, or a zombie nobody has reaped yet).
    const std::string pid_text = read_file(pid_file);
    ASSERT_FALSE(pid_text.empty());
    const auto pid = static_cast<pid_t>(std::stol(pid_text));
    EXPECT_TRUE(wait_until([&] { return process_gone(pid); }, k_start_timeout))
        << "the command's background child outlived its timeout";
}

// PROTOCOL.md 7.12: with --halt-on-failure the ventilator sends nothing new
// after the sink records a failure (ACK `failed`), lets what is in flight
// finish, and cancels the job.
TEST_P(Exec, HaltOnFailureStopsAtTheFirstFailedCommand) {
    std::vector<std::string> lines;
    for (int i = 1; i <= 200; ++i)
        lines.push_back(std::to_string(i));
    const auto input = write_input(lines);
    farm.start_sink({});
    start_workers(1);
    farm.start_ventilator({"--input", input, "--job", "halt", "--retries", "0", "--halt-on-failure",
                           "--shell", "--", "sleep 0.05; test {} -ne 5"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_NE(farm.ventilator().stdout_text().find("halted: task 4 failed"), std::string::npos)
        << farm.ventilator().stdout_text();
    const auto results = read_results(farm.output());
    EXPECT_LT(results.size(), 100u) << "the job went on after its failure";
    auto by_id = results_by_id();
    EXPECT_EQ(by_id[4].value("status", ""), "failed") << by_id[4].dump();
}

// Bad input after tasks were sent (a NUL byte on line 3): the ventilator
// cancels the job rather than leave the sink and workers waiting, and exits 1.
TEST_P(Exec, InputErrorMidJobCancelsTheJob) {
    const auto path = farm.dir() / "input.txt";
    std::ofstream(path) << "a\nb\n" << std::string("c\0d\n", 4) << "e\n";
    farm.start_sink({"--once"});
    start_workers(1);
    farm.start_ventilator({"--input", path.string(), "--job", "bad-line", "--", "true"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    const auto log = farm.ventilator().stderr_text();
    EXPECT_NE(log.find(":3:"), std::string::npos) << log;
    EXPECT_NE(log.find("cancelling job bad-line after 2 task(s) sent"), std::string::npos) << log;
    EXPECT_TRUE(farm.sink().wait_for_exit(k_exit_timeout).has_value()) << "the sink left (--once)";
}

// The same with a worker whose credit takes the bad line into the first
// batch: the good lines before it are still sent (and run), then the job is
// cancelled.
TEST_P(Exec, InputErrorInTheFirstBatchSendsTheLinesBeforeIt) {
    const auto path = farm.dir() / "input.txt";
    std::ofstream(path) << "a\nb\n" << std::string("c\0d\n", 4) << "e\n";
    farm.start_sink({"--once"});
    start_workers(1, {"--allow-exec", "--threads", "4"});
    farm.start_ventilator({"--input", path.string(), "--job", "bad-line", "--", "true"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    const auto log = farm.ventilator().stderr_text();
    EXPECT_NE(log.find("cancelling job bad-line after 2 task(s) sent"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, Exec, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

// The joblog's Exitval column by Seq (GNU parallel's layout: a header, then
// Seq Host Starttime JobRuntime Send Receive Exitval Signal Command).
std::map<std::uint64_t, int> exit_values(const std::filesystem::path& joblog) {
    std::map<std::uint64_t, int> out;
    std::ifstream in(joblog);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::vector<std::string> f;
        std::string field;
        while (std::getline(fields, field, '\t'))
            f.push_back(field);
        if (f.size() >= 7) out[std::stoull(f[0])] = std::stoi(f[6]);
    }
    return out;
}

// A 1,000-line job run by GNU parallel (-k, -j 2) and by zfarm (--shell,
// sink --format text --keep-order): the same output, byte for byte, and the
// same exit status for every line.
TEST(ExecVersusParallel, SameOutputsAndExitStatusesAsGnuParallel) {
    if (std::system("parallel --version >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "GNU parallel is not installed (Debian package parallel)";
    pipeline farm("credit");
    std::vector<std::string> lines;
    for (int i = 0; i < 1000; ++i)
        lines.push_back(k_awkward[static_cast<std::size_t>(i) % k_awkward.size()] + " " +
                        std::to_string(i * 7919 % 1000));
    const auto input = farm.dir() / "input.txt";
    {
        std::ofstream out(input);
        for (const auto& l : lines)
            out << l << '\n';
    }
    const std::string command = "printf '%s|%s\\n' {#} {}; exit $(( {#} % 7 == 0 ? 3 : 0 ))";

    const auto parallel_out = farm.dir() / "parallel.out";
    const auto parallel_log = farm.dir() / "parallel.joblog";
    child_process parallel("/usr/bin/parallel",
                           {"--will-cite", "-k", "-j", "2", "--joblog", parallel_log.string(), "-a",
                            input.string(), command},
                           farm.dir().path(), "parallel");
    EXPECT_EQ(parallel.wait_for_exit(k_exit_timeout), 101)
        << "GNU parallel exits with the number of failed jobs (142; capped at 101)";
    std::filesystem::copy_file(parallel.stdout_path(), parallel_out);

    const auto joblog = farm.dir() / "zfarm.joblog";
    farm.start_sink({"--once", "--format", "text", "--keep-order", "--joblog", joblog.string()});
    for (int i = 0; i < 2; ++i)
        farm.start_worker({"--exit-when-done", "--allow-exec"});
    farm.start_ventilator({"--input", input.string(), "--job", "vs-parallel", "--retries", "0",
                           "--shell", "--", command});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1);

    const std::string ours = read_file(farm.output());
    const std::string theirs = read_file(parallel_out);
    EXPECT_EQ(ours.size(), theirs.size());
    EXPECT_TRUE(ours == theirs) << "outputs differ; see " << farm.dir().path();
    const auto ours_exit = exit_values(joblog);
    const auto theirs_exit = exit_values(parallel_log);
    EXPECT_EQ(ours_exit.size(), 1000u);
    EXPECT_EQ(ours_exit, theirs_exit);
}

}  // namespace
}  // namespace zfarm::test
