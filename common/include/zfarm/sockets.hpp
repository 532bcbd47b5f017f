// Socket set-up shared by the three programs: transport limits on every
// receiving socket, ZMTP heartbeats on every connection, bind/connect that
// turn libzmq errors into one-line reasons, and sender names for drop logs.
//
// These functions touch only the socket they are given, from the calling
// thread (which must be the socket's owner).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm {

struct transport_options {
    std::size_t max_message = proto::k_default_max_message;  // ZMQ_MAXMSGSIZE on receivers
    int heartbeat_ivl_ms = 1000;      // ZMTP PING interval on every connection
    int heartbeat_timeout_ms = 5000;  // close a connection that stays silent this long
};

// Linger 0-ish, ZMTP heartbeats, TCP keepalive, and, for sockets that
// receive, ZMQ_MAXMSGSIZE. Call before bind/connect.
void configure_socket(zmq::socket_t& s, const transport_options& t, bool receives);

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
