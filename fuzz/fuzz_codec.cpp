// libFuzzer target: the message codec (PROTOCOL.md 3, 4). Any input must
// decode to a message or a typed error; a message that decodes must encode
// to bytes that decode to the same message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "zfarm/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace zfarm::proto;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto m = decode(in);
    if (!m) {
        if (m.error().detail.empty()) std::abort();  // every error says why
        return 0;
    }
    auto again = decode(encode(*m));
    if (!again || !(*again == *m)) std::abort();
    return 0;
}
