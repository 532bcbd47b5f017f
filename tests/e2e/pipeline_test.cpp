// End-to-end: the three real programs run jobs to completion in both dispatch
// modes, and every task's result is recorded exactly once.
#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

class Pipeline : public ::testing::TestWithParam<std::string> {
  protected:
    pipeline farm{GetParam()};
};

TEST_P(Pipeline, DemoJobRecordsEveryIdExactlyOnce) {
    farm.start(4, {"--demo", "100"}, "demo");

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    ASSERT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    for (auto* w : farm.workers())
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();

    const auto results = read_results(farm.output());
    EXPECT_EQ(results.size(), 100u);
    EXPECT_TRUE(has_each_id_once(results, 100));
    EXPECT_TRUE(all_ok_first_attempt(results));
    for (const auto& r : results)
        EXPECT_EQ(r.value("job", ""), "demo");
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "demo", 100, 100, 0,
                                workers_of(results).size()));
}

// A worker started after the job began gets a share of it (DESIGN.md: "late
// workers get work; nobody waits by hand").
void expect_late_worker_gets_tasks(pipeline& farm, std::vector<std::string> job) {
    farm.start_sink({"--once"});
    for (int i = 0; i < 3; ++i)
        farm.start_worker({"--exit-when-done"});
    job.insert(job.end(), {"--sleep", "300", "--ms", "20", "--job", "late"});
    farm.start_ventilator(job);

    ASSERT_TRUE(wait_until([&] { return count_lines(farm.output()) > 0; }, k_start_timeout))
        << "no result was recorded";
    ASSERT_TRUE(farm.ventilator().running()) << "the job ended before the late worker started";
    auto& late = farm.start_worker({"--exit-when-done", "--id", "late-worker"});

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(late.wait_for_exit(k_exit_timeout), 0);
    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, 300));
    EXPECT_TRUE(all_ok_first_attempt(results));
    EXPECT_TRUE(workers_of(results).contains("late-worker"))
        << "workers that delivered results: " << ::testing::PrintToString(workers_of(results));
}

TEST_P(Pipeline, LateWorkerReceivesTasks) {
    expect_late_worker_gets_tasks(farm, {});
}

// In push dispatch, tasks go to the workers connected when they are sent; a
// window smaller than the job keeps some back for a worker that comes later.
TEST(PushDispatch, LateWorkerReceivesTasksWhenTheWindowIsSmall) {
    pipeline farm("push");
    expect_late_worker_gets_tasks(farm, {"--window", "12"});
}

// A long stream: 100,000 tasks (a tenth under the sanitizers, which slow
// every message down about tenfold).
#ifdef ZFARM_SANITIZED
constexpr std::uint64_t k_echo_tasks = 10000;
#else
constexpr std::uint64_t k_echo_tasks = 100000;
#endif

TEST_P(Pipeline, HundredThousandEchoTasksCompleteExactlyOnce) {
    farm.start(4, {"--echo", std::to_string(k_echo_tasks)}, "echo");

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    ASSERT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    for (auto* w : farm.workers())
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();

    const auto results = read_results(farm.output());
    EXPECT_EQ(results.size(), k_echo_tasks);
    EXPECT_TRUE(has_each_id_once(results, k_echo_tasks));
    EXPECT_TRUE(all_ok_first_attempt(results));
    EXPECT_EQ(results.front().value("output", ""), std::string(32, 'x'));
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "echo", k_echo_tasks, k_echo_tasks,
                                0, workers_of(results).size()));
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, Pipeline, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
