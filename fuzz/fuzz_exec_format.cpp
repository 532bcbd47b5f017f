// libFuzzer target: the exec kind's payload and output maps (PROTOCOL.md
// 6.4). Decoding never fails without a reason; what decodes round-trips.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "zfarm/exec_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace zfarm::exec;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    if (auto c = decode_command(in)) {
        auto again = decode_command(encode(*c));
        if (!again || !(*again == *c)) std::abort();
    } else if (c.error().empty()) {
        std::abort();
    }
    if (auto o = decode_outcome(in)) {
        auto again = decode_outcome(encode(*o));
        if (!again || !(*again == *o)) std::abort();
    } else if (o.error().empty()) {
        std::abort();
    }
    return 0;
}
