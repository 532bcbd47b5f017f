// Raw TCP peers for end-to-end tests of what a bound port does with bytes
// that are not (or not yet) ZeroMQ: garbage, truncated ZMTP greetings,
// silent connections, and many connections in turn. Every connection is to
// 127.0.0.1 and is closed by the time the call (or the holder) returns.
//
// Used from the test's main thread.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace zfarm::test {

std::string random_bytes(std::mt19937& rng, std::size_t n);

// Byte strings a ZMTP peer never sends whole: random bytes, the 10-byte
// ZMTP signature alone, a greeting cut before and after its mechanism, a
// whole CURVE greeting followed by a garbage HELLO command, and an HTTP
// request.
std::vector<std::string> hostile_greetings(std::mt19937& rng);

// Connects to 127.0.0.1:port, writes `bytes` (as much as the peer takes
// before it hangs up) and closes. Connection failures are ignored.
void send_raw_tcp(std::uint16_t port, const std::string& bytes);

// Opens `total` connections to the ports in turn, at most `at_once` open at
// a time, each closed after writing nothing (even ones) or 64 random bytes
// (odd ones). Returns how many connected.
std::size_t churn_connections(const std::vector<std::uint16_t>& ports, std::size_t total,
                              std::size_t at_once, std::mt19937& rng);

// Connections that connect and then say nothing, closed when this goes away.
class silent_connections {
  public:
    silent_connections(const std::vector<std::uint16_t>& ports, std::size_t per_port);
    ~silent_connections();
    silent_connections(const silent_connections&) = delete;
    silent_connections& operator=(const silent_connections&) = delete;

    std::size_t size() const noexcept { return fds_.size(); }
    // How many the peer has closed (end of file or reset) so far; reads and
    // discards what the peer sent (its greeting).
    std::size_t closed_by_peer();

  private:
    std::vector<int> fds_;
    std::vector<bool> closed_;
};

}  // namespace zfarm::test
