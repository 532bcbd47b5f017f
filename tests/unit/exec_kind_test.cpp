// Unit tests for worker/src/exec_kind.hpp and child_process.hpp: the `exec`
// task kind (PROTOCOL.md 6.4), its handler called directly with a task_view:
// results, errors, environment, directory, descriptors, signals and output
// caps. Killing at the deadline or on cancel: exec_kind_kill_test.cpp.
// Commands are the POSIX tools of any Debian machine (sh, printf, head, pwd,
// cat, grep, ls). Waits are bounded and generous: these must hold on a
// loaded two-core machine.
#include "exec_kind.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "unit/exec_test_helpers.hpp"
#include "unit/temp_dir.hpp"
#include "zfarm/exec_format.hpp"

namespace {

using namespace zfarm::unit;

TEST(ExecKind, RunsACommandAndCapturesItsStdout) {
    exec_kind k(k_mib);
    const auto r = run(k, payload({"printf", "hello %s", "world"}));
    ASSERT_TRUE(r) << reason_of(r);
    const outcome o = outcome_of(r);
    EXPECT_EQ(o.exit_code, 0);
    EXPECT_EQ(o.signal, 0);
    EXPECT_EQ(o.out, "hello world");
    EXPECT_EQ(o.err, "");
    EXPECT_EQ(o.out_dropped, 0u);
    EXPECT_EQ(o.host, host());
    EXPECT_EQ(o.cmd, "printf 'hello %s' world");
    EXPECT_GT(o.wall_us, 0u);
}

TEST(ExecKind, CapturesStderrSeparately) {
    exec_kind k(k_mib);
    const auto r = run(k, payload({"sh", "-c", "echo to-out; echo to-err >&2; echo more-out"}));
    ASSERT_TRUE(r) << reason_of(r);
    const outcome o = outcome_of(r);
    EXPECT_EQ(o.out, "to-out\nmore-out\n");
    EXPECT_EQ(o.err, "to-err\n");
}

TEST(ExecKind, NonzeroExitFailsWithTheOutputMap) {
    // 6.4.3: "failed otherwise, with error `exit code N`"; "The output map is
    // sent in every case but the refusal and the bad payload".
    exec_kind k(k_mib);
    const auto r = run(k, payload({"sh", "-c", "echo partial; echo why >&2; exit 3"}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, "exit code 3");
    const outcome o = outcome_of(r);
    EXPECT_EQ(o.exit_code, 3);
    EXPECT_EQ(o.signal, 0);
    EXPECT_EQ(o.out, "partial\n");
    EXPECT_EQ(o.err, "why\n");
}

TEST(ExecKind, CommandKilledByASignalFailsNamingIt) {
    exec_kind k(k_mib);
    const auto r = run(k, payload({"sh", "-c", "kill -TERM $$"}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, "killed by signal 15 (TERM)");
    const outcome o = outcome_of(r);
    EXPECT_FALSE(o.exit_code.has_value());
    EXPECT_EQ(o.signal, SIGTERM);
}

TEST(ExecKind, MissingCommandCannotRun) {
    // 6.4.3: "when it could not be started, `cannot run 'ARGV0': REASON`
    // (`exit` nil, `signal` 0)".
    exec_kind k(k_mib);
    for (const std::string argv0 : {"zfarm-no-such-command", "/nonexistent/zfarm-command"}) {
        const auto r = run(k, payload({argv0, "x"}));
        ASSERT_FALSE(r) << argv0;
        EXPECT_EQ(r.error().reason, "cannot run '" + argv0 + "': No such file or directory");
        const outcome o = outcome_of(r);
        EXPECT_FALSE(o.exit_code.has_value());
        EXPECT_EQ(o.signal, 0);
        EXPECT_EQ(o.cmd, argv0 + " x");
    }
}

TEST(ExecKind, FileThatIsNotExecutableCannotRun) {
    zfarm::unit::temp_dir dir;
    const std::string script = dir.write("script.sh", "#!/bin/sh\necho hi\n");  // mode 0644
    exec_kind k(k_mib);
    const auto r = run(k, payload({script}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, "cannot run '" + script + "': Permission denied");
}

TEST(ExecKind, BadDirectoryCannotRunAndSaysWhy) {
    zfarm::unit::temp_dir dir;
    const std::string file = dir.write("plain-file", "");
    exec_kind k(k_mib);
    auto r = run(k, payload({"pwd"}, {}, "/nonexistent-zfarm-dir"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason,
              "cannot run 'pwd': directory '/nonexistent-zfarm-dir': No such file or directory");
    EXPECT_FALSE(outcome_of(r).exit_code.has_value());
    r = run(k, payload({"pwd"}, {}, file));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, "cannot run 'pwd': directory '" + file + "': Not a directory");
}

TEST(ExecKind, RunsInTheGivenDirectory) {
    zfarm::unit::temp_dir dir;
    exec_kind k(k_mib);
    const auto r = run(k, payload({"pwd"}, {}, dir.path().string()));
    ASSERT_TRUE(r) << reason_of(r);
    EXPECT_EQ(outcome_of(r).out, std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST(ExecKind, SetsTheGivenEnvironmentOnTopOfTheWorkers) {
    ::setenv("ZFARM_EXEC_TEST_KEPT", "from-worker", 1);
    ::setenv("ZFARM_EXEC_TEST_REPLACED", "old", 1);
    exec_kind k(k_mib);
    const auto r = run(k, payload({"sh", "-c",
                                   "printf '%s|%s|%s|' \"$FOO\" \"$ZFARM_EXEC_TEST_KEPT\" "
                                   "\"$ZFARM_EXEC_TEST_REPLACED\"; env | grep -c "
                                   "'^ZFARM_EXEC_TEST_REPLACED='"},
                                  {{"FOO", "bar baz"}, {"ZFARM_EXEC_TEST_REPLACED", "new"}}));
    ::unsetenv("ZFARM_EXEC_TEST_KEPT");
    ::unsetenv("ZFARM_EXEC_TEST_REPLACED");
    ASSERT_TRUE(r) << reason_of(r);
    EXPECT_EQ(outcome_of(r).out, "bar baz|from-worker|new|1\n");
}

TEST(ExecKind, PassesTheWorkersEnvironmentAsItIsWhenTheTaskSetsNone) {
    ::setenv("ZFARM_EXEC_TEST_PLAIN", "as is", 1);
    std::size_t mine = 0;
    for (char** e = environ; e && *e; ++e)
        ++mine;
    exec_kind k(k_mib);
    const auto r =
        run(k, payload({"sh", "-c",
                        "printf '%s|' \"$ZFARM_EXEC_TEST_PLAIN\"; env -0 | tr -cd '\\0' | wc -c"}));
    ::unsetenv("ZFARM_EXEC_TEST_PLAIN");
    ASSERT_TRUE(r) << reason_of(r);
    // The variables the shell adds itself (PWD, SHLVL, _) may come on top.
    const std::string out = outcome_of(r).out;
    ASSERT_EQ(out.rfind("as is|", 0), 0u) << out;
    const auto count = std::stoul(out.substr(6));
    EXPECT_GE(count, mine);
    EXPECT_LE(count, mine + 3) << out;
}

TEST(ExecKind, ReadsNothingFromStdin) {
    exec_kind k(k_mib);
    const auto r = run(k, payload({"cat"}));
    ASSERT_TRUE(r) << reason_of(r);
    EXPECT_EQ(outcome_of(r).out, "");
}

TEST(ExecKind, StartsTheCommandInAProcessGroupOfItsOwn) {
    exec_kind k(k_mib);
    const auto r = run(k, payload({"cat", "/proc/self/stat"}));
    ASSERT_TRUE(r) << reason_of(r);
    const std::string stat = outcome_of(r).out;
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string state;
    long ppid = 0;
    long pgrp = 0;
    fields >> state >> ppid >> pgrp;
    EXPECT_EQ(std::to_string(pgrp), stat.substr(0, stat.find(' '))) << stat;
    EXPECT_NE(pgrp, static_cast<long>(::getpgrp()));
}

TEST(ExecKind, StartsTheCommandWithDefaultSignalsNoneBlocked) {
    // The worker ignores SIGPIPE and its threads may block signals; a command
    // inherits neither.
    struct sigaction old_pipe {};
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &old_pipe);
    sigset_t block;
    sigset_t old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    exec_kind k(k_mib);
    const auto r = run(k, payload({"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"}));
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGPIPE, &old_pipe, nullptr);
    ASSERT_TRUE(r) << reason_of(r);
    const std::string masks = outcome_of(r).out;
    ASSERT_EQ(masks.size(), 2 * 25u) << masks;
    EXPECT_EQ(masks.substr(0, 25), "SigBlk:\t0000000000000000\n");
    // glibc's posix_spawn leaves its own internal signals (32 and 33, below
    // SIGRTMIN) ignored in every child; no program built on glibc uses them.
    const auto ignored = std::stoull(masks.substr(33, 16), nullptr, 16);
    EXPECT_EQ(ignored & ~((1ull << 31) | (1ull << 32)), 0u) << masks;
}

TEST(ExecKind, LeaksNoDescriptorIntoTheCommand) {
    const int leaky = ::dup2(STDERR_FILENO, 200);  // not close-on-exec
    ASSERT_EQ(leaky, 200);
    exec_kind k(k_mib);
    const auto r = run(k, payload({"ls", "/proc/self/fd"}));
    ::close(leaky);
    ASSERT_TRUE(r) << reason_of(r);
    // ls's own directory descriptor is the one beyond stdin, stdout, stderr.
    std::istringstream names(outcome_of(r).out);
    std::vector<std::string> fds;
    for (std::string n; names >> n;)
        fds.push_back(n);
    ASSERT_EQ(fds.size(), 4u) << outcome_of(r).out;
    EXPECT_EQ(fds[0], "0");
    EXPECT_EQ(fds[1], "1");
    EXPECT_EQ(fds[2], "2");
}

TEST(ExecKind, KeepsAtMostTheCapOfEachStreamAndCountsTheRest) {
    // 6.4.2: "keeps at most its cap of each"; `stdout_dropped`: "bytes of
    // standard output past the cap, read and discarded".
    exec_kind k(k_mib);
    const auto r = run(k, payload({"sh", "-c",
                                   "head -c 3000000 /dev/zero >&2 & "
                                   "head -c 3000000 /dev/zero; wait"}));
    ASSERT_TRUE(r) << reason_of(r);
    const outcome o = outcome_of(r);
    EXPECT_EQ(o.out.size(), k_mib);
    EXPECT_EQ(o.err.size(), k_mib);
    EXPECT_EQ(o.out_dropped, 3000000u - k_mib);
    EXPECT_EQ(o.err_dropped, 3000000u - k_mib);
}

TEST(ExecKind, ReadsBothStreamsAtOnceSoNeitherBlocksTheCommand) {
    // Each stream far beyond a pipe's buffer, written at once: a reader of
    // one stream at a time would deadlock.
    exec_kind k(8 * k_mib);
    const auto r = run(k, payload({"sh", "-c",
                                   "head -c 3000000 /dev/zero >&2 & "
                                   "head -c 3000000 /dev/zero; wait"}));
    ASSERT_TRUE(r) << reason_of(r);
    const outcome o = outcome_of(r);
    EXPECT_EQ(o.out, std::string(3000000, '\0'));
    EXPECT_EQ(o.err, std::string(3000000, '\0'));
    EXPECT_EQ(o.out_dropped, 0u);
    EXPECT_EQ(o.err_dropped, 0u);
}

TEST(ExecKind, ReportsThePeakResidentSetSize) {
    exec_kind k(k_mib);
    const auto r = run(k, payload({"true"}));
    ASSERT_TRUE(r) << reason_of(r);
    EXPECT_GT(outcome_of(r).rss_kb, 0u);
}

TEST(ExecKind, BadPayloadFailsWithoutOutput) {
    // 6.4.1: "A payload that is not a valid map fails the task with `bad exec
    // payload: REASON`".
    exec_kind k(k_mib);
    auto r = run(k, "not msgpack");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason.rfind("bad exec payload: ", 0), 0u) << r.error().reason;
    EXPECT_EQ(r.error().output, "");
    r = run(k, payload({}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, "bad exec payload: argv is empty");
}

TEST(ExecKind, RefusalFailsWithoutOutput) {
    // 6.4.1: "otherwise it MUST fail the task, with no output, and error
    // `exec is not allowed on this worker (start it with --allow-exec)`".
    const auto r = zfarm::detail::refuse_exec(
        task_view("unit", 1, 1, "exec", payload({"true"}), nullptr, clock_type::time_point::max()));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, "exec is not allowed on this worker (start it with --allow-exec)");
    EXPECT_EQ(r.error().output, "");
}

TEST(ExecKind, NamesSignals) {
    EXPECT_EQ(zfarm::detail::describe_signal(SIGKILL), "killed by signal 9 (KILL)");
    EXPECT_EQ(zfarm::detail::describe_signal(SIGSEGV), "killed by signal 11 (SEGV)");
}

TEST(ExecKind, RunsManyCommandsAtOnce) {
    exec_kind k(k_mib);
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&, i] {
            for (int j = 0; j < 25; ++j) {
                const auto r = run(k, payload({"printf", "%s", std::to_string(i * 100 + j)}));
                if (r && outcome_of(r).out == std::to_string(i * 100 + j)) ++ok;
            }
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(ok.load(), 100);
}

}  // namespace
