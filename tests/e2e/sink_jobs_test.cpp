// End-to-end: a sink and its workers serve job after job (DESIGN.md,
// "Completion"), and a worker with --exit-when-done that joins after a job
// finished still learns of it from the re-published DONE.
#include <csignal>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

std::vector<nlohmann::json> results_of_job(const std::vector<nlohmann::json>& all,
                                           const std::string& job) {
    std::vector<nlohmann::json> out;
    for (const auto& r : all)
        if (r.value("job", "") == job) out.push_back(r);
    return out;
}

class SinkJobs : public ::testing::TestWithParam<std::string> {
  protected:
    pipeline farm{GetParam()};
};

TEST_P(SinkJobs, SecondJobCompletesAfterTheFirst) {
    farm.start_sink();
    farm.start_worker();
    farm.start_worker();

    auto& first = farm.start_ventilator({"--demo", "20", "--job", "first"});
    ASSERT_EQ(first.wait_for_exit(k_exit_timeout), 0);
    auto& second = farm.start_ventilator({"--echo", "500", "--job", "second"});
    ASSERT_EQ(second.wait_for_exit(k_exit_timeout), 0);

    const auto all = read_results(farm.output());
    EXPECT_EQ(all.size(), 520u);
    const auto a = results_of_job(all, "first");
    const auto b = results_of_job(all, "second");
    EXPECT_TRUE(has_each_id_once(a, 20));
    EXPECT_TRUE(has_each_id_once(b, 500));
    EXPECT_TRUE(all_ok_first_attempt(all));
    EXPECT_TRUE(is_summary_line(first.stdout_text(), "first", 20, 20, 0, workers_of(a).size()));
    EXPECT_TRUE(is_summary_line(second.stdout_text(), "second", 500, 500, 0, workers_of(b).size()));

    EXPECT_TRUE(farm.sink().running()) << "a sink without --once serves on";
    for (auto* p : farm.workers())
        EXPECT_TRUE(p->running()) << p->name() << " without --exit-when-done serves on";
    farm.sink().signal(SIGTERM);
    for (auto* p : farm.workers())
        p->signal(SIGTERM);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    for (auto* p : farm.workers())
        EXPECT_EQ(p->wait_for_exit(k_exit_timeout), 0) << p->name();
}

TEST_P(SinkJobs, WorkerStartedAfterDoneStillExitsWhenDone) {
    farm.start_sink();
    farm.start_worker();
    auto& job = farm.start_ventilator({"--demo", "20", "--job", "finished"});
    ASSERT_EQ(job.wait_for_exit(k_exit_timeout), 0);

    auto& late = farm.start_worker({"--exit-when-done", "--id", "after-done"});
    EXPECT_EQ(late.wait_for_exit(k_exit_timeout), 0)
        << "the worker did not learn that every job is done";

    EXPECT_TRUE(farm.sink().running());
    farm.sink().signal(SIGINT);
    farm.workers().front()->signal(SIGINT);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.workers().front()->wait_for_exit(k_exit_timeout), 0);
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, SinkJobs, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
