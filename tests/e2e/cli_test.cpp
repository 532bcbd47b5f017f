// End-to-end: bad usage exits 2 with a one-line reason on stderr (DESIGN.md,
// "Command line (contract)"). Every invocation gets free endpoints, so a
// program that wrongly went on would bind nothing another test uses.
#include <fstream>

#include <gtest/gtest.h>

#include "support/process.hpp"

namespace zfarm::test {
namespace {

constexpr auto k_usage_timeout = std::chrono::seconds(30);

class Usage : public ::testing::Test {
  protected:
    // Runs `program` with `args` to its exit (bounded).
    void run(const std::string& program, const std::vector<std::string>& args) {
        child_process p(program, args, dir.path(), program + "-" + std::to_string(++runs_));
        code_ = p.wait_for_exit(k_usage_timeout);
        out_ = p.stdout_text();
        err_ = p.stderr_text();
    }

    // Exit code 2, nothing on stdout, and one line on stderr naming the
    // program and holding every string in `mentions`.
    ::testing::AssertionResult is_usage_error(const std::string& program,
                                              const std::vector<std::string>& mentions) const {
        auto fail = [&] {
            return ::testing::AssertionFailure()
                   << "exit " << (code_ ? std::to_string(*code_) : "none (still running)")
                   << ", stdout \"" << out_ << "\", stderr \"" << err_ << "\": ";
        };
        if (code_ != 2) return fail() << "expected exit 2";
        if (!out_.empty()) return fail() << "expected nothing on stdout";
        if (err_.empty() || err_.back() != '\n' || err_.find('\n') != err_.size() - 1)
            return fail() << "expected exactly one line on stderr";
        if (err_.find(program) == std::string::npos)
            return fail() << "expected the line to name " << program;
        for (const auto& m : mentions)
            if (err_.find(m) == std::string::npos) return fail() << "expected it to mention " << m;
        return ::testing::AssertionSuccess();
    }

    std::vector<std::string> endpoints(const std::string& except = "") const {
        std::vector<std::string> out;
        for (const auto& [flag, port] : {std::pair{"--tasks", tasks},
                                         {"--credit", credit},
                                         {"--results", results},
                                         {"--control", control}})
            if (flag != except) out.insert(out.end(), {flag, tcp_endpoint(port)});
        return out;
    }
    std::vector<std::string> sink_endpoints(const std::string& except = "") const {
        std::vector<std::string> out;
        for (const auto& [flag, port] : {std::pair{"--results", results}, {"--control", control}})
            if (flag != except) out.insert(out.end(), {flag, tcp_endpoint(port)});
        out.insert(out.end(), {"-o", (dir / "out.jsonl").string()});
        return out;
    }
    static std::vector<std::string> concat(std::vector<std::string> a,
                                           const std::vector<std::string>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }

    temp_dir dir;
    std::uint16_t tasks = free_tcp_port();
    std::uint16_t credit = free_tcp_port();
    std::uint16_t results = free_tcp_port();
    std::uint16_t control = free_tcp_port();

  private:
    int runs_ = 0;
    std::optional<int> code_;
    std::string out_;
    std::string err_;
};

using VentilatorUsage = Usage;
using WorkerUsage = Usage;
using SinkUsage = Usage;

TEST_F(VentilatorUsage, UnknownFlagExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--demo", "1", "--frobnicate"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"--frobnicate"}));
}

TEST_F(VentilatorUsage, TwoWorkloadsExitTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--demo", "1", "--echo", "2"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"--demo", "--echo"}));
}

TEST_F(VentilatorUsage, NoWorkloadExitsTwo) {
    run("zfarm-ventilator", endpoints());
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"--demo"}));
}

TEST_F(VentilatorUsage, SleepWithoutMsExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--sleep", "3"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"--ms"}));
}

TEST_F(VentilatorUsage, BadResultsEndpointExitsTwo) {
    run("zfarm-ventilator", concat(endpoints("--results"), {"--results", "foo", "--demo", "1"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"'foo'"}));
}

TEST_F(VentilatorUsage, MissingTasksFileExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--tasks-file", "/nonexistent"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"/nonexistent"}));
}

TEST_F(VentilatorUsage, TasksFileWithBadLineNamesTheLine) {
    const auto file = dir / "tasks.jsonl";
    std::ofstream(file) << "{\"kind\":\"sleep\",\"payload\":\"1\"}\n"
                           "\n"
                           "{\"kind\":\n"
                           "{\"kind\":\"echo\"}\n";
    run("zfarm-ventilator", concat(endpoints(), {"--tasks-file", file.string()}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {file.string() + ":3:"}));
}

TEST_F(VentilatorUsage, TasksFileWithoutKindNamesTheLine) {
    const auto file = dir / "tasks.jsonl";
    std::ofstream(file) << "{\"kind\":\"sleep\",\"payload\":\"1\"}\n"
                           "{\"payload\":\"1\"}\n";
    run("zfarm-ventilator", concat(endpoints(), {"--tasks-file", file.string()}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {file.string() + ":2:", "kind"}));
}

TEST_F(VentilatorUsage, UnknownDispatchExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--demo", "1", "--dispatch", "bogus"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"bogus"}));
}

TEST_F(VentilatorUsage, SeparatorWithoutCommandExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"--", "command"}));
}

TEST_F(VentilatorUsage, CommandWithAWorkloadExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--echo", "1", "--", "true"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"--echo", "command"}));
}

TEST_F(VentilatorUsage, CommandFlagWithoutCommandExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--demo", "1", "--shell"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"--shell needs a command after --"}));
}

TEST_F(VentilatorUsage, FlagAfterSeparatorExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--", "--shell", "echo {}"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"'--shell'", "before --"}));
}

TEST_F(VentilatorUsage, MissingInputExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--input", "/nonexistent", "--", "true"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"cannot read /nonexistent"}));
}

TEST_F(VentilatorUsage, DirectoryAsInputExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--input", dir.path().string(), "--", "true"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {dir.path().string(), "is a directory"}));
}

TEST_F(VentilatorUsage, EnvOfAnUnsetVariableExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--env", "ZFARM_TEST_NEVER_SET_9F3A", "--input",
                                                 "/dev/null", "--", "true"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"ZFARM_TEST_NEVER_SET_9F3A is not set"}));
}

TEST_F(WorkerUsage, ZeroThreadsExitsTwo) {
    run("zfarm-worker", concat(endpoints(), {"--threads", "0"}));
    EXPECT_TRUE(is_usage_error("zfarm-worker", {"--threads"}));
}

TEST_F(WorkerUsage, UnknownFlagExitsTwo) {
    run("zfarm-worker", concat(endpoints(), {"--frobnicate"}));
    EXPECT_TRUE(is_usage_error("zfarm-worker", {"--frobnicate"}));
}

TEST_F(WorkerUsage, BadResultsEndpointExitsTwo) {
    run("zfarm-worker", concat(endpoints("--results"), {"--results", "foo"}));
    EXPECT_TRUE(is_usage_error("zfarm-worker", {"'foo'"}));
}

TEST_F(WorkerUsage, BadMaxOutputExitsTwo) {
    run("zfarm-worker", concat(endpoints(), {"--allow-exec", "--max-output", "lots"}));
    EXPECT_TRUE(is_usage_error("zfarm-worker", {"--max-output"}));
}

TEST_F(SinkUsage, UnknownFlagExitsTwo) {
    run("zfarm-sink", concat(sink_endpoints(), {"--frobnicate"}));
    EXPECT_TRUE(is_usage_error("zfarm-sink", {"--frobnicate"}));
}

TEST_F(SinkUsage, BadResultsEndpointExitsTwo) {
    run("zfarm-sink", concat(sink_endpoints("--results"), {"--results", "foo"}));
    EXPECT_TRUE(is_usage_error("zfarm-sink", {"'foo'"}));
}

TEST_F(SinkUsage, OutputInMissingDirectoryExitsTwoWithClearMessage) {
    const std::string path = (dir / "no-such-dir" / "out.jsonl").string();
    run("zfarm-sink", {"--results", tcp_endpoint(results), "--control", tcp_endpoint(control), "-o",
                       path, "--once"});
    EXPECT_TRUE(is_usage_error("sink", {path, "No such file or directory"}));
}

TEST_F(SinkUsage, ResumeWithoutAnOutputFileExitsTwo) {
    run("zfarm-sink",
        {"--results", tcp_endpoint(results), "--control", tcp_endpoint(control), "--resume"});
    EXPECT_TRUE(is_usage_error("zfarm-sink", {"--resume needs -o FILE"}));
}

TEST_F(SinkUsage, TextFormatWithResumeExitsTwo) {
    run("zfarm-sink", concat(sink_endpoints(), {"--format", "text", "--resume"}));
    EXPECT_TRUE(is_usage_error("zfarm-sink", {"--resume", "--format text"}));
}

TEST_F(SinkUsage, UnknownFormatExitsTwo) {
    run("zfarm-sink", concat(sink_endpoints(), {"--format", "csv"}));
    EXPECT_TRUE(is_usage_error("zfarm-sink", {"csv"}));
}

TEST_F(SinkUsage, UnwritableJobLogExitsTwo) {
    const std::string path = (dir / "no-such-dir" / "joblog").string();
    run("zfarm-sink", concat(sink_endpoints(), {"--joblog", path, "--once"}));
    EXPECT_TRUE(is_usage_error("zfarm-sink: error: ", {path, "No such file or directory"}));
}

TEST_F(VentilatorUsage, ResumeWithoutAJobNameExitsTwo) {
    run("zfarm-ventilator", concat(endpoints(), {"--echo", "1", "--resume"}));
    EXPECT_TRUE(is_usage_error("zfarm-ventilator", {"--resume", "--job"}));
}

}  // namespace
}  // namespace zfarm::test
