// Unit tests for ventilator/final_report.hpp: the end-of-job report as text
// (stderr) and as JSON (--report FILE).
#include "final_report.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "temp_dir.hpp"

namespace {

using zfarm::proto::report;
using zfarm::proto::report_worker;
using zfarm::ventilator::dispatch_mode;
using zfarm::ventilator::format_report;
using zfarm::ventilator::job_outcome;
using zfarm::ventilator::report_file;
using zfarm::ventilator::report_json;

// 100 tasks on two 1-thread workers over 10 s; w2 sat idle 4 s at the end.
job_outcome sample(dispatch_mode mode = dispatch_mode::push) {
    job_outcome o;
    o.job = "render";
    o.dispatch = mode;
    o.total = 100;
    o.ok = 98;
    o.failed = 2;
    o.workers = 2;
    o.seconds = 10.5;
    o.retried = 3;
    report r;
    r.job = "render";
    r.total = 100;
    r.elapsed_ms = 10'000;
    r.timed = 100;
    r.busy_us = 15'000'000;
    r.p50_us = 120'000;
    r.p95_us = 480'000;
    r.p99_us = 950'000;
    r.max_us = 1'200'000;
    r.workers = {report_worker{"w1", "node1", 1, 60, 2, 60, 9'000'000, 0, 0, 0},
                 report_worker{"w2", "node2", 1, 40, 0, 40, 6'000'000, 4'000'000, 1, 1}};
    o.report = r;
    return o;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

TEST(VentilatorReport, TextHasCountsTimesAndARowPerWorker) {
    const auto lines = lines_of(format_report(sample()));
    ASSERT_EQ(lines.size(), 6u) << format_report(sample());
    EXPECT_EQ(lines[0],
              "report of job render: 100 tasks, 98 ok, 2 failed, 3 retried, in 10.50 s (10/s)");
    EXPECT_EQ(lines[1], "  task time  p50 120 ms, p95 480 ms, p99 950 ms, max 1.20 s, mean 150 ms");
    EXPECT_NE(lines[2].find("worker"), std::string::npos);
    EXPECT_NE(lines[2].find("busy"), std::string::npos);
    // w1: 60 tasks, 2 failed, busy 9 of 10 s, mean 150 ms.
    EXPECT_NE(lines[3].find("w1"), std::string::npos);
    EXPECT_NE(lines[3].find("node1"), std::string::npos);
    EXPECT_NE(lines[3].find(" 90%"), std::string::npos) << lines[3];
    EXPECT_NE(lines[3].find("150 ms"), std::string::npos) << lines[3];
    EXPECT_NE(lines[4].find(" 60%"), std::string::npos) << lines[4];
    EXPECT_NE(lines[4].find("4.00 s"), std::string::npos) << lines[4];
    EXPECT_EQ(lines[5],
              "  push dispatch: workers sat idle 4.00 s in all while others still had tasks "
              "queued; --dispatch credit hands each task to the first free worker");
}

TEST(VentilatorReport, TheIdleHintIsForPushDispatchAndOnlyWhenItMatters) {
    const std::string credit = format_report(sample(dispatch_mode::credit));
    EXPECT_EQ(credit.find("push dispatch"), std::string::npos);
    job_outcome o = sample();
    o.report->workers[1].idle_us = 500'000;  // 0.5 of 20 worker-seconds: 2.5 %
    const std::string small = format_report(o);
    EXPECT_NE(small.find("sat idle 500 ms in all"), std::string::npos) << small;
    EXPECT_EQ(small.find("--dispatch credit"), std::string::npos) << small;
    o.report->workers[1].idle_us = 0;
    EXPECT_EQ(format_report(o).find("sat idle"), std::string::npos);
}

TEST(VentilatorReport, SaysSoWhenTheSinkSentNoReport) {
    job_outcome o = sample();
    o.report.reset();
    const auto lines = lines_of(format_report(o));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[1], "  no report from the sink: task times and workers unknown");
}

TEST(VentilatorReport, ShowsAtMostMaxRowsWorkers) {
    job_outcome o = sample();
    for (int i = 0; i < 50; ++i)
        o.report->workers.push_back(
            report_worker{"x" + std::to_string(i), "h", 1, 1, 0, 1, 1, 0, 0, 0});
    const auto lines = lines_of(format_report(o, 5));
    ASSERT_GE(lines.size(), 9u);
    EXPECT_EQ(lines[8], "  ... and 47 more worker(s): --report FILE has every one");
}

TEST(VentilatorReport, JsonHasEveryFigure) {
    const auto j = report_json(sample());
    EXPECT_EQ(j["job"], "render");
    EXPECT_EQ(j["outcome"], "done");
    EXPECT_EQ(j["dispatch"], "push");
    EXPECT_EQ(j["tasks"]["total"], 100);
    EXPECT_EQ(j["tasks"]["ok"], 98);
    EXPECT_EQ(j["tasks"]["failed"], 2);
    EXPECT_EQ(j["tasks"]["retried"], 3);
    EXPECT_DOUBLE_EQ(j["wall_seconds"].get<double>(), 10.5);
    EXPECT_DOUBLE_EQ(j["task_seconds"]["p95"].get<double>(), 0.48);
    EXPECT_DOUBLE_EQ(j["task_seconds"]["mean"].get<double>(), 0.15);
    ASSERT_EQ(j["workers"].size(), 2u);
    EXPECT_EQ(j["workers"][1]["host"], "node2");
    EXPECT_DOUBLE_EQ(j["workers"][1]["busy"].get<double>(), 0.6);
    EXPECT_EQ(j["workers"][1]["lost"], 1);
    EXPECT_EQ(j["workers"][1]["rejoined"], 1);
    EXPECT_DOUBLE_EQ(j["workers"][1]["idle_while_queued_seconds"].get<double>(), 4.0);
    EXPECT_DOUBLE_EQ(j["idle_while_queued_seconds"].get<double>(), 4.0);
}

TEST(VentilatorReport, NoTaskTimesWhenEveryResultWasRestored) {
    job_outcome o = sample();
    o.report->timed = 0;
    for (auto& w : o.report->workers)
        w.timed = w.busy_us = 0;
    const auto lines = lines_of(format_report(o));
    EXPECT_EQ(lines[1], "  task time  unknown: no result was timed by this run of the sink");
    EXPECT_NE(lines[3].find("        -"), std::string::npos) << "no mean: " << lines[3];
    const auto j = report_json(o);
    EXPECT_TRUE(j["task_seconds"].is_null());
    EXPECT_TRUE(j["workers"][0]["mean_seconds"].is_null());
}

TEST(VentilatorReport, NamesFromTheWireCannotDriveTheTerminalOrBreakTheJson) {
    job_outcome o = sample();
    o.report->workers[0].worker = "evil\x1b[2J\nname";
    o.report->workers[0].host = std::string("\xff\xfe", 2);  // not UTF-8
    const std::string text = format_report(o);
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_NE(text.find("evil?[2J?name"), std::string::npos) << text;
    zfarm::unit::temp_dir dir;
    auto f = report_file::open(dir.file("report.json"));
    ASSERT_TRUE(f) << f.error();
    std::string why;
    ASSERT_TRUE(f->write(o, why)) << why;
    std::ifstream in(dir.file("report.json"));
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["workers"][0]["host"], "\xef\xbf\xbd\xef\xbf\xbd") << "U+FFFD each";
}

TEST(VentilatorReport, AJobThatCouldNotRunIsWrittenAsAnError) {
    zfarm::unit::temp_dir dir;
    auto f = report_file::open(dir.file("report.json"));
    ASSERT_TRUE(f) << f.error();
    std::string why;
    ASSERT_TRUE(f->write_error("j", "bad endpoint", why)) << why;
    EXPECT_FALSE(f->write_error("j", "twice", why)) << "written once";
    std::ifstream in(dir.file("report.json"));
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["outcome"], "error");
    EXPECT_EQ(j["error"], "bad endpoint");
}

TEST(VentilatorReport, JsonOfAHaltedJobHasNoSinkPart) {
    job_outcome o = sample();
    o.report.reset();
    o.halted_by = 7;
    const auto j = report_json(o);
    EXPECT_EQ(j["outcome"], "halted");
    EXPECT_TRUE(j["task_seconds"].is_null());
    EXPECT_TRUE(j["workers"].empty());
}

TEST(VentilatorReport, FileIsWrittenAsJson) {
    zfarm::unit::temp_dir dir;
    const std::string path = dir.file("report.json");
    auto f = report_file::open(path);
    ASSERT_TRUE(f) << f.error();
    std::string why;
    ASSERT_TRUE(f->write(sample(), why)) << why;
    std::ifstream in(path);
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["tasks"]["total"], 100);
}

TEST(VentilatorReport, AFileThatCannotBeWrittenFailsAtOnce) {
    zfarm::unit::temp_dir dir;
    auto f = report_file::open(dir.file("no/such/dir/report.json"));
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().find("cannot write --report"), std::string::npos) << f.error();
    EXPECT_EQ(f.error().find('\n'), std::string::npos);
}

}  // namespace
