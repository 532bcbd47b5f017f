#include "status_json.hpp"

#include <nlohmann/json.hpp>

namespace zfarm::sink {
namespace {

using nlohmann::json;

template <class T>
json or_null(const std::optional<T>& v) {
    return v ? json(*v) : json(nullptr);
}

const char* to_string(worker_state s) {
    switch (s) {
        case worker_state::alive:
            return "alive";
        case worker_state::lost:
            return "lost";
        case worker_state::left:
            return "left";
    }
    return "unknown";
}

json job_json(const job_row& j) {
    std::optional<double> percent;
    if (j.total)
        percent = *j.total == 0
                      ? 100.0
                      : 100.0 * static_cast<double>(j.recorded()) / static_cast<double>(*j.total);
    return {{"name", j.name},
            {"recorded", j.recorded()},
            {"ok", j.ok},
            {"failed", j.failed},
            {"total", or_null(j.total)},
            {"percent", or_null(percent)},
            {"rate", j.rate},
            {"eta_seconds", or_null(j.eta_seconds)},
            {"started", j.started},
            {"elapsed_seconds", j.elapsed_seconds},
            {"done", j.done}};
}

json worker_json(const worker_row& w) {
    return {{"name", w.name},
            {"host", w.host},
            {"pid", w.pid},
            {"threads", w.threads},
            {"version", w.version},
            {"tasks_done", w.tasks_done},
            {"running", w.running},
            {"queued", w.queued},
            {"busy_percent", 100.0 * w.busy},
            {"last_seen_seconds_ago", w.last_seen_seconds_ago},
            {"state", to_string(w.state)}};
}

json failure_json(const failure_row& f) {
    return {{"job", f.job},     {"id", f.id}, {"attempt", f.attempt}, {"worker", f.worker},
            {"error", f.error}, {"at", f.at}, {"retried", f.retried}};
}

}  // namespace

std::string format_status(const status_snapshot& s) {
    json jobs = json::array();
    for (const auto& j : s.jobs)
        jobs.push_back(job_json(j));
    json workers = json::array();
    for (const auto& w : s.workers)
        workers.push_back(worker_json(w));
    json failures = json::array();
    for (const auto& f : s.failures)
        failures.push_back(failure_json(f));
    const json out = {
        {"version", s.version},
        {"taken", s.taken},
        {"uptime_seconds", s.uptime_seconds},
        {"rate", s.rate},
        {"rate_history", s.rate_history},
        {"tasks_recorded", s.durations.count()},
        {"in_flight", s.in_flight},
        {"retries", s.counters.retries},
        {"duplicates", s.counters.duplicates},
        {"dropped_frames", s.counters.dropped_frames},
        {"workers_alive", s.counters.workers_alive},
        {"workers_lost", s.counters.workers_lost},
        {"jobs_open", s.counters.jobs_open},
        {"jobs", std::move(jobs)},
        {"workers", std::move(workers)},
        {"failures", std::move(failures)},
        {"failures_seen", s.failures_seen},
    };
    return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace zfarm::sink
