// Unit tests for sink/recovery.hpp: rebuilding what an earlier sink recorded
// from its output file (PROTOCOL.md 10.1), including the torn last line a
// crash mid-write leaves behind.
#include "recovery.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "temp_dir.hpp"

namespace {

using zfarm::sink::job_table;
using zfarm::sink::recover;
using zfarm::unit::temp_dir;

std::string line(const std::string& job, std::uint64_t id, const std::string& status = "ok") {
    return R"({"job":")" + job + R"(","id":)" + std::to_string(id) + R"(,"status":")" + status +
           R"(","attempts":1,"worker":"w","ms":1.5,"start":0.0,"output":"x"})" + "\n";
}

const auto now = std::chrono::steady_clock::now();

TEST(Recovery, RestoresEveryResultOfEveryJob) {
    temp_dir dir;
    const auto path =
        dir.write("out.jsonl", line("a", 0) + line("a", 1, "failed") + line("b", 7) + line("a", 3));
    job_table jobs;
    auto r = recover(path, jobs);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->results, 4u);
    EXPECT_EQ(r->jobs, 2u);
    EXPECT_EQ(r->torn_bytes, 0u);
    EXPECT_EQ(r->duplicates, 0u);
    EXPECT_EQ(jobs.dormant_count(), 2u);
    auto* a = jobs.open("a", now);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->recorded.floor(), 2u);
    EXPECT_TRUE(a->recorded.contains(3));
    EXPECT_EQ(a->ok, 2u);
    EXPECT_EQ(a->failed, 1u);
}

TEST(Recovery, CutsATornLastLineSoAppendedLinesStayWhole) {
    temp_dir dir;
    const std::string whole = line("a", 0) + line("a", 1);
    const std::string torn = R"({"job":"a","id":2,"sta)";
    const auto path = dir.write("out.jsonl", whole + torn);
    job_table jobs;
    auto r = recover(path, jobs);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->results, 2u);
    EXPECT_EQ(r->torn_bytes, torn.size());
    EXPECT_EQ(std::filesystem::file_size(path), whole.size());
    EXPECT_FALSE(jobs.open("a", now)->recorded.contains(2));
}

TEST(Recovery, ATornLineThatHappensToBeValidJsonIsStillCut) {
    // Without its newline the line may be a prefix of a longer one: never trusted.
    temp_dir dir;
    const std::string last = line("a", 1);
    const auto path = dir.write("out.jsonl", line("a", 0) + last.substr(0, last.size() - 1));
    job_table jobs;
    auto r = recover(path, jobs);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->results, 1u);
    EXPECT_EQ(r->torn_bytes, last.size() - 1);
}

TEST(Recovery, ReportsTheLineThatIsNotAResult) {
    temp_dir dir;
    job_table jobs;
    const std::pair<std::string, std::string> cases[] = {
        {"hello", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {R"({"id":1,"status":"ok"})", R"(no "job" string)"},
        {R"({"job":"a","id":-1,"status":"ok"})", R"(no "id" unsigned integer)"},
        {R"({"job":"a","id":1,"status":"maybe"})", R"(no "status" of "ok" or "failed")"},
        {R"({"job":")" + std::string(300, 'j') + R"(","id":1,"status":"ok"})",
         R"("job" is longer than 256 bytes)"},
    };
    for (const auto& [bad, reason] : cases) {
        const auto path = dir.write("bad.jsonl", line("a", 0) + bad + "\n" + line("a", 1));
        auto r = recover(path, jobs);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error(), path + ":2: not a zfarm result line: " + reason);
    }
}

TEST(Recovery, CountsRepeatedIdsAndSkipsBlankLines) {
    temp_dir dir;
    const auto path = dir.write("out.jsonl", line("a", 0) + "\n" + line("a", 0));
    job_table jobs;
    auto r = recover(path, jobs);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->results, 1u);
    EXPECT_EQ(r->duplicates, 1u);
}

TEST(Recovery, RefusesAnIdFarBeyondTheRest) {
    temp_dir dir;
    const auto path = dir.write("out.jsonl", line("a", 0) + line("a", 1ull << 40));
    job_table jobs;
    auto r = recover(path, jobs);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find(":2: id 1099511627776 of job a is too far above"), std::string::npos)
        << r.error();
}

TEST(Recovery, AMissingFileRestoresNothing) {
    temp_dir dir;
    job_table jobs;
    auto r = recover(dir.file("absent.jsonl"), jobs);
    ASSERT_TRUE(r) << r.error();
    EXPECT_TRUE(r->file_missing);
    EXPECT_EQ(r->results, 0u);
}

TEST(Recovery, AnUnreadablePathIsAnError) {
    temp_dir dir;
    job_table jobs;
    auto r = recover(dir.path().string(), jobs);  // a directory
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("cannot read"), std::string::npos) << r.error();
}

TEST(Recovery, ReadsBackExecLines) {
    // 10.1 rule 1 needs only job, id and status: the exec keys (10, rule 4)
    // are left alone, whatever their types.
    temp_dir dir;
    const std::string exec_line =
        R"x({"job":"e","id":1,"status":"failed","attempts":1,"worker":"w","ms":2.5,)x"
        R"x("start":1795770000.5,"output":"partial","stderr_base64":"//79","exit":null,)x"
        R"x("signal":9,"rss_kb":1234,"host":"node7","cmd":"sleep 100","stdout_dropped":5,)x"
        R"x("error":"killed by signal 9 (SIGKILL)"})x"
        "\n";
    const auto path = dir.write("out.jsonl", line("e", 0) + exec_line);
    job_table jobs;
    auto r = recover(path, jobs);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->results, 2u);
    auto* e = jobs.open("e", now);
    EXPECT_EQ(e->recorded.floor(), 2u);
    EXPECT_EQ(e->ok, 1u);
    EXPECT_EQ(e->failed, 1u);
    EXPECT_TRUE(jobs.recorded_failed("e", 1));
}

}  // namespace
