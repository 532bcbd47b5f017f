// Receiving two-frame protocol messages: a topic frame (control PUB/SUB) or a
// routing-id frame (credit ROUTER), then one protocol message. Shared by
// every receiver of such messages so that malformed input is treated alike:
// more frames than two, or a frame that does not decode, is counted in the
// caller's drop_counter and skipped.
//
// Touches only the socket it is given, from the calling (owning) thread.
#pragma once

#include <optional>
#include <string_view>

#include <zmq.hpp>

#include "zfarm/logging.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm {

enum class receive_status {
    nothing,  // no message waiting
    skipped,  // a message arrived but was dropped (counted when malformed)
    ok,       // `envelope` and `out` hold the message
};

// Never blocks. `socket_name` names the socket in drop logs.
receive_status receive_enveloped(zmq::socket_t& s, std::string_view socket_name,
                                 drop_counter& drops, zmq::message_t& envelope,
                                 std::optional<proto::message>& out);

}  // namespace zfarm
