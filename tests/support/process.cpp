#include "support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

namespace zfarm::test {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

// Closes a file descriptor when it goes out of scope.
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

std::string sanitized_test_name() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "e2e";
    for (char& c : name)
        if (c == '/' || c == ' ') c = '_';
    return name.substr(0, 120);
}

}  // namespace

std::filesystem::path bin_dir() {
    return std::filesystem::path(ZFARM_BIN_DIR);
}

temp_dir::temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() /
                           ("zfarm-e2e-" + sanitized_test_name() + "-XXXXXX"))
                              .string();
    if (!::mkdtemp(pattern.data())) throw_errno("mkdtemp " + pattern);
    path_ = pattern;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

child_process::child_process(const std::string& program, const std::vector<std::string>& args,
                             const std::filesystem::path& log_dir, const std::string& name)
    : name_(name), log_dir_(log_dir) {
    const std::string exe =
        program.find('/') == std::string::npos ? (bin_dir() / program).string() : program;
    const std::string out = stdout_path().string();
    const std::string err = stderr_path().string();
    std::vector<std::string> strings{exe};
    strings.insert(strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : strings)
        argv.push_back(s.data());
    argv.push_back(nullptr);

    // The child reports a failed exec through this pipe; a successful exec
    // closes it (O_CLOEXEC), so the parent reads end-of-file.
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) throw_errno("pipe2");
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(report[0]);
        ::close(report[1]);
        throw_errno("fork");
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here to exec.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        int in = ::open("/dev/null", O_RDONLY);
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0 || ::dup2(in, 0) < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) {
            int code = errno;
            (void)!::write(report[1], &code, sizeof code);
            ::_exit(127);
        }
        ::execv(argv[0], argv.data());
        int code = errno;
        (void)!::write(report[1], &code, sizeof code);
        ::_exit(127);
    }
    ::close(report[1]);
    int code = 0;
    ssize_t n;
    do {
        n = ::read(report[0], &code, sizeof code);
    } while (n < 0 && errno == EINTR);
    ::close(report[0]);
    pid_ = pid;
    if (n > 0) {
        reap(0);
        pid_ = -1;
        throw std::runtime_error("cannot start " + exe + ": " + std::strerror(code));
    }
}

child_process::child_process(child_process&& other) noexcept
    : name_(std::move(other.name_)),
      log_dir_(std::move(other.log_dir_)),
      pid_(other.pid_),
      exit_code_(other.exit_code_) {
    other.pid_ = -1;
}

child_process::~child_process() {
    if (pid_ > 0 && !exit_code_) kill();
}

bool child_process::reap(int options) {
    if (pid_ <= 0 || exit_code_) return true;
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &status, options);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    if (r < 0) {  // not our child any more: treat as gone
        exit_code_ = -1;
        return true;
    }
    if (WIFEXITED(status)) {
        exit_code_ = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        exit_code_ = 128 + WTERMSIG(status);
    } else {
        return false;
    }
    return true;
}

bool child_process::running() {
    return !reap(WNOHANG);
}

std::optional<int> child_process::wait_for_exit(std::chrono::milliseconds timeout) {
    if (!wait_until([&] { return reap(WNOHANG); }, timeout)) return std::nullopt;
    return exit_code_;
}

void child_process::signal(int sig) {
    if (pid_ > 0 && !reap(WNOHANG)) ::kill(pid_, sig);
}

void child_process::kill() {
    if (pid_ <= 0 || reap(WNOHANG)) return;
    ::kill(pid_, SIGKILL);
    reap(0);
}

std::filesystem::path child_process::stdout_path() const {
    return log_dir_ / (name_ + ".stdout");
}
std::filesystem::path child_process::stderr_path() const {
    return log_dir_ / (name_ + ".stderr");
}
std::string child_process::stdout_text() const {
    return read_file(stdout_path());
}
bool process_gone(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return stat.empty() ||
           (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

std::string child_process::stderr_text() const {
    return read_file(stderr_path());
}

std::uint16_t free_tcp_port() {
    // Bind port 0, then connect to it and close the accepted side first: the
    // port stays in TIME_WAIT for a minute, which keeps the kernel from
    // choosing it for another port-0 bind or an outgoing connection.
    fd_guard listener{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (listener.fd < 0) throw_errno("socket");
    // The TIME_WAIT socket inherits SO_REUSEADDR, which lets a later bind
    // with SO_REUSEADDR (as ZeroMQ's) take the port.
    const int on = 1;
    if (::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        throw_errno("setsockopt SO_REUSEADDR");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw_errno("bind 127.0.0.1:0");
    socklen_t len = sizeof addr;
    if (::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        throw_errno("getsockname");
    if (::listen(listener.fd, 1) != 0) throw_errno("listen");
    fd_guard client{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (client.fd < 0) throw_errno("socket");
    if (::connect(client.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw_errno("connect");
    {
        fd_guard accepted{::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC)};
        if (accepted.fd < 0) throw_errno("accept");
    }  // the accepted side closes first and holds TIME_WAIT on the port
    return ntohs(addr.sin_port);
}

std::string tcp_endpoint(std::uint16_t port) {
    return "tcp://127.0.0.1:" + std::to_string(port);
}

namespace {

// The numeric entries of /proc: every process's PID.
std::vector<pid_t> all_pids() {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") == std::string::npos)
            out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
}

}  // namespace

std::set<pid_t> processes_with_env(const std::string& assignment) {
    std::set<pid_t> out;
    for (pid_t pid : all_pids()) {
        const std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
        // NUL-separated entries: match a whole one.
        for (std::size_t at = env.find(assignment); at != std::string::npos;
             at = env.find(assignment, at + 1)) {
            const auto end = at + assignment.size();
            if ((at == 0 || env[at - 1] == '\0') && (end == env.size() || env[end] == '\0')) {
                out.insert(pid);
                break;
            }
        }
    }
    return out;
}

std::set<pid_t> child_processes(pid_t parent, const std::string& comm) {
    std::set<pid_t> out;
    for (pid_t pid : all_pids()) {
        const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
        // pid (comm) state ppid ...: comm may hold spaces, so split at the last ')'.
        const auto open = stat.find('('), close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 1));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == parent && state != 'Z' && stat.substr(open + 1, close - open - 1) == comm)
            out.insert(pid);
    }
    return out;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
    const std::string text = read_file(path);
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
        lines.push_back(text.substr(start, nl - start));
    return lines;
}

std::size_t count_lines(const std::filesystem::path& path) {
    const std::string text = read_file(path);
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::string last_lines(const std::string& text, std::size_t n) {
    std::size_t pos = text.size();
    if (pos > 0 && text[pos - 1] == '\n') --pos;
    for (std::size_t seen = 0; pos > 0; --pos) {
        if (text[pos - 1] == '\n' && ++seen == n) break;
    }
    return text.substr(pos);
}

}  // namespace zfarm::test
