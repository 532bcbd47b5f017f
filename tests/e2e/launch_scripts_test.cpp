// End-to-end: the launch scripts that start a whole job elsewhere than in one
// shell: scripts/tmux.sh (a pane per program) against a private tmux server,
// and scripts/ssh-launch.sh (workers over ssh) against a real sshd this test
// starts on a free loopback port. Each marks the processes it starts with an
// environment variable of its own (the tmux server passes it to its panes,
// the sshd sets it in every session), so that it can check that none is left
// behind, also those whose parent is gone.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

const std::filesystem::path k_source_dir = ZFARM_SOURCE_DIR;

// A value no other test run uses: this process's PID and a counter.
std::string unique_token(const std::string& what) {
    static int counter = 0;
    return what + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

class LaunchScripts : public ::testing::Test {
  protected:
    // bash SCRIPT ARGS... with this build's programs and `env` (NAME=VALUE),
    // its standard input the file `input` (default /dev/null).
    child_process& run(const std::string& script, const std::vector<std::string>& args,
                       const std::vector<std::string>& env = {},
                       const std::string& input = "/dev/null") {
        // sh execs env, which execs bash: the script keeps the PID started.
        std::vector<std::string> argv{"-c",
                                      "exec \"$@\" <\"$0\"",
                                      input,
                                      "/usr/bin/env",
                                      "ZFARM_BUILD_DIR=" + bin_dir().parent_path().string(),
                                      "TMPDIR=" + dir.path().string()};
        argv.insert(argv.end(), env.begin(), env.end());
        argv.insert(argv.end(), {"/bin/bash", (k_source_dir / "scripts" / script).string()});
        argv.insert(argv.end(), args.begin(), args.end());
        return programs.emplace_back("/bin/sh", argv, dir.path(),
                                     script + "-" + std::to_string(programs.size()));
    }

    // Scripts still running when a test failed are asked to stop (their
    // traps stop what they started) before the destructors SIGKILL them;
    // the newest first, so that a script goes before the sshd it uses.
    void TearDown() override {
        for (auto p = programs.rbegin(); p != programs.rend(); ++p) {
            if (!p->running()) continue;
            p->signal(SIGTERM);
            p->wait_for_exit(k_exit_timeout);
        }
    }

    // True once no process carries `mark` in its environment.
    static bool none_left(const std::string& mark) {
        return wait_until([&] { return processes_with_env(mark).empty(); }, k_start_timeout);
    }

    temp_dir dir;
    std::deque<child_process> programs;
};

// --- tmux.sh ---------------------------------------------------------------

class LaunchScriptsTmux : public LaunchScripts {
  protected:
    void SetUp() override {
        if (::access("/usr/bin/tmux", X_OK) != 0) GTEST_SKIP() << "tmux is not installed";
    }

    // A session a failed test left is killed; the server's socket file, which
    // tmux leaves behind, is removed.
    void TearDown() override {
        if (::access("/usr/bin/tmux", X_OK) != 0) return;
        LaunchScripts::TearDown();
        tmux_sh({"--kill"}).wait_for_exit(k_exit_timeout);
        const char* tmp = std::getenv("TMUX_TMPDIR");
        std::error_code ec;
        std::filesystem::remove(std::filesystem::path(tmp && *tmp ? tmp : "/tmp") /
                                    ("tmux-" + std::to_string(::getuid())) / socket,
                                ec);
    }

    // tmux.sh on this test's own tmux server (socket under dir), marked.
    child_process& tmux_sh(std::vector<std::string> args) {
        args.insert(args.begin(), {"-L", socket, "--session", session});
        return run("tmux.sh", args, {mark});
    }

    // tmux ARGS... on this test's server; its stdout.
    std::string tmux(const std::vector<std::string>& args) {
        std::vector<std::string> argv{"tmux", "-L", socket};
        argv.insert(argv.end(), args.begin(), args.end());
        auto& p = programs.emplace_back("/usr/bin/env", argv, dir.path(),
                                        "tmux-" + std::to_string(programs.size()));
        p.wait_for_exit(k_exit_timeout);
        return p.stdout_text();
    }

    // The text a pane has shown, its scrollback included.
    std::string pane_text(const std::string& title) {
        const std::string panes =
            tmux({"list-panes", "-s", "-t", "=" + session, "-F", "#{pane_title} #{pane_id}"});
        std::istringstream lines(panes);
        for (std::string name, id; lines >> name >> id;)
            if (name == title) return tmux({"capture-pane", "-p", "-S", "-", "-t", id});
        ADD_FAILURE() << "no pane " << title << " in\n" << panes;
        return {};
    }

    const std::string socket = unique_token("zfarm-test");
    const std::string session = unique_token("job");
    const std::string mark = "ZFARM_TEST_RUN=" + unique_token("tmux");
};

TEST_F(LaunchScriptsTmux, RunsAJobInAPanePerProgramAndKillLeavesNothing) {
    const auto out = dir.path() / "run";
    auto& p = tmux_sh({"--wait", "-j", "2", "--dir", out.string(), "--demo", "20", "--dispatch",
                       "credit", "--job", "panes"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 0) << p.stderr_text();
    EXPECT_TRUE(has_each_id_once(read_results(out / "results.jsonl"), 20));

    // Every program's pane is there, and keeps what it showed after it exited.
    // tmux shows a program's last lines, and that it ended, once it has read
    // them from the pane's terminal, which may come after tmux.sh saw the
    // program end (CI runs captured panes before their last lines): a pane is
    // captured again until it shows all it should, for at most 5 s.
    const auto shown = [&](const std::string& title, const std::vector<std::string>& texts) {
        std::string seen;
        wait_until(
            [&] {
                seen = pane_text(title);
                return std::all_of(texts.begin(), texts.end(), [&](const std::string& t) {
                    return seen.find(t) != std::string::npos;
                });
            },
            std::chrono::seconds(5));
        return seen;
    };
    const std::string summary = "job panes: 20 tasks, 20 ok, 0 failed, 2 workers";
    const std::string dead = "Pane is dead (status 0";
    const std::string vent = shown("ventilator", {summary, dead});
    EXPECT_NE(vent.find(summary), std::string::npos) << vent;
    EXPECT_NE(vent.find(dead), std::string::npos) << vent;
    for (const char* worker : {"worker-1", "worker-2"}) {
        const std::string up = std::string("worker ") + worker + " up";
        EXPECT_NE(shown(worker, {up}).find(up), std::string::npos) << worker;
    }
    EXPECT_NE(shown("sink", {"panes"}).find("panes"), std::string::npos);
    EXPECT_NE(read_file(out / "ventilator.log").find("job panes: 20 tasks"), std::string::npos);

    auto& kill = tmux_sh({"--kill"});
    ASSERT_EQ(kill.wait_for_exit(k_exit_timeout), 0) << kill.stderr_text();
    // The tmux server leaves with its last session; with it, every process.
    EXPECT_TRUE(none_left(mark)) << "left running: " << processes_with_env(mark).size();
    auto& again = tmux_sh({"--kill"});
    EXPECT_EQ(again.wait_for_exit(k_exit_timeout), 1);
    EXPECT_NE(again.stderr_text().find("no tmux session"), std::string::npos)
        << again.stderr_text();
}

TEST_F(LaunchScriptsTmux, KillStopsARunningJobWithItsCommands) {
    const auto out = dir.path() / "run";
    auto& p = tmux_sh({"--detach", "-j", "2", "--allow-exec", "--dir", out.string(), "--input",
                       write_lines(dir / "in.txt", {"1", "2", "3", "4"}), "--", "sleep", "1000{}"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 0) << p.stderr_text();
    // Sink, ventilator, two workers and their two commands, under the panes.
    ASSERT_TRUE(wait_until(
        [&] {
            for (pid_t pid : processes_with_env(mark))
                if (read_file("/proc/" + std::to_string(pid) + "/comm") == "sleep\n") return true;
            return false;
        },
        k_start_timeout));
    auto& kill = tmux_sh({"--kill"});
    ASSERT_EQ(kill.wait_for_exit(k_exit_timeout), 0) << kill.stderr_text();
    EXPECT_TRUE(none_left(mark)) << "left running: " << processes_with_env(mark).size();
}

TEST_F(LaunchScriptsTmux, ReportsAWorkerThatFailsAtStartUp) {
    auto& p = tmux_sh({"--detach", "-j", "1", "--worker-arg", "--no-such-flag"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 1) << p.stderr_text();
    const std::string err = p.stderr_text();
    EXPECT_NE(err.find("worker-1 exited with status 2 at start-up"), std::string::npos) << err;
    EXPECT_NE(err.find("--no-such-flag"), std::string::npos) << err;
    EXPECT_TRUE(none_left(mark));
}

TEST_F(LaunchScripts, TmuxWithoutTmuxSaysSoAndExits2) {
    auto& p = run("tmux.sh", {"-j", "1"}, {"PATH=" + (dir / "empty").string()});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 2);
    EXPECT_NE(p.stderr_text().find("tmux.sh: tmux is not installed"), std::string::npos)
        << p.stderr_text();
}

// --- ssh-launch.sh ---------------------------------------------------------

TEST_F(LaunchScripts, SshLaunchRefusesABadHostsLineOrHeadWithExit2) {
    const std::string hosts =
        write_lines(dir / "hosts", {"# fine", "2/alice@node1:2222", "0/node2"});
    auto& bad = run("ssh-launch.sh", {"--hosts", hosts, "--demo", "1"});
    ASSERT_EQ(bad.wait_for_exit(k_exit_timeout), 2);
    EXPECT_NE(bad.stderr_text().find(hosts + ":3: the number of workers is 1 to 1024, not 0"),
              std::string::npos)
        << bad.stderr_text();
    std::ofstream(hosts) << "node1 node2\n";
    auto& spaced = run("ssh-launch.sh", {"--hosts", hosts});
    ASSERT_EQ(spaced.wait_for_exit(k_exit_timeout), 2);
    EXPECT_NE(spaced.stderr_text().find(":1: 'node1 node2' is not [N/][USER@]HOST[:PORT]"),
              std::string::npos)
        << spaced.stderr_text();
    std::ofstream(hosts) << "node1\n";
    auto& head = run("ssh-launch.sh", {"--hosts", hosts, "--head", "node1:99999"});
    ASSERT_EQ(head.wait_for_exit(k_exit_timeout), 2);
    EXPECT_NE(head.stderr_text().find("--head takes [USER@]HOST[:PORT] (PORT 1 to 65535), not "
                                      "'node1:99999'"),
              std::string::npos)
        << head.stderr_text();
    // The head's ports are read from the start-up lines -q would hide.
    auto& quiet = run("ssh-launch.sh", {"--hosts", hosts, "--head", "node1", "-q"});
    ASSERT_EQ(quiet.wait_for_exit(k_exit_timeout), 2);
    EXPECT_NE(quiet.stderr_text().find("which -q hides"), std::string::npos) << quiet.stderr_text();
}

TEST_F(LaunchScripts, SshLaunchFailsWhenNoHostCanBeReached) {
    if (::access("/usr/bin/ssh", X_OK) != 0) GTEST_SKIP() << "no ssh client (openssh-client)";
    const std::string closed = "127.0.0.1:" + std::to_string(free_tcp_port());
    auto& p = run("ssh-launch.sh",
                  {"--hosts", write_lines(dir / "hosts", {"3/" + closed}), "--demo", "5"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 1) << p.stderr_text();
    const std::string err = p.stderr_text();
    EXPECT_NE(err.find(closed + ": cannot be reached (ssh exited 255)"), std::string::npos) << err;
    EXPECT_NE(err.find("no host is left to start workers on; nothing started"), std::string::npos)
        << err;
}

TEST_F(LaunchScripts, SshLaunchFailsAtOnceWhenTheHeadCannotBeReached) {
    if (::access("/usr/bin/ssh", X_OK) != 0) GTEST_SKIP() << "no ssh client (openssh-client)";
    const std::string closed = "127.0.0.1:" + std::to_string(free_tcp_port());
    const auto started = std::chrono::steady_clock::now();
    auto& p = run("ssh-launch.sh", {"--hosts", write_lines(dir / "hosts", {"2/" + closed}),
                                    "--head", closed, "--demo", "5"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 2) << p.stderr_text();
    // Before any host is tried: ssh's connection refused is immediate.
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
    const std::string err = p.stderr_text();
    EXPECT_EQ(err.rfind("ssh-launch.sh: the head " + closed +
                            " cannot be reached (ssh exited 255): ssh: connect to host",
                        0),
              0u)
        << err;
    EXPECT_NE(err.find("Connection refused\n"), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

// A real sshd (Debian's openssh-server) on a free loopback port, with a
// throwaway host key, accepting one throwaway client key, all in dir. Every
// session it opens carries `mark` in its environment. LaunchScripts::TearDown
// stops it by its PID, after the scripts.
class LaunchScriptsSsh : public LaunchScripts {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root, to run sshd and log in as ourselves";
        if (::access("/usr/sbin/sshd", X_OK) != 0)
            GTEST_SKIP() << "no /usr/sbin/sshd (Debian: openssh-server)";
        std::filesystem::create_directories("/run/sshd");  // its privilege separation dir
        for (const char* key : {"host_key", "client_key"}) {
            auto& gen =
                programs.emplace_back("/usr/bin/ssh-keygen",
                                      std::vector<std::string>{"-q", "-t", "ed25519", "-N", "",
                                                               "-f", (dir / key).string()},
                                      dir.path(), key);
            ASSERT_EQ(gen.wait_for_exit(k_exit_timeout), 0) << gen.stderr_text();
        }
        std::filesystem::copy_file(dir / "client_key.pub", dir / "authorized_keys");
        port = free_tcp_port();
        std::ofstream(dir / "sshd_config")
            << "ListenAddress 127.0.0.1:" << port << "\nHostKey " << (dir / "host_key").string()
            << "\nAuthorizedKeysFile " << (dir / "authorized_keys").string() << "\nPidFile "
            << (dir / "sshd.pid").string()
            << "\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n"
               "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
               "MaxStartups 100\nSetEnv "
            << mark.substr(0, mark.find('=')) << "=" << mark.substr(mark.find('=') + 1) << "\n";
        sshd = &programs.emplace_back(
            "/usr/sbin/sshd",
            std::vector<std::string>{"-D", "-e", "-f", (dir / "sshd_config").string()}, dir.path(),
            "sshd");
        const bool up =
            wait_until([&] { return !sshd->running() || read_file(dir / "sshd.pid").size() > 0; },
                       k_start_timeout);
        if (!up || !sshd->running())
            GTEST_SKIP() << "sshd did not start: " << last_lines(sshd->stderr_text(), 5);
    }

    // ssh-launch.sh with the hosts file `hosts` and ssh options that reach
    // the test's sshd with the test's key; its standard input the file `input`.
    child_process& ssh_launch(const std::vector<std::string>& hosts,
                              const std::vector<std::string>& args,
                              const std::string& input = "/dev/null") {
        std::vector<std::string> argv{"--hosts", write_lines(dir / "hosts", hosts)};
        for (const std::string& opt : std::vector<std::string>{
                 "-i", (dir / "client_key").string(), "-oUserKnownHostsFile=/dev/null",
                 "-oStrictHostKeyChecking=no", "-oLogLevel=ERROR"})
            argv.push_back("--ssh-opt=" + opt);
        argv.insert(argv.end(), args.begin(), args.end());
        return run("ssh-launch.sh", argv, {}, input);
    }

    std::string at(const std::string& host) const { return host + ":" + std::to_string(port); }

    const std::string mark = "ZFARM_TEST_RUN=" + unique_token("ssh");
    std::uint16_t port = 0;
    child_process* sshd = nullptr;
};

TEST_F(LaunchScriptsSsh, TwoHostsRunEveryTaskOnceAndAnUnreachableOneIsReported) {
    const auto out = dir.path() / "run";
    const std::string closed = "127.0.0.1:" + std::to_string(free_tcp_port());
    auto& p = ssh_launch(
        {"# two hosts through the test's sshd, and one that is not there",
         "2/root@" + at("127.0.0.1"), "", at("localhost") + "  # one worker", closed},
        {"--dir", out.string(), "--demo", "40", "--dispatch", "credit", "--job", "hosts"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 0) << p.stderr_text();
    const std::string err = p.stderr_text();
    EXPECT_TRUE(is_summary_line(p.stdout_text(), "hosts", 40, 40, 0, 3)) << p.stdout_text();
    const auto results = read_results(out / "results.jsonl");
    EXPECT_TRUE(has_each_id_once(results, 40));
    // Both host lines got workers (named HOST-N), the third was reported.
    EXPECT_NE(err.find(closed + ": cannot be reached"), std::string::npos) << err;
    EXPECT_NE(err.find("Connection refused"), std::string::npos) << err;
    EXPECT_NE(err.find("3 worker(s) on 2 host line(s)"), std::string::npos) << err;
    const auto workers = workers_of(results);
    EXPECT_TRUE(workers.count("127.0.0.1-1") || workers.count("127.0.0.1-2"));
    const std::string events = read_file(out / "host-2.events");
    EXPECT_NE(events.find("started localhost-3 "), std::string::npos) << events;
    EXPECT_NE(events.find("exited localhost-3 0"), std::string::npos) << events;
    EXPECT_TRUE(none_left(mark)) << "left running: " << processes_with_env(mark).size();
}

TEST_F(LaunchScriptsSsh, InterruptStopsEveryRemoteWorker) {
    const auto out = dir.path() / "run";
    auto& p = ssh_launch(
        {"2/" + at("127.0.0.1"), at("localhost")},
        {"--dir", out.string(), "--allow-exec", "--dispatch", "credit", "--input",
         write_lines(dir / "in.txt", std::vector<std::string>(30, "1")), "--", "sleep", "1000{}"});
    // Three workers running a command each (credit dispatch: each one gets
    // tasks, however late it connects): then Ctrl-C.
    ASSERT_TRUE(wait_until(
        [&] {
            int sleeping = 0;
            for (pid_t pid : processes_with_env(mark))
                sleeping += read_file("/proc/" + std::to_string(pid) + "/comm") == "sleep\n";
            return sleeping == 3;
        },
        k_start_timeout))
        << p.stderr_text();
    p.signal(SIGINT);
    EXPECT_EQ(p.wait_for_exit(k_exit_timeout), 130) << p.stderr_text();
    EXPECT_TRUE(none_left(mark)) << "left running: " << processes_with_env(mark).size();
}

TEST_F(LaunchScriptsSsh, RemoteWorkersStopWhenTheirSshClientIsKilled) {
    const auto out = dir.path() / "run";
    auto& p = ssh_launch({"2/" + at("127.0.0.1")},
                         {"--dir", out.string(), "--sleep", "100000", "--ms", "20"});
    // Once it has started them (it reports how many), and they have run tasks.
    ASSERT_TRUE(wait_until(
        [&] {
            return p.stderr_text().find("2 worker(s) on 1 host line(s)") != std::string::npos &&
                   count_lines(out / "results.jsonl") >= 10;
        },
        k_start_timeout))
        << p.stderr_text();
    // The script (bash, exec'd by env) runs one ssh per host line.
    const auto clients = child_processes(p.pid(), "ssh");
    ASSERT_EQ(clients.size(), 1u);
    ::kill(*clients.begin(), SIGKILL);
    EXPECT_TRUE(none_left(mark)) << "left running: " << processes_with_env(mark).size();
    EXPECT_EQ(p.wait_for_exit(k_exit_timeout), 1);
    EXPECT_NE(p.stderr_text().find("every worker has exited before the job finished"),
              std::string::npos)
        << p.stderr_text();
}

TEST_F(LaunchScriptsSsh, TransferCopiesTheWorkerAndRemovesItAfterwards) {
    const auto out = dir.path() / "run";
    auto& p = ssh_launch({at("127.0.0.1")},
                         {"--transfer", "--dir", out.string(), "--demo", "10", "--job", "copied"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 0) << p.stderr_text();
    EXPECT_TRUE(has_each_id_once(read_results(out / "results.jsonl"), 10));
    // The probe's second line is the directory it made there.
    const auto probe = read_lines(out / "host-1.probe");
    ASSERT_EQ(probe.size(), 2u);
    EXPECT_NE(probe[1].find("zfarm-worker."), std::string::npos) << probe[1];
    EXPECT_FALSE(std::filesystem::exists(probe[1])) << probe[1];
    EXPECT_TRUE(none_left(mark));
}

TEST_F(LaunchScriptsSsh, FailsClearlyWhenNoWorkerCanStart) {
    auto& p = ssh_launch({at("127.0.0.1")}, {"--remote-bin", "/nonexistent", "--demo", "10"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 1) << p.stderr_text();
    const std::string err = p.stderr_text();
    EXPECT_NE(err.find("/nonexistent/zfarm-worker: no such program"), std::string::npos) << err;
    EXPECT_NE(err.find("no worker could start"), std::string::npos) << err;
    EXPECT_TRUE(none_left(mark));
}

// --head: the sink and the ventilator run on the head, reached through the
// same sshd as the workers' two host lines; the results, the logs and the
// summary come here, and this script's input goes to the ventilator there.
TEST_F(LaunchScriptsSsh, HeadRunsTheSinkAndTheVentilatorThereAndTheResultsComeHere) {
    const auto out = dir.path() / "run";
    const auto results = dir.path() / "here.jsonl";
    std::vector<std::string> lines;
    for (int i = 0; i < 24; ++i)
        lines.push_back("line-" + std::to_string(i));
    auto& p = ssh_launch(
        {"2/root@" + at("127.0.0.1"), at("localhost")},
        {"--head", "root@" + at("127.0.0.1"), "--dir", out.string(), "-o", results.string(),
         "--allow-exec", "--dispatch", "credit", "--job", "headed", "--", "echo", "got"},
        write_lines(dir / "in.txt", lines));
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 0) << p.stderr_text();
    const std::string err = p.stderr_text();
    EXPECT_NE(p.stdout_text().find("job headed: 24 tasks, 24 ok, 0 failed, "), std::string::npos)
        << p.stdout_text();
    const auto recorded = read_results(results);
    ASSERT_TRUE(has_each_id_once(recorded, 24));
    for (const auto& r : recorded)  // task N ran on line N of this script's input
        EXPECT_EQ(r["output"], "got line-" + std::to_string(r["id"].get<int>()) + "\n") << r;
    EXPECT_NE(err.find("3 worker(s) on 2 host line(s)"), std::string::npos) << err;
    EXPECT_NE(err.find("head root@" + at("127.0.0.1") + " ports: results "), std::string::npos)
        << err;
    EXPECT_NE(err.find("(bound on 127.0.0.1 there)"), std::string::npos) << err;
    // The sink ran there, writing to its stdout (the ssh session), and its
    // log came here; so did the ventilator's, also shown on stderr.
    EXPECT_NE(read_file(out / "sink.log").find("output stdout"), std::string::npos);
    EXPECT_NE(read_file(out / "ventilator.log").find("ventilator up: job headed"),
              std::string::npos);
    EXPECT_NE(err.find("ventilator up: job headed"), std::string::npos) << err;
    EXPECT_FALSE(std::filesystem::exists(out / "results.jsonl"));
    // Everything the sessions started has stopped, and the head's directory is gone.
    EXPECT_TRUE(none_left(mark)) << "left running: " << processes_with_env(mark).size();
    const auto head_dir = read_lines(out / "head.out");
    ASSERT_EQ(head_dir.size(), 1u);
    EXPECT_NE(head_dir[0].find("zfarm-head."), std::string::npos) << head_dir[0];
    EXPECT_TRUE(wait_until([&] { return !std::filesystem::exists(head_dir[0]); }, k_start_timeout))
        << head_dir[0];
}

TEST_F(LaunchScriptsSsh, HeadInterruptedStopsItsProgramsThere) {
    const auto out = dir.path() / "run";
    const std::string closed = "127.0.0.1:" + std::to_string(free_tcp_port());
    auto& p = ssh_launch(
        {at("127.0.0.1"), closed},
        {"--head", at("127.0.0.1"), "--dir", out.string(), "--sleep", "100000", "--ms", "20"});
    // The ventilator expects the worker of the host reached, not the other's:
    // it says so as soon as that one is connected, not at the deadline.
    ASSERT_TRUE(wait_until(
        [&] {
            return count_lines(out / "results.jsonl") >= 10 &&
                   read_file(out / "ventilator.log").find("1 of 1 expected worker(s) connected") !=
                       std::string::npos;
        },
        k_start_timeout))
        << p.stderr_text();
    p.signal(SIGINT);
    EXPECT_EQ(p.wait_for_exit(k_exit_timeout), 130) << p.stderr_text();
    EXPECT_TRUE(none_left(mark)) << "left running: " << processes_with_env(mark).size();
}

TEST_F(LaunchScriptsSsh, HeadWithoutTheProgramsFailsWithExit2) {
    auto& p = ssh_launch({at("127.0.0.1")}, {"--head", at("127.0.0.1"), "--remote-bin",
                                             "/nonexistent", "--demo", "5"});
    ASSERT_EQ(p.wait_for_exit(k_exit_timeout), 2) << p.stderr_text();
    EXPECT_NE(p.stderr_text().find("the head " + at("127.0.0.1") +
                                   ": /nonexistent/zfarm-sink: no such program"),
              std::string::npos)
        << p.stderr_text();
    EXPECT_TRUE(none_left(mark));
}

}  // namespace
}  // namespace zfarm::test
