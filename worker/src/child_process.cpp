#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

extern char** environ;

namespace zfarm::detail {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto k_max_poll = milliseconds(50);     // how often stop_requested() is checked
constexpr auto k_kill_grace = milliseconds(500);  // SIGTERM, then SIGKILL
constexpr auto k_drain = milliseconds(1000);      // reading on once the command ended
// Reading on after a command that was killed: short, so that a task killed
// at its deadline ends well within the worker's 1 s grace (PROTOCOL.md 6.6).
constexpr auto k_drain_after_stop = milliseconds(250);
constexpr std::size_t k_read_chunk = 64 * 1024;
constexpr int k_reads_per_round = 16;  // then check the clock again

class unique_fd {
  public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_(fd) {}
    ~unique_fd() { reset(); }
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_ = -1;
};

std::uint64_t micros(clock::duration d) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
}

// Moves `fd` to a descriptor of 3 or more (close-on-exec), so that the
// child's dup2 onto 1 or 2 never meets one of the pipes' own descriptors.
int raise_fd(unique_fd& fd) {
    if (fd.get() >= 3) return 0;
    const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return errno;
    fd = unique_fd(moved);
    return 0;
}

// A close-on-exec pipe whose read end (the worker's) is non-blocking; the
// write end, the child's stdout or stderr, stays blocking.
int make_pipe(unique_fd& read_end, unique_fd& write_end) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return errno;
    read_end = unique_fd(fds[0]);
    write_end = unique_fd(fds[1]);
    if (int e = raise_fd(read_end)) return e;
    if (int e = raise_fd(write_end)) return e;
    const int flags = ::fcntl(read_end.get(), F_GETFL);
    if (flags < 0 || ::fcntl(read_end.get(), F_SETFL, flags | O_NONBLOCK) != 0) return errno;
    return 0;
}

// The worker's environment with `c.env` set on top (the last value given for
// a name wins). Reads `environ`, which another thread's setenv() may change.
std::vector<std::string> environment(const exec::command& c) {
    std::unordered_map<std::string_view, std::size_t> last;  // name -> index in c.env
    for (std::size_t i = 0; i < c.env.size(); ++i)
        last[c.env[i].first] = i;
    std::vector<std::string> out;
    for (char** e = environ; e && *e; ++e) {
        const std::string_view entry(*e);
        if (!last.contains(entry.substr(0, entry.find('=')))) out.emplace_back(entry);
    }
    for (std::size_t i = 0; i < c.env.size(); ++i)
        if (last[c.env[i].first] == i) out.push_back(c.env[i].first + "=" + c.env[i].second);
    return out;
}

struct spawn_state {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    bool have_actions = false;
    bool have_attr = false;
    ~spawn_state() {
        if (have_actions) posix_spawn_file_actions_destroy(&actions);
        if (have_attr) posix_spawnattr_destroy(&attr);
    }
};

// Starts `c`; returns 0 and sets `pid`, `out` and `err` (the read ends), or
// an errno. glibc's posix_spawn reports a failed exec or file action (a
// missing command, a bad directory) as its own result, and reaps that child.
int spawn(const exec::command& c, pid_t& pid, unique_fd& out, unique_fd& err) {
    unique_fd out_w;
    unique_fd err_w;
    if (int e = make_pipe(out, out_w)) return e;
    if (int e = make_pipe(err, err_w)) return e;

    std::vector<char*> argv;
    argv.reserve(c.argv.size() + 1);
    for (const auto& a : c.argv)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const std::vector<std::string> env_strings = environment(c);
    std::vector<char*> envp;
    envp.reserve(env_strings.size() + 1);
    for (const auto& e : env_strings)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    spawn_state s;
    if (int e = posix_spawn_file_actions_init(&s.actions)) return e;
    s.have_actions = true;
    if (int e = posix_spawnattr_init(&s.attr)) return e;
    s.have_attr = true;

    int e = 0;
    if (!c.dir.empty()) e = posix_spawn_file_actions_addchdir_np(&s.actions, c.dir.c_str());
    if (!e) e = posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
    if (!e) e = posix_spawn_file_actions_adddup2(&s.actions, out_w.get(), 1);
    if (!e) e = posix_spawn_file_actions_adddup2(&s.actions, err_w.get(), 2);
    if (!e) e = posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);  // nothing else leaks
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!e)
        e = posix_spawnattr_setflags(
            &s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!e) e = posix_spawnattr_setpgroup(&s.attr, 0);  // a group of its own, led by the child
    if (!e) e = posix_spawnattr_setsigmask(&s.attr, &none);
    if (!e) e = posix_spawnattr_setsigdefault(&s.attr, &all);  // e.g. the worker ignores SIGPIPE
    if (e) return e;

    // posix_spawnp searches the worker's PATH when argv[0] has no '/'. The
    // write ends close on return: the child holds its own copies.
    const bool search = c.argv[0].find('/') == std::string::npos;
    return search ? posix_spawnp(&pid, argv[0], &s.actions, &s.attr, argv.data(), envp.data())
                  : posix_spawn(&pid, argv[0], &s.actions, &s.attr, argv.data(), envp.data());
}

struct stream {
    unique_fd fd;
    std::string* keep;
    std::uint64_t* dropped;
};

// Reads what `s` has now, keeping up to `cap` bytes in all; closes it at end
// of file or on an error.
void read_available(stream& s, std::uint64_t cap, std::string& buf) {
    for (int i = 0; i < k_reads_per_round; ++i) {
        const ssize_t n = ::read(s.fd.get(), buf.data(), buf.size());
        if (n > 0) {
            const std::uint64_t got = static_cast<std::uint64_t>(n);
            const std::uint64_t room = cap > s.keep->size() ? cap - s.keep->size() : 0;
            const std::uint64_t kept = std::min(room, got);
            s.keep->append(buf.data(), static_cast<std::size_t>(kept));
            *s.dropped += got - kept;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        s.fd.reset();
        return;
    }
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // close-on-exec
#else
    (void)pid;
    return -1;
#endif
}

// Whether the child `pid` has ended, without reaping it (its id, and so its
// group's, stays reserved until wait4).
bool has_ended(pid_t pid) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno != EINTR;  // ECHILD: cannot be waited for; wait4 says so
    return info.si_pid == pid;
}

}  // namespace

void process_groups::add(pid_t pgid) {
    std::lock_guard lock(mu_);
    groups_.push_back(pgid);
}

void process_groups::remove(pid_t pgid) {
    std::lock_guard lock(mu_);
    auto it = std::find(groups_.begin(), groups_.end(), pgid);
    if (it != groups_.end()) groups_.erase(it);
}

void process_groups::signal_all(int sig) noexcept {
    std::lock_guard lock(mu_);
    for (pid_t g : groups_)
        ::kill(-g, sig);
}

bool process_groups::any_alive() noexcept {
    std::lock_guard lock(mu_);
    for (pid_t g : groups_)
        if (::kill(-g, 0) == 0) return true;
    return false;
}

run_report run_command(const exec::command& c, const run_options& o) {
    run_report rep;
    exec::outcome& out = rep.outcome;
    const auto start = clock::now();
    pid_t pid = -1;
    stream streams[2] = {{unique_fd(), &out.out, &out.out_dropped},
                         {unique_fd(), &out.err, &out.err_dropped}};
    if (int e = spawn(c, pid, streams[0].fd, streams[1].fd)) {
        rep.spawn_error = e;
        out.wall_us = micros(clock::now() - start);
        return rep;
    }
    if (o.groups) o.groups->add(pid);
    const unique_fd pidfd(open_pidfd(pid));  // -1 on kernels before 5.3: has_ended() is polled

    // The read buffer stays with the executor thread, command after command:
    // made and zeroed once, not 64 KiB per command.
    thread_local std::string buf(k_read_chunk, '\0');
    std::optional<clock::time_point> term_at;    // when the group was sent SIGTERM
    std::optional<clock::time_point> ended_at;   // when the leader ended
    std::optional<clock::time_point> stop_seen;  // a stop while reading on
    bool kill_sent = false;
    auto exit_check = milliseconds(1);  // without a pidfd: 1, 2, 4 ... 50 ms
    for (;;) {
        const auto now = clock::now();
        if (!ended_at && !term_at &&
            (now >= o.deadline || (o.stop_requested && o.stop_requested()))) {
            rep.stopped = true;
            term_at = now;
            ::kill(-pid, SIGTERM);
        }
        if (term_at && !ended_at && !kill_sent && now >= *term_at + k_kill_grace) {
            ::kill(-pid, SIGKILL);
            kill_sent = true;
        }
        const bool open = streams[0].fd || streams[1].fd;
        auto drain_until = ended_at ? *ended_at + (term_at ? k_drain_after_stop : k_drain)
                                    : clock::time_point::max();
        if (ended_at && !term_at) {
            // The deadline or a stop during the read-on shortens it as a kill
            // would: the handler must not outlast its deadline by a second.
            if (o.deadline != clock::time_point::max())
                drain_until =
                    std::min(drain_until, std::max(o.deadline, *ended_at) + k_drain_after_stop);
            if (!stop_seen && o.stop_requested && o.stop_requested()) stop_seen = now;
            if (stop_seen) drain_until = std::min(drain_until, *stop_seen + k_drain_after_stop);
        }
        if (ended_at && (!open || now >= drain_until)) break;

        clock::duration wait = k_max_poll;
        if (!term_at && o.deadline > now) wait = std::min<clock::duration>(wait, o.deadline - now);
        if (term_at && !kill_sent)
            wait = std::min<clock::duration>(wait, *term_at + k_kill_grace - now);
        if (ended_at) wait = std::min<clock::duration>(wait, drain_until - now);
        if (!ended_at && !pidfd) {
            wait = std::min<clock::duration>(wait, exit_check);
            exit_check = std::min(exit_check * 2, k_max_poll);
        }
        pollfd fds[3] = {};
        nfds_t n = 0;
        int index[2] = {-1, -1};
        for (int i = 0; i < 2; ++i) {
            if (!streams[i].fd) continue;
            index[i] = static_cast<int>(n);
            fds[n++] = pollfd{streams[i].fd.get(), POLLIN, 0};
        }
        const int pid_index = !ended_at && pidfd ? static_cast<int>(n) : -1;
        if (pid_index >= 0) fds[n++] = pollfd{pidfd.get(), POLLIN, 0};
        const auto wait_ms = std::chrono::ceil<milliseconds>(std::max(wait, clock::duration{}));
        if (::poll(fds, n, static_cast<int>(wait_ms.count())) < 0)
            for (auto& f : fds)
                f.revents = 0;  // EINTR (a stop signal): look again

        for (int i = 0; i < 2; ++i)
            if (index[i] >= 0 && fds[index[i]].revents != 0)
                read_available(streams[i], o.max_output, buf);
        if (!ended_at && (pid_index >= 0 ? fds[pid_index].revents != 0 : has_ended(pid))) {
            ended_at = clock::now();
            // Whatever the command left running in its group goes with it.
            ::kill(-pid, SIGKILL);
        }
    }

    // Out of the list before the id can be reused (the leader is reaped below).
    if (o.groups) o.groups->remove(pid);
    int status = 0;
    rusage usage{};
    pid_t reaped = -1;
    do {
        reaped = ::wait4(pid, &status, 0, &usage);
    } while (reaped < 0 && errno == EINTR);
    out.wall_us = micros(*ended_at - start);
    if (reaped != pid) {
        rep.wait_error = "cannot wait for the command: " + errno_text(errno);
        return rep;
    }
    if (WIFEXITED(status)) {
        out.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        out.signal = WTERMSIG(status);
    }
    out.rss_kb = usage.ru_maxrss > 0 ? static_cast<std::uint64_t>(usage.ru_maxrss) : 0;
    return rep;
}

}  // namespace zfarm::detail
