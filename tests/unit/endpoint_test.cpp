// Unit tests for zfarm/endpoint.hpp: validation of user-given endpoints, the
// defaults `--connect HOST` expands to, and what counts as local.
#include "zfarm/endpoint.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using zfarm::check_endpoint;
using zfarm::is_local_endpoint;
using zfarm::tcp_endpoint;

::testing::AssertionResult accepted(const std::string& ep, bool for_bind) {
    auto r = check_endpoint(ep, for_bind);
    if (!r) return ::testing::AssertionFailure() << r.error();
    if (*r != ep) return ::testing::AssertionFailure() << "returned '" << *r << "'";
    return ::testing::AssertionSuccess();
}

// Rejected, with a one-line reason that quotes the endpoint and mentions `why`.
::testing::AssertionResult refused(const std::string& ep, bool for_bind, const std::string& why) {
    auto r = check_endpoint(ep, for_bind);
    if (r) return ::testing::AssertionFailure() << "accepted";
    const std::string& msg = r.error();
    if (msg.find('\n') != std::string::npos)
        return ::testing::AssertionFailure() << "reason is not one line: " << msg;
    if (msg.find("'" + ep + "'") == std::string::npos)
        return ::testing::AssertionFailure() << "reason does not quote the endpoint: " << msg;
    if (msg.find(why) == std::string::npos)
        return ::testing::AssertionFailure() << "reason does not mention '" << why << "': " << msg;
    return ::testing::AssertionSuccess();
}

TEST(Endpoint, AcceptsTcpHostAndPort) {
    EXPECT_TRUE(accepted("tcp://127.0.0.1:5557", false));
    EXPECT_TRUE(accepted("tcp://node7.example.org:5558", false));
    EXPECT_TRUE(accepted("tcp://node7:1", true));
    EXPECT_TRUE(accepted("tcp://node7:65535", true));
}

TEST(Endpoint, AcceptsBracketedIpv6) {
    EXPECT_TRUE(accepted("tcp://[::1]:5557", false));
    EXPECT_TRUE(accepted("tcp://[fe80::1%eth0]:5557", true));
}

TEST(Endpoint, AcceptsWildcardHostAndPortWhenBinding) {
    EXPECT_TRUE(accepted("tcp://*:5557", true));
    EXPECT_TRUE(accepted("tcp://*:*", true));
    EXPECT_TRUE(accepted("tcp://127.0.0.1:*", true));
    EXPECT_TRUE(accepted("tcp://127.0.0.1:0", true));
}

TEST(Endpoint, RefusesWildcardPortWhenConnecting) {
    EXPECT_TRUE(refused("tcp://127.0.0.1:*", false, "wildcard port"));
    EXPECT_TRUE(refused("tcp://127.0.0.1:0", false, "wildcard port"));
}

TEST(Endpoint, AcceptsIpcAndInproc) {
    EXPECT_TRUE(accepted("ipc:///tmp/zfarm.sock", true));
    EXPECT_TRUE(accepted("ipc://@abstract", false));
    EXPECT_TRUE(accepted("inproc://results", true));
}

TEST(Endpoint, RefusesEmptyIpcPathAndInprocName) {
    EXPECT_TRUE(refused("ipc://", true, "empty ipc path"));
    EXPECT_TRUE(refused("inproc://", false, "empty inproc name"));
}

TEST(Endpoint, RefusesUnknownTransports) {
    EXPECT_TRUE(refused("udp://127.0.0.1:5557", false, "expected tcp://"));
    EXPECT_TRUE(refused("127.0.0.1:5557", false, "expected tcp://"));
    EXPECT_TRUE(refused("", true, "expected tcp://"));
    EXPECT_TRUE(refused("TCP://127.0.0.1:5557", false, "expected tcp://"));
}

TEST(Endpoint, RefusesMissingPort) {
    EXPECT_TRUE(refused("tcp://node7", false, "missing :PORT"));
}

TEST(Endpoint, RefusesMissingHost) {
    EXPECT_TRUE(refused("tcp://:5557", true, "missing host"));
}

TEST(Endpoint, RefusesBadPorts) {
    for (const char* ep : {"tcp://node7:65536", "tcp://node7:99999999999", "tcp://node7:",
                           "tcp://node7:-1", "tcp://node7:+5", "tcp://node7:55x", "tcp://node7: 5"})
        EXPECT_TRUE(refused(ep, true, "port must be 1-65535")) << ep;
}

TEST(Endpoint, RefusesUnterminatedIpv6Literal) {
    EXPECT_TRUE(refused("tcp://[::1:5557", false, "unterminated IPv6"));
}

TEST(Endpoint, BuildsTcpEndpointsFromHostAndPort) {
    EXPECT_EQ(tcp_endpoint("node7", zfarm::k_port_tasks), "tcp://node7:5557");
    EXPECT_EQ(tcp_endpoint("10.0.0.2", zfarm::k_port_results), "tcp://10.0.0.2:5558");
    EXPECT_EQ(tcp_endpoint("node7", zfarm::k_port_control), "tcp://node7:5559");
    EXPECT_EQ(tcp_endpoint("node7", zfarm::k_port_credit), "tcp://node7:5560");
}

TEST(Endpoint, BracketsIpv6LiteralsOnce) {
    EXPECT_EQ(tcp_endpoint("::1", 5557), "tcp://[::1]:5557");
    EXPECT_EQ(tcp_endpoint("[::1]", 5557), "tcp://[::1]:5557");
    EXPECT_EQ(tcp_endpoint("fe80::1", 1), "tcp://[fe80::1]:1");
}

TEST(Endpoint, BuiltEndpointsPassValidation) {
    for (const char* host : {"node7", "127.0.0.1", "::1", "[::1]"}) {
        const std::string ep = tcp_endpoint(host, 5557);
        EXPECT_TRUE(accepted(ep, false)) << ep;
    }
}

TEST(Endpoint, UsesTheZeroMqGuidePorts) {
    EXPECT_EQ(zfarm::k_port_tasks, 5557);
    EXPECT_EQ(zfarm::k_port_results, 5558);
    EXPECT_EQ(zfarm::k_port_control, 5559);
    EXPECT_EQ(zfarm::k_port_credit, 5560);
}

TEST(Endpoint, TreatsLoopbackIpcAndInprocAsLocal) {
    for (const char* ep : {"tcp://127.0.0.1:5557", "tcp://127.1.2.3:1", "tcp://localhost:5557",
                           "tcp://[::1]:5557", "tcp://lo:5557", "ipc:///tmp/x", "inproc://x"})
        EXPECT_TRUE(is_local_endpoint(ep)) << ep;
}

TEST(Endpoint, TreatsOtherHostsAsRemote) {
    for (const char* ep : {"tcp://10.0.0.2:5557", "tcp://node7:5557", "tcp://*:5557",
                           "tcp://[fe80::1]:5557", "tcp://localhost.example.org:5557", ""})
        EXPECT_FALSE(is_local_endpoint(ep)) << ep;
}

}  // namespace
