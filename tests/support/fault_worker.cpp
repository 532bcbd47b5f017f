// zfarm-fault-worker: zfarm-worker (same flags, same exit status) plus task
// kinds that misbehave, for fault-injection tests. These kinds exist only
// here, never in the product's worker.
//
//   hang   never returns: ignores cancellation and its deadline
//   crash  aborts the process (SIGABRT), as a poison task would
//   nap    sleeps PAYLOAD ms, honouring cancellation like `sleep`, and first
//          writes "nap JOB/ID attempt N started" to stderr, so a test can wait
//          until the task runs
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "worker_program.hpp"
#include "zfarm/worker.hpp"

namespace {

using zfarm::handler_result;
using zfarm::task_view;
using zfarm::unexpected;

handler_result hang(const task_view&) {
    // Blocks on nothing the worker can reach; process exit ends it.
    for (;;)
        std::this_thread::sleep_for(std::chrono::hours(1));
}

handler_result crash(const task_view&) {
    std::abort();
}

handler_result nap(const task_view& t) {
    std::uint64_t ms = 0;
    auto [end, ec] = std::from_chars(t.payload.data(), t.payload.data() + t.payload.size(), ms);
    if (ec != std::errc{} || end != t.payload.data() + t.payload.size())
        return unexpected{std::string("payload must be a number of milliseconds")};
    std::fprintf(stderr, "nap %.*s/%llu attempt %u started\n", static_cast<int>(t.job.size()),
                 t.job.data(), static_cast<unsigned long long>(t.id), t.attempt);
    std::fflush(stderr);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
        if (t.cancelled()) return unexpected{std::string("cancelled")};
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::string();
}

}  // namespace

int main(int argc, char** argv) {
    return zfarm::worker_program(argc, argv, "zfarm-fault-worker", [](zfarm::worker& w) {
        w.handle("hang", hang);
        w.handle("crash", crash);
        w.handle("nap", nap);
    });
}
