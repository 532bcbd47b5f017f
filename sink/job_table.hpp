// What the sink knows of each job: which ids are recorded (dedupe), counts,
// the total once JOB_CLOSE arrived, and the summaries of finished jobs (kept
// so DONE can be re-published to late subscribers).
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "task_time_histogram.hpp"
#include "zfarm/dedupe_set.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::sink {

// One worker's recorded results of a job, for the job's REPORT.
struct worker_tally {
    std::uint64_t tasks = 0;
    std::uint64_t failed = 0;
    std::uint64_t timed = 0;    // of those, recorded by this run of the sink (not restored)
    std::uint64_t busy_us = 0;  // the sum of the timed ones' elapsed_us
    // When its latest task started and ended as the sink saw it, in
    // microseconds after the job opened, on the sink's clock: the result's
    // arrival, less its elapsed_us for the start. Workers whose clocks
    // disagree still compare. Set once `timed` is above 0.
    std::int64_t last_start_us = 0;
    std::int64_t last_end_us = 0;
    std::uint32_t lost = 0;      // declared lost while the job was open
    std::uint32_t rejoined = 0;  // heard from again after that
};

struct job_state {
    std::string name;
    std::chrono::steady_clock::time_point opened;
    std::optional<std::uint64_t> total;            // from JOB_CLOSE
    std::chrono::steady_clock::time_point closed;  // when the total came (JOB_CLOSE)
    dedupe_set recorded;
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::uint64_t duplicates = 0;
    // Those that delivered a recorded result (at most k_max_workers_per_job).
    std::unordered_map<std::string, worker_tally> workers;
    // The elapsed_us of the results of workers recorded in this run of the
    // sink (not restored, not the ventilator's own), and their sum.
    task_time_histogram times;
    std::uint64_t busy_us = 0;
    // From JOB_OPEN: a failure of an attempt up to this is sent again, not
    // recorded (5.14).
    std::uint32_t retries = 0;
    // Why earlier attempts of tasks not yet recorded failed ("attempt 1:
    // ..."), for the error of the attempt that is finally recorded.
    std::unordered_map<std::uint64_t, std::string> failures;
    // Ids recorded as failed (at most k_max_failed_ids_kept), so that the ACK
    // of a duplicate says so too (5.8 rule 7).
    std::unordered_set<std::uint64_t> failed_ids;

    // Every id below the total is recorded (ids at or beyond it, recorded
    // before JOB_CLOSE said the total, do not stand in for missing ones).
    bool complete() const { return total && recorded.floor() >= *total; }
};

class job_table {
  public:
    static constexpr std::size_t k_max_open_jobs = 1024;
    static constexpr std::size_t k_finished_kept = 16;
    static constexpr std::size_t k_max_workers_per_job = 100000;

    // retry: a failure with attempts left, not recorded (send it again).
    enum class record_outcome { added, duplicate, rejected, retry };
    static constexpr std::size_t k_max_failures_kept = 100000;    // tasks per job
    static constexpr std::size_t k_max_failure_text = 4096;       // bytes per task
    static constexpr std::size_t k_max_failed_ids_kept = 100000;  // per job

    // Opens `name` (a no-op when open). Reopening a finished job starts it
    // afresh: a new run of a job with the same name; opening a dormant job
    // (restored) continues it. nullptr when too many jobs are open.
    job_state* open(const std::string& name, std::chrono::steady_clock::time_point now);
    job_state* find(const std::string& name);
    // Forgets an open job (cancelled by its ventilator). False if not open.
    bool cancel(const std::string& name);
    const proto::done* finished(const std::string& name) const;
    // `id` of the open job `name` was recorded as failed (as far as the
    // table remembers: the first k_max_failed_ids_kept failures of a job).
    bool recorded_failed(const std::string& name, std::uint64_t id) const;

    // Records a result; its job is opened implicitly when unknown (a sink
    // restarted mid-job). Results of finished or recently cancelled jobs are
    // duplicates (or rejected, when the id is beyond a finished job's total).
    // A failure whose attempt is within the job's retries is noted and not
    // recorded (retry). When a failure is recorded after noted ones, `error`
    // is set to the reasons of every attempt; otherwise it is left alone.
    record_outcome record(const proto::result& r, std::chrono::steady_clock::time_point now,
                          std::string* error = nullptr);

    // Records a result written by an earlier run of the sink (--resume). Its
    // job is dormant: not open (no relays, not in open_jobs) until a message
    // of it arrives, when open() continues it with what was restored.
    record_outcome restore(const std::string& job, std::uint64_t id, bool ok,
                           const std::string& worker);
    std::size_t dormant_count() const { return dormant_.size(); }

    // Moves every complete open job to the finished list; returns their DONEs.
    // `finishing` is shown each one's state first, with its DONE.
    using finish_hook = std::function<void(const job_state&, const proto::done&)>;
    std::vector<proto::done> collect_finished(std::chrono::steady_clock::time_point now,
                                              const finish_hook& finishing = {});

    // A worker was declared lost holding `tasks`: counted in each open job
    // it delivered to or held a task of. Heard from again: counted as
    // rejoined in each open job it was lost in.
    void worker_lost(const std::string& worker, const std::vector<proto::task_ref>& tasks);
    void worker_rejoined(const std::string& worker);

    const std::deque<proto::done>& finished_jobs() const { return finished_; }
    std::size_t open_count() const { return open_.size(); }
    std::vector<std::string> open_names() const;
    std::uint64_t rejected() const { return rejected_; }

  private:
    std::map<std::string, job_state> open_;
    std::map<std::string, job_state> dormant_;  // restored, not opened since
    std::deque<proto::done> finished_;
    std::deque<std::string> cancelled_;  // recently cancelled names: their stragglers are dropped
    std::uint64_t rejected_ = 0;
};

}  // namespace zfarm::sink
