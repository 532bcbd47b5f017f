// zfarm-test-impair: degrades a real link for the degraded-link tests, where
// the kernel has no netem. iptables rules send the link's packets to an
// NFQUEUE; this program holds each one for a random delay before letting it
// go on (NF_ACCEPT), drops a fraction (NF_DROP), and lets another fraction go
// at once, ahead of those still held, so they arrive out of order. Verdicts go
// by packet id, in any order, so the reordering is real: TCP sees late,
// missing and out-of-order segments, as on a bad network.
//
//   zfarm-test-impair [--queue N] [--delay-ms D] [--jitter-ms J]
//                     [--loss P] [--reorder P] [--seed S]
//
// Prints `ready` on stdout once it is bound to the queue (add the iptables
// rules only then: without a reader the queue drops every packet). On SIGTERM
// or SIGINT it lets every held packet go, prints one line of counts
// (`packets N, dropped N, delayed N, early N`) and exits 0. Exit 2: bad usage;
// 1: the queue could not be opened (no nfnetlink_queue, not root).
//
// Single-threaded: one loop polls the queue's netlink socket and a signalfd.
// <netinet/in.h> before the kernel's headers, which it would clash with after.
#include <netinet/in.h>

#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
    unsigned queue = 0;
    double delay_ms = 30;
    double jitter_ms = 10;
    double loss = 0.02;
    double reorder = 0.10;
    std::uint64_t seed = 1;
};

struct held_packet {
    clock_type::time_point release;
    std::uint32_t id;
    bool operator>(const held_packet& o) const { return release > o.release; }
};

struct impairer {
    options opt;
    std::mt19937_64 rng;
    nfq_q_handle* queue = nullptr;
    std::priority_queue<held_packet, std::vector<held_packet>, std::greater<>> held;
    std::uint64_t packets = 0, dropped = 0, delayed = 0, early = 0;

    void verdict(std::uint32_t id, std::uint32_t v) {
        if (nfq_set_verdict(queue, id, v, 0, nullptr) < 0)
            std::fprintf(stderr, "zfarm-test-impair: verdict for packet %u failed\n", id);
    }

    void on_packet(std::uint32_t id) {
        ++packets;
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        if (unit(rng) < opt.loss) {
            ++dropped;
            verdict(id, NF_DROP);
        } else if (unit(rng) < opt.reorder) {
            ++early;  // goes ahead of the packets still held
            verdict(id, NF_ACCEPT);
        } else {
            ++delayed;
            std::uniform_real_distribution<double> jitter(-opt.jitter_ms, opt.jitter_ms);
            const double ms = std::max(0.0, opt.delay_ms + jitter(rng));
            held.push(
                {clock_type::now() + std::chrono::microseconds(static_cast<long>(ms * 1000)), id});
        }
    }

    void release_due(clock_type::time_point now) {
        while (!held.empty() && held.top().release <= now) {
            verdict(held.top().id, NF_ACCEPT);
            held.pop();
        }
    }
};

int on_queued(nfq_q_handle*, nfgenmsg*, nfq_data* data, void* self) {
    if (const auto* hdr = nfq_get_msg_packet_hdr(data))
        static_cast<impairer*>(self)->on_packet(ntohl(hdr->packet_id));
    return 0;
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "zfarm-test-impair: %s\nusage: zfarm-test-impair [--queue N] [--delay-ms D] "
                 "[--jitter-ms J] [--loss P] [--reorder P] [--seed S]\n",
                 why);
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) usage(("missing value after " + flag).c_str());
        const char* v = argv[++i];
        char* end = nullptr;
        const double x = std::strtod(v, &end);
        if (end == v || *end != '\0' || x < 0) usage(("bad value for " + flag).c_str());
        if (flag == "--queue")
            o.queue = static_cast<unsigned>(x);
        else if (flag == "--delay-ms")
            o.delay_ms = x;
        else if (flag == "--jitter-ms")
            o.jitter_ms = x;
        else if (flag == "--loss" && x <= 1)
            o.loss = x;
        else if (flag == "--reorder" && x <= 1)
            o.reorder = x;
        else if (flag == "--seed")
            o.seed = static_cast<std::uint64_t>(x);
        else
            usage(("unknown flag or value out of range: " + flag).c_str());
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    impairer imp;
    imp.opt = parse(argc, argv);
    imp.rng.seed(imp.opt.seed);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    const int sig_fd = signalfd(-1, &stop, SFD_CLOEXEC);

    nfq_handle* h = nfq_open();
    if (!h || sig_fd < 0) {
        std::fprintf(stderr, "zfarm-test-impair: nfq_open: %s\n", std::strerror(errno));
        return 1;
    }
    imp.queue = nfq_create_queue(h, static_cast<std::uint16_t>(imp.opt.queue), &on_queued, &imp);
    if (!imp.queue) {
        std::fprintf(stderr, "zfarm-test-impair: cannot bind queue %u: %s\n", imp.opt.queue,
                     std::strerror(errno));
        nfq_close(h);
        return 1;
    }
    // Metadata is enough: verdicts go by id.
    if (nfq_set_mode(imp.queue, NFQNL_COPY_META, 0) < 0 ||
        nfq_set_queue_maxlen(imp.queue, 16384) < 0) {
        std::fprintf(stderr, "zfarm-test-impair: cannot configure queue %u\n", imp.opt.queue);
        nfq_destroy_queue(imp.queue);
        nfq_close(h);
        return 1;
    }
    const int fd = nfq_fd(h);
    const int one = 1;
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    const int rcvbuf = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);

    std::printf("ready\n");
    std::fflush(stdout);

    std::vector<char> buf(1 << 16);
    for (;;) {
        int wait_ms = -1;
        if (!imp.held.empty()) {
            const auto left = imp.held.top().release - clock_type::now();
            wait_ms = static_cast<int>(
                std::max<long>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
        }
        pollfd fds[2] = {{fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
        const int n = poll(fds, 2, wait_ms);
        if (n < 0 && errno != EINTR) {
            std::fprintf(stderr, "zfarm-test-impair: poll: %s\n", std::strerror(errno));
            break;
        }
        if (n > 0 && (fds[1].revents & POLLIN)) break;
        if (n > 0 && (fds[0].revents & POLLIN)) {
            // Drain what is there without blocking.
            for (;;) {
                const ssize_t got = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
                if (got <= 0) break;
                nfq_handle_packet(h, buf.data(), static_cast<int>(got));
            }
        }
        imp.release_due(clock_type::now());
    }
    imp.release_due(clock_type::time_point::max());
    std::printf(
        "packets %llu, dropped %llu, delayed %llu, early %llu\n",
        static_cast<unsigned long long>(imp.packets), static_cast<unsigned long long>(imp.dropped),
        static_cast<unsigned long long>(imp.delayed), static_cast<unsigned long long>(imp.early));
    std::fflush(stdout);
    nfq_destroy_queue(imp.queue);
    nfq_close(h);
    return 0;
}
