// Unit tests for sink/worker_table.hpp: when the sink declares a worker lost
// (PROTOCOL.md 7.9), and that a pause of the sink itself is not counted as
// the workers' silence.
#include "worker_table.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace {

using namespace std::chrono_literals;
using zfarm::proto::heartbeat;
using zfarm::proto::task_ref;
using zfarm::sink::worker_table;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

// Calls expire every 250 ms from `from` to `to` (inclusive), as the sink
// does; returns the names declared lost, in order.
std::vector<std::string> check_until(worker_table& t, std::chrono::steady_clock::time_point from,
                                     std::chrono::steady_clock::time_point to) {
    std::vector<std::string> lost;
    for (auto now = from; now <= to; now += 250ms)
        for (const auto& l : t.expire(now))
            lost.push_back(l.worker);
    return lost;
}

TEST(WorkerTable, SilentWorkerIsLostAfterTheTimeoutWithWhatItHeld) {
    worker_table t(2500ms);
    t.heartbeat(heartbeat{"w1", 0, {task_ref{"j", 7, 1}}}, t0);
    t.seen("w2", t0);
    EXPECT_TRUE(check_until(t, t0, t0 + 2500ms).empty());  // 7.9.2: longer than the timeout
    t.seen("w2", t0 + 2500ms);
    const auto lost = t.expire(t0 + 2750ms);
    ASSERT_EQ(lost.size(), 1u);
    EXPECT_EQ(lost[0].worker, "w1");
    ASSERT_EQ(lost[0].tasks.size(), 1u);
    EXPECT_EQ(lost[0].tasks[0].id, 7u);
    EXPECT_EQ(t.alive(), 1u);
    EXPECT_EQ(t.lost_count(), 1u);
}

TEST(WorkerTable, LostWorkerRejoinsWhenHeardOfAgainAndByeForgetsIt) {
    worker_table t(2500ms);
    t.seen("w1", t0);
    EXPECT_EQ(check_until(t, t0, t0 + 3000ms), std::vector<std::string>{"w1"});
    t.seen("w1", t0 + 3100ms);  // 7.9.3
    EXPECT_EQ(t.alive(), 1u);
    t.bye("w1");  // 7.9.4: neither live nor lost
    EXPECT_EQ(t.alive(), 0u);
    EXPECT_TRUE(check_until(t, t0 + 3250ms, t0 + 9000ms).empty());
}

TEST(WorkerTable, PauseOfTheSinkIsNotCountedAsTheWorkersSilence) {
    worker_table t(2500ms, 250ms);
    t.seen("w1", t0);
    EXPECT_TRUE(t.expire(t0 + 250ms).empty());
    // The sink was stopped for 4 s: nobody was listening, nobody is lost.
    std::chrono::steady_clock::duration paused{};
    EXPECT_TRUE(t.expire(t0 + 4250ms, &paused).empty());
    EXPECT_EQ(paused, 3750ms);  // all but one check interval
    // The worker really is silent: lost one timeout after the sink resumed
    // listening, counting the silence before the pause and one interval of it.
    EXPECT_TRUE(check_until(t, t0 + 4500ms, t0 + 6250ms).empty());
    EXPECT_EQ(check_until(t, t0 + 6500ms, t0 + 6500ms), std::vector<std::string>{"w1"});
}

// Found by a stalled sink's e2e test once workers connected sooner: the
// sink was stopped before its first check, which had nothing to compare with.
TEST(WorkerTable, PauseBeforeTheFirstCheckIsNotCountedEither) {
    worker_table t(2500ms, 250ms);
    t.seen("w1", t0);
    t.seen("w2", t0 + 100ms);
    std::chrono::steady_clock::duration paused{};
    EXPECT_TRUE(t.expire(t0 + 4100ms, &paused).empty());
    EXPECT_EQ(paused, 3850ms);  // from the first worker heard, less one interval
    EXPECT_EQ(t.alive(), 2u);
}

TEST(WorkerTable, FirstCheckOnTimeAfterTheFirstWorkerIsNoPause) {
    worker_table t(2500ms, 250ms);
    t.seen("w1", t0);
    std::chrono::steady_clock::duration paused{};
    EXPECT_TRUE(t.expire(t0 + 250ms, &paused).empty());
    EXPECT_EQ(paused, 0ms);
    // Silent from then on: lost one timeout later, as always.
    EXPECT_TRUE(check_until(t, t0 + 500ms, t0 + 2500ms).empty());
    EXPECT_EQ(check_until(t, t0 + 2750ms, t0 + 2750ms), std::vector<std::string>{"w1"});
}

TEST(WorkerTable, LateChecksWithinFourIntervalsAreNotAPause) {
    worker_table t(2500ms, 250ms);
    t.seen("w1", t0);
    std::chrono::steady_clock::duration paused{};
    EXPECT_TRUE(t.expire(t0 + 1000ms, &paused).empty());
    EXPECT_EQ(paused, 0ms);
    EXPECT_TRUE(t.expire(t0 + 2000ms, &paused).empty());
    EXPECT_EQ(paused, 0ms);
    const auto lost = t.expire(t0 + 3000ms, &paused);
    EXPECT_EQ(paused, 0ms);
    ASSERT_EQ(lost.size(), 1u);
}

}  // namespace
