#include "final_report.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <numeric>

#include "progress.hpp"

namespace zfarm::ventilator {
namespace {

double seconds_of_us(std::uint64_t us) {
    return static_cast<double>(us) / 1e6;
}

// A task time for people: "850 us", "12.3 ms", "4.56 s", "2m05s".
std::string task_time(std::uint64_t us) {
    char buf[32];
    if (us < 1000) {
        std::snprintf(buf, sizeof buf, "%llu us", static_cast<unsigned long long>(us));
    } else if (us < 1'000'000) {
        std::snprintf(buf, sizeof buf, us < 100'000 ? "%.1f ms" : "%.0f ms",
                      static_cast<double>(us) / 1e3);
    } else if (us < 60'000'000) {
        std::snprintf(buf, sizeof buf, "%.2f s", seconds_of_us(us));
    } else {
        return format_duration(seconds_of_us(us));
    }
    return buf;
}

std::string_view outcome_name(const job_outcome& o) {
    if (o.interrupted) return "interrupted";
    if (!o.launch_error.empty()) return "launch failed";
    if (!o.input_error.empty()) return "input failed";
    if (o.halted_by) return "halted";
    return "done";
}

// A worker's share of its threads' time busy with the job's tasks.
double busy_share(const proto::report_worker& w, std::uint64_t elapsed_ms) {
    const double capacity = static_cast<double>(std::max<std::uint32_t>(w.threads, 1)) *
                            static_cast<double>(elapsed_ms) * 1e3;
    return capacity > 0 ? std::min(1.0, static_cast<double>(w.busy_us) / capacity) : 0.0;
}

// What the workers' threads could have run in the job's time: the
// denominator of the idle share.
double capacity_us(const proto::report& r) {
    double threads = 0;
    for (const auto& w : r.workers)
        if (w.tasks > 0) threads += std::max<std::uint32_t>(w.threads, 1);
    return threads * static_cast<double>(r.elapsed_ms) * 1e3;
}

// A name from the wire, safe to print on a terminal: control bytes (an
// escape sequence, a newline) become '?'.
std::string printable(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return out;
}

std::uint64_t total_idle_us(const proto::report& r) {
    return std::accumulate(r.workers.begin(), r.workers.end(), std::uint64_t{0},
                           [](std::uint64_t sum, const auto& w) { return sum + w.idle_us; });
}

}  // namespace

std::string format_report(const job_outcome& o, std::size_t max_rows) {
    std::string out;
    char buf[512];
    const double rate = o.seconds > 0 ? static_cast<double>(o.ok + o.failed) / o.seconds : 0;
    std::snprintf(
        buf, sizeof buf, "report of job %s: %s tasks, %s ok, %s failed, %s retried, in %s (%s)\n",
        o.job.c_str(), group_digits(o.total).c_str(), group_digits(o.ok).c_str(),
        group_digits(o.failed).c_str(), group_digits(o.retried).c_str(),
        task_time(static_cast<std::uint64_t>(o.seconds * 1e6)).c_str(), format_rate(rate).c_str());
    out += buf;
    if (o.skipped > 0)
        out += "  " + group_digits(o.skipped) + " recorded by an earlier run were skipped\n";
    if (!o.report) {
        out += "  no report from the sink: task times and workers unknown\n";
        return out;
    }
    const proto::report& r = *o.report;
    if (r.timed > 0) {
        std::snprintf(buf, sizeof buf, "  task time  p50 %s, p95 %s, p99 %s, max %s, mean %s\n",
                      task_time(r.p50_us).c_str(), task_time(r.p95_us).c_str(),
                      task_time(r.p99_us).c_str(), task_time(r.max_us).c_str(),
                      task_time(r.busy_us / r.timed).c_str());
        out += buf;
    } else {
        out += "  task time  unknown: no result was timed by this run of the sink\n";
    }
    if (r.workers.empty()) return out;
    std::size_t name_width = 6, host_width = 4;
    const std::size_t shown = std::min(max_rows, r.workers.size());
    std::vector<std::pair<std::string, std::string>> names;  // printable worker, host
    for (std::size_t i = 0; i < shown; ++i) {
        const auto& w = r.workers[i];
        names.emplace_back(printable(w.worker), w.host.empty() ? "?" : printable(w.host));
        name_width = std::max(name_width, std::min<std::size_t>(names.back().first.size(), 40));
        host_width = std::max(host_width, std::min<std::size_t>(names.back().second.size(), 30));
    }
    const int nw = static_cast<int>(name_width), hw = static_cast<int>(host_width);
    std::snprintf(buf, sizeof buf, "  %-*s  %-*s  %10s  %7s  %5s  %9s  %4s  %8s  %9s\n", nw,
                  "worker", hw, "host", "tasks", "failed", "busy", "mean", "lost", "rejoined",
                  "idle");
    out += buf;
    for (std::size_t i = 0; i < shown; ++i) {
        const auto& w = r.workers[i];
        std::snprintf(buf, sizeof buf, "  %-*.*s  %-*.*s  %10s  %7s  %4.0f%%  %9s  %4u  %8u  %9s\n",
                      nw, nw, names[i].first.c_str(), hw, hw, names[i].second.c_str(),
                      group_digits(w.tasks).c_str(), group_digits(w.failed).c_str(),
                      100.0 * busy_share(w, r.elapsed_ms),
                      w.timed > 0 ? task_time(w.busy_us / w.timed).c_str() : "-", w.lost,
                      w.rejoined, w.idle_us > 0 ? task_time(w.idle_us).c_str() : "0");
        out += buf;
    }
    if (shown < r.workers.size())
        out += "  ... and " + std::to_string(r.workers.size() - shown) +
               " more worker(s): --report FILE has every one\n";
    const std::uint64_t idle = total_idle_us(r);
    if (o.dispatch == dispatch_mode::push && idle > 0) {
        const double capacity = capacity_us(r);
        std::snprintf(buf, sizeof buf,
                      "  push dispatch: workers sat idle %s in all while others still had tasks "
                      "queued%s\n",
                      task_time(idle).c_str(),
                      capacity > 0 && static_cast<double>(idle) >= k_idle_hint_share * capacity
                          ? "; --dispatch credit hands each task to the first free worker"
                          : "");
        out += buf;
    }
    return out;
}

nlohmann::ordered_json report_json(const job_outcome& o) {
    nlohmann::ordered_json j;
    j["job"] = o.job;
    j["outcome"] = outcome_name(o);
    j["dispatch"] = o.dispatch == dispatch_mode::credit ? "credit" : "push";
    j["tasks"] = {{"total", o.total},
                  {"ok", o.ok},
                  {"failed", o.failed},
                  {"retried", o.retried},
                  {"skipped", o.skipped}};
    j["wall_seconds"] = o.seconds;
    j["tasks_per_second"] = o.seconds > 0 ? static_cast<double>(o.ok + o.failed) / o.seconds : 0.0;
    if (!o.report) {
        j["task_seconds"] = nullptr;
        j["workers"] = nlohmann::ordered_json::array();
        j["idle_while_queued_seconds"] = nullptr;
        return j;
    }
    const proto::report& r = *o.report;
    if (r.timed > 0) {
        j["task_seconds"] = {{"timed", r.timed},
                             {"p50", seconds_of_us(r.p50_us)},
                             {"p95", seconds_of_us(r.p95_us)},
                             {"p99", seconds_of_us(r.p99_us)},
                             {"max", seconds_of_us(r.max_us)},
                             {"mean", seconds_of_us(r.busy_us) / static_cast<double>(r.timed)}};
    } else {
        j["task_seconds"] = nullptr;  // every result restored from an earlier run
    }
    auto& rows = j["workers"] = nlohmann::ordered_json::array();
    for (const auto& w : r.workers)
        rows.push_back(
            {{"worker", w.worker},
             {"host", w.host},
             {"threads", w.threads},
             {"tasks", w.tasks},
             {"failed", w.failed},
             {"timed", w.timed},
             {"busy", busy_share(w, r.elapsed_ms)},
             {"busy_seconds", seconds_of_us(w.busy_us)},
             {"mean_seconds", w.timed > 0 ? nlohmann::ordered_json(seconds_of_us(w.busy_us) /
                                                                   static_cast<double>(w.timed))
                                          : nlohmann::ordered_json(nullptr)},
             {"lost", w.lost},
             {"rejoined", w.rejoined},
             {"idle_while_queued_seconds", seconds_of_us(w.idle_us)}});
    j["idle_while_queued_seconds"] = seconds_of_us(total_idle_us(r));
    return j;
}

expected<report_file, std::string> report_file::open(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return unexpected{"cannot write --report " + path + ": " + std::strerror(errno)};
    return report_file(path, f);
}

report_file::report_file(report_file&& other) noexcept
    : path_(std::move(other.path_)), file_(std::exchange(other.file_, nullptr)) {}

report_file::~report_file() {
    if (file_) std::fclose(file_);
}

bool report_file::write(const job_outcome& o, std::string& why) {
    return write_json(report_json(o), why);
}

bool report_file::write_error(const std::string& job, const std::string& error, std::string& why) {
    nlohmann::ordered_json j;
    j["job"] = job;
    j["outcome"] = "error";
    j["error"] = error;
    return write_json(j, why);
}

bool report_file::write_json(const nlohmann::ordered_json& j, std::string& why) {
    if (!file_) {
        why = "--report " + path_ + " was written already";
        return false;
    }
    // Names come from the wire: bytes that are not UTF-8 become U+FFFD
    // rather than an exception.
    const std::string text =
        j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    const bool ok =
        std::fwrite(text.data(), 1, text.size(), file_) == text.size() && std::fflush(file_) == 0;
    const int err = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (ok && closed) return true;
    why = "cannot write --report " + path_ + ": " + std::strerror(ok ? errno : err);
    return false;
}

}  // namespace zfarm::ventilator
