// Unit tests for sink/task_time_histogram.hpp: the percentiles of a job's
// REPORT (PROTOCOL.md 5.16: within 2 %).
#include "task_time_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {

using zfarm::sink::task_time_histogram;

// The exact q-quantile of `v` (the smallest value with at least q of all at
// or below it), as task_time_histogram defines it.
std::uint64_t exact_quantile(std::vector<std::uint64_t> v, double q) {
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::max<std::size_t>(rank, 1) - 1];
}

TEST(TaskTimeHistogram, IsZeroWhenEmpty) {
    task_time_histogram h;
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.quantile(0.5), 0u);
    EXPECT_EQ(h.max(), 0u);
}

TEST(TaskTimeHistogram, IsExactBelowSixtyFourMicroseconds) {
    task_time_histogram h;
    for (std::uint64_t us = 0; us < 64; ++us)
        h.observe(us);
    EXPECT_EQ(h.quantile(0.5), 31u);
    EXPECT_EQ(h.quantile(1.0), 63u);
    EXPECT_EQ(h.quantile(0.01), 0u);
}

TEST(TaskTimeHistogram, QuantilesAreWithinOnePercentAtEveryScale) {
    std::mt19937_64 rng(7);
    for (const double scale : {1e3, 1e5, 1e7, 1e9}) {
        task_time_histogram h;
        std::vector<std::uint64_t> all;
        std::lognormal_distribution<double> d(std::log(scale), 1.0);
        for (int i = 0; i < 20000; ++i) {
            const auto us = static_cast<std::uint64_t>(d(rng));
            h.observe(us);
            all.push_back(us);
        }
        for (const double q : {0.5, 0.95, 0.99}) {
            const double exact = static_cast<double>(exact_quantile(all, q));
            const double got = static_cast<double>(h.quantile(q));
            EXPECT_NEAR(got, exact, exact * 0.01 + 1) << "scale " << scale << ", q " << q;
        }
        EXPECT_EQ(h.max(), *std::max_element(all.begin(), all.end()));
        EXPECT_EQ(h.quantile(1.0), h.max()) << "the top bucket reads as the exact maximum";
    }
}

TEST(TaskTimeHistogram, SeparatesATailFromTheBulk) {
    // 10 % of 200 ms among 90 % of 5 ms: p50 is the short ones, p95 the long.
    task_time_histogram h;
    for (int i = 0; i < 1000; ++i)
        h.observe(i % 10 == 0 ? 200'000 : 5'000);
    EXPECT_NEAR(static_cast<double>(h.quantile(0.5)), 5'000.0, 50.0);
    EXPECT_NEAR(static_cast<double>(h.quantile(0.95)), 200'000.0, 2'000.0);
    EXPECT_EQ(h.max(), 200'000u);
    EXPECT_EQ(h.count(), 1000u);
}

TEST(TaskTimeHistogram, TakesTheLargestDurations) {
    task_time_histogram h;
    const auto top = std::numeric_limits<std::uint64_t>::max();
    h.observe(top);
    h.observe(top - 1);
    EXPECT_EQ(h.quantile(1.0), top);
    EXPECT_GE(h.quantile(0.5), top - top / 64);
}

}  // namespace
