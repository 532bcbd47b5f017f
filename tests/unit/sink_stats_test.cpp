// Unit tests for sink/sink_stats.hpp: the aggregates behind the status
// endpoint: worker rows through HELLO, HEARTBEAT, loss and BYE; the bounded
// ring of recent failures; job rows from the job table with rate and ETA.
#include "sink_stats.hpp"

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using zfarm::proto::task_status;
using zfarm::sink::job_table;
using zfarm::sink::sink_counters;
using zfarm::sink::sink_stats;
using zfarm::sink::worker_state;
namespace proto = zfarm::proto;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

proto::result result_of(const std::string& job, std::uint64_t id, task_status status) {
    proto::result r;
    r.job = job;
    r.id = id;
    r.worker = "w1";
    r.status = status;
    r.elapsed_us = 2000;
    if (status == task_status::failed) r.error = "exit 1: " + std::string(2000, 'x');
    return r;
}

TEST(SinkStats, WorkerRowFollowsHelloHeartbeatLossAndRejoin) {
    sink_stats stats(t0);
    job_table jobs;
    stats.hello(proto::hello{"w1", "node7", 4242, 4, "0.1.0"}, t0);
    stats.heartbeat(proto::heartbeat{"w1", 17, {{"j", 1, 1}, {"j", 2, 1}}}, t0 + 1s);
    stats.hello(proto::hello{"w2", "node8", 99, 2, "0.1.0"}, t0);
    stats.heartbeat(proto::heartbeat{"w2", 3, {{"j", 3, 1}, {"j", 4, 1}, {"j", 5, 1}}}, t0 + 1s);
    auto s = stats.snapshot(t0 + 2s, jobs, {});
    ASSERT_EQ(s->workers.size(), 2u);
    const auto& w = s->workers[0];
    EXPECT_EQ(w.host, "node7");
    EXPECT_EQ(w.pid, 4242u);
    EXPECT_EQ(w.threads, 4u);
    EXPECT_EQ(w.tasks_done, 17u);
    EXPECT_EQ(w.running, 2u);
    EXPECT_EQ(w.queued, 0u);
    EXPECT_DOUBLE_EQ(w.busy, 0.5);
    EXPECT_DOUBLE_EQ(w.last_seen_seconds_ago, 1.0);
    EXPECT_EQ(w.state, worker_state::alive);
    EXPECT_EQ(s->workers[1].running, 2u) << "two threads";
    EXPECT_EQ(s->workers[1].queued, 1u);
    EXPECT_DOUBLE_EQ(s->workers[1].busy, 1.0);
    EXPECT_EQ(s->in_flight, 5u);
    stats.left("w2", t0 + 2s);

    stats.lost("w1", t0 + 5s);
    s = stats.snapshot(t0 + 5s, jobs, {});
    EXPECT_EQ(s->workers[0].state, worker_state::lost);
    EXPECT_EQ(s->in_flight, 0u) << "a lost worker's tasks are not in flight";
    stats.heartbeat(proto::heartbeat{"w1", 18, {}}, t0 + 6s);
    s = stats.snapshot(t0 + 6s, jobs, {});
    EXPECT_EQ(s->workers[0].state, worker_state::alive) << "it rejoined";
    EXPECT_EQ(s->workers[0].host, "node7") << "what HELLO said is kept";
    stats.left("w1", t0 + 7s);
    s = stats.snapshot(t0 + 7s, jobs, {});
    EXPECT_EQ(s->workers[0].state, worker_state::left);
}

TEST(SinkStats, AWorkerWhoseHelloWentToAnEarlierSinkIsKnownByItsHeartbeat) {
    sink_stats stats(t0);
    job_table jobs;
    stats.heartbeat(proto::heartbeat{"w9", 5, {{"j", 1, 1}}, "node9", 777, 2, "0.1.0"}, t0);
    auto s = stats.snapshot(t0 + 1s, jobs, {});
    ASSERT_EQ(s->workers.size(), 1u);
    EXPECT_EQ(s->workers[0].host, "node9");
    EXPECT_EQ(s->workers[0].pid, 777u);
    EXPECT_EQ(s->workers[0].threads, 2u);
    EXPECT_DOUBLE_EQ(s->workers[0].busy, 0.5) << "one task on two threads";
}

TEST(SinkStats, KeepsTheLatestFailuresWithTheirReasonsCut) {
    sink_stats stats(t0);
    job_table jobs;
    for (std::uint64_t id = 0; id < sink_stats::k_failures_kept + 10; ++id)
        stats.recorded(1000, sink_stats::failure_of(result_of("j", id, task_status::failed)));
    stats.retried(sink_stats::failure_of(result_of("j", 999, task_status::failed)));
    const auto s = stats.snapshot(t0, jobs, {});
    ASSERT_EQ(s->failures.size(), sink_stats::k_failures_kept);
    EXPECT_EQ(s->failures_seen, sink_stats::k_failures_kept + 11);
    EXPECT_EQ(s->failures[0].id, 999u) << "latest first";
    EXPECT_TRUE(s->failures[0].retried);
    EXPECT_EQ(s->failures[1].id, sink_stats::k_failures_kept + 9);
    EXPECT_FALSE(s->failures[1].retried);
    EXPECT_EQ(s->failures[0].error.size(), sink_stats::k_failure_text);
    EXPECT_EQ(s->counters.retries, 1u);
    EXPECT_EQ(s->durations.count(), sink_stats::k_failures_kept + 10);
}

TEST(SinkStats, JobRowsCarryCountsTotalRateAndEta) {
    sink_stats stats(t0);
    job_table jobs;
    auto now = t0;
    ASSERT_TRUE(jobs.open("j", now));
    jobs.find("j")->total = 100;
    std::uint64_t id = 0;
    std::shared_ptr<const zfarm::sink::status_snapshot> s;
    for (int second = 0; second <= 5; ++second, now += 1s) {
        for (int i = 0; i < 10; ++i, ++id) {
            const auto r = result_of("j", id, id == 3 ? task_status::failed : task_status::ok);
            ASSERT_EQ(jobs.record(r, now), job_table::record_outcome::added);
        }
        s = stats.snapshot(now, jobs, sink_counters{});
    }
    ASSERT_EQ(s->jobs.size(), 1u);
    const auto& j = s->jobs[0];
    EXPECT_EQ(j.name, "j");
    EXPECT_EQ(j.ok, 59u);
    EXPECT_EQ(j.failed, 1u);
    EXPECT_EQ(j.total, 100u);
    EXPECT_NEAR(j.rate, 10.0, 1e-9);
    ASSERT_TRUE(j.eta_seconds);
    EXPECT_NEAR(*j.eta_seconds, 4.0, 1e-9);
    EXPECT_FALSE(j.done);
    EXPECT_DOUBLE_EQ(j.elapsed_seconds, 5.0);
    stats.snapshot(now + 3s, jobs, sink_counters{});      // three seconds with nothing recorded
    s = stats.snapshot(now + 3s, jobs, sink_counters{});  // (j was in the snapshot s held)
    EXPECT_FALSE(s->jobs[0].eta_seconds) << "stalled: no ETA";
}

TEST(SinkStats, FinishedJobIsShownDone) {
    sink_stats stats(t0);
    job_table jobs;
    ASSERT_TRUE(jobs.open("j", t0));
    jobs.find("j")->total = 2;
    ASSERT_EQ(jobs.record(result_of("j", 0, task_status::ok), t0),
              job_table::record_outcome::added);
    ASSERT_EQ(jobs.record(result_of("j", 1, task_status::ok), t0 + 1s),
              job_table::record_outcome::added);
    stats.snapshot(t0 + 1s, jobs, {});
    ASSERT_EQ(jobs.collect_finished(t0 + 2s).size(), 1u);
    const auto s = stats.snapshot(t0 + 3s, jobs, {});
    ASSERT_EQ(s->jobs.size(), 1u);
    EXPECT_TRUE(s->jobs[0].done);
    EXPECT_EQ(s->jobs[0].recorded(), 2u);
    EXPECT_FALSE(s->jobs[0].eta_seconds);
}

}  // namespace
