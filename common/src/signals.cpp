#include "zfarm/signals.hpp"

#include <atomic>
#include <csignal>

namespace zfarm {
namespace {

std::atomic<int> g_requests{0};
static_assert(std::atomic<int>::is_always_lock_free);

// C linkage for sigaction, internal linkage so that it cannot clash with a
// symbol of an application that embeds zfarm (an anonymous namespace does
// not give an extern "C" function internal linkage; static does).
extern "C" {
static void zfarm_on_stop_signal(int) {
    g_requests.fetch_add(1, std::memory_order_relaxed);
}
}

}  // namespace

void install_stop_handlers() {
    struct sigaction sa {};
    sa.sa_handler = zfarm_on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: let blocking calls return EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

int stop_requests() noexcept {
    return g_requests.load(std::memory_order_relaxed);
}

void request_stop() noexcept {
    g_requests.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace zfarm
