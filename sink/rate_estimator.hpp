// The rate of one growing count (results recorded by a job, or by the whole
// sink) and the time left to reach a total, from samples taken about once a
// second. The rate is an exponentially weighted moving average of the
// per-interval rates, so it follows a change of pace within a few time
// constants instead of averaging over the whole run; when the count has not
// moved for `stall_after` the estimator says so and gives no ETA rather than
// a growing guess.
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace zfarm::sink {

class rate_estimator {
  public:
    using clock = std::chrono::steady_clock;

    explicit rate_estimator(clock::duration time_constant = std::chrono::seconds(5),
                            clock::duration stall_after = std::chrono::seconds(3))
        : time_constant_(time_constant), stall_after_(stall_after) {}

    // `count` at `now`. Samples closer than a millisecond to the previous one
    // are ignored; a count below the previous one (the job started afresh)
    // restarts the estimate.
    void sample(clock::time_point now, std::uint64_t count);

    // Per second, smoothed; 0 before two samples.
    double rate() const noexcept { return rate_; }
    // No progress for stall_after (after at least one sample with progress
    // or two samples).
    bool stalled() const noexcept { return stalled_; }
    // Seconds until `remaining` more are counted at the current rate; 0 when
    // nothing remains; nullopt when stalled or with no rate yet.
    std::optional<double> eta_seconds(std::uint64_t remaining) const;

  private:
    clock::duration time_constant_;
    clock::duration stall_after_;
    std::optional<clock::time_point> last_;
    std::uint64_t last_count_ = 0;
    clock::time_point last_progress_{};
    bool has_rate_ = false;
    bool stalled_ = false;
    double rate_ = 0;
};

}  // namespace zfarm::sink
