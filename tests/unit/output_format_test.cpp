// Unit tests for sink/output_format.hpp's hand-written JSON line writer
// (PROTOCOL.md section 10, "Sink output"): its exact bytes (escapes, key
// order, numbers), U+FFFD and base64 for bytes that are not UTF-8, and the
// same content as the nlohmann::json DOM writer it replaced, on random
// results. result_writer_test.cpp checks the documented keys.
#include "output_format.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;
using zfarm::exec::outcome;
using zfarm::proto::result;
using zfarm::proto::task_status;
using zfarm::sink::append_json_line;
using zfarm::sink::to_json_line;

constexpr std::uint64_t k_u64_max = std::numeric_limits<std::uint64_t>::max();

result ok_result() {
    result r;
    r.job = "render";
    r.id = 42;
    r.attempt = 2;
    r.worker = "node7-1234-beef";
    r.elapsed_us = 1500;
    r.output = "frame 42 done";
    r.started_us = 1795770000123456;
    return r;
}

outcome exec_outcome() {
    outcome o;
    o.exit_code = 0;
    o.out = "hello\n";
    o.err = "warning: x\n";
    o.rss_kb = 1234;
    o.host = "node7";
    o.cmd = "echo hello";
    return o;
}

result exec_result(const outcome& o) {
    result r = ok_result();
    r.kind = "exec";
    r.output = zfarm::exec::encode(o);
    return r;
}

// The text of the value of `key` (a number) in `line`.
std::string number_text(const std::string& line, const std::string& key) {
    const std::string tag = "\"" + key + "\":";
    const auto at = line.find(tag);
    if (at == std::string::npos) return "(no " + key + ")";
    const auto from = at + tag.size();
    return line.substr(from, line.find_first_of(",}", from) - from);
}

// Base64 written differently from the writer's (a bit stream), for the
// reference line.
std::string reference_base64(std::string_view in) {
    static constexpr char k_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned bits = 0;
    int n = 0;
    for (const unsigned char c : in) {
        bits = ((bits << 8) | c) & 0xFFFFu;
        for (n += 8; n >= 6; n -= 6)
            out += k_alphabet[(bits >> (n - 6)) & 63];
    }
    if (n > 0) out += k_alphabet[(bits << (6 - n)) & 63];
    while (out.size() % 4 != 0)
        out += '=';
    return out;
}

bool json_accepts(const std::string& s) {
    try {
        (void)json(s).dump();
        return true;
    } catch (const json::type_error&) {
        return false;
    }
}

// The line as the nlohmann::json DOM writer this one replaced wrote it,
// parsed back: the reference for content (its `ms` and `start` were doubles;
// below 2^53 microseconds they parse back to the same doubles).
json reference_line(const result& r) {
    json j = {{"job", r.job},
              {"id", r.id},
              {"status", r.status == task_status::ok ? "ok" : "failed"},
              {"attempts", r.attempt},
              {"worker", r.worker},
              {"ms", static_cast<double>(r.elapsed_us) / 1000.0},
              {"start", static_cast<double>(r.started_us) / 1e6}};
    if (!r.error.empty()) j["error"] = r.error;
    const auto replacing = [](const json& line) {
        return json::parse(line.dump(-1, ' ', false, json::error_handler_t::replace));
    };
    const auto o = zfarm::sink::exec_outcome_of(r);
    if (!o) {
        j["output"] = r.output;
        try {
            return json::parse(j.dump());
        } catch (const json::type_error&) {
            j.erase("output");
            j["output_base64"] = reference_base64(r.output);
            return replacing(j);
        }
    }
    const auto put_bytes = [&](const std::string& key, const std::string& bytes) {
        if (json_accepts(bytes))
            j[key] = bytes;
        else
            j[key + "_base64"] = reference_base64(bytes);
    };
    put_bytes("output", o->out);
    put_bytes("stderr", o->err);
    j["exit"] = o->exit_code ? json(*o->exit_code) : json(nullptr);
    j["signal"] = o->signal;
    j["rss_kb"] = o->rss_kb;
    j["host"] = o->host;
    j["cmd"] = o->cmd;
    if (o->out_dropped > 0) j["stdout_dropped"] = o->out_dropped;
    if (o->err_dropped > 0) j["stderr_dropped"] = o->err_dropped;
    return replacing(j);
}

// Random byte strings made of pieces that matter to the writer: runs of
// plain ASCII (long enough for its word-at-a-time path), escapes, DEL,
// well-formed UTF-8 of every length, and any byte at all (mostly bad UTF-8).
class byte_strings {
  public:
    explicit byte_strings(std::uint64_t seed) : rng_(seed) {}

    std::string next() {
        std::string s;
        const int pieces = pick(0, 12);
        for (int i = 0; i < pieces; ++i) {
            switch (pick(0, 6)) {
                case 0:
                    s.append(static_cast<std::size_t>(pick(1, 20)),
                             static_cast<char>('a' + pick(0, 25)));
                    break;
                case 1:
                    s += static_cast<char>(pick(0x20, 0x7F));
                    break;
                case 2:
                    s += static_cast<char>(pick(0, 0x1F));
                    break;
                case 3:
                    s += "\"\\/"[pick(0, 2)];
                    break;
                case 4:
                    append_utf8(s, code_point());
                    break;
                case 5:
                case 6:
                    s += static_cast<char>(pick(0x80, 0xFF));
                    break;
            }
        }
        return s;
    }
    // Mostly valid strings: a bad byte in one string out of four.
    std::string next_mostly_valid() {
        std::string s = next();
        if (pick(0, 3) != 0)
            for (auto& c : s)
                if (static_cast<unsigned char>(c) >= 0x80) c = '?';
        return s;
    }
    std::uint64_t below(std::uint64_t n) {
        return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
    }
    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  private:
    std::uint32_t code_point() {
        for (;;) {
            static constexpr int k_bits[] = {8, 11, 16, 21};  // up to 2-, 2-, 3- and 4-byte forms
            const auto c =
                static_cast<std::uint32_t>(below(std::uint64_t{1} << k_bits[pick(0, 3)]));
            if (c >= 0x80 && c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF)) return c;
        }
    }
    static void append_utf8(std::string& s, std::uint32_t c) {
        if (c < 0x800) {
            s += static_cast<char>(0xC0 | (c >> 6));
        } else if (c < 0x10000) {
            s += static_cast<char>(0xE0 | (c >> 12));
            s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        } else {
            s += static_cast<char>(0xF0 | (c >> 18));
            s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        }
        s += static_cast<char>(0x80 | (c & 0x3F));
    }
    std::mt19937_64 rng_;
};

// ---------------------------------------------------------------------------
// Exact bytes

TEST(OutputFormat, WritesTheLineWithSortedKeysAndExactNumbers) {
    EXPECT_EQ(to_json_line(ok_result()),
              R"({"attempts":2,"id":42,"job":"render","ms":1.5,"output":"frame 42 done",)"
              R"("start":1795770000.123456,"status":"ok","worker":"node7-1234-beef"})");
    result failed = ok_result();
    failed.status = task_status::failed;
    failed.error = "exit code 3";
    failed.output.clear();
    EXPECT_EQ(to_json_line(failed),
              R"({"attempts":2,"error":"exit code 3","id":42,"job":"render","ms":1.5,"output":"",)"
              R"("start":1795770000.123456,"status":"failed","worker":"node7-1234-beef"})");
}

TEST(OutputFormat, AppendsToWhatTheBufferHolds) {
    std::string out = "earlier\n";
    append_json_line(out, ok_result(), nullptr);
    EXPECT_EQ(out, "earlier\n" + to_json_line(ok_result()));
    const outcome o = exec_outcome();
    out = "x";
    append_json_line(out, exec_result(o), &o);
    EXPECT_EQ(out, "x" + to_json_line(exec_result(o)));
}

TEST(OutputFormat, ExecLineWithoutOptionalKeys) {
    EXPECT_EQ(to_json_line(exec_result(exec_outcome())),
              R"({"attempts":2,"cmd":"echo hello","exit":0,"host":"node7","id":42,"job":"render",)"
              R"("ms":1.5,"output":"hello\n","rss_kb":1234,"signal":0,"start":1795770000.123456,)"
              R"("status":"ok","stderr":"warning: x\n","worker":"node7-1234-beef"})");
}

TEST(OutputFormat, ExecLineWithEveryOptionalKey) {
    outcome o = exec_outcome();
    o.exit_code.reset();
    o.signal = 9;
    o.out_dropped = 10;
    o.err_dropped = k_u64_max;
    o.rss_kb = k_u64_max;
    result r = exec_result(o);
    r.status = task_status::failed;
    r.error = "killed by signal 9 (SIGKILL)";
    EXPECT_EQ(to_json_line(r),
              R"x({"attempts":2,"cmd":"echo hello","error":"killed by signal 9 (SIGKILL)",)x"
              R"("exit":null,"host":"node7","id":42,"job":"render","ms":1.5,"output":"hello\n",)"
              R"("rss_kb":18446744073709551615,"signal":9,"start":1795770000.123456,)"
              R"("status":"failed","stderr":"warning: x\n","stderr_dropped":18446744073709551615,)"
              R"("stdout_dropped":10,"worker":"node7-1234-beef"})");
}

TEST(OutputFormat, ExecLineOfTheHighestExitAndOnlyStdoutDropped) {
    outcome o = exec_outcome();
    o.exit_code = 255;
    o.out_dropped = 7;
    const std::string line = to_json_line(exec_result(o));
    EXPECT_EQ(number_text(line, "exit"), "255");
    EXPECT_EQ(number_text(line, "stdout_dropped"), "7");
    EXPECT_EQ(line.find("stderr_dropped"), std::string::npos);
    EXPECT_EQ(json::parse(line).at("exit"), 255);
}

TEST(OutputFormat, EscapesEveryControlCharacterQuoteAndBackslash) {
    result r = ok_result();
    r.output.clear();
    for (int c = 0; c < 0x20; ++c)
        r.output += static_cast<char>(c);
    r.output += "\"\\/\x7f caf\xc3\xa9 \xf0\x9f\x98\x80";
    const std::string expected =
        R"(\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f)"
        R"(\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c)"
        R"(\u001d\u001e\u001f\"\\/)"
        "\x7f caf\xc3\xa9 \xf0\x9f\x98\x80";  // DEL and UTF-8 as they are
    const std::string line = to_json_line(r);
    EXPECT_NE(line.find("\"output\":\"" + expected + "\""), std::string::npos) << line;
    EXPECT_EQ(json::parse(line).at("output"), r.output);
    // The same escapes in every other string.
    r.job = r.worker = r.error = r.output;
    const json j = json::parse(to_json_line(r));
    EXPECT_EQ(j.at("job"), r.output);
    EXPECT_EQ(j.at("worker"), r.output);
    EXPECT_EQ(j.at("error"), r.output);
}

TEST(OutputFormat, EveryByteAtEveryPlaceOfALongRun) {
    // The writer takes plain ASCII 8 bytes at a time: each byte value, at
    // each place of a word and of the tail, must still be seen.
    for (int b = 0; b < 256; ++b) {
        for (std::size_t at = 0; at < 19; ++at) {
            result r = ok_result();
            r.output = std::string(19, 'a');
            r.output[at] = static_cast<char>(b);
            const json j = json::parse(to_json_line(r));
            if (b < 0x80)
                EXPECT_EQ(j.value("output", "(none)"), r.output) << b << " at " << at;
            else
                EXPECT_EQ(j.value("output_base64", "(none)"), reference_base64(r.output))
                    << b << " at " << at;
        }
    }
}

// ---------------------------------------------------------------------------
// Numbers

TEST(OutputFormat, MsIsTheExactDecimalOfTheMicroseconds) {
    // 10, rule 5: "`ms` and `start` are exact decimals of the integer
    // microseconds [...] without trailing zeros; no exponent."
    const std::pair<std::uint64_t, std::string> cases[] = {
        {0, "0"},
        {5, "0.005"},
        {10, "0.01"},
        {999, "0.999"},
        {1000, "1"},
        {1001, "1.001"},
        {1234, "1.234"},
        {1500, "1.5"},
        {2000, "2"},
        {1764263092123456, "1764263092123.456"},
        {k_u64_max, "18446744073709551.615"},
    };
    for (const auto& [us, text] : cases) {
        result r = ok_result();
        r.elapsed_us = us;
        const std::string line = to_json_line(r);
        EXPECT_EQ(number_text(line, "ms"), text) << us;
        EXPECT_TRUE(json::parse(line).at("ms").is_number()) << line;
    }
}

TEST(OutputFormat, StartIsTheExactDecimalOfTheMicroseconds) {
    const std::pair<std::uint64_t, std::string> cases[] = {
        {0, "0"},
        {5, "0.000005"},
        {999, "0.000999"},
        {1000, "0.001"},
        {1001, "0.001001"},
        {1000000, "1"},
        {1764263092123456, "1764263092.123456"},
        {1764263092100000, "1764263092.1"},
        {1764263092000000, "1764263092"},
        {k_u64_max, "18446744073709.551615"},
    };
    for (const auto& [us, text] : cases) {
        result r = ok_result();
        r.started_us = us;
        const std::string line = to_json_line(r);
        EXPECT_EQ(number_text(line, "start"), text) << us;
        EXPECT_TRUE(json::parse(line).at("start").is_number()) << line;
        // The exec line writes it the same way.
        result e = exec_result(exec_outcome());
        e.started_us = us;
        EXPECT_EQ(number_text(to_json_line(e), "start"), text) << us;
    }
}

TEST(OutputFormat, IntegersAtTheirLimits) {
    result r = ok_result();
    r.id = 0;
    r.attempt = std::numeric_limits<std::uint32_t>::max();
    std::string line = to_json_line(r);
    EXPECT_EQ(number_text(line, "id"), "0");
    EXPECT_EQ(number_text(line, "attempts"), "4294967295");
    r.id = k_u64_max;
    line = to_json_line(r);
    EXPECT_EQ(number_text(line, "id"), "18446744073709551615");
    EXPECT_EQ(json::parse(line).at("id").get<std::uint64_t>(), k_u64_max);
}

// ---------------------------------------------------------------------------
// Bytes that are not UTF-8

TEST(OutputFormat, EachBadSequenceBecomesOneReplacementCharacter) {
    // 10, rule 2: "The zfarm sink writes one U+FFFD for each maximal subpart
    // of an invalid sequence": the byte that ended one is read again, as
    // nlohmann::json's replace did.
    const std::string fffd = "\xef\xbf\xbd";
    const std::pair<std::string, std::string> cases[] = {
        {"\xff", fffd},
        {"a\x80z", "a" + fffd + "z"},
        {"\xe2\x82"
         "A",
         fffd + "A"},                                     // cut short, then ASCII
        {"\xe2\x82\xe2\x82\xac", fffd + "\xe2\x82\xac"},  // cut short by a new sequence
        {"\xc0\x80", fffd + fffd},                        // overlong lead
        {"\xe0\x80\xaf", fffd + fffd + fffd},             // overlong
        {"\xed\xa0\x80", fffd + fffd + fffd},             // surrogate
        {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
        {"\xf0\x9f\x98", fffd},                           // cut short by the end
        {"\xf0\x9f\x98"
         "\"",
         fffd + "\""},
        {"\xf8\x88\x80\x80\x80", fffd + fffd + fffd + fffd + fffd},
        {"ok \xc3\xa9", "ok \xc3\xa9"},
    };
    for (const auto& [raw, replaced] : cases) {
        result r = ok_result();
        r.job = raw;
        const json j = json::parse(to_json_line(r));
        EXPECT_EQ(j.at("job"), replaced) << reference_base64(raw);
        const std::string nlohmann_says =
            json(raw).dump(-1, ' ', false, json::error_handler_t::replace);
        EXPECT_EQ(j.at("job"), json::parse(nlohmann_says)) << reference_base64(raw);
    }
}

TEST(OutputFormat, ABadNameOrErrorPutsTheOutputInBase64) {
    // 10, rule 2: any string of the line that is not UTF-8 does.
    const std::pair<std::string result::*, std::string> fields[] = {
        {&result::job, "job"}, {&result::worker, "worker"}, {&result::error, "error"}};
    for (const auto& [field, key] : fields) {
        result r = ok_result();
        r.*field = "x\xff";
        const json j = json::parse(to_json_line(r));
        EXPECT_FALSE(j.contains("output")) << key;
        EXPECT_EQ(j.at("output_base64"), reference_base64(r.output)) << key;
        EXPECT_EQ(j.at(key), "x\xef\xbf\xbd");
    }
}

TEST(OutputFormat, ExecOutputAndStderrFallBackToBase64EachOnItsOwn) {
    outcome o = exec_outcome();
    o.out = "\xc3(";
    o.err = "\xff\xfe\xfd";
    o.cmd = "printf '\\xff'\n\x80";
    const std::string line = to_json_line(exec_result(o));
    EXPECT_NE(line.find(R"("output_base64":"wyg=","rss_kb")"), std::string::npos) << line;
    EXPECT_NE(line.find(R"("stderr_base64":"//79","worker")"), std::string::npos) << line;
    const json j = json::parse(line);
    EXPECT_FALSE(j.contains("output"));
    EXPECT_FALSE(j.contains("stderr"));
    EXPECT_EQ(j.at("cmd"), "printf '\\xff'\n\xef\xbf\xbd");

    o = exec_outcome();
    o.host = "h\xff";
    const json k = json::parse(to_json_line(exec_result(o)));
    EXPECT_EQ(k.at("output"), "hello\n") << "a bad host leaves the outputs as text";
    EXPECT_EQ(k.at("stderr"), "warning: x\n");
    EXPECT_EQ(k.at("host"), "h\xef\xbf\xbd");
}

TEST(OutputFormat, ExecFallBackToBase64WhetherTheTextWasGatheredOrWrittenStraight) {
    // Short strings gather with the keys before reaching the line; long ones
    // go straight to it: a fallback to base64 undoes either.
    for (const std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{1000}}) {
        outcome o = exec_outcome();
        o.out = std::string(n, 'a') + "\xff";
        o.err = std::string(n, '\n') + "\xfe";
        const json j = json::parse(to_json_line(exec_result(o)));
        EXPECT_FALSE(j.contains("output")) << n;
        EXPECT_FALSE(j.contains("stderr")) << n;
        EXPECT_EQ(j.at("output_base64").get<std::string>().size(), (n + 1 + 2) / 3 * 4) << n;
        EXPECT_EQ(j.at("stderr_base64").get<std::string>().size(), (n + 1 + 2) / 3 * 4) << n;
        EXPECT_EQ(j.at("cmd"), o.cmd) << n;
        EXPECT_EQ(j.at("worker"), "node7-1234-beef") << n;
    }
}

// ---------------------------------------------------------------------------
// Random results against the DOM writer

TEST(OutputFormat, RandomOutputsRoundTripThroughAJsonParser) {
    byte_strings gen(20261127);
    int valid = 0, invalid = 0;
    for (int i = 0; i < 5000; ++i) {
        result r = ok_result();
        r.output = gen.next();
        const std::string line = to_json_line(r);
        ASSERT_EQ(line.find('\n'), std::string::npos);
        const json j = json::parse(line);
        if (json_accepts(r.output)) {
            ++valid;
            ASSERT_EQ(j.value("output", "(none)"), r.output) << line;
            ASSERT_FALSE(j.contains("output_base64"));
        } else {
            ++invalid;
            ASSERT_EQ(j.value("output_base64", "(none)"), reference_base64(r.output)) << line;
            ASSERT_FALSE(j.contains("output"));
        }
    }
    // Both kinds were tried, many times.
    EXPECT_GT(valid, 500);
    EXPECT_GT(invalid, 500);
}

TEST(OutputFormat, RandomResultsHaveTheContentOfTheDomWriter) {
    byte_strings gen(42);
    for (int i = 0; i < 3000; ++i) {
        result r;
        r.job = gen.next_mostly_valid();
        r.id = gen.below(k_u64_max);
        r.attempt = static_cast<std::uint32_t>(gen.below(1u << 31));
        r.worker = gen.next_mostly_valid();
        r.status = gen.pick(0, 1) ? task_status::ok : task_status::failed;
        // Below 2^53, where the doubles the DOM writer divided are exact.
        r.elapsed_us = gen.below(std::uint64_t{1} << 53);
        r.started_us = gen.below(std::uint64_t{1} << 53);
        r.error = gen.pick(0, 1) ? gen.next_mostly_valid() : "";
        if (gen.pick(0, 1)) {
            outcome o;
            if (gen.pick(0, 3)) o.exit_code = gen.pick(0, 255);
            o.signal = gen.pick(0, 2) ? 0 : gen.pick(1, 64);
            o.out = gen.next();
            o.err = gen.next();
            o.out_dropped = gen.pick(0, 1) ? 0 : gen.below(k_u64_max);
            o.err_dropped = gen.pick(0, 1) ? 0 : gen.below(k_u64_max);
            o.rss_kb = gen.below(k_u64_max);
            o.host = gen.next_mostly_valid();
            o.cmd = gen.next_mostly_valid();
            r.kind = "exec";
            r.output = zfarm::exec::encode(o);
        } else {
            r.output = gen.next();
        }
        const std::string line = to_json_line(r);
        ASSERT_EQ(json::parse(line), reference_line(r)) << line;
    }
}

}  // namespace
