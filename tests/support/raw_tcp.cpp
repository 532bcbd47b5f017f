#include "support/raw_tcp.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace zfarm::test {
namespace {

// A connected socket to 127.0.0.1:port, or -1.
int connect_local(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

std::string random_bytes(std::mt19937& rng, std::size_t n) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::string out(n, '\0');
    for (auto& c : out)
        c = static_cast<char>(byte(rng));
    return out;
}

std::vector<std::string> hostile_greetings(std::mt19937& rng) {
    // ZMTP 3.0 greeting: signature (10), version 3.0 (2), mechanism (20),
    // as-server (1), filler (31).
    const std::string signature("\xff\0\0\0\0\0\0\0\x01\x7f", 10);
    std::string curve_greeting = signature + std::string("\x03\x00", 2) + "CURVE" +
                                 std::string(15, '\0') + std::string(32, '\0');
    // A HELLO command frame of the right size whose contents are random.
    std::string garbage_hello = curve_greeting + std::string("\x04\xc8", 2) + "\x05HELLO";
    garbage_hello += random_bytes(rng, 200 - 6);
    std::string random = random_bytes(rng, 4096);
    random[0] = 0x17;
    return {random,
            signature,
            signature + std::string("\x03", 1),
            curve_greeting.substr(0, 17),
            curve_greeting,
            garbage_hello,
            "GET / HTTP/1.1\r\nHost: zfarm\r\n\r\n"};
}

void send_raw_tcp(std::uint16_t port, const std::string& bytes) {
    const int fd = connect_local(port);
    if (fd < 0) return;
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::close(fd);
}

std::size_t churn_connections(const std::vector<std::uint16_t>& ports, std::size_t total,
                              std::size_t at_once, std::mt19937& rng) {
    std::size_t connected = 0;
    std::vector<int> open;
    for (std::size_t i = 0; i < total; ++i) {
        const int fd = connect_local(ports[i % ports.size()]);
        if (fd >= 0) {
            ++connected;
            if (i % 2 == 1) {
                const std::string bytes = random_bytes(rng, 64);
                (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            }
            open.push_back(fd);
        }
        if (open.size() >= at_once || i + 1 == total) {
            for (int f : open)
                ::close(f);
            open.clear();
        }
    }
    return connected;
}

silent_connections::silent_connections(const std::vector<std::uint16_t>& ports,
                                       std::size_t per_port) {
    for (auto port : ports)
        for (std::size_t i = 0; i < per_port; ++i)
            if (const int fd = connect_local(port); fd >= 0) {
                ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
                fds_.push_back(fd);
            }
    closed_.assign(fds_.size(), false);
}

silent_connections::~silent_connections() {
    for (int fd : fds_)
        ::close(fd);
}

std::size_t silent_connections::closed_by_peer() {
    std::size_t n = 0;
    for (std::size_t i = 0; i < fds_.size(); ++i) {
        char buf[256];
        while (!closed_[i]) {
            const ssize_t got = ::recv(fds_[i], buf, sizeof buf, 0);
            if (got > 0) continue;  // the peer's greeting
            if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                closed_[i] = true;
            break;
        }
        if (closed_[i]) ++n;
    }
    return n;
}

}  // namespace zfarm::test
