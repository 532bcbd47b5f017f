// Unit tests for sink/result_writer.hpp and sink/output_format.hpp: the JSON
// Lines output (PROTOCOL.md, section 10, "Sink output"), exec results in it
// (6.4), the text format, and the append-and-flush file.
#include "result_writer.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "temp_dir.hpp"

namespace {

using nlohmann::json;
using zfarm::exec::outcome;
using zfarm::proto::result;
using zfarm::proto::task_status;
using zfarm::sink::output_format;
using zfarm::sink::result_writer;
using zfarm::sink::to_json_line;
using zfarm::unit::temp_dir;

result ok_result() {
    result r;
    r.job = "render";
    r.id = 42;
    r.attempt = 2;
    r.worker = "node7-1234-beef";
    r.status = task_status::ok;
    r.elapsed_us = 1500;
    r.output = "frame 42 done";
    r.started_us = 1795770000123456;
    return r;
}

result failed_result() {
    result r;
    r.job = "render";
    r.id = 43;
    r.attempt = 3;
    r.worker = "node8-99-cafe";
    r.status = task_status::failed;
    r.elapsed_us = 250;
    r.error = "exit code 3";
    r.started_us = 1795770001000000;
    return r;
}

outcome exec_outcome() {
    outcome o;
    o.exit_code = 0;
    o.out = "hello\n";
    o.err = "warning: x\n";
    o.wall_us = 2000;
    o.rss_kb = 1234;
    o.host = "node7";
    o.cmd = "echo hello";
    return o;
}

result exec_result(const outcome& o = exec_outcome()) {
    result r = ok_result();
    r.kind = "exec";
    r.output = zfarm::exec::encode(o);
    return r;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        if (end == std::string::npos) {
            out.push_back(text.substr(start));
            break;
        }
        out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

// ---------------------------------------------------------------------------
// to_json_line

TEST(ResultWriter, OkLineHasTheDocumentedFields) {
    // 10: job, id, status, attempts, worker, ms, start, output; error only
    // when not empty.
    const std::string line = to_json_line(ok_result());
    EXPECT_EQ(line.find('\n'), std::string::npos);
    const json j = json::parse(line);
    EXPECT_EQ(j.at("job"), "render");
    EXPECT_EQ(j.at("id"), 42);
    EXPECT_EQ(j.at("status"), "ok");
    EXPECT_EQ(j.at("attempts"), 2);
    EXPECT_EQ(j.at("worker"), "node7-1234-beef");
    EXPECT_DOUBLE_EQ(j.at("ms").get<double>(), 1.5);
    EXPECT_DOUBLE_EQ(j.at("start").get<double>(), 1795770000.123456);
    EXPECT_EQ(j.at("output"), "frame 42 done");
    EXPECT_FALSE(j.contains("error"));
    EXPECT_FALSE(j.contains("output_base64"));
    EXPECT_EQ(j.size(), 8u);
}

TEST(ResultWriter, FailedLineAddsTheError) {
    const json j = json::parse(to_json_line(failed_result()));
    EXPECT_EQ(j.at("status"), "failed");
    EXPECT_EQ(j.at("error"), "exit code 3");
    EXPECT_EQ(j.at("attempts"), 3);
    EXPECT_EQ(j.at("output"), "");
    EXPECT_EQ(j.size(), 9u);
}

TEST(ResultWriter, CarriesLargeIdsExactly) {
    result r = ok_result();
    r.id = 18446744073709551615ULL;
    const json j = json::parse(to_json_line(r));
    EXPECT_EQ(j.at("id").get<std::uint64_t>(), 18446744073709551615ULL);
}

TEST(ResultWriter, EscapesTextOutput) {
    result r = ok_result();
    r.output = "line 1\nline \"2\"\t\\ caf\xc3\xa9 \x01";
    const std::string line = to_json_line(r);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(json::parse(line).at("output").get<std::string>(), r.output);
}

TEST(ResultWriter, KeepsNulBytesInTextOutput) {
    // NUL is valid UTF-8: it stays in "output", escaped as \u0000.
    result r = ok_result();
    r.output = std::string("a\0b", 3);
    const json j = json::parse(to_json_line(r));
    EXPECT_EQ(j.at("output").get<std::string>(), r.output);
    EXPECT_FALSE(j.contains("output_base64"));
}

TEST(ResultWriter, NonUtf8OutputBecomesBase64) {
    // 10, rule 2: "`output` is left out and `output_base64` carries the output bytes
    // in base64 (RFC 4648, with padding)".
    result r = ok_result();
    r.output = "\xff\xfe\xfd";
    const json j = json::parse(to_json_line(r));
    EXPECT_FALSE(j.contains("output"));
    EXPECT_EQ(j.at("output_base64"), "//79");
    // Everything else is still there.
    EXPECT_EQ(j.at("job"), "render");
    EXPECT_EQ(j.at("id"), 42);
    EXPECT_EQ(j.at("status"), "ok");
}

TEST(ResultWriter, Base64MatchesKnownVectors) {
    const std::pair<std::string, std::string> vectors[] = {
        {"\xff", "/w=="},
        {"\xff\xfe", "//4="},
        {"\xff\xfe\xfd", "//79"},
        {"\x80"
         "foobar",
         "gGZvb2Jhcg=="},
        {"\xc3(", "wyg="},
        {std::string("f\0o\xff", 4), "ZgBv/w=="},
        {"\xfe\xed\xfa\xce\xca\xfe", "/u36zsr+"},
    };
    for (const auto& [raw, encoded] : vectors) {
        result r = ok_result();
        r.output = raw;
        const json j = json::parse(to_json_line(r));
        ASSERT_TRUE(j.contains("output_base64")) << encoded;
        EXPECT_EQ(j.at("output_base64"), encoded);
    }
}

TEST(ResultWriter, NonUtf8ErrorStillGivesValidJson) {
    // 10, rule 2: "If any string of the line is not valid UTF-8, `output` is left
    // out [...] and invalid bytes in the other strings are replaced by U+FFFD."
    result r = failed_result();
    r.output = "partial";
    r.error = "bad byte \xff here";
    const std::string line = to_json_line(r);
    const json j = json::parse(line);  // throws on invalid UTF-8 in the line
    EXPECT_EQ(j.at("status"), "failed");
    EXPECT_EQ(j.at("error"), "bad byte \xef\xbf\xbd here");
    EXPECT_FALSE(j.contains("output"));
    EXPECT_EQ(j.at("output_base64"), "cGFydGlhbA==");
}

TEST(ResultWriter, NonUtf8NamesAreReplacedToo) {
    result r = ok_result();
    r.worker = "w\xc3";  // a truncated two-byte sequence
    const json j = json::parse(to_json_line(r));
    EXPECT_EQ(j.at("worker"), "w\xef\xbf\xbd");
    EXPECT_EQ(j.at("output_base64"), "ZnJhbWUgNDIgZG9uZQ==");
}

// ---------------------------------------------------------------------------
// exec results (10, rule 4)

TEST(ResultWriter, ExecLineCarriesTheOutcomeKeys) {
    const json j = json::parse(to_json_line(exec_result()));
    EXPECT_EQ(j.at("job"), "render");
    EXPECT_EQ(j.at("id"), 42);
    EXPECT_EQ(j.at("status"), "ok");
    EXPECT_EQ(j.at("attempts"), 2);
    EXPECT_EQ(j.at("worker"), "node7-1234-beef");
    EXPECT_DOUBLE_EQ(j.at("ms").get<double>(), 1.5);
    EXPECT_DOUBLE_EQ(j.at("start").get<double>(), 1795770000.123456);
    EXPECT_EQ(j.at("output"), "hello\n") << "output is the command's stdout";
    EXPECT_EQ(j.at("stderr"), "warning: x\n");
    EXPECT_EQ(j.at("exit"), 0);
    EXPECT_EQ(j.at("signal"), 0);
    EXPECT_EQ(j.at("rss_kb"), 1234);
    EXPECT_EQ(j.at("host"), "node7");
    EXPECT_EQ(j.at("cmd"), "echo hello");
    EXPECT_FALSE(j.contains("stdout_dropped"));
    EXPECT_FALSE(j.contains("stderr_dropped"));
    EXPECT_FALSE(j.contains("error"));
    EXPECT_EQ(j.size(), 14u);
}

TEST(ResultWriter, ExecLineOfAKilledCommandHasNullExitAndTheSignal) {
    outcome o = exec_outcome();
    o.exit_code.reset();
    o.signal = 9;
    o.out_dropped = 10;
    o.err_dropped = 20;
    result r = exec_result(o);
    r.status = task_status::failed;
    r.error = "killed by signal 9 (SIGKILL)";
    const json j = json::parse(to_json_line(r));
    EXPECT_TRUE(j.at("exit").is_null());
    EXPECT_EQ(j.at("signal"), 9);
    EXPECT_EQ(j.at("stdout_dropped"), 10);
    EXPECT_EQ(j.at("stderr_dropped"), 20);
    EXPECT_EQ(j.at("status"), "failed");
    EXPECT_EQ(j.at("error"), "killed by signal 9 (SIGKILL)");
}

TEST(ResultWriter, ExecOutputsThatAreNotUtf8BecomeBase64EachOnItsOwn) {
    outcome o = exec_outcome();
    o.out = "\xff\xfe\xfd";
    result r = exec_result(o);
    json j = json::parse(to_json_line(r));
    EXPECT_FALSE(j.contains("output"));
    EXPECT_EQ(j.at("output_base64"), "//79");
    EXPECT_EQ(j.at("stderr"), "warning: x\n") << "stderr is text: it stays text";

    o = exec_outcome();
    o.err = "\xc3(";
    o.host = "h\xff";
    j = json::parse(to_json_line(exec_result(o)));
    EXPECT_EQ(j.at("output"), "hello\n");
    EXPECT_FALSE(j.contains("stderr"));
    EXPECT_EQ(j.at("stderr_base64"), "wyg=");
    EXPECT_EQ(j.at("host"), "h\xef\xbf\xbd") << "other strings get U+FFFD";
}

TEST(ResultWriter, ExecOutputThatDoesNotDecodeIsWrittenRaw) {
    result r = ok_result();
    r.kind = "exec";
    r.output = "not msgpack";
    r.status = task_status::failed;
    r.error = "exec is not allowed on this worker (start it with --allow-exec)";
    const json j = json::parse(to_json_line(r));
    EXPECT_EQ(j.at("output"), "not msgpack");
    EXPECT_FALSE(j.contains("exit"));
    EXPECT_FALSE(j.contains("stderr"));
    EXPECT_EQ(j.size(), 9u);
}

TEST(ResultWriter, OtherKindsAreNotDecodedAsExec) {
    outcome o = exec_outcome();
    result r = ok_result();
    r.kind = "echo";
    r.output = zfarm::exec::encode(o);
    const json j = json::parse(to_json_line(r));
    EXPECT_FALSE(j.contains("exit"));
    EXPECT_EQ(j.size(), 8u);
}

TEST(ResultWriter, Utf8CheckMatchesJson) {
    for (const std::string& good :
         std::vector<std::string>{"", "abc", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                  std::string("a\0b", 3), "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf"})
        EXPECT_TRUE(zfarm::sink::is_utf8(good)) << json(good).dump();
    for (const std::string& bad : std::vector<std::string>{
             "\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
             "\xf8\x88\x80\x80\x80", "a\x80", "\xe2\x82"}) {
        EXPECT_FALSE(zfarm::sink::is_utf8(bad)) << bad.size();
        EXPECT_THROW((void)json(bad).dump(), json::type_error) << "json agrees";
    }
}

// ---------------------------------------------------------------------------
// --format text

TEST(ResultWriter, TextFormatWritesEachTaskOutputWholeAndStderrApart) {
    temp_dir dir;
    std::FILE* err = std::fopen(dir.file("stderr").c_str(), "w");
    ASSERT_NE(err, nullptr);
    {
        auto w = result_writer::open(dir.file("out.txt"), output_format::text, err);
        ASSERT_TRUE(w) << w.error();
        result echo = ok_result();
        echo.kind = "echo";
        echo.output = "line one\nline two\n";
        w->write(echo);
        w->write(exec_result());
        outcome o = exec_outcome();
        o.out = "partial";
        o.err = "no such file";
        o.exit_code = 2;
        result bad = exec_result(o);
        bad.id = 7;
        bad.status = task_status::failed;
        bad.error = "exit code 2";
        w->write(bad);
        result refused = failed_result();  // no exec outcome, no output
        w->write(refused);
        EXPECT_EQ(dir.read("out.txt"), "") << "buffered until the batch is flushed";
        EXPECT_TRUE(w->flush());
    }
    std::fclose(err);
    EXPECT_EQ(dir.read("out.txt"), "line one\nline two\nhello\npartial");
    EXPECT_EQ(dir.read("stderr"),
              "warning: x\n"
              "no such file\n"
              "zfarm-sink: task render/7 failed: exit code 2\n"
              "zfarm-sink: task render/43 failed: exit code 3\n");
}

TEST(ResultWriter, FormatNames) {
    EXPECT_EQ(*zfarm::sink::parse_output_format("jsonl"), output_format::jsonl);
    EXPECT_EQ(*zfarm::sink::parse_output_format("text"), output_format::text);
    EXPECT_FALSE(zfarm::sink::parse_output_format("csv"));
}

// ---------------------------------------------------------------------------
// The file

TEST(ResultWriter, WritesOneLinePerResultAndFlushes) {
    temp_dir dir;
    const std::string path = dir.file("results.jsonl");
    auto w = result_writer::open(path);
    ASSERT_TRUE(w) << w.error();
    w->write(ok_result());
    w->write(failed_result());
    EXPECT_TRUE(w->flush());
    const auto lines = lines_of(dir.read("results.jsonl"));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0], to_json_line(ok_result()));
    EXPECT_EQ(lines[1], to_json_line(failed_result()));
    EXPECT_EQ(dir.read("results.jsonl").back(), '\n');
}

TEST(ResultWriter, WritesExecLinesFromTheOutcome) {
    // Decoded by the writer, or given (as the recorder does): the same line.
    // Without an outcome, the output bytes are written as they are.
    temp_dir dir;
    auto w = result_writer::open(dir.file("results.jsonl"));
    ASSERT_TRUE(w) << w.error();
    const outcome o = exec_outcome();
    const result r = exec_result(o);
    w->write(r);
    w->write(r, &o);
    w->write(r, nullptr);
    EXPECT_TRUE(w->flush());
    const auto lines = lines_of(dir.read("results.jsonl"));
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], to_json_line(r));
    EXPECT_EQ(lines[1], to_json_line(r));
    EXPECT_EQ(json::parse(lines[0]).at("cmd"), "echo hello");
    const json raw = json::parse(lines[2]);
    EXPECT_FALSE(raw.contains("cmd"));
    EXPECT_EQ(raw.size(), 8u) << "the keys of any other kind: " << lines[2];
}

TEST(ResultWriter, BuffersUntilFlush) {
    temp_dir dir;
    auto w = result_writer::open(dir.file("results.jsonl"));
    ASSERT_TRUE(w) << w.error();
    w->write(ok_result());
    EXPECT_EQ(dir.read("results.jsonl"), "");
    EXPECT_TRUE(w->flush());
    EXPECT_EQ(lines_of(dir.read("results.jsonl")).size(), 1u);
    EXPECT_TRUE(w->flush()) << "flushing nothing succeeds";
}

TEST(ResultWriter, AppendsToAnExistingFile) {
    temp_dir dir;
    const std::string path = dir.write("results.jsonl", "{\"earlier\":true}\n");
    {
        auto w = result_writer::open(path);
        ASSERT_TRUE(w) << w.error();
        w->write(ok_result());
        EXPECT_TRUE(w->flush());
    }
    {
        auto w = result_writer::open(path);
        ASSERT_TRUE(w) << w.error();
        w->write(failed_result());
        EXPECT_TRUE(w->flush());
    }
    const auto lines = lines_of(dir.read("results.jsonl"));
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], "{\"earlier\":true}");
    EXPECT_EQ(json::parse(lines[1]).at("id"), 42);
    EXPECT_EQ(json::parse(lines[2]).at("id"), 43);
}

TEST(ResultWriter, FlushesWhenDestroyed) {
    temp_dir dir;
    {
        auto w = result_writer::open(dir.file("results.jsonl"));
        ASSERT_TRUE(w) << w.error();
        w->write(ok_result());
    }
    EXPECT_EQ(lines_of(dir.read("results.jsonl")).size(), 1u);
}

TEST(ResultWriter, MovedWriterKeepsTheFile) {
    temp_dir dir;
    auto w = result_writer::open(dir.file("results.jsonl"));
    ASSERT_TRUE(w) << w.error();
    w->write(ok_result());
    result_writer moved(std::move(*w));
    EXPECT_FALSE(w->flush()) << "a moved-from writer has no file";
    moved.write(failed_result());
    EXPECT_TRUE(moved.flush());
    EXPECT_EQ(lines_of(dir.read("results.jsonl")).size(), 2u);
}

TEST(ResultWriter, FlushReportsAFullDisk) {
    auto w = result_writer::open("/dev/full");
    if (!w) GTEST_SKIP() << w.error();
    w->write(ok_result());
    errno = 0;
    EXPECT_FALSE(w->flush());
    EXPECT_EQ(errno, ENOSPC);
}

TEST(ResultWriter, OpenFailsWithAOneLineReason) {
    temp_dir dir;
    const std::string path = dir.file("no-such-dir/results.jsonl");
    auto w = result_writer::open(path);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), "cannot open " + path + " for appending: No such file or directory");
}

TEST(ResultWriter, DashAndEmptyPathMeanStdout) {
    auto dash = result_writer::open("-");
    ASSERT_TRUE(dash) << dash.error();
    auto empty = result_writer::open("");
    ASSERT_TRUE(empty) << empty.error();
    // Nothing written, so nothing reaches the test's stdout.
    EXPECT_TRUE(dash->flush());
}

}  // namespace
