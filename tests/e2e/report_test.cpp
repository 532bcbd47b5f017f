// End-to-end: the end-of-job report. The sink sends its REPORT (PROTOCOL.md
// 5.16) before DONE; the ventilator prints the report on stderr (before the
// summary line on stdout, which is unchanged) and writes it as JSON with
// --report FILE.
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

nlohmann::json read_json(const std::filesystem::path& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in) << path;
    return nlohmann::json::parse(in);
}

std::string this_host() {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    return name;
}

TEST(Report, PrintedAndWrittenWithTaskTimesAndAWorkerRowEach) {
    pipeline p("credit");
    const auto report = p.dir() / "report.json";
    p.start(2, {"--sleep", "40", "--ms", "30", "--report", report.string()}, "rep");
    ASSERT_EQ(p.ventilator().wait_for_exit(k_exit_timeout), 0) << p.ventilator().stderr_text();

    const std::string err = p.ventilator().stderr_text();
    EXPECT_NE(err.find("report of job rep: 40 tasks, 40 ok, 0 failed, 0 retried"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("  task time  p50 "), std::string::npos) << err;
    EXPECT_NE(err.find(this_host()), std::string::npos) << "the workers' host: " << err;
    EXPECT_EQ(p.ventilator().stdout_text().find("report"), std::string::npos)
        << "stdout keeps its one summary line";
    EXPECT_NE(p.ventilator().stdout_text().find("job rep: 40 tasks, 40 ok, 0 failed, 2 workers"),
              std::string::npos);

    const auto j = read_json(report);
    EXPECT_EQ(j["job"], "rep");
    EXPECT_EQ(j["outcome"], "done");
    EXPECT_EQ(j["dispatch"], "credit");
    EXPECT_EQ(j["tasks"]["total"], 40);
    EXPECT_EQ(j["tasks"]["ok"], 40);
    EXPECT_GT(j["wall_seconds"].get<double>(), 0.0);
    // Sleeps of 30 ms: every percentile at least that, and in order.
    const auto& t = j["task_seconds"];
    ASSERT_TRUE(t.is_object()) << j.dump(2);
    EXPECT_GE(t["p50"].get<double>(), 0.029);
    EXPECT_LT(t["p50"].get<double>(), 1.0);
    EXPECT_LE(t["p50"].get<double>(), t["p95"].get<double>());
    EXPECT_LE(t["p95"].get<double>(), t["p99"].get<double>());
    EXPECT_LE(t["p99"].get<double>(), t["max"].get<double>());
    ASSERT_EQ(j["workers"].size(), 2u) << j.dump(2);
    std::uint64_t tasks = 0;
    for (const auto& w : j["workers"]) {
        tasks += w["tasks"].get<std::uint64_t>();
        EXPECT_EQ(w["host"], this_host());
        EXPECT_EQ(w["threads"], 1);
        EXPECT_GT(w["busy"].get<double>(), 0.0);
        EXPECT_LE(w["busy"].get<double>(), 1.0);
        EXPECT_EQ(w["lost"], 0);
    }
    EXPECT_EQ(tasks, 40u) << "the rows add up to the job";
}

TEST(Report, PushDispatchSaysHowLongWorkersSatIdleWhileOthersHadQueuedTasks) {
    // Slow and quick tasks alternate; push dispatch deals them out in turn,
    // so one worker gets the slow ones queued and the other runs dry.
    pipeline p("push");
    std::vector<std::string> lines;
    for (int i = 0; i < 24; ++i)
        lines.push_back(i % 2 == 0 ? R"({"kind":"sleep","payload":"150"})"
                                   : R"({"kind":"sleep","payload":"1"})");
    const auto tasks = write_lines(p.dir() / "tasks.jsonl", lines);
    const auto report = p.dir() / "report.json";
    // Both workers there before the ventilator: one that came late would
    // simply get fewer tasks, and the imbalance would be another one.
    p.start_sink({"--once"});
    for (int i = 0; i < 2; ++i)
        p.start_worker({"--exit-when-done"});
    ASSERT_TRUE(wait_until(
        [&] {
            const std::string log = p.sink().stderr_text();
            const auto first = log.find(" joined (host");
            return first != std::string::npos &&
                   log.find(" joined (host", first + 1) != std::string::npos;
        },
        k_start_timeout))
        << p.sink().stderr_text();
    p.start_ventilator({"--tasks-file", tasks, "--report", report.string(), "--job", "idle"});
    ASSERT_EQ(p.ventilator().wait_for_exit(k_exit_timeout), 0) << p.ventilator().stderr_text();
    const auto j = read_json(report);
    ASSERT_EQ(j["workers"].size(), 2u) << j.dump(2);
    EXPECT_GT(j["idle_while_queued_seconds"].get<double>(), 0.2) << j.dump(2);
    const std::string err = p.ventilator().stderr_text();
    EXPECT_NE(err.find("push dispatch: workers sat idle"), std::string::npos) << err;
    EXPECT_NE(err.find("--dispatch credit"), std::string::npos) << err;
}

TEST(Report, QuietPrintsNoneButTheFileIsWritten) {
    pipeline p("push");
    const auto report = p.dir() / "report.json";
    p.start(1, {"--echo", "10", "-q", "--report", report.string()}, "quiet");
    ASSERT_EQ(p.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(p.ventilator().stderr_text().find("report of job"), std::string::npos);
    EXPECT_EQ(read_json(report)["tasks"]["total"], 10);
}

TEST(Report, AFileThatCannotBeWrittenIsAUsageErrorBeforeAnythingRuns) {
    pipeline p("push");
    auto& v = p.start_ventilator(
        {"--echo", "1", "--report", (p.dir() / "no" / "such" / "report.json").string()});
    EXPECT_EQ(v.wait_for_exit(k_exit_timeout), 2);
    const std::string err = v.stderr_text();
    EXPECT_NE(err.find("cannot write --report"), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), err.size() - 1) << "one line: " << err;
}

}  // namespace
}  // namespace zfarm::test
