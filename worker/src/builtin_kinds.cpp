// The built-in task kinds: sleep and spin (the Guide's workloads) and echo
// (for throughput). Payloads of sleep and spin are decimal milliseconds.
#include <charconv>
#include <chrono>
#include <thread>

#include "zfarm/worker.hpp"

namespace zfarm {
namespace {

constexpr std::uint64_t k_max_ms = 24ull * 3600 * 1000;

expected<std::uint64_t, std::string> parse_ms(std::string_view payload) {
    std::uint64_t ms = 0;
    auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), ms);
    if (ec != std::errc{} || end != payload.data() + payload.size() || ms > k_max_ms)
        return unexpected{"payload must be a number of milliseconds (0-86400000), got '" +
                          std::string(payload.substr(0, 32)) + "'"};
    return ms;
}

handler_result sleep_for(const task_view& t) {
    auto ms = parse_ms(t.payload);
    if (!ms) return unexpected{ms.error()};
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(*ms);
    // Sleep in slices so that cancellation and deadlines are honoured.
    for (;;) {
        if (t.cancelled()) return unexpected{std::string("cancelled")};
        const auto now = std::chrono::steady_clock::now();
        if (now >= end) return std::string();
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            end - now, std::chrono::milliseconds(50)));
    }
}

handler_result spin_for(const task_view& t) {
    auto ms = parse_ms(t.payload);
    if (!ms) return unexpected{ms.error()};
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(*ms);
    volatile std::uint64_t x = 0;
    std::uint64_t rounds = 0;
    while (std::chrono::steady_clock::now() < end) {
        for (int i = 0; i < 1000; ++i)
            x = x + static_cast<std::uint64_t>(i);
        if ((++rounds & 63) == 0 && t.cancelled()) return unexpected{std::string("cancelled")};
    }
    return std::string();
}

}  // namespace

void register_builtin_kinds(worker& w) {
    w.handle("sleep", sleep_for);
    w.handle("spin", spin_for);
    w.handle(
        "echo", [](const task_view& t) -> handler_result { return std::string(t.payload); },
        /*inline_handler=*/true);
}

}  // namespace zfarm
