// Unit tests for sink/rate_estimator.hpp (the sink's; the ventilator's
// progress line has its own): the rate and ETA the status endpoint shows,
// for a steady job, one that speeds up, and one that stalls.
#include "rate_estimator.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace {

using namespace std::chrono_literals;
using zfarm::sink::rate_estimator;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

// Samples once a second for `seconds` seconds, counting `per_second` more
// each time; returns the count reached.
std::uint64_t run(rate_estimator& e, std::chrono::steady_clock::time_point& now,
                  std::uint64_t count, int seconds, std::uint64_t per_second) {
    for (int i = 0; i < seconds; ++i) {
        now += 1s;
        count += per_second;
        e.sample(now, count);
    }
    return count;
}

TEST(SinkRateEstimator, HasNoRateNorEtaBeforeTwoSamples) {
    rate_estimator e;
    EXPECT_EQ(e.rate(), 0);
    EXPECT_FALSE(e.eta_seconds(10));
    e.sample(t0, 0);
    EXPECT_FALSE(e.eta_seconds(10));
    EXPECT_EQ(e.eta_seconds(0), 0.0) << "nothing left: done now";
}

TEST(SinkRateEstimator, SteadyRateGivesTheRemainingOverTheRate) {
    rate_estimator e;
    auto now = t0;
    e.sample(now, 0);
    run(e, now, 0, 30, 100);
    EXPECT_NEAR(e.rate(), 100.0, 1e-9);
    ASSERT_TRUE(e.eta_seconds(1000));
    EXPECT_NEAR(*e.eta_seconds(1000), 10.0, 1e-9);
    EXPECT_FALSE(e.stalled());
}

TEST(SinkRateEstimator, IrregularSamplesOfASteadyRateKeepIt) {
    rate_estimator e;
    auto now = t0;
    std::uint64_t count = 0;
    e.sample(now, count);
    for (auto step : {300ms, 1700ms, 900ms, 1100ms, 2000ms, 500ms}) {
        now += step;
        count += static_cast<std::uint64_t>(std::chrono::duration<double>(step).count() * 50);
        e.sample(now, count);
    }
    EXPECT_NEAR(e.rate(), 50.0, 0.5);
}

TEST(SinkRateEstimator, AcceleratingJobFollowsTheRecentRateNotTheAverage) {
    rate_estimator e;  // time constant 5 s
    auto now = t0;
    e.sample(now, 0);
    std::uint64_t count = run(e, now, 0, 60, 10);  // a slow minute
    count = run(e, now, count, 25, 100);           // five time constants at ten times the pace
    EXPECT_NEAR(e.rate(), 100.0, 2.0);
    const double average = static_cast<double>(count) / 85.0;
    ASSERT_TRUE(e.eta_seconds(10000));
    EXPECT_NEAR(*e.eta_seconds(10000), 100.0, 2.0);
    EXPECT_LT(*e.eta_seconds(10000), 10000 / average / 2) << "the ETA follows the new pace";
}

TEST(SinkRateEstimator, RateMovesTowardANewPaceWithinAFewSeconds) {
    rate_estimator e;
    auto now = t0;
    e.sample(now, 0);
    std::uint64_t count = run(e, now, 0, 30, 100);
    run(e, now, count, 5, 200);  // one time constant: about 63 % of the way
    EXPECT_GT(e.rate(), 150.0);
    EXPECT_LT(e.rate(), 200.0);
}

TEST(SinkRateEstimator, StalledJobHasNoEtaUntilItMovesAgain) {
    rate_estimator e;  // stalled after 3 s without progress
    auto now = t0;
    e.sample(now, 0);
    std::uint64_t count = run(e, now, 0, 20, 100);
    run(e, now, count, 2, 0);
    EXPECT_FALSE(e.stalled()) << "two quiet seconds are not a stall yet";
    EXPECT_TRUE(e.eta_seconds(500));
    run(e, now, count, 1, 0);
    EXPECT_TRUE(e.stalled());
    EXPECT_FALSE(e.eta_seconds(500)) << "no ETA rather than a guess";
    EXPECT_LT(e.rate(), 100.0) << "the rate shows the slowdown";
    run(e, now, count, 1, 50);
    EXPECT_FALSE(e.stalled());
    EXPECT_TRUE(e.eta_seconds(500));
}

TEST(SinkRateEstimator, CountGoingBackRestartsTheEstimate) {
    rate_estimator e;
    auto now = t0;
    e.sample(now, 0);
    run(e, now, 0, 10, 1000);
    now += 1s;
    e.sample(now, 5);  // the job was run afresh
    EXPECT_EQ(e.rate(), 0);
    EXPECT_FALSE(e.eta_seconds(100));
    run(e, now, 5, 3, 10);
    EXPECT_NEAR(e.rate(), 10.0, 1e-9);
}

}  // namespace
