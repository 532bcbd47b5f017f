#include "support/netns.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace zfarm::test {
namespace {

using namespace std::chrono_literals;

// Names are these prefixes and the test process's pid.
constexpr const char* k_netns_prefix = "zfarm-part-";
constexpr const char* k_host_if_prefix = "zfh";  // + at most 7 digits: within IFNAMSIZ - 1
constexpr const char* k_inner_if_prefix = "zfn";

std::string join(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv)
        out += (out.empty() ? "" : " ") + a;
    return out;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

// "a.b.c.d" of a host-order IPv4 address.
std::string dotted(std::uint32_t a) {
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
           std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}

// Whether process `pid` exists and is not a zombie.
bool running(const std::string& pid) {
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return false;
    const auto paren = text.rfind(") ");
    return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

}  // namespace

std::string find_program(const std::string& program) {
    if (program.find('/') != std::string::npos) return program;
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("PATH")) {
        std::stringstream ss(path);
        for (std::string d; std::getline(ss, d, ':');)
            if (!d.empty()) dirs.push_back(d);
    }
    dirs.insert(dirs.end(), {"/usr/sbin", "/sbin", "/usr/bin", "/bin"});
    for (const auto& d : dirs) {
        const auto p = std::filesystem::path(d) / program;
        if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
    return "";
}

command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout) {
    command_result r;
    if (argv.empty()) return r;
    const std::string exe = find_program(argv[0]);
    if (exe.empty()) {
        r.output = argv[0] + ": not found";
        return r;
    }
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        r.output = std::string("pipe2: ") + std::strerror(errno);
        return r;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, out[1], 2);
    std::vector<std::string> strings = argv;
    strings[0] = exe;
    std::vector<char*> args;
    for (auto& s : strings)
        args.push_back(s.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
        ::close(out[0]);
        r.output = exe + ": " + std::strerror(rc);
        return r;
    }
    // Read until end of file or the deadline, then reap.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timed_out = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) {
            timed_out = true;
            break;
        }
        pollfd p{out[0], POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;
        char buf[4096];
        const ssize_t got = ::read(out[0], buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        r.output.append(buf, static_cast<std::size_t>(got));
    }
    ::close(out[0]);
    if (timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.exit_code = 128 + WTERMSIG(status);
    if (timed_out) r.output += "\n(" + join(argv) + ": killed after the timeout)";
    return r;
}

std::unique_ptr<network_namespace> network_namespace::create(std::string& why_not) {
    if (::geteuid() != 0) {
        why_not = "network namespaces need root (euid " + std::to_string(::geteuid()) + ")";
        return nullptr;
    }
    std::unique_ptr<network_namespace> ns(new network_namespace);
    ns->ip_ = find_program("ip");
    ns->iptables_ = find_program("iptables");
    if (ns->ip_.empty()) {
        why_not = "no `ip` program (install iproute2)";
        return nullptr;
    }
    const auto pid = static_cast<std::uint32_t>(::getpid());
    const std::string tag = std::to_string(pid);
    ns->name_ = k_netns_prefix + tag;
    ns->host_if_ = k_host_if_prefix + tag;
    ns->inner_if_ = k_inner_if_prefix + tag;
    // One /30 of 10.0.0.0/8 per pid (pids are below 2^22): .1 is the host
    // end, .2 the namespace's.
    const std::uint32_t base = (10u << 24) | ((pid & ((1u << 22) - 1)) << 2);
    ns->host_addr_ = dotted(base + 1);
    ns->inner_addr_ = dotted(base + 2);
    const std::string subnet = dotted(base) + "/30";

    const auto ip = [&](std::vector<std::string> args) {
        args.insert(args.begin(), ns->ip_);
        return run_command(args);
    };
    // Leftovers of test processes that died without their destructor
    // (SIGKILL, a ctest timeout): ours, if a process with this pid died so,
    // and those of every pid that no longer runs.
    std::vector<std::string> dead{tag};
    std::stringstream listed(ip({"netns", "list"}).output);
    const std::string prefix = k_netns_prefix;
    for (std::string line; std::getline(listed, line);) {
        if (line.rfind(prefix, 0) != 0) continue;
        const std::string other = line.substr(prefix.size(), line.find(' ') - prefix.size());
        char* end = nullptr;
        const long other_pid = std::strtol(other.c_str(), &end, 10);
        if (end && *end == '\0' && other_pid > 0 && other != tag && !running(other))
            dead.push_back(other);
    }
    for (const auto& old : dead) {
        ip({"netns", "delete", prefix + old});
        ip({"link", "delete", k_host_if_prefix + old});
        for (int i = 0; i < 8 && !ns->iptables_.empty(); ++i) {
            const auto del = run_command({ns->iptables_, "-w", "10", "-D", "INPUT", "-i",
                                          k_host_if_prefix + old, "-j", "DROP"});
            if (!del.ok()) break;
        }
    }
    // Refuse a subnet that a route of this machine already covers (other
    // than the default route): our /30 would hijack its traffic.
    const auto routes = ip({"-4", "route", "show", "to", "match", ns->inner_addr_});
    std::stringstream lines(routes.output);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.rfind("default", 0) != 0) {
            why_not = "subnet " + subnet + " is already routed here: " + line;
            return nullptr;
        }
    }

    const std::vector<std::vector<std::string>> steps{
        {"netns", "add", ns->name_},
        {"link", "add", ns->host_if_, "type", "veth", "peer", "name", ns->inner_if_},
        {"link", "set", ns->inner_if_, "netns", ns->name_},
        {"addr", "add", ns->host_addr_ + "/30", "dev", ns->host_if_},
        {"link", "set", ns->host_if_, "up"},
        {"-n", ns->name_, "addr", "add", ns->inner_addr_ + "/30", "dev", ns->inner_if_},
        {"-n", ns->name_, "link", "set", ns->inner_if_, "up"},
        {"-n", ns->name_, "link", "set", "lo", "up"},
    };
    for (const auto& step : steps) {
        const auto r = ip(step);
        if (!r.ok()) {
            why_not = "`ip " + join(step) + "` failed (exit " + std::to_string(r.exit_code) +
                      "): " + trimmed(r.output);
            return nullptr;  // the destructor undoes the steps that were done
        }
        ns->created_ = true;
    }
    return ns;
}

network_namespace::~network_namespace() {
    destroy();
}

void network_namespace::destroy() noexcept {
    try {
        if (cut_) {
            std::string ignored;
            heal(ignored);
        }
        if (!created_) return;
        // Kill what runs inside first: a namespace with processes outlives
        // `ip netns delete`, and so would its veth.
        for (int round = 0; round < 100; ++round) {
            const auto pids = run_command({ip_, "netns", "pids", name_});
            std::stringstream ss(pids.output);
            bool any = false;
            for (long pid = 0; ss >> pid;) {
                if (pid > 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
                any = true;
            }
            if (!any) break;
            std::this_thread::sleep_for(50ms);
        }
        run_command({ip_, "netns", "delete", name_});
        // Deleting the namespace deletes the veth pair; make sure.
        run_command({ip_, "link", "delete", host_if_});
    } catch (...) {
        // Nothing more can be done from a destructor.
    }
}

std::vector<std::string> network_namespace::exec_prefix() const {
    return {ip_, "netns", "exec", name_};
}

command_result network_namespace::run_inside(const std::vector<std::string>& argv) const {
    auto full = exec_prefix();
    full.insert(full.end(), argv.begin(), argv.end());
    return run_command(full);
}

bool network_namespace::cut(std::string& why_not) {
    if (iptables_.empty()) {
        why_not = "no `iptables` program (install iptables)";
        return false;
    }
    const auto host =
        run_command({iptables_, "-w", "10", "-I", "INPUT", "-i", host_if_, "-j", "DROP"});
    if (!host.ok()) {
        why_not = "iptables on the host failed: " + trimmed(host.output);
        return false;
    }
    cut_ = true;
    const auto inner =
        run_inside({iptables_, "-w", "10", "-I", "INPUT", "-i", inner_if_, "-j", "DROP"});
    if (!inner.ok()) {
        why_not = "iptables in " + name_ + " failed: " + trimmed(inner.output);
        return false;
    }
    return true;
}

bool network_namespace::heal(std::string& why_not) {
    bool ok = true;
    const auto inner =
        run_inside({iptables_, "-w", "10", "-D", "INPUT", "-i", inner_if_, "-j", "DROP"});
    if (!inner.ok()) {
        why_not = "iptables in " + name_ + " failed: " + trimmed(inner.output);
        ok = false;
    }
    const auto host =
        run_command({iptables_, "-w", "10", "-D", "INPUT", "-i", host_if_, "-j", "DROP"});
    if (!host.ok()) {
        why_not = "iptables on the host failed: " + trimmed(host.output);
        ok = false;
    }
    cut_ = false;
    return ok;
}

}  // namespace zfarm::test
