// Unit tests for ventilator/failure_halt.hpp: when --halt-on-failure stops
// sending and cancels the job (PROTOCOL.md 7.12).
#include "failure_halt.hpp"

#include <gtest/gtest.h>

namespace {

using zfarm::ventilator::failure_halt;

TEST(FailureHalt, DisabledNeverHalts) {
    failure_halt h(false);
    EXPECT_FALSE(h.on_failed({3, 4}));
    EXPECT_FALSE(h.halting());
    EXPECT_TRUE(h.may_send_new());
    EXPECT_FALSE(h.should_cancel(0, false));
    EXPECT_FALSE(h.first_failed());
}

TEST(FailureHalt, AckWithoutFailuresDoesNotHalt) {
    failure_halt h(true);
    EXPECT_FALSE(h.on_failed({}));  // 5.8, rule 7: absent `failed` is empty
    EXPECT_FALSE(h.halting());
    EXPECT_TRUE(h.may_send_new());
}

// 7.12, rule 1: the first failed id stops new tasks.
TEST(FailureHalt, FirstFailureStopsNewTasksAndNamesTheTask) {
    failure_halt h(true);
    EXPECT_TRUE(h.on_failed({17, 9}));
    EXPECT_TRUE(h.halting());
    EXPECT_FALSE(h.may_send_new());
    EXPECT_EQ(h.first_failed(), 17u);
    EXPECT_FALSE(h.on_failed({9, 30}));  // already halting: not a new start
    EXPECT_EQ(h.first_failed(), 17u);
    EXPECT_EQ(h.failures(), 3u);  // 17, 9, 30: duplicates counted once
}

// 7.12, rule 2: tasks in flight finish before the job is cancelled.
TEST(FailureHalt, CancelsOnlyOnceNothingIsInFlight) {
    failure_halt h(true);
    EXPECT_FALSE(h.should_cancel(0, false));  // not halting
    h.on_failed({2});
    EXPECT_FALSE(h.should_cancel(5, false));
    EXPECT_TRUE(h.should_cancel(0, false));
}

// 7.12, rule 3: a job already closed (every task sent) ends with its DONE.
TEST(FailureHalt, ClosedJobIsNotCancelled) {
    failure_halt h(true);
    h.on_failed({2});
    EXPECT_FALSE(h.should_cancel(0, true));
}

}  // namespace
