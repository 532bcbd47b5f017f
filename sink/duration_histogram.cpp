#include "duration_histogram.hpp"

#include <algorithm>

namespace zfarm::sink {

void duration_histogram::observe(std::uint64_t us) noexcept {
    const auto it = std::lower_bound(k_bounds_us.begin(), k_bounds_us.end(), us);
    ++counts_[static_cast<std::size_t>(it - k_bounds_us.begin())];
    ++count_;
    sum_us_ += us;
}

std::array<std::uint64_t, duration_histogram::k_buckets> duration_histogram::cumulative()
    const noexcept {
    std::array<std::uint64_t, k_buckets> out{};
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < k_buckets; ++i)
        out[i] = running += counts_[i];
    return out;
}

}  // namespace zfarm::sink
