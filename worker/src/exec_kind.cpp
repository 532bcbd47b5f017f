#include "exec_kind.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

#include "zfarm/exec_format.hpp"
#include "zfarm/system.hpp"

namespace zfarm::detail {
namespace {

// Why `dir` cannot be a working directory, or "" when it can: posix_spawn
// reports a bad directory with the same errno as a missing command.
std::string dir_problem(const std::string& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return errno_text(errno);
    if (!S_ISDIR(st.st_mode)) return errno_text(ENOTDIR);
    if (::access(dir.c_str(), X_OK) != 0) return errno_text(errno);
    return {};
}

// Children of a process that ignores SIGCHLD (or sets SA_NOCLDWAIT) are
// reaped by the kernel and cannot be waited for. Both are inherited across
// exec, so a worker may start with them.
void restore_sigchld() {
    struct sigaction sa {};
    if (::sigaction(SIGCHLD, nullptr, &sa) != 0) return;
    const bool ignored = !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN;
    if (!ignored && !(sa.sa_flags & SA_NOCLDWAIT)) return;
    if (ignored) sa.sa_handler = SIG_DFL;
    sa.sa_flags &= ~SA_NOCLDWAIT;
    ::sigaction(SIGCHLD, &sa, nullptr);
    spdlog::warn(
        "SIGCHLD was ignored; its default is restored so that exec commands can be waited for");
}

}  // namespace

exec_kind::exec_kind(std::uint64_t max_output) : max_output_(max_output), host_(host_name()) {
    restore_sigchld();
}

handler_result exec_kind::operator()(const task_view& t) {
    auto cmd = exec::decode_command(t.payload);
    if (!cmd) return unexpected{"bad exec payload: " + cmd.error()};
    run_options o;
    o.max_output = max_output_;
    o.stop_requested = [&t] { return t.cancelled(); };
    o.deadline = t.deadline();
    o.groups = &groups_;
    run_report rep = run_command(*cmd, o);
    exec::outcome& out = rep.outcome;
    out.host = host_;
    out.cmd = exec::shell_line(cmd->argv);

    std::string reason;
    if (rep.spawn_error != 0) {
        std::string why = errno_text(rep.spawn_error);
        if (!cmd->dir.empty()) {
            if (auto bad_dir = dir_problem(cmd->dir); !bad_dir.empty())
                why = "directory '" + cmd->dir + "': " + bad_dir;
        }
        reason = "cannot run '" + cmd->argv[0] + "': " + why;
    } else if (rep.stopped) {
        // Killed, however it ended: past the deadline the worker reports
        // `timed out after N ms` (PROTOCOL.md 6.4, rule 4; 6.6).
        reason = std::chrono::steady_clock::now() >= t.deadline() ? "timed out" : "cancelled";
    } else if (!rep.wait_error.empty()) {
        reason = std::move(rep.wait_error);
    } else if (out.exit_code) {
        if (*out.exit_code == 0) return exec::encode(out);
        reason = "exit code " + std::to_string(*out.exit_code);
    } else {
        reason = describe_signal(out.signal);
    }
    return unexpected{task_error{std::move(reason), exec::encode(out)}};
}

void exec_kind::terminate_all() noexcept {
    // The worker is about to exit, and its handler threads with it: they
    // will not be there to send the SIGKILL, so it is sent from here.
    groups_.signal_all(SIGTERM);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (groups_.any_alive() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    groups_.signal_all(SIGKILL);
}

handler_result refuse_exec(const task_view&) {
    return unexpected{std::string(k_exec_refused)};
}

std::string describe_signal(int sig) {
    std::string out = "killed by signal " + std::to_string(sig);
    if (const char* name = sigabbrev_np(sig)) out += std::string(" (") + name + ")";
    return out;
}

}  // namespace zfarm::detail
