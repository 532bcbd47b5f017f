// Baseline (a) of scripts/bench.sh: the physical limit of zfarm's shape on
// this machine. A source process PUSHes N task messages to R relay processes
// (PULL), each decodes the TASK and encodes a RESULT with the payload as its
// output and PUSHes it to a sink process (PULL), which decodes it and counts.
// Every hop does the msgpack work zfarm does (zfarm's own codec), and nothing
// else: no ledger, no acknowledgement, no output file.
//
// Prints libzmq perf-style lines; the clock starts at the sink's first
// message (warm-up: connections are up) and stops at its last:
//   transport: tcp
//   relays: 2
//   message_size: 32 [B]
//   message_count: 1000000
//   seconds: 0.812
//   throughput: 1231527 [msg/s]
//
// With --latency, one task at a time: the sink sends each result's id back
// to the source (PUSH, as zfarm's sink ACKs to its ventilator), which sends
// the next task only then, and prints the round trip's percentiles:
//   round_trips: 10000
//   latency_p50: 61.2 [us]
//   latency_p99: 104.8 [us]
//
// Each process makes its own ZeroMQ context after fork(); none is shared.
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "zfarm/codec.hpp"

namespace {

using namespace zfarm;

struct options {
    std::string transport = "tcp";
    int relays = 2;
    std::uint64_t count = 1000000;
    std::size_t size = 32;
    bool latency = false;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "zfarm-bench-relay: %s\n"
                 "usage: zfarm-bench-relay [--transport tcp|ipc] [--relays N] [--count N] "
                 "[--size BYTES] [--latency]\n",
                 why);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::printf(
                "usage: zfarm-bench-relay [--transport tcp|ipc] [--relays N] [--count N] "
                "[--size BYTES] [--latency]\n");
            std::exit(0);
        }
        if (a == "--latency") {
            o.latency = true;
            continue;
        }
        if (i + 1 >= argc) usage(("missing value for " + a).c_str());
        const std::string v = argv[++i];
        char* end = nullptr;
        const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        const bool number = !v.empty() && *end == '\0';
        if (a == "--transport") {
            if (v != "tcp" && v != "ipc") usage("--transport takes tcp or ipc");
            o.transport = v;
        } else if (a == "--relays") {
            if (!number || n < 1 || n > 64) usage("--relays takes 1 to 64");
            o.relays = static_cast<int>(n);
        } else if (a == "--count") {
            if (!number || n < 1) usage("--count takes a positive number");
            o.count = n;
        } else if (a == "--size") {
            if (!number || n > (1u << 20)) usage("--size takes 0 to 1048576");
            o.size = n;
        } else {
            usage(("unknown option " + a).c_str());
        }
    }
    return o;
}

// A free TCP port of 127.0.0.1 (bound to port 0, then released).
int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        std::perror("zfarm-bench-relay: free port");
        std::exit(1);
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

void relay(const std::string& from, const std::string& to, int index) {
    zmq::context_t ctx(1);
    zmq::socket_t in(ctx, zmq::socket_type::pull);
    zmq::socket_t out(ctx, zmq::socket_type::push);
    in.connect(from);
    out.connect(to);
    const std::string worker = "relay-" + std::to_string(index);
    std::string scratch;
    for (;;) {
        zmq::message_t m;
        if (!in.recv(m)) continue;
        auto decoded = proto::decode(m.to_string_view());
        if (!decoded) continue;
        auto* t = std::get_if<proto::task>(&*decoded);
        if (!t) continue;
        proto::result r{
            t->job, t->id, t->attempt, worker, proto::task_status::ok, 0, std::move(t->payload),
            "",     0,     t->kind};
        proto::encode(r, scratch);
        out.send(zmq::buffer(scratch));
    }
}

int sink(const std::string& bind, const std::string& acks, const options& o, int ready_fd) {
    zmq::context_t ctx(1);
    zmq::socket_t in(ctx, zmq::socket_type::pull);
    in.bind(bind);
    zmq::socket_t back(ctx, zmq::socket_type::push);
    if (o.latency) back.connect(acks);
    (void)!::write(ready_fd, "x", 1);
    ::close(ready_fd);
    std::uint64_t got = 0, bad = 0;
    std::chrono::steady_clock::time_point first;
    while (got < o.count) {
        zmq::message_t m;
        if (!in.recv(m)) continue;
        auto decoded = proto::decode(m.to_string_view());
        auto* r = decoded ? std::get_if<proto::result>(&*decoded) : nullptr;
        if (!r) ++bad;
        if (got++ == 0) first = std::chrono::steady_clock::now();
        if (o.latency && r) {
            const std::uint64_t id = r->id;
            back.send(zmq::buffer(&id, sizeof id));
        }
    }
    if (o.latency) return bad ? 1 : 0;  // the source reports
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - first).count();
    std::printf("transport: %s\nrelays: %d\nmessage_size: %zu [B]\nmessage_count: %llu\n",
                o.transport.c_str(), o.relays, o.size, static_cast<unsigned long long>(o.count));
    std::printf("seconds: %.3f\nthroughput: %.0f [msg/s]\n", secs,
                secs > 0 ? static_cast<double>(o.count - 1) / secs : 0.0);
    if (bad) std::printf("undecodable: %llu\n", static_cast<unsigned long long>(bad));
    std::fflush(stdout);
    return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    std::string tasks_ep, results_ep, acks_ep;
    if (o.transport == "tcp") {
        tasks_ep = "tcp://127.0.0.1:" + std::to_string(free_port());
        results_ep = "tcp://127.0.0.1:" + std::to_string(free_port());
        acks_ep = "tcp://127.0.0.1:" + std::to_string(free_port());
    } else {
        const std::string base = "ipc:///tmp/zfarm-bench-relay-" + std::to_string(getpid());
        tasks_ep = base + "-tasks";
        results_ep = base + "-results";
        acks_ep = base + "-acks";
    }

    int ready[2];
    if (::pipe(ready) != 0) return 1;
    const pid_t sink_pid = ::fork();
    if (sink_pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::close(ready[0]);
        ::_exit(sink(results_ep, acks_ep, o, ready[1]));
    }
    ::close(ready[1]);
    char c;
    if (::read(ready[0], &c, 1) != 1) return 1;  // the sink is bound
    ::close(ready[0]);

    std::vector<pid_t> relays;
    for (int i = 0; i < o.relays; ++i) {
        const pid_t p = ::fork();
        if (p == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            relay(tasks_ep, results_ep, i);
            ::_exit(0);
        }
        relays.push_back(p);
    }

    int status = 1;
    {
        zmq::context_t ctx(1);
        zmq::socket_t out(ctx, zmq::socket_type::push);
        out.set(zmq::sockopt::linger, -1);
        out.bind(tasks_ep);
        zmq::socket_t acks(ctx, zmq::socket_type::pull);
        if (o.latency) acks.bind(acks_ep);
        const std::string payload(o.size, 'x');
        std::string scratch;
        std::vector<double> rtt_us;
        for (std::uint64_t id = 0; id < o.count; ++id) {
            proto::task t{"bench", id, 1, "echo", payload, 0};
            proto::encode(t, scratch);
            const auto sent = std::chrono::steady_clock::now();
            out.send(zmq::buffer(scratch));
            if (!o.latency) continue;
            zmq::message_t ack;
            while (!acks.recv(ack)) {
            }
            if (id >= o.count / 10)  // warm-up: the first tenth is not counted
                rtt_us.push_back(std::chrono::duration<double, std::micro>(
                                     std::chrono::steady_clock::now() - sent)
                                     .count());
        }
        if (o.latency && !rtt_us.empty()) {
            std::sort(rtt_us.begin(), rtt_us.end());
            auto pct = [&](double p) {
                return rtt_us[std::min(
                    rtt_us.size() - 1,
                    static_cast<std::size_t>(p * static_cast<double>(rtt_us.size())))];
            };
            std::printf("transport: %s\nrelays: %d\nmessage_size: %zu [B]\nround_trips: %zu\n",
                        o.transport.c_str(), o.relays, o.size, rtt_us.size());
            std::printf("latency_p50: %.1f [us]\nlatency_p99: %.1f [us]\n", pct(0.50), pct(0.99));
            std::fflush(stdout);
        }
        int ws = 0;
        if (::waitpid(sink_pid, &ws, 0) == sink_pid && WIFEXITED(ws)) status = WEXITSTATUS(ws);
    }
    for (pid_t p : relays)
        ::kill(p, SIGKILL);
    for (pid_t p : relays)
        ::waitpid(p, nullptr, 0);
    if (o.transport == "ipc") {
        ::unlink(tasks_ep.substr(6).c_str());
        ::unlink(results_ep.substr(6).c_str());
        ::unlink(acks_ep.substr(6).c_str());
    }
    return status;
}
