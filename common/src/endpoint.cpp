#include "zfarm/endpoint.hpp"

#include <charconv>

namespace zfarm {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

}  // namespace

expected<std::string, std::string> check_endpoint(std::string_view ep, bool for_bind) {
    auto bad = [&](std::string_view why) {
        return unexpected{std::string("bad endpoint '") + std::string(ep) +
                          "': " + std::string(why)};
    };
    if (starts_with(ep, "ipc://")) {
        if (ep.size() == 6) return bad("empty ipc path");
        return std::string(ep);
    }
    if (starts_with(ep, "inproc://")) {
        if (ep.size() == 9) return bad("empty inproc name");
        return std::string(ep);
    }
    if (!starts_with(ep, "tcp://"))
        return bad("expected tcp://HOST:PORT, ipc://PATH or inproc://NAME");
    std::string_view rest = ep.substr(6);
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("missing :PORT");
    std::string_view host = rest.substr(0, colon);
    std::string_view port = rest.substr(colon + 1);
    if (host.empty()) return bad("missing host (use * to bind on every interface)");
    if (host.front() == '[' && host.back() != ']') return bad("unterminated IPv6 literal");
    if (port == "*" || port == "0") {
        if (!for_bind) return bad("a wildcard port can only be bound");
        return std::string(ep);
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
        return bad("port must be 1-65535");
    return std::string(ep);
}

std::string tcp_endpoint(std::string_view host, std::uint16_t port) {
    std::string h(host);
    if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
    return "tcp://" + h + ":" + std::to_string(port);
}

bool is_local_endpoint(std::string_view ep) {
    if (starts_with(ep, "ipc://") || starts_with(ep, "inproc://")) return true;
    return starts_with(ep, "tcp://127.") || starts_with(ep, "tcp://localhost:") ||
           starts_with(ep, "tcp://[::1]:") || starts_with(ep, "tcp://lo:");
}

}  // namespace zfarm
