// Unit tests for sink/duration_histogram.hpp: which bucket a task duration
// falls in (Prometheus' `le`: at or below the bound), the cumulative counts,
// the sum and the count.
#include "duration_histogram.hpp"

#include <gtest/gtest.h>

namespace {

using zfarm::sink::duration_histogram;

std::size_t bucket_of(std::uint64_t us) {
    duration_histogram h;
    h.observe(us);
    for (std::size_t i = 0; i < duration_histogram::k_buckets; ++i)
        if (h.counts()[i] == 1) return i;
    return duration_histogram::k_buckets;
}

TEST(DurationHistogram, BoundsAreAscending) {
    const auto& b = duration_histogram::k_bounds_us;
    for (std::size_t i = 1; i < b.size(); ++i)
        EXPECT_LT(b[i - 1], b[i]);
}

TEST(DurationHistogram, ADurationOnABoundCountsInThatBucket) {
    EXPECT_EQ(bucket_of(0), 0u);
    EXPECT_EQ(bucket_of(1'000), 0u);  // le="0.001"
    EXPECT_EQ(bucket_of(1'001), 1u);
    EXPECT_EQ(bucket_of(5'000), 1u);
    EXPECT_EQ(bucket_of(1'000'000), 8u);  // le="1"
    EXPECT_EQ(bucket_of(1'000'001), 9u);
    const std::size_t last = duration_histogram::k_bounds_us.size() - 1;
    EXPECT_EQ(bucket_of(duration_histogram::k_bounds_us[last]), last);
}

TEST(DurationHistogram, ADurationAboveEveryBoundCountsOnlyInInf) {
    const std::size_t inf = duration_histogram::k_buckets - 1;
    EXPECT_EQ(bucket_of(duration_histogram::k_bounds_us.back() + 1), inf);
    EXPECT_EQ(bucket_of(UINT64_MAX / 2), inf);
}

TEST(DurationHistogram, CumulativeCountsEndInTheCountAndSumAddsUp) {
    duration_histogram h;
    for (std::uint64_t us : {500ull, 1000ull, 7000ull, 7000ull, 2000000ull, 4000000000ull})
        h.observe(us);
    EXPECT_EQ(h.count(), 6u);
    EXPECT_EQ(h.sum_us(), 500u + 1'000u + 7'000u + 7'000u + 2'000'000u + 4'000'000'000u);
    const auto c = h.cumulative();
    EXPECT_EQ(c[0], 2u);   // <= 1 ms
    EXPECT_EQ(c[1], 2u);   // <= 5 ms
    EXPECT_EQ(c[2], 4u);   // <= 10 ms
    EXPECT_EQ(c[10], 5u);  // <= 5 s
    EXPECT_EQ(c[c.size() - 2], 5u) << "4000 s is above the last bound";
    EXPECT_EQ(c.back(), h.count());
    for (std::size_t i = 1; i < c.size(); ++i)
        EXPECT_LE(c[i - 1], c[i]);
}

}  // namespace
