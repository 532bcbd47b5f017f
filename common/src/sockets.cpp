#include "zfarm/sockets.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "zfarm/endpoint.hpp"

namespace zfarm {

void configure_socket(zmq::socket_t& s, const transport_options& t, bool receives) {
    s.set(zmq::sockopt::linger, 1000);
    s.set(zmq::sockopt::heartbeat_ivl, t.heartbeat_ivl_ms);
    s.set(zmq::sockopt::heartbeat_timeout, t.heartbeat_timeout_ms);
    s.set(zmq::sockopt::heartbeat_ttl, t.heartbeat_timeout_ms);
    s.set(zmq::sockopt::tcp_keepalive, 1);
    // After a failed or lost connection, retry in 10 ms, then 20, 40, 80,
    // then every 100 ms; libzmq adds a random part of up to one
    // reconnect_ivl (10 ms) to each wait. So a program started just before
    // its peer connects within about 10-20 ms of the peer's bind, and a
    // worker waiting for the next job's ventilator waits at most 110 ms once
    // it is up. (A constant 100 ms, as before, meant 100-200 ms with the
    // random part, on every job's start.)
    s.set(zmq::sockopt::reconnect_ivl, 10);
    s.set(zmq::sockopt::reconnect_ivl_max, 100);
    s.set(zmq::sockopt::maxmsgsize,
          static_cast<int64_t>(receives ? t.max_message : k_max_non_message_frame));
}

void secure_socket(zmq::socket_t& s, const transport_options& t, const curve::options& c,
                   socket_side side) {
    if (side == socket_side::binds) s.set(zmq::sockopt::handshake_ivl, t.handshake_ivl_ms);
    if (!c.on()) return;
    const curve::key_pair& own = *c.keys;
    s.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(own.secret_key.data(), 32));
    s.set(zmq::sockopt::curve_publickey, zmq::const_buffer(own.public_key.data(), 32));
    if (side == socket_side::binds) {
        s.set(zmq::sockopt::zap_domain, "zfarm");
        s.set(zmq::sockopt::curve_server, 1);
        return;
    }
    const auto& server =
        side == socket_side::connects_to_sink ? c.server_key : c.ventilator_server_key();
    if (!server) throw std::invalid_argument("CURVE is on but no server key is set");
    s.set(zmq::sockopt::curve_serverkey, zmq::const_buffer(server->data(), 32));
}

void warn_if_exposed(const std::vector<std::string>& bound, const curve::options& c,
                     std::string_view what) {
    if (c.on()) return;
    std::string exposed;
    for (const auto& ep : bound) {
        if (is_local_endpoint(ep)) continue;
        exposed += (exposed.empty() ? "" : ", ") + ep;
    }
    if (exposed.empty()) return;
    spdlog::warn(
        "{} can be reached from other machines and CURVE is off: anyone on the network can {} "
        "(see --curve-secret, README \"Security\")",
        exposed, what);
}

expected<std::string, std::string> bind_socket(zmq::socket_t& s, const std::string& ep) {
    try {
        s.bind(ep);
        return s.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
        return unexpected{"cannot bind " + ep + ": " + e.what()};
    }
}

expected<std::string, std::string> connect_socket(zmq::socket_t& s, const std::string& ep) {
    try {
        s.connect(ep);
        return ep;
    } catch (const zmq::error_t& e) {
        return unexpected{"cannot connect to " + ep + ": " + e.what()};
    }
}

std::size_t discard_rest(zmq::socket_t& s) {
    std::size_t n = 0;
    while (s.get(zmq::sockopt::rcvmore)) {
        zmq::message_t part;
        (void)s.recv(part, zmq::recv_flags::none);
        ++n;
    }
    return n;
}

std::string peer_address(const zmq::message_t& m) {
    const char* v = zmq_msg_gets(const_cast<zmq_msg_t*>(m.handle()), "Peer-Address");
    return v ? std::string(v) : std::string();
}

void publish(zmq::socket_t& pub, std::string_view topic, const std::string& body) {
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(body), zmq::send_flags::none);
}

}  // namespace zfarm
