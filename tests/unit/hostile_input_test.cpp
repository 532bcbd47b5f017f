// Hostile inputs through every decoder of bytes from the network or from
// files (PROTOCOL.md 3.4): the message codec, the exec kind's payload and
// output maps, and a tasks-file line. Each must answer with a typed error,
// never crash, and never try to allocate more than a small multiple of its
// input: the corpus runs in a child process whose address space is capped
// at 1 GiB, where a decoder that believed a declared length of four billion
// would fail to allocate (which the decoders would report as "allocation
// failed" / "too large", and this test refuses).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "task_source.hpp"
#include "zfarm/codec.hpp"
#include "zfarm/exec_format.hpp"

namespace {

using namespace zfarm;

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b)
        s += static_cast<char>(c);
    return s;
}

// Inputs no sender should produce.
std::vector<std::string> hostile_corpus() {
    std::vector<std::string> c = {
        "",
        bytes({0xdd, 0xff, 0xff, 0xff, 0xff}),                    // array 32 of 4 G elements
        bytes({0xdf, 0xff, 0xff, 0xff, 0xff}),                    // map 32 of 4 G pairs
        bytes({0xdb, 0xff, 0xff, 0xff, 0xff}),                    // str 32 of 4 GiB
        bytes({0xc6, 0xff, 0xff, 0xff, 0xff}),                    // bin 32 of 4 GiB
        bytes({0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}),              // ext 32 of 4 GiB
        bytes({0xc1}),                                            // never used
        bytes({0x94, 0x01, 0x03, 0xdd, 0xff, 0xff, 0xff, 0xff}),  // a TASK whose job is an array
        bytes({0x9f, 0x01, 0x04}),                                // fixarray of 15, truncated
    };
    // Deep nesting: 100,000 nested single-element arrays, and maps.
    c.push_back(std::string(100000, static_cast<char>(0x91)));
    c.push_back(std::string(100000, static_cast<char>(0x81)));
    // Every valid message, truncated at every offset and with trailing bytes.
    const std::vector<proto::message> valid = {
        proto::job_open{"job", true, 3},
        proto::task{"job", 7, 1, "exec", exec::encode(exec::command{{"echo", "hi"}}), 1000},
        proto::result{"job", 7, 1, "w", proto::task_status::failed, 12, "out", "exit code 1", 9,
                      "exec"},
        proto::heartbeat{"w", 3, {{"job", 7, 1}}},
        proto::ack{"job", {1, 2, 3}, {4}, {2}},
        proto::recorded{"job", 10, {12, 14}, false},
    };
    for (const auto& m : valid) {
        const std::string wire = proto::encode(m);
        for (std::size_t cut = 0; cut < wire.size(); ++cut)
            c.push_back(wire.substr(0, cut));
        c.push_back(wire + bytes({0xc0}));
        // Each byte replaced by a 32-bit length prefix of four billion.
        for (std::size_t at = 0; at < wire.size(); ++at) {
            std::string bent = wire;
            bent.replace(at, 1, bytes({0xdb, 0xff, 0xff, 0xff, 0xff}));
            c.push_back(bent);
        }
    }
    const std::string outcome = exec::encode(exec::outcome{0, 0, "o", "e", 0, 0, 1, 2, "h", "c"});
    for (std::size_t cut = 0; cut < outcome.size(); ++cut)
        c.push_back(outcome.substr(0, cut));
    return c;
}

bool allocation_failure(const std::string& reason) {
    return reason.find("allocation failed") != std::string::npos ||
           reason.find("too large") != std::string::npos;
}

// Runs every decoder over the corpus; returns how many inputs a decoder
// accepted that it should not have, or answered with an allocation failure.
int run_corpus() {
    int bad = 0;
    const auto corpus = hostile_corpus();
    for (std::size_t i = 0; i < corpus.size(); ++i) {
        const auto& in = corpus[i];
        auto m = proto::decode(in);
        if (!m && allocation_failure(m.error().detail)) {
            std::fprintf(stderr, "input %zu: codec tried to allocate: %s\n", i,
                         m.error().detail.c_str());
            ++bad;
        }
        auto c = exec::decode_command(in);
        if (!c && allocation_failure(c.error())) {
            std::fprintf(stderr, "input %zu: decode_command tried to allocate\n", i);
            ++bad;
        }
        auto o = exec::decode_outcome(in);
        if (!o && allocation_failure(o.error())) {
            std::fprintf(stderr, "input %zu: decode_outcome tried to allocate\n", i);
            ++bad;
        }
        (void)ventilator::parse_task_line(in);
    }
    return bad;
}

TEST(HostileInput, EveryDecoderAnswersWithoutCrashingOrAllocatingMuch) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
#ifndef ZFARM_SANITIZED  // sanitizers reserve terabytes of address space
        const rlimit cap{1ull << 30, 1ull << 30};
        ::setrlimit(RLIMIT_AS, &cap);
#endif
        ::_exit(run_corpus() == 0 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "the corpus crashed a decoder (signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "see the inputs listed above";
}

TEST(HostileInput, TruncatedAndBentMessagesAreTypedErrors) {
    // In-process too, so that sanitizers see every decode.
    for (const auto& in : hostile_corpus()) {
        auto m = proto::decode(in);
        if (m) continue;  // a truncation can leave a shorter valid message
        EXPECT_FALSE(m.error().detail.empty());
        EXPECT_EQ(m.error().detail.find('\n'), std::string::npos);
    }
}

}  // namespace
