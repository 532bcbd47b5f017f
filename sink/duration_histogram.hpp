// Task durations (a RESULT's elapsed_us) counted in fixed buckets, as a
// Prometheus histogram wants them: a bucket per upper bound, plus the sum and
// the count. Fixed buckets keep observe() to a few comparisons, cheap enough
// for every result at a million results a second.
// Not thread-safe; the sink's main thread observes, and hands copies to
// others.
#pragma once

#include <array>
#include <cstdint>

namespace zfarm::sink {

class duration_histogram {
  public:
    // Upper bounds in microseconds, from a millisecond to half an hour; a
    // duration above the last lands only in the +Inf bucket.
    static constexpr std::array<std::uint64_t, 15> k_bounds_us = {
        1'000,     5'000,     10'000,    25'000,     50'000,     100'000,     250'000,      500'000,
        1'000'000, 2'500'000, 5'000'000, 10'000'000, 30'000'000, 300'000'000, 1'800'000'000};
    static constexpr std::size_t k_buckets = k_bounds_us.size() + 1;  // the last: +Inf

    // Counts `us` in the first bucket whose bound is >= us (Prometheus' `le`).
    void observe(std::uint64_t us) noexcept;

    // Observations in each bucket alone (not cumulative), the last above
    // every bound.
    const std::array<std::uint64_t, k_buckets>& counts() const noexcept { return counts_; }
    // Observations at or below each bound, the last (+Inf) equal to count().
    std::array<std::uint64_t, k_buckets> cumulative() const noexcept;
    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t sum_us() const noexcept { return sum_us_; }

  private:
    std::array<std::uint64_t, k_buckets> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_us_ = 0;
};

}  // namespace zfarm::sink
