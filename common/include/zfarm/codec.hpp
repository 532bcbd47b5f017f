// Encoding and decoding of protocol messages (see protocol.hpp, PROTOCOL.md).
//
// decode() never throws and never allocates more than a bounded multiple of
// its input: msgpack is unpacked with explicit limits, trailing bytes are
// rejected, and every failure is a typed decode_error. Stateless; any thread.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::proto {

enum class decode_errc {
    empty,           // zero-length frame
    malformed,       // not valid msgpack, or truncated
    trailing_bytes,  // a complete object followed by more bytes
    limit_exceeded,  // a container, string or nesting depth above the limits
    not_an_array,    // the top-level object is not an array
    bad_version,     // version field missing, not an integer, or not ours
    unknown_type,    // type code this version does not define
    bad_field,       // a field is missing or of the wrong msgpack type or range
};

struct decode_error {
    decode_errc code;
    std::string detail;  // one line, for logs
};

std::string_view to_string(decode_errc c) noexcept;

// Appends the encoding of `m` to `out` (cleared first).
void encode(const message& m, std::string& out);
std::string encode(const message& m);

expected<message, decode_error> decode(std::span<const std::byte> frame) noexcept;
inline expected<message, decode_error> decode(std::string_view frame) noexcept {
    return decode(std::as_bytes(std::span<const char>(frame.data(), frame.size())));
}

}  // namespace zfarm::proto
