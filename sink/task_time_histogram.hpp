// Task times of one job, for the percentiles of its end-of-job report
// (REPORT, PROTOCOL.md 5.16): a log-linear histogram in the spirit of
// HdrHistogram. Durations below 64 µs have a bucket each; above, every
// power of two is cut into 64 equal buckets, so a percentile read back as
// its bucket's midpoint is within 1/128 (0.8 %) of a true value, at any
// scale. The maximum is kept exactly.
//
// observe() is a count-leading-zeros, a shift and an increment: cheap enough
// for every result. The buckets (about 30 KB) are allocated on the first
// observation, so a job that records nothing costs nothing.
// Not thread-safe.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace zfarm::sink {

class task_time_histogram {
  public:
    static constexpr unsigned k_sub_bits = 6;  // 64 buckets per power of two
    static constexpr std::uint64_t k_sub = std::uint64_t{1} << k_sub_bits;

    void observe(std::uint64_t us) {
        if (counts_.empty()) counts_.resize(k_buckets);
        ++counts_[bucket_of(us)];
        ++count_;
        if (us > max_) max_ = us;
    }

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }

    // The smallest recorded duration d such that at least q (0 < q <= 1) of
    // all are at or below it, read as its bucket's midpoint (never above the
    // maximum, which q = 1 gives exactly); 0 when nothing was recorded.
    std::uint64_t quantile(double q) const {
        if (count_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.999999);
        rank = rank < 1 ? 1 : rank;
        if (rank >= count_) return max_;
        std::uint64_t seen = 0;
        for (std::size_t b = 0; b < counts_.size(); ++b) {
            seen += counts_[b];
            if (seen >= rank) {
                const std::uint64_t mid = midpoint_of(b);
                return mid < max_ ? mid : max_;
            }
        }
        return max_;
    }

  private:
    // Durations up to 2^64 - 1: octaves k_sub_bits .. 63, each k_sub buckets,
    // after the k_sub exact ones.
    static constexpr std::size_t k_buckets = k_sub * (64 - k_sub_bits + 1);

    static std::size_t bucket_of(std::uint64_t us) noexcept {
        if (us < k_sub) return static_cast<std::size_t>(us);
        const unsigned octave = 63 - static_cast<unsigned>(std::countl_zero(us));  // >= k_sub_bits
        const unsigned shift = octave - k_sub_bits;
        const std::uint64_t sub = (us >> shift) - k_sub;  // 0 .. k_sub - 1
        return static_cast<std::size_t>((octave - k_sub_bits + 1) * k_sub + sub);
    }
    static std::uint64_t midpoint_of(std::size_t b) noexcept {
        if (b < k_sub) return b;
        const std::size_t octave = b / k_sub - 1 + k_sub_bits;
        const std::size_t shift = octave - k_sub_bits;
        const std::uint64_t low = (k_sub + b % k_sub) << shift;
        return low + ((std::uint64_t{1} << shift) >> 1);
    }

    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace zfarm::sink
