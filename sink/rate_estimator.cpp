#include "rate_estimator.hpp"

#include <cmath>

namespace zfarm::sink {

void rate_estimator::sample(clock::time_point now, std::uint64_t count) {
    if (!last_ || count < last_count_) {
        *this = rate_estimator(time_constant_, stall_after_);
        last_ = now;
        last_count_ = count;
        last_progress_ = now;
        return;
    }
    const std::chrono::duration<double> dt = now - *last_;
    if (dt < std::chrono::milliseconds(1)) return;
    const double instant = static_cast<double>(count - last_count_) / dt.count();
    if (!has_rate_) {
        rate_ = instant;
        has_rate_ = true;
    } else {
        // The weight of a sample grows with the time it covers, so irregular
        // sampling does not bias the average.
        const double alpha =
            1.0 - std::exp(-dt.count() / std::chrono::duration<double>(time_constant_).count());
        rate_ += alpha * (instant - rate_);
    }
    if (count > last_count_) last_progress_ = now;
    stalled_ = now - last_progress_ >= stall_after_;
    last_ = now;
    last_count_ = count;
}

std::optional<double> rate_estimator::eta_seconds(std::uint64_t remaining) const {
    if (remaining == 0) return 0.0;
    if (!has_rate_ || stalled_ || rate_ <= 0) return std::nullopt;
    return static_cast<double>(remaining) / rate_;
}

}  // namespace zfarm::sink
