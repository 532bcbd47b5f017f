// Socket set-up shared by the three programs and the embeddable worker:
// transport limits on every socket, ZMTP heartbeats on every connection,
// CURVE on every socket when configured (PROTOCOL.md 12), bind/connect that
// turn libzmq errors into one-line reasons, and sender names for drop logs.
//
// These functions touch only the socket they are given, from the calling
// thread (which must be the socket's owner).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "zfarm/curve.hpp"
#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm {

struct transport_options {
    std::size_t max_message = proto::k_default_max_message;  // ZMQ_MAXMSGSIZE on receivers
    int heartbeat_ivl_ms = 1000;      // ZMTP PING interval on every connection
    int heartbeat_timeout_ms = 5000;  // close a connection that stays silent this long
    // ZMQ_HANDSHAKE_IVL on bound sockets: a peer that has not completed the
    // ZMTP (and CURVE) handshake this long after connecting is disconnected.
    int handshake_ivl_ms = 5000;
};

// Largest frame accepted on a socket that receives no protocol messages (a
// PUB sees subscriptions, a PUSH nothing): a peer cannot make it allocate
// more than this.
inline constexpr std::size_t k_max_non_message_frame = 64 * 1024;

// Linger 0-ish, ZMTP heartbeats, TCP keepalive, and ZMQ_MAXMSGSIZE: the
// transport's max_message on sockets that receive protocol messages,
// k_max_non_message_frame on the others. Call before bind/connect.
void configure_socket(zmq::socket_t& s, const transport_options& t, bool receives);

// Which end of a connection a socket is, for secure_socket.
enum class socket_side {
    binds,                   // a CURVE server
    connects_to_sink,        // a CURVE client of the sink's key
    connects_to_ventilator,  // a CURVE client of the ventilator's key
};

// Security of one socket; call before its bind or connect. A bound socket
// gets ZMQ_HANDSHAKE_IVL (t.handshake_ivl_ms) and, with CURVE on, becomes a
// CURVE server with the program's key pair in ZAP domain "zfarm" (its
// context must run a ZAP handler: curve::start_authentication). A
// connecting socket, with CURVE on, becomes a CURVE client of the sink's or
// the ventilator's key. With CURVE off the mechanism stays NULL. Throws
// std::invalid_argument when CURVE is on but the server key it needs is not
// set (the programs check their flags first).
void secure_socket(zmq::socket_t& s, const transport_options& t, const curve::options& c,
                   socket_side side);

// With CURVE off, logs one warning naming those of `bound` that other
// machines can reach (not loopback, ipc or inproc), saying that anyone on
// the network can `what`. Nothing when CURVE is on or all are local.
void warn_if_exposed(const std::vector<std::string>& bound, const curve::options& c,
                     std::string_view what);

// Binds and returns the resolved endpoint (a wildcard port becomes the real
// one), or "cannot bind ENDPOINT: reason".
expected<std::string, std::string> bind_socket(zmq::socket_t& s, const std::string& ep);
expected<std::string, std::string> connect_socket(zmq::socket_t& s, const std::string& ep);

// Receives and discards the remaining parts of a multipart message whose
// first part(s) were already read. Returns how many parts it discarded.
std::size_t discard_rest(zmq::socket_t& s);

// "Peer-Address" of a received frame (tcp only), or "" when unknown.
std::string peer_address(const zmq::message_t& m);

// Sends one control message on a PUB socket: topic frame, then body.
void publish(zmq::socket_t& pub, std::string_view topic, const std::string& body);

}  // namespace zfarm
