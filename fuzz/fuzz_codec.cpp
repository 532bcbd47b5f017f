// libFuzzer target: the message codec (PROTOCOL.md 3, 4, 5.15). Any input
// must decode to a message or a typed error, and read as a frame to one or
// more messages or errors; a message that decodes must encode to bytes that
// decode to the same message, and the messages of a frame, batched again,
// must read back the same.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "zfarm/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace zfarm::proto;
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    decoded_frame frame;
    decode_frame(in, frame);
    if (frame.empty()) std::abort();
    batch_encoder batch;
    for (const auto& m : frame) {
        if (!m && m.error().detail.empty()) std::abort();  // every error says why
        if (m) batch.add(*m);
    }
    if (!batch.empty()) {
        decoded_frame again;
        decode_frame(batch.frame(), again);
        std::size_t i = 0;
        for (const auto& m : frame) {
            if (!m) continue;
            if (i >= again.size() || !again[i] || !(*again[i] == *m)) std::abort();
            ++i;
        }
        if (i != again.size()) std::abort();
    }

    auto m = decode(in);
    if (!m) {
        if (m.error().detail.empty()) std::abort();
        return 0;
    }
    auto again = decode(encode(*m));
    if (!again || !(*again == *m)) std::abort();
    return 0;
}
