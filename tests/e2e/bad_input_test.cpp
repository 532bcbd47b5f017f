// End-to-end: bad input never kills a process (DESIGN.md, "Bad input never
// kills a process"). While a job runs, every bound port receives raw garbage
// over TCP and ZMTP-valid garbage from ZeroMQ peers; the job still records
// every id exactly once and every program exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "support/pipeline.hpp"
#include "zfarm/codec.hpp"

namespace zfarm::test {
namespace {

constexpr std::uint64_t k_tasks = 3000;

std::string random_bytes(std::mt19937& rng, std::size_t n) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::string out(n, '\0');
    for (auto& c : out)
        c = static_cast<char>(byte(rng));
    return out;
}

// Connects to 127.0.0.1:port, writes `bytes` (as much as the peer takes
// before it hangs up) and closes. Failures are ignored: the peer may close.
void send_raw_tcp(std::uint16_t port, const std::string& bytes) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
        (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::close(fd);
}

// Byte strings that are not ZeroMQ: random bytes (which libzmq may take for
// an unversioned ZMTP 1.0 peer), random bytes after the ZMTP signature, an
// HTTP request, and a ZMTP 3.0 greeting naming an unknown mechanism.
std::vector<std::string> raw_garbage(std::mt19937& rng) {
    std::string random = random_bytes(rng, 4096);
    random[0] = 0x17;
    std::string after_signature = std::string("\xff\0\0\0\0\0\0\0\x01\x7f", 10);
    after_signature += random_bytes(rng, 4096);
    std::string bad_mechanism = std::string("\xff\0\0\0\0\0\0\0\x01\x7f\x03\x00", 12);
    bad_mechanism += std::string("BOGUS") + std::string(15, '\0');
    bad_mechanism += std::string(32, '\0');
    return {random, after_signature, "GET / HTTP/1.1\r\nHost: zfarm\r\n\r\n", bad_mechanism};
}

// Frames that arrive whole but do not decode as a message a sink takes:
// random bytes, a never-used msgpack byte, [2, 3] (unknown version), [1, 99]
// (unknown type), an array32 claiming 4 billion elements, a truncated RESULT,
// a RESULT with trailing bytes, and a TASK and a CREDIT (not sent to a sink).
std::vector<std::string> bad_frames(std::mt19937& rng) {
    proto::result r;
    r.job = "bad-input";
    r.worker = "w";
    const std::string result = proto::encode(r);
    proto::task t;
    t.job = "bad-input";
    t.kind = "sleep";
    t.payload = "1";
    proto::credit c;
    c.worker = "w";
    c.amount = 1000;
    c.reset = true;
    return {
        random_bytes(rng, 1),
        random_bytes(rng, 64),
        random_bytes(rng, 4000),
        std::string("\xc1", 1),
        std::string("\x92\x02\x03", 3),
        std::string("\x92\x01\x63", 3),
        std::string("\xdd\xff\xff\xff\xff", 5),
        result.substr(0, result.size() / 2),
        result + "x",
        proto::encode(t),
        proto::encode(c),
    };
}

// ZeroMQ peers that send garbage to the sink's results socket and, in
// credit dispatch, to the ventilator's credit socket.
void send_zmtp_garbage(const pipeline& farm, std::mt19937& rng) {
    zmq::context_t ctx(1);
    auto make = [&](zmq::socket_type type, std::uint16_t port) {
        zmq::socket_t s(ctx, type);
        s.set(zmq::sockopt::linger, 5000);
        s.connect(tcp_endpoint(port));
        return s;
    };

    zmq::socket_t push = make(zmq::socket_type::push, farm.ports().results);
    for (const auto& f : bad_frames(rng))
        push.send(zmq::buffer(f), zmq::send_flags::none);
    push.send(zmq::str_buffer("first part"), zmq::send_flags::sndmore);
    push.send(zmq::str_buffer("second part"), zmq::send_flags::none);

    // Above the sink's --max-message: libzmq drops the connection.
    zmq::socket_t big = make(zmq::socket_type::push, farm.ports().results);
    big.send(zmq::buffer(std::string(1u << 20, 'z')), zmq::send_flags::none);

    if (farm.dispatch() == "credit") {
        zmq::socket_t dealer = make(zmq::socket_type::dealer, farm.ports().credit);
        for (const auto& f : bad_frames(rng)) {
            // Never a valid CREDIT: that would make this peer a worker.
            auto decoded = proto::decode(f);
            if (decoded && std::holds_alternative<proto::credit>(*decoded)) continue;
            dealer.send(zmq::buffer(f), zmq::send_flags::none);
        }
        proto::hello h;
        h.worker = "w";
        h.host = "h";
        dealer.send(zmq::buffer(proto::encode(h)), zmq::send_flags::none);
        dealer.send(zmq::str_buffer("first part"), zmq::send_flags::sndmore);
        dealer.send(zmq::str_buffer("second part"), zmq::send_flags::none);
    } else {
        // A PUSH peer of the ventilator's PUSH: refused in the ZMTP handshake.
        zmq::socket_t wrong = make(zmq::socket_type::push, farm.ports().tasks);
        wrong.send(zmq::str_buffer("not a task"), zmq::send_flags::none);
        wrong.set(zmq::sockopt::linger, 0);
    }
}  // the sockets linger up to 5 s to deliver what they hold

class BadInput : public ::testing::TestWithParam<std::string> {
  protected:
    pipeline farm{GetParam()};
};

TEST_P(BadInput, GarbageOnEveryBoundPortDoesNotStopARunningJob) {
    farm.start_sink({"--once", "--max-message", "65536"});
    for (int i = 0; i < 4; ++i)
        farm.start_worker({"--exit-when-done"});
    farm.start_ventilator({"--sleep", std::to_string(k_tasks), "--ms", "2", "--job", "garbage"});
    ASSERT_TRUE(wait_until([&] { return count_lines(farm.output()) > 0; }, k_start_timeout))
        << "the job did not start";

    std::mt19937 rng(20240607);
    const std::uint16_t ventilator_port =
        farm.dispatch() == "credit" ? farm.ports().credit : farm.ports().tasks;
    for (auto port : {farm.ports().results, farm.ports().control, ventilator_port})
        for (const auto& bytes : raw_garbage(rng))
            send_raw_tcp(port, bytes);
    send_zmtp_garbage(farm, rng);
    EXPECT_TRUE(farm.ventilator().running())
        << "the job ended before the garbage was sent; it tests nothing";

    ASSERT_TRUE(wait_until(
        [&] { return farm.sink().stderr_text().find("dropped a bad frame") != std::string::npos; },
        k_start_timeout))
        << "the sink never logged a dropped frame";
    if (farm.dispatch() == "credit") {
        EXPECT_TRUE(wait_until(
            [&] {
                return farm.ventilator().stderr_text().find("dropped a bad frame on credit") !=
                       std::string::npos;
            },
            k_start_timeout))
            << "the ventilator never logged a dropped credit frame";
    }

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    for (auto* w : farm.workers())
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();
    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, k_tasks));
    EXPECT_TRUE(all_ok_first_attempt(results));
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "garbage", k_tasks, k_tasks, 0,
                                workers_of(results).size()));
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, BadInput, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
