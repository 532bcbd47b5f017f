#include "zfarm/sockets.hpp"

namespace zfarm {

void configure_socket(zmq::socket_t& s, const transport_options& t, bool receives) {
    s.set(zmq::sockopt::linger, 1000);
    s.set(zmq::sockopt::heartbeat_ivl, t.heartbeat_ivl_ms);
    s.set(zmq::sockopt::heartbeat_timeout, t.heartbeat_timeout_ms);
    s.set(zmq::sockopt::heartbeat_ttl, t.heartbeat_timeout_ms);
    s.set(zmq::sockopt::tcp_keepalive, 1);
    s.set(zmq::sockopt::reconnect_ivl, 100);
    // A constant 100 ms, no exponential back-off: a worker started before its
    // ventilator must not sit out a long back-off once the ventilator is up.
    s.set(zmq::sockopt::reconnect_ivl_max, 0);
    if (receives) s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(t.max_message));
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
