// Test support for end-to-end tests: start the real zfarm binaries as child
// processes, find free TCP ports, wait on events with bounded timeouts, and
// keep every file a test writes in a temporary directory removed at the end.
//
// Everything here is used from the test's main thread. A child_process is
// never left behind: its destructor SIGKILLs and reaps it, and the child is
// also SIGKILLed by the kernel if the test process dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace zfarm::test {

using namespace std::chrono_literals;

// The directory holding zfarm-ventilator, zfarm-worker and zfarm-sink.
std::filesystem::path bin_dir();

// A fresh directory under the system temp dir, named after the running test,
// removed with everything in it when this object goes away.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

// A running program with stdin from /dev/null and stdout, stderr written to
// LOG_DIR/NAME.stdout and LOG_DIR/NAME.stderr. Throws std::runtime_error when
// the program cannot be started.
class child_process {
  public:
    // `program` is a file name in bin_dir() or a path.
    child_process(const std::string& program, const std::vector<std::string>& args,
                  const std::filesystem::path& log_dir, const std::string& name);
    ~child_process();
    child_process(child_process&& other) noexcept;
    child_process& operator=(child_process&&) = delete;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    const std::string& name() const noexcept { return name_; }
    pid_t pid() const noexcept { return pid_; }

    // True while the process has not exited (reaps it when it has).
    bool running();

    // Waits up to `timeout` for the process to exit. Returns its exit code
    // (128 + N when killed by signal N), or nullopt when it is still running.
    std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);

    // Sends `sig` if the process is still running.
    void signal(int sig);
    // SIGKILLs the process and reaps it.
    void kill();

    std::filesystem::path stdout_path() const;
    std::filesystem::path stderr_path() const;
    std::string stdout_text() const;
    std::string stderr_text() const;

  private:
    bool reap(int options);

    std::string name_;
    std::filesystem::path log_dir_;
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
};

// A TCP port on 127.0.0.1 that nothing listens on. The port is left in
// TIME_WAIT, so the kernel hands it to no other ephemeral bind or connect
// while the caller's program binds it (ZeroMQ binds with SO_REUSEADDR).
std::uint16_t free_tcp_port();

// "tcp://127.0.0.1:PORT"
std::string tcp_endpoint(std::uint16_t port);

// Polls `pred` every 10 ms until it is true (returns true) or `timeout`
// passes (returns false).
template <class Pred>
bool wait_until(Pred&& pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
}

// True when no process `pid` runs: there is none, or only a zombie nobody
// has reaped yet (on a machine whose PID 1 does not reap orphans).
bool process_gone(pid_t pid);

// The live processes whose environment holds `assignment` ("NAME=VALUE")
// exactly: how a test finds every process that a program it started spawned,
// also those re-parented when their parent died (zombies have no
// environment, so they are left out).
std::set<pid_t> processes_with_env(const std::string& assignment);

// The live children of `parent` whose command name (/proc/PID/comm) is `comm`.
std::set<pid_t> child_processes(pid_t parent, const std::string& comm);

// The whole file ("" when it does not exist).
std::string read_file(const std::filesystem::path& path);
// The file's complete lines (a torn last line without '\n' is left out).
std::vector<std::string> read_lines(const std::filesystem::path& path);
// Complete lines in the file.
std::size_t count_lines(const std::filesystem::path& path);
// The last `n` lines of `text`, for failure messages.
std::string last_lines(const std::string& text, std::size_t n);

}  // namespace zfarm::test
