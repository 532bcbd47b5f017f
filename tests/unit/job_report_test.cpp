// Unit tests for sink/job_report.hpp and the report's tallies in
// sink/job_table.hpp: the REPORT of a finished job (PROTOCOL.md 5.16).
#include "job_report.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "job_table.hpp"

namespace {

using namespace std::chrono_literals;
using zfarm::proto::done;
using zfarm::proto::report;
using zfarm::proto::result;
using zfarm::proto::task_status;
using zfarm::sink::job_state;
using zfarm::sink::job_table;
using zfarm::sink::worker_facts;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

result res(std::uint64_t id, const std::string& worker, std::uint64_t elapsed_us,
           task_status status = task_status::ok) {
    return result{"j",    id,         1,  worker,
                  status, elapsed_us, "", status == task_status::ok ? "" : "boom"};
}

worker_facts everyone_present(const std::string& name) {
    return worker_facts{"host-of-" + name, 2, true};
}

// Records `results` as arriving at t0 + each one's offset, closes the job
// and returns its REPORT.
report finish(job_table& t,
              const std::vector<std::pair<result, std::chrono::microseconds>>& results,
              const std::function<worker_facts(const std::string&)>& about = everyone_present) {
    job_state* j = t.open("j", t0);
    j->total = results.size();
    for (const auto& [r, at] : results)
        EXPECT_EQ(t.record(r, t0 + at), job_table::record_outcome::added);
    report out;
    const auto finished = t.collect_finished(t0 + 10s, [&](const job_state& js, const done& d) {
        out = zfarm::sink::make_report(js, d, about);
    });
    EXPECT_EQ(finished.size(), 1u);
    return out;
}

TEST(JobReport, CountsEachWorkersTasksFailuresAndBusyTime) {
    job_table t;
    const report r = finish(t, {{res(0, "b", 1000), 1ms},
                                {res(1, "a", 3000), 4ms},
                                {res(2, "a", 5000, task_status::failed), 9ms}});
    EXPECT_EQ(r.job, "j");
    EXPECT_EQ(r.total, 3u);
    EXPECT_EQ(r.elapsed_ms, 10000u);
    EXPECT_EQ(r.busy_us, 9000u);
    EXPECT_NEAR(static_cast<double>(r.p50_us), 3000.0, 30.0);
    EXPECT_EQ(r.max_us, 5000u);
    ASSERT_EQ(r.workers.size(), 2u);
    EXPECT_EQ(r.workers[0].worker, "a") << "rows in name order";
    EXPECT_EQ(r.workers[0].host, "host-of-a");
    EXPECT_EQ(r.workers[0].threads, 2u);
    EXPECT_EQ(r.workers[0].tasks, 2u);
    EXPECT_EQ(r.workers[0].failed, 1u);
    EXPECT_EQ(r.workers[0].busy_us, 8000u);
    EXPECT_EQ(r.workers[1].tasks, 1u);
}

TEST(JobReport, IdleIsFromAWorkersLastEndToTheLatestStartElsewhere) {
    // a ends its last task at 10 ms; b starts its last at 30 ms (ends at
    // 50 ms): a sat idle 20 ms while b still had a task to start. b's own
    // last end is after every start: not idle.
    job_table t;
    const report r = finish(
        t, {{res(0, "a", 10'000), 10ms}, {res(1, "b", 20'000), 30ms}, {res(2, "b", 20'000), 50ms}});
    ASSERT_EQ(r.workers.size(), 2u);
    EXPECT_EQ(r.workers[0].idle_us, 20'000u);
    EXPECT_EQ(r.workers[1].idle_us, 0u);
}

TEST(JobReport, IdleCountsOnlyFromTheJobsClose) {
    // Before JOB_CLOSE the tasks may not all exist (a slow input): a
    // worker's idle time starts at the later of its last end and the close.
    job_table t;
    job_state* j = t.open("j", t0);
    ASSERT_EQ(t.record(res(0, "a", 10'000), t0 + 10ms), job_table::record_outcome::added);
    j->total = 2;
    j->closed = t0 + 25ms;
    ASSERT_EQ(t.record(res(1, "b", 20'000), t0 + 50ms), job_table::record_outcome::added);
    report r;
    t.collect_finished(t0 + 1s, [&](const job_state& js, const done& d) {
        r = zfarm::sink::make_report(js, d, everyone_present);
    });
    ASSERT_EQ(r.workers.size(), 2u);
    EXPECT_EQ(r.workers[0].idle_us, 5'000u) << "from the close (25 ms) to b's start (30 ms)";
}

TEST(JobReport, TheVentilatorsOwnResultsAreNotTaskTimes) {
    // A task the ventilator gave up on (7.11) is recorded with no worker and
    // no time of its own: it counts in the job, not in its task times.
    job_table t;
    const report r =
        finish(t, {{res(0, "a", 4000), 5ms}, {res(1, "", 0, task_status::failed), 6ms}});
    EXPECT_EQ(r.timed, 1u);
    EXPECT_EQ(r.busy_us, 4000u);
    EXPECT_EQ(r.p50_us, r.max_us);
    ASSERT_EQ(r.workers.size(), 1u);
    EXPECT_EQ(r.workers[0].timed, 1u);
}

TEST(JobReport, AWorkerThatLeftOrWasLostIsNotIdle) {
    job_table t;
    const report r = finish(t, {{res(0, "a", 10'000), 10ms}, {res(1, "b", 20'000), 50ms}},
                            [](const std::string& name) {
                                return worker_facts{"", 0, name != "a"};
                            });
    EXPECT_EQ(r.workers[0].idle_us, 0u) << "a was gone, not idle";
    EXPECT_EQ(r.workers[0].host, "");
}

TEST(JobReport, OneWorkerIsNeverIdle) {
    job_table t;
    const report r = finish(t, {{res(0, "a", 1000), 1ms}, {res(1, "a", 1000), 2ms}});
    ASSERT_EQ(r.workers.size(), 1u);
    EXPECT_EQ(r.workers[0].idle_us, 0u);
}

TEST(JobReport, CountsLossesAndRejoinsWhileTheJobIsOpen) {
    job_table t;
    job_state* j = t.open("j", t0);
    j->total = 2;
    ASSERT_EQ(t.record(res(0, "a", 1000), t0), job_table::record_outcome::added);
    t.worker_lost("a", {});
    t.worker_lost("c", {{"j", 1, 1}});      // held a task of the job, delivered nothing
    t.worker_lost("d", {{"other", 1, 1}});  // nothing to do with it
    t.worker_rejoined("a");
    t.worker_rejoined("a");  // once per loss
    ASSERT_EQ(t.record(res(1, "a", 1000), t0), job_table::record_outcome::added);
    report r;
    std::vector<done> finished =
        t.collect_finished(t0 + 1s, [&](const job_state& js, const done& d) {
            r = zfarm::sink::make_report(js, d, everyone_present);
        });
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].workers, 1u) << "DONE counts workers that delivered a result";
    ASSERT_EQ(r.workers.size(), 2u);
    EXPECT_EQ(r.workers[0].worker, "a");
    EXPECT_EQ(r.workers[0].lost, 1u);
    EXPECT_EQ(r.workers[0].rejoined, 1u);
    EXPECT_EQ(r.workers[1].worker, "c");
    EXPECT_EQ(r.workers[1].lost, 1u);
    EXPECT_EQ(r.workers[1].tasks, 0u);
}

TEST(JobReport, KeepsTheWorkersWithTheMostTasksWhenThereAreTooMany) {
    job_table t;
    job_state* j = t.open("j", t0);
    const std::size_t n = zfarm::sink::k_max_report_workers + 10;
    std::uint64_t id = 0;
    for (std::size_t w = 0; w < n; ++w) {
        const std::string name = "w" + std::to_string(w);
        ASSERT_EQ(t.record(res(id++, name, 10), t0), job_table::record_outcome::added);
        if (w >= 10) {  // all but w0..w9 deliver twice
            ASSERT_EQ(t.record(res(id++, name, 10), t0), job_table::record_outcome::added);
        }
    }
    j->total = id;
    report r;
    t.collect_finished(t0 + 1s, [&](const job_state& js, const done& d) {
        r = zfarm::sink::make_report(js, d, everyone_present);
    });
    ASSERT_EQ(r.workers.size(), zfarm::sink::k_max_report_workers);
    for (const auto& w : r.workers)
        EXPECT_EQ(w.tasks, 2u) << w.worker;
}

TEST(JobReport, RestoredResultsCountButAreNotTimed) {
    job_table t;
    ASSERT_EQ(t.restore("j", 0, true, "old"), job_table::record_outcome::added);
    job_state* j = t.open("j", t0);
    j->total = 2;
    ASSERT_EQ(t.record(res(1, "new", 1000), t0 + 5ms), job_table::record_outcome::added);
    report r;
    t.collect_finished(t0 + 1s, [&](const job_state& js, const done& d) {
        r = zfarm::sink::make_report(js, d, everyone_present);
    });
    ASSERT_EQ(r.workers.size(), 2u);
    EXPECT_EQ(r.workers[0].worker, "new");
    EXPECT_EQ(r.workers[1].worker, "old");
    EXPECT_EQ(r.workers[1].tasks, 1u);
    EXPECT_EQ(r.workers[1].busy_us, 0u);
    EXPECT_EQ(r.workers[1].timed, 0u);
    EXPECT_EQ(r.workers[1].idle_us, 0u) << "untimed: no idle time claimed";
    EXPECT_EQ(r.busy_us, 1000u) << "task times are this run's";
    EXPECT_EQ(r.timed, 1u);
}

}  // namespace
