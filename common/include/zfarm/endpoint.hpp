// Endpoint strings: validation of user-given endpoints and the defaults that
// `--connect HOST` / `--sink HOST` expand to. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "zfarm/expected.hpp"

namespace zfarm {

// The ZeroMQ Guide's ports, plus one for credit dispatch (DESIGN.md).
inline constexpr std::uint16_t k_port_tasks = 5557;
inline constexpr std::uint16_t k_port_results = 5558;
inline constexpr std::uint16_t k_port_control = 5559;
inline constexpr std::uint16_t k_port_credit = 5560;

// Checks that `ep` is a well-formed tcp://HOST:PORT (PORT may be * when
// binding), ipc://PATH or inproc://NAME endpoint. Returns the endpoint, or a
// one-line reason naming the problem.
expected<std::string, std::string> check_endpoint(std::string_view ep, bool for_bind);

// "tcp://HOST:PORT", with IPv6 literals bracketed.
std::string tcp_endpoint(std::string_view host, std::uint16_t port);

// True for endpoints that only this machine can reach (loopback, ipc, inproc).
bool is_local_endpoint(std::string_view ep);

}  // namespace zfarm
