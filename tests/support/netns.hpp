// A network namespace joined to the host by a veth pair, for partition and
// degraded-link tests: a worker runs inside it (exec_prefix()) and reaches the
// sink and ventilator at host_address(), the host end of the veth.
//
// Names and addresses derive from the test process's pid, so tests running in
// parallel (ctest -j) never share a namespace, an interface or a subnet. The
// destructor kills every process left in the namespace, removes the firewall
// rules this object added and deletes the namespace (which deletes the veth
// pair), also when the test failed. Needs root and iproute2; cut() needs
// iptables too (and so does the NFQUEUE impairment of the link).
//
// Used from the test's main thread only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace zfarm::test {

// What a command printed (stdout and stderr together) and how it ended.
struct command_result {
    int exit_code = -1;  // 128 + N when killed by signal N; -1 when it could not start
    std::string output;
    bool ok() const noexcept { return exit_code == 0; }
};

// Runs argv[0] (looked up in PATH, then /usr/sbin and /sbin) with stdin from
// /dev/null, waits for it at most `timeout` (then SIGKILLs it) and returns
// what it printed. Never throws for a failing command.
command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The absolute path of `program` (PATH, then /usr/sbin and /sbin), or "".
std::string find_program(const std::string& program);

class network_namespace {
  public:
    // Creates the namespace and the veth pair, addresses both ends and brings
    // them up. On failure returns nullptr and sets `why_not` to the reason
    // (not root, no `ip`, the kernel refused, ...), having undone what it did.
    static std::unique_ptr<network_namespace> create(std::string& why_not);
    ~network_namespace();
    network_namespace(const network_namespace&) = delete;
    network_namespace& operator=(const network_namespace&) = delete;

    const std::string& name() const noexcept { return name_; }
    const std::string& host_interface() const noexcept { return host_if_; }
    const std::string& inner_interface() const noexcept { return inner_if_; }
    // The host end's address: what processes in the namespace connect to.
    const std::string& host_address() const noexcept { return host_addr_; }
    const std::string& inner_address() const noexcept { return inner_addr_; }

    // Prepended to a command line to run it inside: {"/…/ip", "netns", "exec", NAME}.
    std::vector<std::string> exec_prefix() const;
    // Runs `argv` inside the namespace.
    command_result run_inside(const std::vector<std::string>& argv) const;

    // Pulls the cable: every packet crossing the veth, either way, is
    // silently dropped where it arrives (iptables DROP on INPUT of each end),
    // so senders see no error, no RST and no ICMP, as with a pulled cable.
    // Returns false with the reason in `why_not` when the rules cannot be added.
    bool cut(std::string& why_not);
    // Plugs it back in. Returns false (and says why) when a rule would not go.
    bool heal(std::string& why_not);

  private:
    network_namespace() = default;
    void destroy() noexcept;

    std::string ip_;  // path of the ip program
    std::string iptables_;
    std::string name_;
    std::string host_if_;
    std::string inner_if_;
    std::string host_addr_;
    std::string inner_addr_;
    bool created_ = false;
    bool cut_ = false;
};

}  // namespace zfarm::test
