#include "job_report.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

namespace zfarm::sink {

proto::report make_report(const job_state& j, const proto::done& d,
                          const std::function<worker_facts(const std::string&)>& about) {
    proto::report r;
    r.job = d.job;
    r.total = d.total;
    r.elapsed_ms = d.elapsed_ms;
    r.timed = j.times.count();
    r.busy_us = j.busy_us;
    r.p50_us = j.times.quantile(0.50);
    r.p95_us = j.times.quantile(0.95);
    r.p99_us = j.times.quantile(0.99);
    r.max_us = j.times.max();

    std::vector<std::pair<const std::string*, const worker_tally*>> rows;
    rows.reserve(j.workers.size());
    for (const auto& [name, t] : j.workers)
        rows.emplace_back(&name, &t);
    if (rows.size() > k_max_report_workers) {
        std::nth_element(
            rows.begin(), rows.begin() + k_max_report_workers, rows.end(),
            [](const auto& a, const auto& b) { return a.second->tasks > b.second->tasks; });
        rows.resize(k_max_report_workers);
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return *a.first < *b.first; });

    // Idle while others still had tasks to start (rule 3 of 5.16): from a
    // worker's last end, or the job's close when later (before it, tasks
    // may not have existed yet), to the latest start on any other worker.
    // The two latest starts are enough to know the latest on every other.
    const std::int64_t closed_us =
        j.closed > j.opened
            ? std::chrono::duration_cast<std::chrono::microseconds>(j.closed - j.opened).count()
            : 0;
    constexpr std::int64_t k_none = std::numeric_limits<std::int64_t>::min();
    const worker_tally* latest = nullptr;
    std::int64_t first = k_none, second = k_none;
    for (const auto& [name, t] : j.workers) {
        if (t.timed == 0) continue;
        if (t.last_start_us > first) {
            second = first;
            first = t.last_start_us;
            latest = &t;
        } else if (t.last_start_us > second) {
            second = t.last_start_us;
        }
    }
    r.workers.reserve(rows.size());
    for (const auto& [name, t] : rows) {
        const worker_facts facts = about(*name);
        proto::report_worker w;
        w.worker = *name;
        w.host = facts.host;
        w.threads = facts.threads;
        w.tasks = t->tasks;
        w.failed = t->failed;
        w.timed = t->timed;
        w.busy_us = t->busy_us;
        w.lost = t->lost;
        w.rejoined = t->rejoined;
        if (t->timed > 0 && facts.present) {
            const std::int64_t others = t == latest ? second : first;
            const std::int64_t from = std::max(t->last_end_us, closed_us);
            if (others != k_none && others > from)
                w.idle_us = static_cast<std::uint64_t>(others - from);
        }
        r.workers.push_back(std::move(w));
    }
    return r;
}

}  // namespace zfarm::sink
