// The aggregates behind the sink's status endpoint, kept by the sink's main
// thread as messages arrive: the task-duration histogram, a row per worker
// (from HELLO, HEARTBEAT, BYE and the liveness check), a ring of recent
// failures, and, sampled once a second, each open job's rate and the sink's
// rate history. snapshot() combines them with the job table's counts into an
// immutable status_snapshot for the HTTP threads.
//
// Per result the cost is a histogram observation (and, for a failure, a copy
// of its reason cut short); everything else is per worker message or per
// snapshot, so the loop keeps its pace. Memory is bounded: k_max_workers
// rows, k_failures_kept failures, k_rate_history seconds.
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "duration_histogram.hpp"
#include "job_table.hpp"
#include "rate_estimator.hpp"
#include "status_snapshot.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::sink {

class sink_stats {
  public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t k_max_workers = 4096;
    static constexpr std::size_t k_failures_kept = 50;
    static constexpr std::size_t k_failure_text = 512;  // bytes of a reason kept
    static constexpr std::size_t k_rate_history = 300;  // seconds
    static constexpr auto k_sample_interval = std::chrono::seconds(1);

    explicit sink_stats(clock::time_point started = clock::now());

    // A failed result, copied (its reason cut to k_failure_text) before the
    // recorder may move it; hand it to recorded() or retried().
    static failure_row failure_of(const proto::result& r);

    // A result recorded now (not a duplicate), with its failure if it failed.
    void recorded(std::uint64_t elapsed_us, std::optional<failure_row> failure) {
        durations_.observe(elapsed_us);
        if (failure) keep(std::move(*failure), false);
    }
    // A failed attempt that will be sent again.
    void retried(failure_row failure) {
        ++retries_;
        keep(std::move(failure), true);
    }

    void hello(const proto::hello& h, clock::time_point now);
    void heartbeat(const proto::heartbeat& hb, clock::time_point now);
    void left(const std::string& worker, clock::time_point now);
    void lost(const std::string& worker, clock::time_point now);
    // What HELLO or HEARTBEAT said of `worker`; null when never heard.
    const worker_row* worker(const std::string& name) const {
        const auto it = workers_.find(name);
        return it == workers_.end() ? nullptr : &it->second.row;
    }

    // The state now: each job's counts from `jobs`, the rest from here and
    // `counters` (retries are filled in here). Samples the rates when
    // k_sample_interval has passed since the last sample.
    std::shared_ptr<const status_snapshot> snapshot(clock::time_point now, job_table& jobs,
                                                    sink_counters counters);

  private:
    struct worker_entry {
        worker_row row;
        clock::time_point last_seen;
        bool heard_heartbeat = false;
    };
    struct job_track {
        rate_estimator estimator;
        double started = 0;  // Unix time; 0 until seen
        bool done = false;
    };

    void keep(failure_row&& f, bool retried);
    worker_entry* touch(const std::string& worker, clock::time_point now);
    void sample(clock::time_point now, job_table& jobs);

    clock::time_point started_;
    double started_unix_;
    duration_histogram durations_;
    std::uint64_t retries_ = 0;
    std::uint64_t failures_seen_ = 0;
    std::deque<failure_row> failures_;  // latest first
    std::map<std::string, worker_entry> workers_;
    std::map<std::string, job_track> jobs_;
    rate_estimator total_rate_;
    std::deque<double> rate_history_;
    std::optional<clock::time_point> last_sample_;
    std::uint64_t last_sample_count_ = 0;
};

}  // namespace zfarm::sink
