// embed_worker: an application that embeds zfarm::worker, built only through
// the installed CMake package (see CMakeLists.txt). Besides the built-in kinds
// (sleep, spin, echo) it serves two of its own:
//
//   sha256  the output is the SHA-256 of the payload bytes, as 64 hex digits
//   primes  the payload is a decimal N (0 to 100000000); the output is how many
//           primes are below N, in decimal. Any other payload fails the task.
//
//   embed_worker --credit tcp://head:5560 --results tcp://head:5558
//                --control tcp://head:5559 --threads 4
//
// With no endpoint flags it connects to localhost's default ports, like
// zfarm-worker. SIGINT or SIGTERM stops it as they stop zfarm-worker (the first
// drains, the second abandons running tasks). Exit status: 0 stopped or done,
// 1 a socket error, 2 bad usage, 3 too many handlers hung past their deadline.
//
// Threads: main() owns the worker and calls run(); the handlers run on the
// worker's executor threads and share nothing but their (const) inputs.
#include <charconv>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "sha256.hpp"
#include "zfarm/logging.hpp"
#include "zfarm/version.hpp"
#include "zfarm/worker.hpp"

namespace {

constexpr std::uint64_t k_max_primes_limit = 100'000'000;

// `primes`: counts the primes below N with a sieve of Eratosthenes, polling
// cancelled() so a deadline or a stop is honoured. A bad payload is an error
// value, never an exception.
zfarm::handler_result count_primes(const zfarm::task_view& t) {
    std::uint64_t n = 0;
    const char* first = t.payload.data();
    const char* last = first + t.payload.size();
    const auto [end, ec] = std::from_chars(first, last, n);
    if (t.payload.empty() || ec != std::errc{} || end != last || n > k_max_primes_limit)
        return zfarm::unexpected{std::string("payload must be a whole number from 0 to ") +
                                 std::to_string(k_max_primes_limit) + ", got '" +
                                 std::string(t.payload.substr(0, 32)) + "'"};
    if (n < 3) return std::string("0");  // no prime below 2
    std::vector<bool> composite(n, false);
    std::uint64_t count = 0;
    for (std::uint64_t i = 2; i < n; ++i) {
        if ((i & 0xffff) == 0 && t.cancelled()) return zfarm::unexpected{std::string("cancelled")};
        if (composite[i]) continue;
        ++count;
        for (std::uint64_t j = i * i; j < n; j += i)
            composite[j] = true;
    }
    return std::to_string(count);
}

// `sha256`: every payload is valid input.
zfarm::handler_result hash_payload(const zfarm::task_view& t) {
    return embed::sha256_hex(t.payload);
}

// FIPS 180-2's examples, checked by --self-test.
bool self_test() {
    struct test_vector {
        std::string input;
        const char* digest;
    };
    const test_vector vectors[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {std::string(1'000'000, 'a'),
         "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    bool ok = true;
    for (const auto& v : vectors) {
        const std::string got = embed::sha256_hex(v.input);
        if (got != v.digest) {
            std::fprintf(stderr, "sha256 of %zu bytes: got %s, expected %s\n", v.input.size(),
                         got.c_str(), v.digest);
            ok = false;
        }
    }
    return ok;
}

// SIGINT/SIGTERM call worker::stop(), which is async-signal-safe.
std::atomic<zfarm::worker*> g_worker{nullptr};
void on_signal(int) {
    if (auto* w = g_worker.load()) w->stop();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"embed_worker: a zfarm worker with the kinds sha256 and primes", "embed_worker"};
    zfarm::worker_options opt;
    bool run_self_test = false;
    app.add_option("--tasks", opt.tasks_endpoint, "Ventilator's tasks endpoint (push dispatch)");
    app.add_option("--credit", opt.credit_endpoint,
                   "Ventilator's credit endpoint (credit dispatch)");
    app.add_option("--results", opt.results_endpoint, "Sink's results endpoint");
    app.add_option("--control", opt.control_endpoint, "Sink's control endpoint");
    app.add_option("--threads", opt.threads, "Tasks run at once")
        ->check(CLI::Range(1u, 4096u))
        ->capture_default_str();
    app.add_option("--id", opt.identity, "Worker identity (default HOST-PID-RANDOM)");
    app.add_flag("--exit-when-done", opt.exit_when_done,
                 "Exit once the sink reports every open job done");
    app.add_flag("--self-test", run_self_test, "Check the SHA-256 test vectors and exit");
    app.set_version_flag("--version", "embed_worker on zfarm " + std::string(zfarm::k_version));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (run_self_test) {
        const bool ok = self_test();
        std::printf("sha256 self-test: %s\n", ok ? "ok" : "FAILED");
        return ok ? 0 : 1;
    }
    if (opt.tasks_endpoint.empty() && opt.credit_endpoint.empty() && opt.results_endpoint.empty() &&
        opt.control_endpoint.empty()) {
        opt.tasks_endpoint = "tcp://localhost:5557";
        opt.credit_endpoint = "tcp://localhost:5560";
        opt.results_endpoint = "tcp://localhost:5558";
        opt.control_endpoint = "tcp://localhost:5559";
    }

    zfarm::init_logging("embed_worker", 0);
    zfarm::worker w(std::move(opt));  // registers sleep, spin and echo too
    w.handle("sha256", hash_payload);
    w.handle("primes", count_primes);

    g_worker = &w;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    const auto outcome = w.run();
    g_worker = nullptr;
    if (!outcome) {
        std::fprintf(stderr, "embed_worker: %s\n", outcome.error().message.c_str());
        switch (outcome.error().code) {
            case zfarm::worker_errc::bad_options:
                return 2;
            case zfarm::worker_errc::hung_handlers:
                return 3;
            default:
                return 1;
        }
    }
    std::fprintf(stderr, "embed_worker %s: %llu ok, %llu failed\n", w.identity().c_str(),
                 static_cast<unsigned long long>(outcome->tasks_ok),
                 static_cast<unsigned long long>(outcome->tasks_failed));
    return 0;
}
