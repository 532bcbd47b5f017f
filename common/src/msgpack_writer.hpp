// Writing msgpack into a std::string, shared by the codecs of common/
// (the messages, codec.cpp; the exec kind's maps, exec_format.cpp).
// Private to zfarm_common. Stateless; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <msgpack.hpp>

namespace zfarm::detail {

// msgpack packer sink appending to a std::string.
struct string_writer {
    std::string* out;
    void write(const char* data, std::size_t n) { out->append(data, n); }
};
using packer = msgpack::packer<string_writer>;

inline void pack_str(packer& p, std::string_view s) {
    p.pack_str(static_cast<std::uint32_t>(s.size()));
    p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}
inline void pack_bin(packer& p, std::string_view s) {
    p.pack_bin(static_cast<std::uint32_t>(s.size()));
    p.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

}  // namespace zfarm::detail
