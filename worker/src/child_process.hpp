// Runs one command to its end, for the `exec` task kind (PROTOCOL.md 6.4,
// rules 2, 4 and 5). The command is started with posix_spawn in a process
// group of its own, with stdin from /dev/null, every signal at its default
// disposition and unblocked, and no descriptor of the worker's but stdout and
// stderr, which are pipes read as they are written. The group is killed when
// the caller asks (SIGTERM, then SIGKILL 500 ms later), and whatever the
// command leaves running in its group when it ends is killed too (SIGKILL).
//
// Thread-safety: run_command() may run on many threads at once; each call
// owns its child, pipes and descriptors. process_groups is thread-safe. The
// process's SIGCHLD must not be ignored (SIG_IGN), or children cannot be
// waited for: exec_kind restores its default.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "zfarm/exec_format.hpp"
#include "zfarm/system.hpp"

namespace zfarm::detail {

// The process groups of the commands running now, so that a worker that
// leaves at once can signal them all.
class process_groups {
  public:
    void add(pid_t pgid);
    void remove(pid_t pgid);
    // Sends `sig` to every group listed. A group is removed before its
    // leader is reaped, so its id is never one the system reused.
    void signal_all(int sig) noexcept;
    // True while a process of some listed group is still there.
    bool any_alive() noexcept;

  private:
    std::mutex mu_;
    std::vector<pid_t> groups_;
};

struct run_options {
    std::uint64_t max_output = 0;  // bytes kept of stdout, and of stderr
    // Checked at least every 50 ms and at `deadline`: once true, the
    // command's group is killed.
    std::function<bool()> stop_requested;
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    process_groups* groups = nullptr;  // optional
};

struct run_report {
    // errno when the command could not be started (ENOENT, EACCES, a bad
    // directory...); the outcome then has no exit code and signal 0.
    int spawn_error = 0;
    // Set when the command could not be waited for (the reason); the outcome
    // then has no exit code and signal 0.
    std::string wait_error;
    bool stopped = false;  // stop_requested() turned true before it ended: it was killed
    // exit_code, signal, out, err, the dropped counts, wall_us and rss_kb.
    exec::outcome outcome;
};

// Runs `c` to its end. Never throws (allocation failure aside).
run_report run_command(const exec::command& c, const run_options& o);

// strerror's text for errno `e` ("No such file or directory"), thread-safe.

}  // namespace zfarm::detail
