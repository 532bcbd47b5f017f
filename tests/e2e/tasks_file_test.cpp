// End-to-end: jobs read from --tasks-file, with tasks that fail. A failed
// task is sent again up to --retries times (PROTOCOL.md 5.14), then recorded
// once with the error of every attempt, and the job exits 1.
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

class TasksFile : public ::testing::TestWithParam<std::string> {
  protected:
    std::string write_tasks(const std::vector<std::string>& lines) {
        return write_lines(farm.dir() / "tasks.jsonl", lines);
    }

    std::map<std::uint64_t, nlohmann::json> results_by_id() {
        return read_results_by_id(farm.output());
    }

    pipeline farm{GetParam()};
};

TEST_P(TasksFile, SleepWithNonNumericPayloadIsRecordedFailedAndJobExitsOne) {
    const auto file = write_tasks({
        R"({"kind":"sleep","payload":"5"})",
        R"({"kind":"sleep","payload":"abc"})",
        R"({"kind":"sleep","payload":"1"})",
    });
    farm.start(2, {"--tasks-file", file, "--retries", "2"}, "failing");

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1) << "sink --once: the job failed";
    for (auto* w : farm.workers())
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();

    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, 3));
    auto by_id = results_by_id();
    EXPECT_EQ(by_id[0].value("status", ""), "ok");
    EXPECT_EQ(by_id[1].value("status", ""), "failed");
    EXPECT_EQ(by_id[1].value("attempts", 0), 3) << "--retries 2: three attempts";
    const std::string error = by_id[1].value("error", "");
    for (const std::string attempt : {"attempt 1: ", "; attempt 2: ", "; attempt 3: "})
        EXPECT_NE(error.find(attempt + "payload must be a number of milliseconds"),
                  std::string::npos)
            << attempt << " in " << by_id[1].dump();
    EXPECT_EQ(by_id[0].value("attempts", 0), 1);
    EXPECT_EQ(by_id[2].value("status", ""), "ok");
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "failing", 3, 2, 1,
                                workers_of(results).size()));
}

TEST_P(TasksFile, MixedKindsRunAndUnknownKindIsRecordedFailed) {
    const auto file = write_tasks({
        R"({"kind":"sleep","payload":"3"})",
        R"({"kind":"echo","payload":"hello"})",
        R"({"kind":"spin","payload":"2"})",
        R"({"kind":"frobnicate","payload":"x"})",
        "",
        R"({"kind":"echo","payload":{"a":1}})",
        R"({"kind":"echo"})",
    });
    farm.start(2, {"--tasks-file", file}, "mixed");

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1);
    for (auto* w : farm.workers())
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();

    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, 6)) << "the blank line is not a task";
    auto by_id = results_by_id();
    for (std::uint64_t id : {0, 1, 2, 4, 5})
        EXPECT_EQ(by_id[id].value("status", ""), "ok") << by_id[id].dump();
    EXPECT_EQ(by_id[1].value("output", ""), "hello");
    EXPECT_EQ(by_id[4].value("output", ""), R"({"a":1})") << "a JSON payload is sent as text";
    EXPECT_EQ(by_id[5].value("output", "?"), "");
    EXPECT_EQ(by_id[3].value("status", ""), "failed");
    EXPECT_NE(by_id[3].value("error", "").find("unknown task kind"), std::string::npos)
        << by_id[3].dump();
    EXPECT_EQ(by_id[3].value("attempts", 0), 4) << "the default --retries is 3";
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "mixed", 6, 5, 1,
                                workers_of(results).size()));
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, TasksFile, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
