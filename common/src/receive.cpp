#include "zfarm/receive.hpp"

#include "zfarm/codec.hpp"
#include "zfarm/sockets.hpp"

namespace zfarm {

receive_status receive_enveloped(zmq::socket_t& s, std::string_view socket_name,
                                 drop_counter& drops, zmq::message_t& envelope,
                                 std::optional<proto::message>& out) {
    out.reset();
    if (!s.recv(envelope, zmq::recv_flags::dontwait)) return receive_status::nothing;
    if (!envelope.more()) return receive_status::skipped;  // an envelope with no message
    zmq::message_t body;
    (void)s.recv(body, zmq::recv_flags::none);
    if (body.more()) {
        discard_rest(s);
        drops.drop(socket_name, peer_address(body), "too many frames");
        return receive_status::skipped;
    }
    auto decoded = proto::decode(body.to_string_view());
    if (!decoded) {
        drops.drop(socket_name, peer_address(body), proto::to_string(decoded.error().code));
        return receive_status::skipped;
    }
    out = std::move(*decoded);
    return receive_status::ok;
}

}  // namespace zfarm
