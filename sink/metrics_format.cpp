#include "metrics_format.hpp"

#include <spdlog/fmt/fmt.h>

namespace zfarm::sink {
namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <class V>
void sample(std::string& out, std::string_view name, V value) {
    fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
}

void histogram(std::string& out, std::string_view name, const duration_histogram& h) {
    const auto cumulative = h.cumulative();
    for (std::size_t i = 0; i < duration_histogram::k_bounds_us.size(); ++i)
        fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name,
                       static_cast<double>(duration_histogram::k_bounds_us[i]) / 1e6,
                       cumulative[i]);
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n", name,
                   cumulative.back());
    fmt::format_to(std::back_inserter(out), "{}_sum {}\n{}_count {}\n", name,
                   static_cast<double>(h.sum_us()) / 1e6, name, h.count());
}

}  // namespace

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string format_metrics(const status_snapshot& s) {
    std::string out;
    family(out, "zfarm_tasks_total", "counter",
           "Task results recorded by the sink, by job and status (jobs open or recently "
           "finished).");
    for (const auto& j : s.jobs) {
        const std::string job = escape_label_value(j.name);
        fmt::format_to(std::back_inserter(out),
                       "zfarm_tasks_total{{job=\"{}\",status=\"ok\"}} {}\n", job, j.ok);
        fmt::format_to(std::back_inserter(out),
                       "zfarm_tasks_total{{job=\"{}\",status=\"failed\"}} {}\n", job, j.failed);
    }
    family(out, "zfarm_task_retries_total", "counter",
           "Failed attempts sent again (RETRY) instead of being recorded.");
    sample(out, "zfarm_task_retries_total", s.counters.retries);
    family(out, "zfarm_duplicate_results_total", "counter",
           "Results of tasks already recorded, dropped.");
    sample(out, "zfarm_duplicate_results_total", s.counters.duplicates);
    family(out, "zfarm_workers_lost_total", "counter",
           "Workers declared lost after a silence longer than the liveness timeout.");
    sample(out, "zfarm_workers_lost_total", s.counters.workers_lost);
    family(out, "zfarm_dropped_frames_total", "counter",
           "Frames the sink dropped as malformed or unexpected.");
    sample(out, "zfarm_dropped_frames_total", s.counters.dropped_frames);
    family(out, "zfarm_workers_alive", "gauge", "Workers heard from within the liveness timeout.");
    sample(out, "zfarm_workers_alive", s.counters.workers_alive);
    family(out, "zfarm_tasks_in_flight", "gauge",
           "Tasks that live workers said, in their last heartbeat, they hold (running or "
           "queued).");
    sample(out, "zfarm_tasks_in_flight", s.in_flight);
    family(out, "zfarm_jobs_open", "gauge", "Jobs opened and not yet done or cancelled.");
    sample(out, "zfarm_jobs_open", s.counters.jobs_open);
    family(out, "zfarm_task_duration_seconds", "histogram",
           "Time workers took to run the tasks recorded (a result's elapsed time).");
    histogram(out, "zfarm_task_duration_seconds", s.durations);
    family(out, "zfarm_sink_uptime_seconds", "gauge", "Seconds since the sink started.");
    sample(out, "zfarm_sink_uptime_seconds", s.uptime_seconds);
    return out;
}

}  // namespace zfarm::sink
