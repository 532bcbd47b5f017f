// The `exec` task kind (PROTOCOL.md 6.4): runs the command a TASK's payload
// names and answers with its outcome map (exec_format.hpp), whether the
// command succeeded or not. The worker registers exec_kind when its options
// allow exec, and refuse_exec otherwise; both run on executor threads.
//
// Thread-safety: an exec_kind is called from every executor thread at once;
// terminate_all() may be called from any thread. Constructing one restores
// SIGCHLD's default disposition if it was ignored (children could not be
// waited for otherwise), a process-wide change.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "child_process.hpp"
#include "zfarm/worker.hpp"

namespace zfarm::detail {

inline constexpr std::string_view k_exec_refused =
    "exec is not allowed on this worker (start it with --allow-exec)";

class exec_kind {
  public:
    // `max_output`: bytes kept of each command's stdout, and of its stderr.
    explicit exec_kind(std::uint64_t max_output);

    // Runs the task's command to its end (or until the task is cancelled or
    // its deadline passes: then its process group is killed). Ok with the
    // outcome map when the command exits 0; otherwise failed with the map
    // and `exit code N`, `killed by signal N (NAME)`, `cannot run 'ARGV0':
    // REASON`, or (killed) `timed out` / `cancelled`, which the worker turns
    // into `timed out after N ms` past a deadline. A payload that does not
    // decode fails with `bad exec payload: REASON` and no output.
    handler_result operator()(const task_view& t);

    // Sends SIGTERM to the process group of every command running now, for
    // a worker that leaves without waiting for them, then SIGKILL to the
    // groups still there 500 ms later (the handlers that would do it exit
    // with the worker). Blocks up to 500 ms.
    void terminate_all() noexcept;

  private:
    std::uint64_t max_output_;
    std::string host_;
    process_groups groups_;
};

// The handler registered for `exec` on a worker that does not allow it.
handler_result refuse_exec(const task_view& t);

// "killed by signal 15 (TERM)"; the name is left out for an unknown signal.
std::string describe_signal(int sig);

}  // namespace zfarm::detail
