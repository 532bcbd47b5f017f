// Unit tests for zfarm/codec.hpp: every message type round-trips, every kind
// of bad frame is rejected with its typed decode_errc, and no input, however
// hostile, makes decode() throw, crash or allocate without bound.
//
// Clause numbers ("3.2.4") are PROTOCOL.md's.
#include "zfarm/codec.hpp"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

using namespace zfarm::proto;

constexpr std::uint64_t k_u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t k_u32_max = std::numeric_limits<std::uint32_t>::max();

// Bytes that are not text: NULs, bytes that are never valid UTF-8, and a
// byte (0xc1) that msgpack itself never uses.
const std::string k_binary("\x00\x01\xff\xfe\x00\xc1\x80zfarm\x00", 13);

std::string bytes(std::initializer_list<unsigned char> b) {
    return std::string(b.begin(), b.end());
}

// Builds arbitrary msgpack frames, valid or not as a zfarm message.
class frame_builder {
  public:
    frame_builder& array(std::uint32_t n) {
        pk().pack_array(n);
        return *this;
    }
    frame_builder& map(std::uint32_t n) {
        pk().pack_map(n);
        return *this;
    }
    frame_builder& uint(std::uint64_t v) {
        pk().pack_uint64(v);
        return *this;
    }
    frame_builder& sint(std::int64_t v) {
        pk().pack_int64(v);
        return *this;
    }
    frame_builder& str(std::string_view s) {
        pk().pack_str(static_cast<std::uint32_t>(s.size()));
        pk().pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
        return *this;
    }
    frame_builder& bin(std::string_view s) {
        pk().pack_bin(static_cast<std::uint32_t>(s.size()));
        pk().pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
        return *this;
    }
    frame_builder& boolean(bool b) {
        pk().pack(b);
        return *this;
    }
    frame_builder& nil() {
        pk().pack_nil();
        return *this;
    }
    frame_builder& raw(std::string_view s) {
        buffer_.write(s.data(), s.size());
        return *this;
    }
    std::string frame() const { return std::string(buffer_.data(), buffer_.size()); }

  private:
    msgpack::packer<msgpack::sbuffer> pk() { return msgpack::packer<msgpack::sbuffer>(buffer_); }
    msgpack::sbuffer buffer_;
};

// A TASK frame with `nfields` wire fields, the first ones given.
frame_builder task_header(std::uint32_t nfields = 6) {
    frame_builder b;
    b.array(2 + nfields).uint(k_protocol_version).uint(static_cast<std::uint8_t>(msg_type::task));
    return b;
}

std::string valid_task_frame() {
    return task_header().str("job").uint(7).uint(1).str("sleep").bin("5").uint(0).frame();
}

::testing::AssertionResult rejected_with(std::string_view frame, decode_errc want) {
    auto r = decode(frame);
    if (r)
        return ::testing::AssertionFailure()
               << "decoded as " << to_string(type_of(*r)) << ", expected " << to_string(want);
    if (r.error().code != want)
        return ::testing::AssertionFailure()
               << "rejected as '" << to_string(r.error().code) << "' (" << r.error().detail
               << "), expected '" << to_string(want) << "'";
    if (r.error().detail.empty() || r.error().detail.find('\n') != std::string::npos)
        return ::testing::AssertionFailure()
               << "detail is not one line: '" << r.error().detail << "'";
    return ::testing::AssertionSuccess();
}

template <class M>
void expect_round_trip(const M& m) {
    const std::string wire = encode(message{m});
    auto decoded = decode(wire);
    ASSERT_TRUE(decoded) << to_string(decoded.error().code) << ": " << decoded.error().detail;
    ASSERT_TRUE(std::holds_alternative<M>(*decoded)) << to_string(type_of(*decoded));
    EXPECT_TRUE(std::get<M>(*decoded) == m);
}

std::vector<message> one_of_each() {
    return {
        job_open{"render-frames", true, 3},
        job_close{"render-frames", 1000, false},
        task{"render-frames", 42, 2, "exec", k_binary, 30000},
        result{"render-frames", 42, 2, "node7-1234-beef", task_status::failed, 1234567, k_binary,
               "exit code 3", 1795770000123456, "exec"},
        hello{"node7-1234-beef", "node7", 1234, 8, "0.1.0"},
        heartbeat{"node7-1234-beef", 99, {{"render-frames", 42, 2}, {"other", 0, 1}}},
        bye{"node7-1234-beef", {{"render-frames", 44, 1}, {"render-frames", 45, 2}}},
        ack{"render-frames", {0, 1, 2, k_u64_max}, {7, 8}, {1}},
        lost{"node7-1234-beef", {{"render-frames", 43, 1}}},
        done{"render-frames", 1000, 998, 2, 4, 61000, 1},
        stop{"render-frames", "cancelled by operator"},
        credit{"node7-1234-beef", 16, true},
        recorded{"render-frames", 500, {502, 510, k_u64_max}, true},
        retry{"render-frames", 42, 2, "exit code 3"},
        report{"render-frames",
               1000,
               61000,
               1000,
               118000000,
               48000,
               95000,
               99000,
               100000,
               {{"node7-1234-beef", "node7", 8, 998, 2, 998, 118000000, 1500000, 1, 1}}},
    };
}

// ---------------------------------------------------------------------------
// Round trips.

TEST(Codec, RoundTripsJobOpenWithEmptyName) {
    expect_round_trip(job_open{""});
}

TEST(Codec, RoundTripsJobOpenEveryWay) {
    expect_round_trip(job_open{"j", false, 0});
    expect_round_trip(job_open{"j", true, 0});
    expect_round_trip(job_open{"j", false, 0xffffffffu});
}

TEST(Codec, JobOpenWithoutItsOptionalFieldsTakesTheirDefaults) {
    // 5.1: resume and retries are optional; a JOB_OPEN of [version, 1, job]
    // (as the first published version 1 sent it) does not resume and never
    // retries a failure.
    auto d = decode(frame_builder{}.array(3).uint(1).uint(1).str("j").frame());
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<job_open>(*d) == (job_open{"j", false, 0}));
    d = decode(frame_builder{}.array(4).uint(1).uint(1).str("j").boolean(true).frame());
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<job_open>(*d) == (job_open{"j", true, 0}));
}

TEST(Codec, ByeWithoutReturnedHandsNothingBack) {
    // 5.7: returned is optional; [version, 7, worker] hands nothing back.
    auto d = decode(frame_builder{}.array(3).uint(1).uint(7).str("w").frame());
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<bye>(*d) == (bye{"w", {}}));
}

TEST(Codec, RejectsJobOpenWhoseRetriesIsOutOfRange) {
    EXPECT_TRUE(rejected_with(
        frame_builder{}.array(5).uint(1).uint(1).str("j").boolean(false).uint(1ull << 32).frame(),
        decode_errc::bad_field));
}

TEST(Codec, RejectsJobOpenWhoseResumeIsNotBool) {
    EXPECT_TRUE(rejected_with(frame_builder{}.array(4).uint(1).uint(1).str("j").uint(1).frame(),
                              decode_errc::bad_field));
}

TEST(Codec, RoundTripsRecordedEmptyAndFull) {
    expect_round_trip(recorded{"j", 0, {}, false});
    std::vector<std::uint64_t> ids(k_max_ids_per_message);
    for (std::size_t i = 0; i < ids.size(); ++i)
        ids[i] = 1000 + 2 * i;
    expect_round_trip(recorded{"j", 1000, ids, true});
}

TEST(Codec, RoundTripsJobOpenWithMaxLengthName) {
    expect_round_trip(job_open{std::string(k_max_name, 'j')});
}

TEST(Codec, RoundTripsJobCloseWithLargestTotal) {
    expect_round_trip(job_close{"j", k_u64_max, false});
    expect_round_trip(job_close{"j", 0, false});
}

TEST(Codec, RoundTripsJobCloseThatCancels) {
    // 5.2: "`true`: abandon the job".
    expect_round_trip(job_close{"j", 17, true});
}

TEST(Codec, RoundTripsTaskWithBinaryPayloadAndExtremeNumbers) {
    expect_round_trip(task{std::string(k_max_name, 'j'), k_u64_max - 1, k_u32_max,
                           std::string(k_max_name, 'k'), k_binary, k_u32_max});
}

TEST(Codec, RoundTripsTaskWithEmptyFields) {
    expect_round_trip(task{"", 0, 0, "", "", 0});
}

TEST(Codec, RoundTripsTaskWithOneMebibytePayload) {
    std::string payload(1u << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>(i * 131 % 256);
    expect_round_trip(task{"j", 1, 1, "echo", payload, 0});
}

TEST(Codec, RoundTripsOkResult) {
    expect_round_trip(result{"j", 0, 1, "w", task_status::ok, 0, "", "", 0});
    expect_round_trip(result{"j", k_u64_max, k_u32_max, std::string(k_max_name, 'w'),
                             task_status::ok, k_u64_max, k_binary, "", k_u64_max});
}

TEST(Codec, RoundTripsFailedResultWithErrorText) {
    expect_round_trip(result{"j", 5, 3, "w", task_status::failed, 17,
                             std::string("partial\0out", 11),
                             "handler threw: caf\xc3\xa9 not found", 1795770000123456});
}

TEST(Codec, RoundTripsHello) {
    expect_round_trip(hello{"w", "host.example.org", k_u32_max, 4096, "0.1.0"});
    expect_round_trip(hello{"", "", 0, 0, ""});
}

TEST(Codec, RoundTripsHeartbeatWithAndWithoutRunningTasks) {
    expect_round_trip(heartbeat{"w", k_u64_max, {}});
    expect_round_trip(heartbeat{"w", 1, {{"a", 0, 1}}, "node7", k_u32_max, 8, "0.1.0"});
    expect_round_trip(heartbeat{
        "w", 3, {{"a", 0, 1}, {std::string(k_max_name, 'b'), k_u64_max, k_u32_max}, {"", 1, 0}}});
}

TEST(Codec, HeartbeatOfAnEarlierRevisionLacksWhatHelloSays) {
    // 3.2, rule 5: host, pid, threads and version are optional; absent
    // ones take their defaults, and may stop after any of them.
    const std::string three = frame_builder{}
                                  .array(5)
                                  .uint(1)
                                  .uint(static_cast<std::uint8_t>(msg_type::heartbeat))
                                  .str("w")
                                  .uint(4)
                                  .array(0)
                                  .frame();
    auto d = decode(three);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<heartbeat>(*d) == (heartbeat{"w", 4, {}}));
    const std::string five = frame_builder{}
                                 .array(7)
                                 .uint(1)
                                 .uint(static_cast<std::uint8_t>(msg_type::heartbeat))
                                 .str("w")
                                 .uint(4)
                                 .array(0)
                                 .str("node7")
                                 .uint(42)
                                 .frame();
    d = decode(five);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<heartbeat>(*d) == (heartbeat{"w", 4, {}, "node7", 42}));
    EXPECT_TRUE(rejected_with(frame_builder{}
                                  .array(6)
                                  .uint(1)
                                  .uint(static_cast<std::uint8_t>(msg_type::heartbeat))
                                  .str("w")
                                  .uint(4)
                                  .array(0)
                                  .uint(7)  // host is a str
                                  .frame(),
                              decode_errc::bad_field));
}

TEST(Codec, RoundTripsBye) {
    expect_round_trip(bye{"node7-1234-beef"});
    expect_round_trip(bye{""});
}

TEST(Codec, RoundTripsAckWithNoIds) {
    // 5.8.2: "`ids` MAY be empty (an answer to JOB_OPEN)".
    expect_round_trip(ack{"j", {}, {}});
}

TEST(Codec, RoundTripsAckWithTheMaximumNumberOfIds) {
    ack a{"j", {}, {}};
    a.ids.reserve(k_max_ids_per_message);
    for (std::uint64_t i = 0; i < k_max_ids_per_message; ++i)
        a.ids.push_back(k_u64_max - i * 0x0101010101ULL);
    expect_round_trip(a);
}

TEST(Codec, RoundTripsLost) {
    expect_round_trip(lost{"w", {}});
    expect_round_trip(lost{"w", {{"j", 1, 1}, {"j", 2, 7}, {"k", k_u64_max, k_u32_max}}});
}

TEST(Codec, RoundTripsDoneWithLargestCounts) {
    expect_round_trip(done{"j", k_u64_max, k_u64_max - 1, 1, k_u32_max, k_u64_max, k_u32_max});
    expect_round_trip(done{"j", 0, 0, 0, 0, 0, 0});
}

TEST(Codec, RoundTripsReportWithNoWorkersAndWithLargestCounts) {
    expect_round_trip(report{"j", 0, 0, 0, 0, 0, 0, 0, 0, {}});
    report r{"j", k_u64_max, k_u64_max, k_u64_max, k_u64_max, 1, 2, 3, k_u64_max, {}};
    for (int i = 0; i < 300; ++i)
        r.workers.push_back(report_worker{"w" + std::to_string(i), std::string(k_max_name, 'h'),
                                          k_u32_max, k_u64_max, k_u64_max - 1, k_u64_max - 2,
                                          k_u64_max, 7, k_u32_max, 0});
    expect_round_trip(r);
}

TEST(Codec, ReportRowsMayCarryFieldsOfALaterRevision) {
    // 3.2: trailing elements a receiver does not know are skipped, in a
    // worker row as in the message.
    frame_builder f;
    f.array(13).uint(k_protocol_version).uint(static_cast<std::uint8_t>(msg_type::report)).str("j");
    for (std::uint64_t v : {10u, 2000u, 10u, 5000u, 400u, 900u, 990u, 1000u})
        f.uint(v);
    f.array(1).array(11).str("w").str("h");
    for (std::uint64_t v : {1u, 10u, 0u, 10u, 5000u, 0u, 0u, 0u})
        f.uint(v);
    f.str("a later field").boolean(true);  // and one after the workers
    const std::string wire = f.frame();
    auto d = decode(wire);
    ASSERT_TRUE(d) << d.error().detail;
    const auto& r = std::get<report>(*d);
    ASSERT_EQ(r.workers.size(), 1u);
    EXPECT_EQ(r.workers[0].busy_us, 5000u);
    EXPECT_EQ(r.max_us, 1000u);
}

TEST(Codec, RefusesAReportWorkerRowThatIsShort) {
    report r{"j", 1, 1, 1, 1, 1, 1, 1, 1, {{"w", "h", 1, 1, 0, 1, 1, 0, 0, 0}}};
    std::string wire = encode(r);
    // The row's fixarray(10) header, made fixarray(9) and its last field cut.
    const auto at = wire.find(static_cast<char>(0x9a));
    ASSERT_NE(at, std::string::npos);
    wire[at] = static_cast<char>(0x99);
    wire.pop_back();
    auto d = decode(wire);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, decode_errc::bad_field);
}

TEST(Codec, RoundTripsStopWithLongReason) {
    // The reason is free text, not a name: the 256-byte name limit does not apply.
    expect_round_trip(stop{"j", std::string(1000, 'r')});
    expect_round_trip(stop{"j", ""});
}

TEST(Codec, RoundTripsCreditWithAndWithoutReset) {
    expect_round_trip(credit{"w", k_u32_max, true});
    expect_round_trip(credit{"w", 0, false});
}

TEST(Codec, EveryMessageDecodesAsTheTypeItWasEncodedAs) {
    const auto all = one_of_each();
    ASSERT_EQ(all.size(), std::variant_size_v<message>);
    for (const auto& m : all) {
        auto d = decode(encode(m));
        ASSERT_TRUE(d) << to_string(type_of(m)) << ": " << d.error().detail;
        EXPECT_EQ(type_of(*d), type_of(m));
        EXPECT_TRUE(*d == m) << to_string(type_of(m));
    }
}

TEST(Codec, PutsVersionAndTypeCodeFirst) {
    // 3.1.1: "Every message is one msgpack array, encoded in one ZeroMQ frame:
    // `[version, type, field, field, ...]`."
    for (const auto& m : one_of_each()) {
        const std::string wire = encode(m);
        ASSERT_GE(wire.size(), 3u);
        EXPECT_EQ(static_cast<unsigned char>(wire[0]) & 0xf0, 0x90) << "not a fixarray";
        EXPECT_EQ(static_cast<unsigned char>(wire[1]), k_protocol_version);
        EXPECT_EQ(static_cast<unsigned char>(wire[2]), static_cast<unsigned>(type_of(m)));
    }
}

TEST(Codec, TypeCodesMatchTheProtocolTable) {
    const std::pair<msg_type, std::string_view> table[] = {
        {msg_type::job_open, "JOB_OPEN"}, {msg_type::job_close, "JOB_CLOSE"},
        {msg_type::task, "TASK"},         {msg_type::result, "RESULT"},
        {msg_type::hello, "HELLO"},       {msg_type::heartbeat, "HEARTBEAT"},
        {msg_type::bye, "BYE"},           {msg_type::ack, "ACK"},
        {msg_type::lost, "LOST"},         {msg_type::done, "DONE"},
        {msg_type::stop, "STOP"},         {msg_type::credit, "CREDIT"},
        {msg_type::recorded, "RECORDED"}, {msg_type::retry, "RETRY"},
        {msg_type::report, "REPORT"},
    };
    unsigned code = 1;
    for (const auto& [type, name] : table) {
        if (code == static_cast<unsigned>(msg_type::batch)) ++code;  // not a message of its own
        EXPECT_EQ(static_cast<unsigned>(type), code++);
        EXPECT_EQ(to_string(type), name);
    }
    const auto all = one_of_each();
    for (std::size_t i = 0; i < all.size(); ++i)
        EXPECT_EQ(type_of(all[i]), table[i].first);
}

TEST(Codec, EncodesTheWorkedExampleTaskByteForByte) {
    // 13: "A TASK of job `demo`, id 1000, attempt 1, kind `sleep`, payload
    // `250` (sleep for 250 ms), timeout 60000 ms, as the zfarm encoder writes
    // it: 26 bytes."
    const std::string expected =
        bytes({0x98, 0x01, 0x03, 0xa4, 0x64, 0x65, 0x6d, 0x6f, 0xcd, 0x03, 0xe8, 0x01, 0xa5,
               0x73, 0x6c, 0x65, 0x65, 0x70, 0xc4, 0x03, 0x32, 0x35, 0x30, 0xcd, 0xea, 0x60});
    const task t{"demo", 1000, 1, "sleep", "250", 60000};
    EXPECT_EQ(encode(message{t}), expected);
    auto d = decode(expected);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<task>(*d) == t);
}

TEST(Codec, EncodesTheWorkedExampleResultByteForByte) {
    // 13: the RESULT answering it, 52 bytes.
    const std::string expected =
        bytes({0x9c, 0x01, 0x04, 0xa4, 0x64, 0x65, 0x6d, 0x6f, 0xcd, 0x03, 0xe8, 0x01, 0xaf,
               0x6e, 0x6f, 0x64, 0x65, 0x37, 0x2d, 0x34, 0x32, 0x34, 0x32, 0x2d, 0x31, 0x61,
               0x32, 0x62, 0x00, 0xce, 0x00, 0x03, 0xd2, 0x2c, 0xc4, 0x00, 0xa0, 0xcf, 0x00,
               0x06, 0x61, 0x3e, 0x48, 0xf4, 0xa6, 0x40, 0xa5, 0x73, 0x6c, 0x65, 0x65, 0x70});
    const result r{"demo", 1000, 1,  "node7-4242-1a2b", task_status::ok,
                   250412, "",   "", 1795770000123456,  "sleep"};
    EXPECT_EQ(encode(message{r}), expected);
    auto d = decode(expected);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<result>(*d) == r);
}

TEST(Codec, DecodesOtherEncodingsOfTheSameValues) {
    // 13: "A decoder MUST also accept other encodings of the same values, e.g.
    // id 1000 as `d1 03 e8` (int 16) or `cf 00 00 00 00 00 00 03 e8` (uint 64),
    // and the payload as `a3 32 35 30` (fixstr)".
    const task want{"demo", 1000, 1, "sleep", "250", 60000};
    const std::string head = bytes({0x98, 0x01, 0x03, 0xa4, 0x64, 0x65, 0x6d, 0x6f});
    const std::string after_id = bytes(
        {0x01, 0xa5, 0x73, 0x6c, 0x65, 0x65, 0x70, 0xc4, 0x03, 0x32, 0x35, 0x30, 0xcd, 0xea, 0x60});
    for (const std::string& id :
         {bytes({0xd1, 0x03, 0xe8}), bytes({0xcf, 0, 0, 0, 0, 0, 0, 0x03, 0xe8}),
          bytes({0xd3, 0, 0, 0, 0, 0, 0, 0x03, 0xe8}), bytes({0xce, 0, 0, 0x03, 0xe8})}) {
        auto d = decode(head + id + after_id);
        ASSERT_TRUE(d) << d.error().detail;
        EXPECT_TRUE(std::get<task>(*d) == want);
    }
    const std::string fixstr_payload =
        head + bytes({0xcd, 0x03, 0xe8, 0x01, 0xa5, 0x73, 0x6c, 0x65, 0x65, 0x70, 0xa3, 0x32, 0x35,
                      0x30, 0xcd, 0xea, 0x60});
    auto d = decode(fixstr_payload);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<task>(*d) == want);
    // Names in str 8 rather than fixstr, version as uint 64.
    const std::string long_forms =
        bytes({0x98, 0xcf, 0,    0,    0,    0,    0,    0,    0,    0x01, 0x03, 0xd9, 0x04,
               0x64, 0x65, 0x6d, 0x6f, 0xcd, 0x03, 0xe8, 0x01, 0xda, 0x00, 0x05, 0x73, 0x6c,
               0x65, 0x65, 0x70, 0xc4, 0x03, 0x32, 0x35, 0x30, 0xcd, 0xea, 0x60});
    auto e = decode(long_forms);
    ASSERT_TRUE(e) << e.error().detail;
    EXPECT_TRUE(std::get<task>(*e) == want);
}

TEST(Codec, EncodeReplacesWhatTheOutputHeld) {
    std::string out = "left over from the previous message";
    encode(message{bye{"w"}}, out);
    EXPECT_EQ(out, encode(message{bye{"w"}}));
}

TEST(Codec, DecodesBinPayloadSentAsStr) {
    // 3.3: bin: "accept bin, and also str".
    const std::string f =
        task_header().str("j").uint(1).uint(1).str("echo").str("hi").uint(0).frame();
    auto d = decode(f);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_EQ(std::get<task>(*d).payload, "hi");
}

TEST(Codec, DecodesFromAByteSpan) {
    const std::string wire = encode(message{job_open{"j"}});
    auto d = decode(std::as_bytes(std::span<const char>(wire.data(), wire.size())));
    ASSERT_TRUE(d);
    EXPECT_EQ(std::get<job_open>(*d).job, "j");
}

// ---------------------------------------------------------------------------
// Forward compatibility.

TEST(Codec, IgnoresExtraTrailingElements) {
    // 3.2.4: "A receiver MUST ignore array elements after the last field this
    // document defines for the message's type".
    const std::string f = task_header(9)
                              .str("job")
                              .uint(7)
                              .uint(2)
                              .str("sleep")
                              .bin("5")
                              .uint(100)
                              .str("a field from v1.1")
                              .array(2)
                              .uint(1)
                              .uint(2)
                              .map(1)
                              .str("k")
                              .nil()
                              .frame();
    auto d = decode(f);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<task>(*d) == (task{"job", 7, 2, "sleep", "5", 100}));
}

TEST(Codec, IgnoresExtraElementsOfEveryMessageType) {
    for (const auto& m : one_of_each()) {
        std::string wire = encode(m);
        // Bump the fixarray count and append one element.
        const auto count = static_cast<unsigned char>(wire[0]) & 0x0f;
        ASSERT_LT(count, 15u);
        wire[0] = static_cast<char>(0x90 | (count + 1));
        wire += bytes({0xc0});  // nil
        auto d = decode(wire);
        ASSERT_TRUE(d) << to_string(type_of(m)) << ": " << d.error().detail;
        EXPECT_TRUE(*d == m) << to_string(type_of(m));
    }
}

TEST(Codec, IgnoresExtraElementsOfATaskReference) {
    // 3.2.4: ... "and after the third element of a task-ref".
    const std::string f = frame_builder{}
                              .array(4)
                              .uint(1)
                              .uint(static_cast<std::uint8_t>(msg_type::lost))
                              .str("w")
                              .array(1)
                              .array(4)
                              .str("j")
                              .uint(3)
                              .uint(1)
                              .str("future")
                              .frame();
    auto d = decode(f);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<lost>(*d) == (lost{"w", {{"j", 3, 1}}}));
}

// ---------------------------------------------------------------------------
// Rejections, one kind of bad frame at a time.

TEST(Codec, RejectsEmptyFrame) {
    EXPECT_TRUE(rejected_with("", decode_errc::empty));
    EXPECT_TRUE(rejected_with(std::string_view(), decode_errc::empty));
}

TEST(Codec, RejectsEveryTruncationOfATask) {
    const std::string wire =
        encode(message{task{"render", 1234567890123ULL, 3, "exec", k_binary + k_binary, 5000}});
    for (std::size_t n = 1; n < wire.size(); ++n) {
        auto d = decode(std::string_view(wire).substr(0, n));
        ASSERT_FALSE(d) << "prefix of " << n << " bytes decoded";
        // A prefix shorter than the element count its header declares trips
        // the "no honest container declares more elements than the frame has
        // bytes" guard; longer ones are plain truncations.
        EXPECT_TRUE(d.error().code == decode_errc::malformed ||
                    d.error().code == decode_errc::limit_exceeded)
            << "prefix of " << n << " bytes: " << to_string(d.error().code);
    }
}

TEST(Codec, RejectsTaskCutInsideItsPayloadAsMalformed) {
    const std::string wire = encode(message{task{"j", 1, 1, "echo", std::string(100, 'x'), 0}});
    EXPECT_TRUE(
        rejected_with(std::string_view(wire).substr(0, wire.size() - 50), decode_errc::malformed));
    EXPECT_TRUE(
        rejected_with(std::string_view(wire).substr(0, wire.size() - 1), decode_errc::malformed));
}

TEST(Codec, RejectsTrailingBytesAfterAValidMessage) {
    // 3.1.2: "a frame with bytes after the array is malformed".
    const std::string wire = valid_task_frame();
    EXPECT_TRUE(rejected_with(wire + bytes({0x00}), decode_errc::trailing_bytes));
    EXPECT_TRUE(rejected_with(wire + wire, decode_errc::trailing_bytes));
    // Even an incomplete object after the message is "trailing": the message ended.
    EXPECT_TRUE(rejected_with(wire + bytes({0xdd}), decode_errc::trailing_bytes));
}

TEST(Codec, RejectsMapAtTopLevel) {
    EXPECT_TRUE(rejected_with(frame_builder{}.map(2).uint(0).uint(1).uint(1).uint(3).frame(),
                              decode_errc::not_an_array));
    EXPECT_TRUE(rejected_with(bytes({0x80}), decode_errc::not_an_array));
}

TEST(Codec, RejectsBareScalarsAtTopLevel) {
    EXPECT_TRUE(rejected_with(bytes({0x01}), decode_errc::not_an_array));
    EXPECT_TRUE(rejected_with(frame_builder{}.uint(k_u64_max).frame(), decode_errc::not_an_array));
    EXPECT_TRUE(rejected_with(frame_builder{}.str("TASK").frame(), decode_errc::not_an_array));
    EXPECT_TRUE(rejected_with(frame_builder{}.bin("x").frame(), decode_errc::not_an_array));
    EXPECT_TRUE(rejected_with(bytes({0xc0}), decode_errc::not_an_array));
}

TEST(Codec, RejectsVersionTwo) {
    // 3.2.2: "A receiver MUST drop a message whose element 0 is missing, is
    // not an unsigned integer, or is not 1."
    std::string wire = valid_task_frame();
    wire[1] = 2;
    EXPECT_TRUE(rejected_with(wire, decode_errc::bad_version));
    wire[1] = 0;
    EXPECT_TRUE(rejected_with(wire, decode_errc::bad_version));
}

TEST(Codec, RejectsMissingVersion) {
    EXPECT_TRUE(rejected_with(bytes({0x90}), decode_errc::bad_version));  // []
    EXPECT_TRUE(rejected_with(frame_builder{}.array(1).uint(1).frame(), decode_errc::bad_version));
}

TEST(Codec, RejectsVersionOfTheWrongMsgpackType) {
    EXPECT_TRUE(rejected_with(frame_builder{}.array(3).str("1").uint(1).str("j").frame(),
                              decode_errc::bad_version));
    EXPECT_TRUE(rejected_with(frame_builder{}.array(3).sint(-1).uint(1).str("j").frame(),
                              decode_errc::bad_version));
    EXPECT_TRUE(rejected_with(frame_builder{}.array(3).nil().uint(1).str("j").frame(),
                              decode_errc::bad_version));
    EXPECT_TRUE(
        rejected_with(frame_builder{}.array(3).uint(1ULL << 32 | 1).uint(1).str("j").frame(),
                      decode_errc::bad_version));
}

TEST(Codec, RejectsUnknownTypeCodes) {
    // 3.2.3: drop "a message whose type code (element 1) is not an unsigned
    // integer from 1 to 14".
    for (std::uint64_t code : std::initializer_list<std::uint64_t>{0, 15, 255, 256, k_u64_max}) {
        const std::string f =
            frame_builder{}.array(3).uint(k_protocol_version).uint(code).str("j").frame();
        EXPECT_TRUE(rejected_with(f, decode_errc::unknown_type)) << "type code " << code;
    }
}

TEST(Codec, RejectsTypeCodeOfTheWrongMsgpackType) {
    EXPECT_TRUE(rejected_with(frame_builder{}.array(3).uint(1).str("TASK").str("j").frame(),
                              decode_errc::unknown_type));
    EXPECT_TRUE(rejected_with(frame_builder{}.array(3).uint(1).sint(-3).str("j").frame(),
                              decode_errc::unknown_type));
}

TEST(Codec, RejectsStringWhereAnIntegerIsExpected) {
    EXPECT_TRUE(
        rejected_with(task_header().str("j").str("7").uint(1).str("k").bin("").uint(0).frame(),
                      decode_errc::bad_field));
}

TEST(Codec, RejectsNegativeIntegers) {
    EXPECT_TRUE(
        rejected_with(task_header().str("j").sint(-1).uint(1).str("k").bin("").uint(0).frame(),
                      decode_errc::bad_field));
    EXPECT_TRUE(
        rejected_with(task_header().str("j").uint(1).uint(1).str("k").bin("").sint(-5).frame(),
                      decode_errc::bad_field));
}

TEST(Codec, RejectsBoolWhereAStringIsExpected) {
    EXPECT_TRUE(
        rejected_with(task_header().boolean(true).uint(1).uint(1).str("k").bin("").uint(0).frame(),
                      decode_errc::bad_field));
    // ...and a bin where a name is expected: names are msgpack str.
    EXPECT_TRUE(
        rejected_with(task_header().bin("j").uint(1).uint(1).str("k").bin("").uint(0).frame(),
                      decode_errc::bad_field));
}

TEST(Codec, RejectsIntegerWhereBoolIsExpected) {
    // 3.3: bool: "reject anything else (an integer 0/1 is not a bool)".
    const std::string credit_frame = frame_builder{}
                                         .array(5)
                                         .uint(1)
                                         .uint(static_cast<std::uint8_t>(msg_type::credit))
                                         .str("w")
                                         .uint(4)
                                         .uint(1)
                                         .frame();
    EXPECT_TRUE(rejected_with(credit_frame, decode_errc::bad_field));
    const std::string close_frame = frame_builder{}
                                        .array(5)
                                        .uint(1)
                                        .uint(static_cast<std::uint8_t>(msg_type::job_close))
                                        .str("j")
                                        .uint(4)
                                        .uint(0)
                                        .frame();
    EXPECT_TRUE(rejected_with(close_frame, decode_errc::bad_field));
}

TEST(Codec, RejectsFloatWhereAnIntegerIsExpected) {
    // 3.3: uint: "reject a negative integer, a float, or a value out of range".
    const std::string f = task_header()
                              .str("j")
                              .raw(bytes({0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}))
                              .uint(1)
                              .str("k")
                              .bin("")
                              .uint(0)
                              .frame();
    EXPECT_TRUE(rejected_with(f, decode_errc::bad_field));
}

TEST(Codec, RejectsNilPayload) {
    EXPECT_TRUE(rejected_with(task_header().str("j").uint(1).uint(1).str("k").nil().uint(0).frame(),
                              decode_errc::bad_field));
}

TEST(Codec, RejectsNumbersTooLargeForTheirField) {
    // attempt and timeout_ms are uint32 on the wire.
    EXPECT_TRUE(rejected_with(
        task_header().str("j").uint(1).uint(1ULL << 32).str("k").bin("").uint(0).frame(),
        decode_errc::bad_field));
    EXPECT_TRUE(rejected_with(
        task_header().str("j").uint(1).uint(1).str("k").bin("").uint(1ULL << 32).frame(),
        decode_errc::bad_field));
}

// A RESULT frame up to `status`; the caller adds the remaining fields.
frame_builder result_up_to_status(std::uint64_t status) {
    frame_builder b;
    b.array(11).uint(1).uint(static_cast<std::uint8_t>(msg_type::result));
    b.str("j").uint(1).uint(1).str("w").uint(status);
    return b;
}

TEST(Codec, ResultWithoutKindAndAckWithoutFailedTakeTheirDefaults) {
    // 5.4: kind is optional (absent: unknown); 5.8: failed is optional
    // (absent: none of the ids failed).
    auto d = decode(result_up_to_status(0).uint(10).bin("out").str("").uint(7).frame());
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_EQ(std::get<result>(*d).kind, "");
    EXPECT_EQ(std::get<result>(*d).output, "out");
    frame_builder b;
    b.array(5).uint(1).uint(static_cast<std::uint8_t>(msg_type::ack)).str("j");
    b.array(1).uint(4).array(0);
    d = decode(b.frame());
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<ack>(*d) == (ack{"j", {4}, {}, {}}));
}

TEST(Codec, RejectsResultStatusTwo) {
    // 5.4: status is "0 or 1; anything else is malformed".
    ASSERT_TRUE(decode(result_up_to_status(1).uint(10).bin("").str("x").uint(0).frame()));
    for (std::uint64_t status : {2ULL, 255ULL, 256ULL}) {
        const std::string f = result_up_to_status(status).uint(10).bin("").str("").uint(0).frame();
        EXPECT_TRUE(rejected_with(f, decode_errc::bad_field)) << "status " << status;
    }
}

TEST(Codec, RejectsResultErrorThatIsNotText) {
    // 3.3: a str field must "reject bin or any other type".
    const std::string f = result_up_to_status(1).uint(10).bin("").bin("boom").uint(0).frame();
    EXPECT_TRUE(rejected_with(f, decode_errc::bad_field));
}

TEST(Codec, RejectsTooFewFields) {
    // 3.2.5: "A message that lacks a field defined here for its type is
    // malformed and MUST be dropped." A TASK without timeout_ms, and a
    // JOB_OPEN with no fields at all:
    EXPECT_TRUE(rejected_with(task_header(5).str("j").uint(1).uint(1).str("k").bin("").frame(),
                              decode_errc::bad_field));
    EXPECT_TRUE(
        rejected_with(frame_builder{}.array(2).uint(1).uint(1).frame(), decode_errc::bad_field));
    // Every message type, re-packed without its last required field (the
    // optional ones after it left out too: 3.2.5).
    auto optional_fields = [](const message& m) -> std::uint32_t {
        if (std::holds_alternative<job_open>(m)) return 2;   // resume, retries
        if (std::holds_alternative<bye>(m)) return 1;        // returned
        if (std::holds_alternative<result>(m)) return 1;     // kind
        if (std::holds_alternative<ack>(m)) return 1;        // failed
        if (std::holds_alternative<heartbeat>(m)) return 4;  // host, pid, threads, version
        return 0;
    };
    for (const auto& m : one_of_each()) {
        if (std::holds_alternative<job_open>(m) || std::holds_alternative<bye>(m)) continue;
        const std::string wire = encode(m);
        msgpack::object_handle oh = msgpack::unpack(wire.data(), wire.size());
        const auto& a = oh.get().via.array;
        const std::uint32_t keep = a.size - optional_fields(m) - 1;
        msgpack::sbuffer sb;
        msgpack::packer<msgpack::sbuffer> pk(sb);
        pk.pack_array(keep);
        for (std::uint32_t i = 0; i < keep; ++i)
            pk.pack(a.ptr[i]);
        EXPECT_TRUE(rejected_with(std::string_view(sb.data(), sb.size()), decode_errc::bad_field))
            << to_string(type_of(m));
    }
}

TEST(Codec, RejectsMalformedTaskReferences) {
    auto heartbeat_with_ref = [](auto&& add_ref) {
        frame_builder b;
        b.array(5).uint(1).uint(static_cast<std::uint8_t>(msg_type::heartbeat)).str("w").uint(0);
        b.array(1);
        add_ref(b);
        return b.frame();
    };
    EXPECT_TRUE(
        rejected_with(heartbeat_with_ref([](frame_builder& b) { b.array(2).str("j").uint(1); }),
                      decode_errc::bad_field));
    EXPECT_TRUE(rejected_with(heartbeat_with_ref([](frame_builder& b) { b.str("j"); }),
                              decode_errc::bad_field));
    EXPECT_TRUE(rejected_with(
        heartbeat_with_ref([](frame_builder& b) { b.array(3).str("j").sint(-1).uint(1); }),
        decode_errc::bad_field));
    EXPECT_TRUE(rejected_with(heartbeat_with_ref([](frame_builder& b) {
                                  b.array(3).str(std::string(257, 'j')).uint(1).uint(1);
                              }),
                              decode_errc::bad_field));
    // running is an array, not a map.
    EXPECT_TRUE(rejected_with(frame_builder{}
                                  .array(5)
                                  .uint(1)
                                  .uint(static_cast<std::uint8_t>(msg_type::heartbeat))
                                  .str("w")
                                  .uint(0)
                                  .map(0)
                                  .frame(),
                              decode_errc::bad_field));
}

TEST(Codec, RejectsAckIdThatIsNotAnUnsignedInteger) {
    const std::string f = frame_builder{}
                              .array(4)
                              .uint(1)
                              .uint(static_cast<std::uint8_t>(msg_type::ack))
                              .str("j")
                              .array(3)
                              .uint(1)
                              .sint(-2)
                              .uint(3)
                              .frame();
    EXPECT_TRUE(rejected_with(f, decode_errc::bad_field));
}

// ---------------------------------------------------------------------------
// Limits (3.4: "Every receiver enforces these limits; a message that exceeds
// one is dropped.")

std::string job_open_named(const std::string& name) {
    return frame_builder{}
        .array(3)
        .uint(1)
        .uint(static_cast<std::uint8_t>(msg_type::job_open))
        .str(name)
        .frame();
}

std::string ack_with_ids(std::size_t n) {
    frame_builder b;
    b.array(5).uint(1).uint(static_cast<std::uint8_t>(msg_type::ack)).str("j");
    b.array(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i)
        b.uint(i);
    b.array(0);  // running
    return b.frame();
}

TEST(Codec, AcceptsNameOfExactly256Bytes) {
    auto d = decode(job_open_named(std::string(k_max_name, 'n')));
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_EQ(std::get<job_open>(*d).job.size(), k_max_name);
}

// A name or list over its 3.4 limit is a field out of range, which 3.2.6
// makes the message malformed: bad_field. An array over the "any array
// anywhere" limit is stopped by the unpacker itself: limit_exceeded.
TEST(Codec, RejectsNameLongerThan256Bytes) {
    EXPECT_TRUE(
        rejected_with(job_open_named(std::string(k_max_name + 1, 'n')), decode_errc::bad_field));
    EXPECT_TRUE(rejected_with(task_header()
                                  .str("j")
                                  .uint(1)
                                  .uint(1)
                                  .str(std::string(k_max_name + 1, 'k'))
                                  .bin("")
                                  .uint(0)
                                  .frame(),
                              decode_errc::bad_field));
}

TEST(Codec, RejectsAckWithMoreThan65536Ids) {
    EXPECT_TRUE(rejected_with(ack_with_ids(k_max_ids_per_message + 1), decode_errc::bad_field));
}

TEST(Codec, RejectsAckLongerThanAnyArrayMayBe) {
    EXPECT_TRUE(rejected_with(ack_with_ids(262145), decode_errc::limit_exceeded));
}

TEST(Codec, AcceptsAckWithExactly65536Ids) {
    auto d = decode(ack_with_ids(k_max_ids_per_message));
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_EQ(std::get<ack>(*d).ids.size(), k_max_ids_per_message);
}

TEST(Codec, RejectsHeartbeatAndLostListsOverTheLimit) {
    for (auto type : {msg_type::heartbeat, msg_type::lost}) {
        frame_builder b;
        b.array(type == msg_type::heartbeat ? 5 : 4).uint(1).uint(static_cast<std::uint8_t>(type));
        b.str("w");
        if (type == msg_type::heartbeat) b.uint(0);
        b.array(k_max_ids_per_message + 1);
        for (std::size_t i = 0; i <= k_max_ids_per_message; ++i)
            b.array(3).str("").uint(i).uint(1);
        EXPECT_TRUE(rejected_with(b.frame(), decode_errc::bad_field)) << to_string(type);
    }
}

TEST(Codec, RejectsArray32ClaimingFourBillionElements) {
    // A 5-byte frame must not make the unpacker reserve 4G objects.
    EXPECT_TRUE(rejected_with(bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), decode_errc::limit_exceeded));
    EXPECT_TRUE(rejected_with(bytes({0xdc, 0xff, 0xff}), decode_errc::limit_exceeded));
}

TEST(Codec, RejectsMap32ClaimingFourBillionPairs) {
    EXPECT_TRUE(rejected_with(bytes({0xdf, 0xff, 0xff, 0xff, 0xff}), decode_errc::limit_exceeded));
    EXPECT_TRUE(rejected_with(bytes({0xde, 0xff, 0xff}), decode_errc::limit_exceeded));
}

TEST(Codec, RejectsStr32AndBin32ClaimingFourGigabytes) {
    // The declared body is not in the frame, so these are truncated objects:
    // the unpacker never gets as far as allocating for them.
    EXPECT_TRUE(rejected_with(bytes({0xdb, 0xff, 0xff, 0xff, 0xff}), decode_errc::malformed));
    EXPECT_TRUE(rejected_with(bytes({0xc6, 0xff, 0xff, 0xff, 0xff}), decode_errc::malformed));
    EXPECT_TRUE(rejected_with(bytes({0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}), decode_errc::malformed));
}

TEST(Codec, RejectsHugeContainersNestedInsideAMessage) {
    // [1, 3, "j", array32(4G)...] and the same with map32.
    const std::string prefix = frame_builder{}.array(6).uint(1).uint(3).str("j").frame();
    EXPECT_TRUE(
        rejected_with(prefix + bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), decode_errc::limit_exceeded));
    EXPECT_TRUE(
        rejected_with(prefix + bytes({0xdf, 0xff, 0xff, 0xff, 0xff}), decode_errc::limit_exceeded));
}

TEST(Codec, RejectsExtValuesEvenInIgnoredElements) {
    // 3.3.3: "A message MUST NOT contain an ext value anywhere, including in
    // ignored trailing elements".
    const std::string f =
        frame_builder{}.array(4).uint(1).uint(1).str("j").raw(bytes({0xd4, 0x01, 0x00})).frame();
    EXPECT_TRUE(rejected_with(f, decode_errc::limit_exceeded));
    const std::string g =
        frame_builder{}.array(3).uint(1).uint(1).raw(bytes({0xc7, 0x00, 0x05})).frame();
    EXPECT_TRUE(rejected_with(g, decode_errc::limit_exceeded));
}

TEST(Codec, RejectsAnyArrayLongerThan262144Elements) {
    // 3.4: "any array anywhere in the message: at most min(frame size in
    // bytes, 262,144) elements; applies also to ignored trailing elements".
    frame_builder b;
    b.array(4).uint(1).uint(static_cast<std::uint8_t>(msg_type::job_open)).str("j");
    b.array(262145);
    for (int i = 0; i < 262145; ++i)
        b.nil();
    EXPECT_TRUE(rejected_with(b.frame(), decode_errc::limit_exceeded));
}

TEST(Codec, RejectsDeeplyNestedArrays) {
    std::string f(100, static_cast<char>(0x91));  // [[[[...]]]] 100 deep
    f += bytes({0x01});
    EXPECT_TRUE(rejected_with(f, decode_errc::limit_exceeded));
    // The same depth inside an otherwise valid message's extra elements.
    std::string g = frame_builder{}.array(4).uint(1).uint(7).str("w").frame();
    g += std::string(100, static_cast<char>(0x91)) + bytes({0x01});
    EXPECT_TRUE(rejected_with(g, decode_errc::limit_exceeded));
}

TEST(Codec, RejectsDeeplyNestedMaps) {
    std::string f;
    for (int i = 0; i < 100; ++i)
        f += bytes({0x81, 0x00});  // {0: {0: ...}}
    f += bytes({0x00});
    EXPECT_TRUE(rejected_with(f, decode_errc::limit_exceeded));
}

TEST(Codec, AcceptsTheNestingDepthHeartbeatNeeds) {
    // [v, type, worker, n, [[job, id, attempt]]]: three levels of arrays.
    expect_round_trip(heartbeat{"w", 1, {{"j", 1, 1}}});
}

TEST(Codec, AcceptsFourLevelsOfNestingAndRejectsFive) {
    // 3.4: nesting depth "4 levels of containers, the message's own array
    // counting as one".
    // STOP [1, 11, job, reason] with one extra trailing element, nested.
    const std::string head = frame_builder{}.array(5).uint(1).uint(11).str("j").str("r").frame();
    auto four = decode(head + bytes({0x91, 0x91, 0x91, 0x01}));  // message + [[[1]]]
    ASSERT_TRUE(four) << four.error().detail;
    EXPECT_TRUE(std::get<stop>(*four) == (stop{"j", "r"}));
    EXPECT_TRUE(
        rejected_with(head + bytes({0x91, 0x91, 0x91, 0x91, 0x01}), decode_errc::limit_exceeded));
    EXPECT_TRUE(rejected_with(head + bytes({0x81, 0x00, 0x81, 0x00, 0x81, 0x00, 0x81, 0x00, 0x00}),
                              decode_errc::limit_exceeded));
}

TEST(Codec, AcceptsEverySignedIntegerFormatHoldingANonNegativeValue) {
    // 3.3: uint: "accept any msgpack integer format whose value is
    // non-negative and within the field's range".
    const auto credit_with_amount = [](const std::string& amount) {
        return frame_builder{}.array(5).uint(1).uint(12).str("w").raw(amount).boolean(true).frame();
    };
    for (const std::string& seven :
         {bytes({0xd0, 0x07}), bytes({0xd1, 0, 0x07}), bytes({0xd2, 0, 0, 0, 0x07}),
          bytes({0xd3, 0, 0, 0, 0, 0, 0, 0, 0x07})}) {
        auto d = decode(credit_with_amount(seven));
        ASSERT_TRUE(d) << d.error().detail;
        EXPECT_EQ(std::get<credit>(*d).amount, 7u);
    }
    // The version and the type code too: BYE [int8 1, int16 7, "w"].
    auto d = decode(bytes({0x93, 0xd0, 0x01, 0xd1, 0x00, 0x07, 0xa1, 'w'}));
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<bye>(*d) == (bye{"w"}));
    // A negative value in any format, and a bool, are not unsigned integers.
    for (const std::string& bad : {bytes({0xff}), bytes({0xd0, 0xff}), bytes({0xd1, 0xff, 0xff}),
                                   bytes({0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}), bytes({0xc3})})
        EXPECT_TRUE(rejected_with(credit_with_amount(bad), decode_errc::bad_field));
}

TEST(Codec, IgnoresFloatsAndNilInTrailingElements) {
    // 3.3.3: floats and nil are used by no field, but may be appended by a
    // later revision (3.2.4).
    const std::string f = frame_builder{}
                              .array(7)
                              .uint(1)
                              .uint(11)
                              .str("j")
                              .str("r")
                              .raw(bytes({0xca, 0x3f, 0xc0, 0, 0}))
                              .raw(bytes({0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}))
                              .nil()
                              .frame();
    auto d = decode(f);
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<stop>(*d) == (stop{"j", "r"}));
    // A float cut short is a truncated frame.
    EXPECT_TRUE(rejected_with(f.substr(0, f.size() - 3), decode_errc::malformed));
}

TEST(Codec, RejectsEveryExtFormInIgnoredElements) {
    // 3.3.3: "A message MUST NOT contain an ext value anywhere". Each form
    // whole (type byte and data) is refused; cut short, it is malformed.
    const std::string head = frame_builder{}.array(4).uint(1).uint(7).str("w").frame();
    for (const std::string& ext :
         {bytes({0xd4, 0x01, 0}), bytes({0xd5, 0x01, 0, 0}), bytes({0xd6, 0x01, 0, 0, 0, 0}),
          bytes({0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}),
          bytes({0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
          bytes({0xc7, 0x02, 0x01, 0, 0}), bytes({0xc8, 0x00, 0x02, 0x01, 0, 0}),
          bytes({0xc9, 0, 0, 0, 0x02, 0x01, 0, 0})}) {
        EXPECT_TRUE(rejected_with(head + ext, decode_errc::limit_exceeded))
            << "ext form " << std::hex << (static_cast<unsigned>(ext[0]) & 0xff);
        EXPECT_TRUE(
            rejected_with(std::string_view(head + ext).substr(0, head.size() + ext.size() - 1),
                          decode_errc::malformed));
    }
}

TEST(Codec, AcceptsAMapInTrailingElementsAtTheDepthLimitAndRejectsOneDeeper) {
    // 3.4: maps (only in ignored trailing elements) count toward the depth.
    const std::string head = frame_builder{}.array(5).uint(1).uint(11).str("j").str("r").frame();
    auto d = decode(head + bytes({0x81, 0x00, 0x91, 0x81, 0x01, 0xc0}));  // {0: [{1: nil}]}
    ASSERT_TRUE(d) << d.error().detail;
    EXPECT_TRUE(std::get<stop>(*d) == (stop{"j", "r"}));
    EXPECT_TRUE(rejected_with(head + bytes({0x81, 0x00, 0x91, 0x81, 0x01, 0x80}),  // {} at level 5
                              decode_errc::limit_exceeded));
    EXPECT_TRUE(rejected_with(head + bytes({0x81, 0x00, 0x91, 0x81, 0x01, 0x90}),  // [] at level 5
                              decode_errc::limit_exceeded));
}

TEST(Codec, RejectsAMapDeclaringMorePairsThanHalfTheFrame) {
    // 3.4: "any map: at most min(frame size in bytes, 262,144) / 2 entries".
    // 18 bytes: a map of 9 pairs is within the limit (then cut short), 10 not.
    const std::string head = frame_builder{}.array(4).uint(1).uint(7).str("w").frame();
    const std::string pairs(10, '\0');
    EXPECT_TRUE(rejected_with(head + bytes({0xde, 0x00, 0x09}) + pairs, decode_errc::malformed));
    EXPECT_TRUE(
        rejected_with(head + bytes({0xde, 0x00, 0x0a}) + pairs, decode_errc::limit_exceeded));
}

TEST(Codec, AFaultInTheMsgpackOutranksAnyFaultOfTheMessage) {
    // Whatever is wrong with the message itself, a frame that is not msgpack
    // within the limits is refused as such, and one with bytes after its
    // array as trailing_bytes.
    const std::string bad_job = frame_builder{}.array(4).uint(1).uint(7).uint(5).frame();
    EXPECT_TRUE(rejected_with(bad_job + bytes({0xc1}), decode_errc::malformed));
    EXPECT_TRUE(rejected_with(bad_job + bytes({0xd4, 0x01, 0}), decode_errc::limit_exceeded));
    EXPECT_TRUE(rejected_with(bad_job + bytes({0xc0, 0xc0}), decode_errc::trailing_bytes));
    const std::string v2 = frame_builder{}.array(3).uint(2).uint(7).frame();
    EXPECT_TRUE(rejected_with(v2 + bytes({0x91, 0x91, 0x91, 0x91}), decode_errc::limit_exceeded));
    EXPECT_TRUE(rejected_with(bytes({0x81, 0x01, 0xc1}), decode_errc::malformed));
    EXPECT_TRUE(rejected_with(bytes({0x80, 0x00}), decode_errc::trailing_bytes));
}

TEST(Codec, RejectsTheByteMsgpackNeverUses) {
    EXPECT_TRUE(rejected_with(bytes({0xc1}), decode_errc::malformed));
    EXPECT_TRUE(rejected_with(bytes({0x93, 0x01, 0x01, 0xc1}), decode_errc::malformed));
}

TEST(Codec, ErrorCodesHaveNames) {
    for (auto c : {decode_errc::empty, decode_errc::malformed, decode_errc::trailing_bytes,
                   decode_errc::limit_exceeded, decode_errc::not_an_array, decode_errc::bad_version,
                   decode_errc::unknown_type, decode_errc::bad_field}) {
        EXPECT_FALSE(to_string(c).empty());
        EXPECT_NE(to_string(c), "?");
    }
}

// ---------------------------------------------------------------------------
// BATCH (5.15): several messages in one frame.

// The messages of a frame, or the test fails.
std::vector<message> decode_all(std::string_view frame) {
    decoded_frame out;
    decode_frame(frame, out);
    std::vector<message> messages;
    for (auto& m : out) {
        EXPECT_TRUE(m) << to_string(m.error().code) << ": " << m.error().detail;
        if (m) messages.push_back(std::move(*m));
    }
    return messages;
}

result small_result(std::uint64_t id) {
    return result{"job", id, 1, "w", task_status::ok, 5, "out", "", 1, "echo"};
}

TEST(CodecBatch, CarriesItsMessagesInOrder) {
    batch_encoder b;
    std::vector<message> sent;
    for (std::uint64_t id = 0; id < 3; ++id) {
        const task t{"job", id, 1, "echo", std::string(32, 'x'), 0};
        b.add(t);
        sent.push_back(t);
    }
    b.add(message{heartbeat{"w", 3, {{"job", 1, 1}}}});
    sent.push_back(heartbeat{"w", 3, {{"job", 1, 1}}});
    EXPECT_EQ(b.count(), 4u);
    const std::string frame(b.frame());
    EXPECT_EQ(frame.substr(0, 4), bytes({0x93, 0x01, 0x0f, 0x94}));  // shortest header
    EXPECT_EQ(decode_all(frame), sent);
}

TEST(CodecBatch, ALoneMessageIsSentWithoutTheWrapper) {
    batch_encoder b;
    EXPECT_TRUE(b.frame().empty());
    b.add(small_result(9));
    EXPECT_EQ(b.frame(), encode(message{small_result(9)}));
    b.clear();
    EXPECT_TRUE(b.empty());
    b.add_encoded(encode(message{small_result(1)}));
    EXPECT_EQ(b.frame(), encode(message{small_result(1)}));
}

TEST(CodecBatch, UsesTheShortestArrayHeaderForEveryCount) {
    // fixarray up to 15, array 16 beyond (a BATCH holds at most 4096).
    for (std::size_t n : {2u, 15u, 16u, 4096u}) {
        batch_encoder b;
        for (std::size_t i = 0; i < n; ++i)
            b.add(message{stop{"", ""}});
        const std::string frame(b.frame());
        const unsigned char h = static_cast<unsigned char>(frame[3]);
        if (n < 16) {
            EXPECT_EQ(h, 0x90 | n) << n;
        } else {
            EXPECT_EQ(h, 0xdc) << n;
        }
        decoded_frame out;
        decode_frame(frame, out);
        ASSERT_EQ(out.size(), n);
        EXPECT_TRUE(out.back()) << out.back().error().detail;
    }
}

TEST(CodecBatch, AnyArrayHeaderUpTo4096Messages) {
    const std::string stop_frame = encode(message{stop{"", ""}});
    const std::string head = frame_builder{}.array(3).uint(1).uint(15).frame();
    decoded_frame out;
    decode_frame(head + bytes({0xdd, 0, 0, 0, 2}) + stop_frame + stop_frame, out);  // array 32
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(out[0] && out[1]);
    std::string many = head + bytes({0xdc, 0x10, 0x01});  // 4097
    for (int i = 0; i < 4097; ++i)
        many += stop_frame;
    decode_frame(many, out);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_FALSE(out[0]);
    EXPECT_EQ(out[0].error().code, decode_errc::limit_exceeded);
}

TEST(CodecBatch, BytesAreLimitedByTheSendersMaxMessage) {
    batch_encoder b;
    EXPECT_EQ(b.max_bytes(), k_max_batch_bytes);
    b.limit_bytes_for(64 * 1024);
    EXPECT_EQ(b.max_bytes(), 32u * 1024);
    b.limit_bytes_for(std::size_t{16} << 20);
    EXPECT_EQ(b.max_bytes(), k_max_batch_bytes);
    b.limit_bytes_for(4096);
    b.add(small_result(0));
    EXPECT_FALSE(b.full_for(1000));
    EXPECT_TRUE(b.full_for(2048));
}

TEST(CodecBatch, FullForCountsMessagesAndBytes) {
    batch_encoder b;
    EXPECT_FALSE(b.full_for(k_max_batch_bytes * 2));  // an empty batch takes anything
    b.add(small_result(0));
    EXPECT_FALSE(b.full_for(100));
    EXPECT_TRUE(b.full_for(k_max_batch_bytes));
    while (b.count() < k_max_batch_messages)
        b.add(message{stop{"", ""}});
    EXPECT_TRUE(b.full_for(1));
}

TEST(CodecBatch, ABadMessageIsDroppedAloneAndTheOthersKept) {
    // [1, 15, [TASK, TASK of version 2, STOP with a bad field, BATCH, TASK]]
    const std::string good = valid_task_frame();
    std::string v2 = good;
    v2[1] = 0x02;
    const std::string bad_stop = frame_builder{}.array(4).uint(1).uint(11).uint(5).str("r").frame();
    const std::string nested = frame_builder{}.array(3).uint(1).uint(15).array(1).frame() + good;
    const std::string frame = frame_builder{}.array(3).uint(1).uint(15).array(5).frame() + good +
                              v2 + bad_stop + nested + good;
    decoded_frame out;
    decode_frame(frame, out);
    ASSERT_EQ(out.size(), 5u);
    EXPECT_TRUE(out[0]);
    ASSERT_FALSE(out[1]);
    EXPECT_EQ(out[1].error().code, decode_errc::bad_version);
    ASSERT_FALSE(out[2]);
    EXPECT_EQ(out[2].error().code, decode_errc::bad_field);
    ASSERT_FALSE(out[3]);
    EXPECT_EQ(out[3].error().code, decode_errc::unknown_type);
    EXPECT_TRUE(out[4]);
}

TEST(CodecBatch, AFrameThatCannotBeReadIsOneError) {
    auto one_error = [](std::string_view frame, decode_errc want) {
        decoded_frame out;
        decode_frame(frame, out);
        if (out.size() != 1 || out[0])
            return ::testing::AssertionFailure() << out.size() << " elements";
        if (out[0].error().code != want)
            return ::testing::AssertionFailure() << to_string(out[0].error().code);
        return ::testing::AssertionSuccess();
    };
    const std::string good = valid_task_frame();
    const std::string head = frame_builder{}.array(3).uint(1).uint(15).frame();
    EXPECT_TRUE(one_error("", decode_errc::empty));
    EXPECT_TRUE(one_error(head + bytes({0x90}), decode_errc::bad_field));         // empty BATCH
    EXPECT_TRUE(one_error(head + bytes({0x01}), decode_errc::bad_field));         // not an array
    EXPECT_TRUE(one_error(head + bytes({0x92}) + good, decode_errc::malformed));  // truncated
    EXPECT_TRUE(one_error(head + bytes({0x91}) + good + "x", decode_errc::trailing_bytes));
    EXPECT_TRUE(one_error(frame_builder{}.array(3).uint(2).uint(15).array(1).frame() + good,
                          decode_errc::bad_version));
    // Declares four billion messages in 9 bytes: refused before any allocation.
    EXPECT_TRUE(
        one_error(head + bytes({0xdd, 0xff, 0xff, 0xff, 0xff}), decode_errc::limit_exceeded));
    // A message inside a BATCH may nest as deep as alone (3.4), no deeper.
    const std::string stop_head =
        frame_builder{}.array(5).uint(1).uint(11).str("j").str("r").frame();
    decoded_frame out;
    decode_frame(head + bytes({0x91}) + stop_head + bytes({0x91, 0x91, 0x91, 0x01}), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0]);
    EXPECT_TRUE(one_error(head + bytes({0x91}) + stop_head + bytes({0x91, 0x91, 0x91, 0x91, 0x01}),
                          decode_errc::limit_exceeded));
}

TEST(CodecBatch, OneMessageFramesDecodeAsBefore) {
    for (const auto& m : one_of_each()) {
        decoded_frame out;
        decode_frame(encode(m), out);
        ASSERT_EQ(out.size(), 1u);
        ASSERT_TRUE(out[0]) << out[0].error().detail;
        EXPECT_EQ(*out[0], m);
    }
}

TEST(CodecBatch, VersionAndTypeInAnyIntegerFormat) {
    // 3.3: a receiver accepts any integer format with a value in range; a
    // BATCH's version and type are integers like any other.
    const std::string good = valid_task_frame();
    for (const auto& head : {bytes({0x93, 0xd0, 0x01, 0xd0, 0x0f}),  // int8
                             bytes({0x93, 0xcd, 0x00, 0x01, 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x0f})}) {
        decoded_frame out;
        decode_frame(head + bytes({0x92}) + good + good, out);
        ASSERT_EQ(out.size(), 2u);
        EXPECT_TRUE(out[0] && out[1]) << (out[0] ? "" : out[0].error().detail);
    }
}

TEST(CodecBatch, DecodeRefusesABatch) {
    batch_encoder b;
    b.add(small_result(1));
    b.add(small_result(2));
    EXPECT_TRUE(rejected_with(b.frame(), decode_errc::unknown_type));
}

TEST(CodecBatch, AFrameGivesItsOwnMessagesWhateverThePreviousFrameLeft) {
    // decode_frame() reuses the elements of `out`: optional fields absent
    // from the wire must still read as their defaults, and nothing of the
    // previous frame may remain.
    batch_encoder b;
    b.add(small_result(1));
    b.add(message{job_open{"j", true, 3}});
    b.add(message{ack{"j", {1, 2}, {3}, {2}}});
    b.add(message{bye{"w", {{"j", 1, 1}}}});
    decoded_frame out;
    decode_frame(b.frame(), out);
    ASSERT_EQ(out.size(), 4u);
    const std::string bare_result =
        result_up_to_status(0).uint(10).bin("o").str("").uint(7).frame();
    const std::string bare_open = frame_builder{}.array(3).uint(1).uint(1).str("k").frame();
    const std::string bare_ack =
        frame_builder{}.array(5).uint(1).uint(8).str("k").array(0).array(0).frame();
    const std::string frame = frame_builder{}.array(3).uint(1).uint(15).array(4).frame() +
                              bare_result + bare_open + bare_ack + bytes({0x01});
    decode_frame(frame, out);
    ASSERT_EQ(out.size(), 4u);
    ASSERT_TRUE(out[0]) << out[0].error().detail;
    EXPECT_EQ(*out[0], (message{result{"j", 1, 1, "w", task_status::ok, 10, "o", "", 7, ""}}));
    ASSERT_TRUE(out[1]) << out[1].error().detail;
    EXPECT_EQ(*out[1], (message{job_open{"k", false, 0}}));
    ASSERT_TRUE(out[2]) << out[2].error().detail;
    EXPECT_EQ(*out[2], (message{ack{"k", {}, {}, {}}}));
    ASSERT_FALSE(out[3]);
    EXPECT_EQ(out[3].error().code, decode_errc::not_an_array);
    // A smaller frame after it; then one whose element was an error before.
    decode_frame(encode(message{bye{"w"}}), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(*out[0], (message{bye{"w"}}));
    decode_frame(frame, out);
    decode_frame(b.frame(), out);
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(*out[3], (message{bye{"w", {{"j", 1, 1}}}}));
}

// A BATCH of RESULTs `first`, `first` + 1, ... with outputs of `size` bytes.
std::string result_batch(std::uint64_t first, std::size_t count, std::size_t size) {
    batch_encoder b;
    for (std::size_t i = 0; i < count; ++i) {
        result r = small_result(first + i);
        r.output.assign(size, static_cast<char>('a' + i % 26));
        b.add(r);
    }
    return std::string(b.frame());
}

const result& result_at(const decoded_frame& out, std::size_t i) {
    return std::get<result>(*out[i]);
}

TEST(CodecBatch, ShorterFieldsAfterLongerOnesReadExactly) {
    decoded_frame out;
    decode_frame(result_batch(0, 3, 100), out);
    decode_frame(result_batch(10, 3, 5), out);
    ASSERT_EQ(out.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        ASSERT_TRUE(out[i]) << out[i].error().detail;
        result want = small_result(10 + i);
        want.output.assign(5, static_cast<char>('a' + i));
        EXPECT_EQ(result_at(out, i), want);
    }
    // A lone message after a batch, then an empty output after a long one.
    decode_frame(encode(message{small_result(7)}), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(*out[0], message{small_result(7)});
    decode_frame(result_batch(20, 1, 0), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(result_at(out, 0).output, "");
    EXPECT_EQ(result_at(out, 0).id, 20u);
}

TEST(CodecBatch, SlotsBeyondASmallFrameKeepTheirCapacityForTheNextLargeOne) {
    // The point of reusing slots: frames of varying sizes (a sink reads
    // batches of 1 to 4096 results) decode without allocating anew.
    decoded_frame out;
    decode_frame(result_batch(0, 8, 200), out);
    decode_frame(result_batch(100, 2, 50), out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(std::distance(out.begin(), out.end()), 2);
    EXPECT_EQ(&out.back(), &out[1]);
    decode_frame(result_batch(200, 8, 100), out);
    ASSERT_EQ(out.size(), 8u);
    for (std::size_t i = 0; i < 8; ++i) {
        ASSERT_TRUE(out[i]) << out[i].error().detail;
        EXPECT_EQ(result_at(out, i).id, 200 + i);
        EXPECT_EQ(result_at(out, i).output, std::string(100, static_cast<char>('a' + i)));
        EXPECT_GE(result_at(out, i).output.capacity(), 200u) << "slot " << i << " allocated anew";
    }
}

TEST(CodecBatch, AnElementMovedFromIsFilledAgainByTheNextFrame) {
    decoded_frame out;
    decode_frame(result_batch(0, 2, 40), out);
    result taken = std::move(std::get<result>(*out[0]));
    EXPECT_EQ(taken.id, 0u);
    decode_frame(result_batch(5, 2, 40), out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(result_at(out, 0).id, 5u);
    EXPECT_EQ(result_at(out, 0).output, std::string(40, 'a'));
    EXPECT_EQ(result_at(out, 0).job, "job");
}

TEST(CodecBatch, AnErrorInASlotThenAMessageInIt) {
    decoded_frame out;
    decode_frame(std::string("\xc1"), out);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_FALSE(out[0]);
    EXPECT_EQ(out[0].error().code, decode_errc::malformed);
    decode_frame(result_batch(3, 2, 10), out);
    ASSERT_EQ(out.size(), 2u);
    ASSERT_TRUE(out[0]) << out[0].error().detail;
    EXPECT_EQ(result_at(out, 0).id, 3u);
    decode_frame(std::string(), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].error().code, decode_errc::empty);
}

TEST(CodecBatch, SlotsThatRetainTooMuchAreDroppedBeforeTheNextFrame) {
    // Memory a decoded_frame keeps is bounded: a huge message's buffers are
    // not kept for the small frames after it.
    const std::size_t huge = decoded_frame::k_max_retained_bytes + 1024;
    decoded_frame out;
    decode_frame(result_batch(0, 1, huge), out);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_TRUE(out[0]) << out[0].error().detail;
    EXPECT_EQ(result_at(out, 0).output.size(), huge);
    decode_frame(result_batch(1, 1, 10), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(result_at(out, 0).output, std::string(10, 'a'));
    EXPECT_LT(result_at(out, 0).output.capacity(), huge);
    // Below the bound, a slot keeps what it grew to.
    decode_frame(result_batch(2, 1, 1000), out);
    decode_frame(result_batch(3, 1, 10), out);
    EXPECT_GE(result_at(out, 0).output.capacity(), 1000u);
}

TEST(CodecBatch, AFaultInTheMsgpackAfterABadMessageFailsTheWholeFrame) {
    // 5.15.2: a bad message is dropped alone, but a frame that cannot be read
    // is dropped whole, wherever the fault is.
    const std::string good = valid_task_frame();
    const std::string bad_stop = frame_builder{}.array(4).uint(1).uint(11).uint(5).str("r").frame();
    const std::string head = frame_builder{}.array(3).uint(1).uint(15).array(3).frame();
    decoded_frame out;
    decode_frame(head + good + bad_stop + good, out);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[1].error().code, decode_errc::bad_field);
    for (const auto& [fault, want] :
         {std::pair{bytes({0xc1}), decode_errc::malformed},
          std::pair{bytes({0xd4, 0x01, 0x00}), decode_errc::limit_exceeded}}) {
        // In the bad message's own ignored elements, and in the BATCH's.
        std::string bent = bad_stop;
        bent[0] = static_cast<char>(0x95);
        decode_frame(head + good + bent + fault + good, out);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0].error().code, want);
        decode_frame(
            frame_builder{}.array(4).uint(1).uint(15).array(2).frame() + good + bad_stop + fault,
            out);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0].error().code, want);
    }
}

// ---------------------------------------------------------------------------
// Fuzzing with a fixed seed. 3.7.1: "No frame, however malformed, may crash or
// stop a peer." decode() is noexcept, so an escaping exception would
// terminate the test binary; ASan/UBSan builds also catch bad reads and huge
// allocations. Whatever decodes must survive a round trip unchanged.

void check_decode_is_sound(std::string_view frame) {
    static_assert(noexcept(decode(frame)));
    auto d = decode(frame);
    if (!d) {
        ASSERT_FALSE(d.error().detail.empty());
        return;
    }
    const std::string again = encode(*d);
    auto d2 = decode(again);
    ASSERT_TRUE(d2) << "re-encoded message does not decode: " << d2.error().detail;
    ASSERT_TRUE(*d2 == *d) << to_string(type_of(*d)) << " changed in a round trip";
}

std::string mutate(std::string s, std::mt19937& rng) {
    std::uniform_int_distribution<int> byte(0, 255);
    const int edits = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int e = 0; e < edits; ++e) {
        const std::size_t pos =
            s.empty() ? 0 : std::uniform_int_distribution<std::size_t>(0, s.size() - 1)(rng);
        switch (std::uniform_int_distribution<int>(0, 6)(rng)) {
            case 0:  // flip a bit
                if (!s.empty()) s[pos] = static_cast<char>(s[pos] ^ (1 << (byte(rng) % 8)));
                break;
            case 1:  // overwrite a byte
                if (!s.empty()) s[pos] = static_cast<char>(byte(rng));
                break;
            case 2:  // insert a byte
                s.insert(s.begin() + static_cast<long>(pos), static_cast<char>(byte(rng)));
                break;
            case 3:  // delete a byte
                if (!s.empty()) s.erase(pos, 1);
                break;
            case 4:  // truncate
                s.resize(pos);
                break;
            case 5:  // interesting boundary byte
                if (!s.empty()) {
                    static constexpr unsigned char k_interesting[] = {
                        0x00, 0x7f, 0x80, 0x90, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4,
                        0xcc, 0xcf, 0xd0, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
                    s[pos] = static_cast<char>(
                        k_interesting[static_cast<std::size_t>(byte(rng)) % sizeof k_interesting]);
                }
                break;
            case 6:  // duplicate a slice
                if (!s.empty()) {
                    const std::size_t len = std::min<std::size_t>(s.size() - pos, 8);
                    s.insert(pos, s.substr(pos, len));
                }
                break;
        }
    }
    return s;
}

TEST(CodecFuzz, RandomBytesNeverEscapeDecode) {
    std::mt19937 rng(20240601);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<std::size_t> length(0, 48);
    std::size_t decoded = 0;
    decoded_frame frames;
    for (int i = 0; i < 100000; ++i) {
        std::string s(length(rng), '\0');
        for (auto& c : s)
            c = static_cast<char>(byte(rng));
        // Half the time, start like a real message so the fields get exercised.
        if (i % 2 == 0 && s.size() >= 3) {
            s[0] = static_cast<char>(0x90 | (byte(rng) % 12));
            s[1] = 0x01;
            s[2] = static_cast<char>(1 + byte(rng) % 12);
        }
        check_decode_is_sound(s);
        if (HasFatalFailure()) return;
        decoded += decode(s).has_value();
        decode_frame(s, frames);
        ASSERT_FALSE(frames.empty());
    }
    RecordProperty("decoded", static_cast<int>(decoded));
}

TEST(CodecFuzz, MutatedMessagesNeverEscapeDecode) {
    std::mt19937 rng(8675309);
    std::vector<std::string> seeds;
    for (const auto& m : one_of_each())
        seeds.push_back(encode(m));
    batch_encoder batch;
    for (const auto& m : one_of_each())
        batch.add(m);
    seeds.emplace_back(batch.frame());
    std::size_t decoded = 0;
    decoded_frame frames;
    for (int i = 0; i < 100000; ++i) {
        const std::string s = mutate(seeds[static_cast<std::size_t>(i) % seeds.size()], rng);
        check_decode_is_sound(s);
        if (HasFatalFailure()) return;
        decoded += decode(s).has_value();
        decode_frame(s, frames);
        ASSERT_FALSE(frames.empty());
    }
    // Some mutations (a changed id, a changed letter) still decode.
    EXPECT_GT(decoded, 0u);
}

}  // namespace
