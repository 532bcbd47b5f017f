// What the sink's status endpoint shows (/metrics, /status, the dashboard):
// an immutable copy of the sink's aggregates, taken by its main thread a few
// times a second (sink_stats::snapshot) and read by the HTTP threads, which
// never touch the main thread's state. Everything here is bounded: a row per
// open or recently finished job and per known worker, a ring of recent
// failures, a ring of per-second rates; never a list of tasks.
//
// snapshot_board hands the latest snapshot from the main thread to the HTTP
// threads: publish() and latest() swap and copy a shared_ptr under a mutex,
// so a reader keeps the snapshot it got alive for as long as it renders it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "duration_histogram.hpp"

namespace zfarm::sink {

struct job_row {
    std::string name;
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::optional<std::uint64_t> total;  // known once the job was closed
    double rate = 0;                     // results per second, smoothed
    std::optional<double> eta_seconds;   // none when stalled, unknown or done
    double started = 0;                  // Unix time, seconds
    double elapsed_seconds = 0;          // to now, or to completion when done
    bool done = false;

    std::uint64_t recorded() const noexcept { return ok + failed; }
};

enum class worker_state { alive, lost, left };

struct worker_row {
    std::string name;
    std::string host;  // HELLO's; empty when the sink saw no HELLO (it restarted)
    std::uint32_t pid = 0;
    std::uint32_t threads = 0;
    std::string version;
    std::uint64_t tasks_done = 0;  // its last HEARTBEAT's count
    // Of the tasks its last HEARTBEAT said it holds, those its threads run
    // (a worker runs what it holds as soon as a thread is free) and the rest.
    std::uint32_t running = 0;
    std::uint32_t queued = 0;
    double busy = 0;  // share of its threads running a task, 0..1, smoothed over heartbeats
    double last_seen_seconds_ago = 0;
    worker_state state = worker_state::alive;
};

struct failure_row {
    std::string job;
    std::uint64_t id = 0;
    std::uint32_t attempt = 0;
    std::string worker;
    std::string error;     // cut to failure_ring's bound
    double at = 0;         // Unix time, seconds
    bool retried = false;  // this attempt is sent again (RETRY); else recorded as failed
};

struct sink_counters {
    std::uint64_t retries = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t dropped_frames = 0;
    std::uint64_t workers_lost = 0;  // declared lost since the sink started
    std::uint64_t workers_alive = 0;
    std::uint64_t jobs_open = 0;
};

struct status_snapshot {
    double taken = 0;  // Unix time, seconds
    double uptime_seconds = 0;
    std::string version;
    sink_counters counters;
    std::uint64_t in_flight = 0;       // tasks live workers last said they hold (running or queued)
    double rate = 0;                   // results recorded per second, all jobs, smoothed
    std::vector<double> rate_history;  // one per second, oldest first
    duration_histogram durations;      // of recorded results
    std::vector<job_row> jobs;         // open ones by name, then finished ones, latest first
    std::vector<worker_row> workers;   // by name
    std::vector<failure_row> failures;  // latest first
    std::uint64_t failures_seen = 0;    // since the sink started, including those no longer kept
};

class snapshot_board {
  public:
    void publish(std::shared_ptr<const status_snapshot> s) {
        std::lock_guard lock(mutex_);
        latest_ = std::move(s);
    }
    // Null before the first publish().
    std::shared_ptr<const status_snapshot> latest() const {
        std::lock_guard lock(mutex_);
        return latest_;
    }

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const status_snapshot> latest_;
};

}  // namespace zfarm::sink
