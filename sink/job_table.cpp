#include "job_table.hpp"

#include <algorithm>
#include <string_view>
#include <unordered_set>

namespace zfarm::sink {

namespace {

// `worker`'s tally in `j`; null for the ventilator's own results (no
// worker) and beyond k_max_workers_per_job workers.
worker_tally* tally(job_state& j, const std::string& worker) {
    if (worker.empty()) return nullptr;
    if (auto it = j.workers.find(worker); it != j.workers.end()) return &it->second;
    if (j.workers.size() >= job_table::k_max_workers_per_job) return nullptr;
    return &j.workers[worker];
}

}  // namespace

job_state* job_table::open(const std::string& name, std::chrono::steady_clock::time_point now) {
    if (auto it = open_.find(name); it != open_.end()) return &it->second;
    if (open_.size() >= k_max_open_jobs) return nullptr;
    std::erase_if(finished_, [&](const proto::done& d) { return d.job == name; });
    std::erase(cancelled_, name);
    job_state& j = open_[name];
    if (auto node = dormant_.extract(name)) j = std::move(node.mapped());
    j.name = name;
    j.opened = now;
    return &j;
}

job_table::record_outcome job_table::restore(const std::string& job, std::uint64_t id, bool ok,
                                             const std::string& worker) {
    job_state& j = dormant_[job];
    j.name = job;
    switch (j.recorded.insert(id)) {
        case dedupe_set::outcome::duplicate:
            ++j.duplicates;
            return record_outcome::duplicate;
        case dedupe_set::outcome::rejected:
            ++rejected_;
            return record_outcome::rejected;
        case dedupe_set::outcome::added:
            break;
    }
    (ok ? j.ok : j.failed)++;
    if (!ok && j.failed_ids.size() < k_max_failed_ids_kept) j.failed_ids.insert(id);
    if (auto* w = tally(j, worker)) {
        ++w->tasks;
        if (!ok) ++w->failed;
    }
    return record_outcome::added;
}

bool job_table::recorded_failed(const std::string& name, std::uint64_t id) const {
    const auto it = open_.find(name);
    return it != open_.end() && it->second.failed_ids.contains(id);
}

job_state* job_table::find(const std::string& name) {
    auto it = open_.find(name);
    return it == open_.end() ? nullptr : &it->second;
}

std::vector<std::string> job_table::open_names() const {
    std::vector<std::string> out;
    out.reserve(open_.size());
    for (const auto& [name, j] : open_)
        out.push_back(name);
    return out;
}

bool job_table::cancel(const std::string& name) {
    if (open_.erase(name) == 0) return false;
    cancelled_.push_back(name);
    if (cancelled_.size() > k_finished_kept) cancelled_.pop_front();
    return true;
}

const proto::done* job_table::finished(const std::string& name) const {
    for (const auto& d : finished_)
        if (d.job == name) return &d;
    return nullptr;
}

job_table::record_outcome job_table::record(const proto::result& r,
                                            std::chrono::steady_clock::time_point now,
                                            std::string* error) {
    job_state* j = find(r.job);
    if (!j) {
        // Stragglers of a finished or cancelled job never reopen it.
        if (const auto* d = finished(r.job)) {
            if (r.id < d->total) return record_outcome::duplicate;
            ++rejected_;
            return record_outcome::rejected;
        }
        if (std::find(cancelled_.begin(), cancelled_.end(), r.job) != cancelled_.end())
            return record_outcome::duplicate;
        j = open(r.job, now);
        if (!j) {
            ++rejected_;
            return record_outcome::rejected;
        }
    }
    if (j->total && r.id >= *j->total) {
        ++rejected_;
        return record_outcome::rejected;
    }
    const bool failed = r.status == proto::task_status::failed;
    if (failed && r.attempt <= j->retries && !j->recorded.contains(r.id)) {
        if (j->failures.size() < k_max_failures_kept || j->failures.contains(r.id)) {
            std::string& why = j->failures[r.id];
            const std::string note = "attempt " + std::to_string(r.attempt) + ": " + r.error;
            if (why.find(note) == std::string::npos && why.size() < k_max_failure_text)
                why += (why.empty() ? "" : "; ") + note;
        }
        return record_outcome::retry;
    }
    switch (j->recorded.insert(r.id)) {
        case dedupe_set::outcome::duplicate:
            ++j->duplicates;
            return record_outcome::duplicate;
        case dedupe_set::outcome::rejected:
            ++rejected_;
            return record_outcome::rejected;
        case dedupe_set::outcome::added:
            break;
    }
    (failed ? j->failed : j->ok)++;
    if (failed && j->failed_ids.size() < k_max_failed_ids_kept) j->failed_ids.insert(r.id);
    if (auto* w = tally(*j, r.worker)) {
        j->times.observe(r.elapsed_us);
        j->busy_us += r.elapsed_us;
        ++w->tasks;
        if (failed) ++w->failed;
        const bool first = w->timed++ == 0;
        w->busy_us += r.elapsed_us;
        const auto arrived =
            std::chrono::duration_cast<std::chrono::microseconds>(now - j->opened).count();
        const auto started = arrived - static_cast<std::int64_t>(std::min<std::uint64_t>(
                                           r.elapsed_us, std::uint64_t{1} << 62));
        w->last_end_us = first ? arrived : std::max(w->last_end_us, arrived);
        w->last_start_us = first ? started : std::max(w->last_start_us, started);
    }
    // The ventilator's own failure (no worker) already lists every attempt.
    // (Most jobs note no failure: spare them the lookup.)
    if (j->failures.empty()) return record_outcome::added;
    if (auto node = j->failures.extract(r.id); node && failed && error && !r.worker.empty())
        *error = node.mapped() + "; attempt " + std::to_string(r.attempt) + ": " + r.error;
    return record_outcome::added;
}

void job_table::worker_lost(const std::string& worker, const std::vector<proto::task_ref>& tasks) {
    std::unordered_set<std::string_view> held;  // jobs it held a task of
    for (const auto& t : tasks)
        held.insert(t.job);
    for (auto& [name, j] : open_) {
        if (auto it = j.workers.find(worker); it != j.workers.end()) {
            ++it->second.lost;
        } else if (held.contains(name)) {
            if (auto* w = tally(j, worker)) ++w->lost;
        }
    }
}

void job_table::worker_rejoined(const std::string& worker) {
    for (auto& [name, j] : open_)
        if (auto it = j.workers.find(worker);
            it != j.workers.end() && it->second.rejoined < it->second.lost)
            ++it->second.rejoined;
}

std::vector<proto::done> job_table::collect_finished(std::chrono::steady_clock::time_point now,
                                                     const finish_hook& finishing) {
    std::vector<proto::done> out;
    for (auto it = open_.begin(); it != open_.end();) {
        if (!it->second.complete()) {
            ++it;
            continue;
        }
        const job_state& j = it->second;
        proto::done d;
        d.job = j.name;
        d.total = *j.total;
        d.ok = j.ok;
        d.failed = j.failed;
        d.workers = static_cast<std::uint32_t>(std::count_if(
            j.workers.begin(), j.workers.end(), [](const auto& w) { return w.second.tasks > 0; }));
        d.elapsed_ms = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(now - j.opened).count());
        if (finishing) finishing(j, d);
        out.push_back(d);
        it = open_.erase(it);
    }
    for (auto& d : out) {
        d.open_jobs = static_cast<std::uint32_t>(open_.size());
        finished_.push_back(d);
        if (finished_.size() > k_finished_kept) finished_.pop_front();
    }
    return out;
}

}  // namespace zfarm::sink
