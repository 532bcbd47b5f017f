#include "sink_stats.hpp"

#include <algorithm>
#include <set>

#include "zfarm/version.hpp"

namespace zfarm::sink {
namespace {

double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

double seconds(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

// Weight of the latest heartbeat in a worker's busy share.
constexpr double k_busy_smoothing = 0.3;

}  // namespace

sink_stats::sink_stats(clock::time_point started)
    : started_(started), started_unix_(unix_now() - seconds(clock::now() - started)) {}

failure_row sink_stats::failure_of(const proto::result& r) {
    return failure_row{r.job,      r.id, r.attempt, r.worker, r.error.substr(0, k_failure_text),
                       unix_now(), false};
}

void sink_stats::keep(failure_row&& f, bool retried) {
    ++failures_seen_;
    f.retried = retried;
    if (failures_.size() == k_failures_kept) failures_.pop_back();
    failures_.push_front(std::move(f));
}

sink_stats::worker_entry* sink_stats::touch(const std::string& worker, clock::time_point now) {
    auto it = workers_.find(worker);
    if (it == workers_.end()) {
        if (workers_.size() >= k_max_workers) {
            // Make room by forgetting the gone worker heard from longest ago;
            // with every row alive, the newcomer is not shown.
            auto oldest = workers_.end();
            for (auto w = workers_.begin(); w != workers_.end(); ++w)
                if (w->second.row.state != worker_state::alive &&
                    (oldest == workers_.end() || w->second.last_seen < oldest->second.last_seen))
                    oldest = w;
            if (oldest == workers_.end()) return nullptr;
            workers_.erase(oldest);
        }
        it = workers_.emplace(worker, worker_entry{}).first;
        it->second.row.name = worker;
    }
    it->second.last_seen = now;
    it->second.row.state = worker_state::alive;
    return &it->second;
}

void sink_stats::hello(const proto::hello& h, clock::time_point now) {
    if (worker_entry* e = touch(h.worker, now)) {
        e->row.host = h.host;
        e->row.pid = h.pid;
        e->row.threads = h.threads;
        e->row.version = h.version;
    }
}

void sink_stats::heartbeat(const proto::heartbeat& hb, clock::time_point now) {
    worker_entry* e = touch(hb.worker, now);
    if (!e) return;
    if (e->row.host.empty() && !hb.host.empty()) {  // its HELLO went to an earlier sink
        e->row.host = hb.host;
        e->row.pid = hb.pid;
        e->row.threads = hb.threads;
        e->row.version = hb.version;
    }
    e->row.tasks_done = hb.tasks_done;
    // HEARTBEAT `running` lists what the worker holds, queued tasks too.
    const auto held = static_cast<std::uint32_t>(hb.running.size());
    const std::uint32_t threads = std::max<std::uint32_t>(e->row.threads, 1);
    e->row.running = std::min(held, threads);
    e->row.queued = held - e->row.running;
    const double occupancy = static_cast<double>(e->row.running) / threads;
    e->row.busy =
        e->heard_heartbeat ? e->row.busy + k_busy_smoothing * (occupancy - e->row.busy) : occupancy;
    e->heard_heartbeat = true;
}

void sink_stats::left(const std::string& worker, clock::time_point now) {
    if (auto it = workers_.find(worker); it != workers_.end()) {
        it->second.row.state = worker_state::left;
        it->second.row.running = it->second.row.queued = 0;
        it->second.last_seen = now;
    }
}

void sink_stats::lost(const std::string& worker, clock::time_point) {
    // Its last_seen stays: when it was last heard from is the point.
    if (auto it = workers_.find(worker); it != workers_.end()) {
        it->second.row.state = worker_state::lost;
        it->second.row.running = it->second.row.queued = 0;
    }
}

void sink_stats::sample(clock::time_point now, job_table& jobs) {
    const std::uint64_t count = durations_.count();
    if (last_sample_) {
        const double dt = seconds(now - *last_sample_);
        if (rate_history_.size() == k_rate_history) rate_history_.pop_front();
        rate_history_.push_back(static_cast<double>(count - last_sample_count_) / dt);
    }
    last_sample_ = now;
    last_sample_count_ = count;
    total_rate_.sample(now, count);
    for (const auto& name : jobs.open_names())
        if (const job_state* j = jobs.find(name))
            jobs_[name].estimator.sample(now, j->ok + j->failed);
}

std::shared_ptr<const status_snapshot> sink_stats::snapshot(clock::time_point now, job_table& jobs,
                                                            sink_counters counters) {
    if (!last_sample_ || now - *last_sample_ >= k_sample_interval) sample(now, jobs);
    auto s = std::make_shared<status_snapshot>();
    s->taken = unix_now();
    s->uptime_seconds = seconds(now - started_);
    s->version = std::string(k_version);
    counters.retries = retries_;
    s->counters = counters;
    s->rate = total_rate_.rate();
    s->rate_history.assign(rate_history_.begin(), rate_history_.end());
    s->durations = durations_;

    std::set<std::string> shown;
    for (const auto& name : jobs.open_names()) {
        const job_state* j = jobs.find(name);
        if (!j) continue;
        job_track& t = jobs_[name];
        t.started = s->taken - seconds(now - j->opened);
        t.done = false;
        job_row row{name,
                    j->ok,
                    j->failed,
                    j->total,
                    t.estimator.rate(),
                    std::nullopt,
                    t.started,
                    seconds(now - j->opened),
                    false};
        if (j->total) {
            const std::uint64_t recorded = row.recorded();
            row.eta_seconds =
                t.estimator.eta_seconds(*j->total > recorded ? *j->total - recorded : 0);
        }
        s->jobs.push_back(std::move(row));
        shown.insert(name);
    }
    const auto& finished = jobs.finished_jobs();
    for (auto d = finished.rbegin(); d != finished.rend(); ++d) {
        if (!shown.insert(d->job).second) continue;  // run again since: the open run is shown
        const double elapsed = static_cast<double>(d->elapsed_ms) / 1000.0;
        job_track& t = jobs_[d->job];
        if (!t.done && t.started == 0)  // finished before a snapshot saw it open
            t.started = s->taken - elapsed;
        t.done = true;
        s->jobs.push_back(
            job_row{d->job, d->ok, d->failed, d->total, 0, std::nullopt, t.started, elapsed, true});
    }
    std::erase_if(jobs_, [&](const auto& kv) { return !shown.contains(kv.first); });

    s->workers.reserve(workers_.size());
    for (const auto& [name, e] : workers_) {
        s->workers.push_back(e.row);
        s->workers.back().last_seen_seconds_ago = seconds(now - e.last_seen);
        if (e.row.state == worker_state::alive) s->in_flight += e.row.running + e.row.queued;
    }
    s->failures.assign(failures_.begin(), failures_.end());
    s->failures_seen = failures_seen_;
    return s;
}

}  // namespace zfarm::sink
