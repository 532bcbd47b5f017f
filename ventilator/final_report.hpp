// The end-of-job report: how a job went, printed on stderr when it ends and
// written as JSON with `--report FILE`. The counts and the wall time are the
// ventilator's own; task-time percentiles and the per-worker table come from
// the sink's REPORT (PROTOCOL.md 5.16), absent when the sink sent none (an
// older sink, or a job that did not finish).
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "ventilator.hpp"
#include "zfarm/expected.hpp"

namespace zfarm::ventilator {

// Idle time below this share of the workers' time is not worth a hint.
inline constexpr double k_idle_hint_share = 0.05;

// The report as text, a few lines each ending with a newline: the counts,
// the task times, a row per worker (at most `max_rows`, the rest summed up)
// and, in push dispatch, how long workers sat idle while others still had
// tasks queued.
std::string format_report(const job_outcome& o, std::size_t max_rows = 32);

// The report as JSON (its keys are documented in README, "Watching a job").
nlohmann::ordered_json report_json(const job_outcome& o);

// `--report FILE`, opened (created or truncated) before the job starts, so
// that a path that cannot be written fails at once, not after the job.
class report_file {
  public:
    static expected<report_file, std::string> open(const std::string& path);
    report_file(report_file&& other) noexcept;
    report_file& operator=(report_file&&) = delete;
    ~report_file();
    // Writes `o`'s report; false with a one-line reason in `why`.
    bool write(const job_outcome& o, std::string& why);
    // For a job that could not run at all (a bad endpoint, say):
    // {"job", "outcome": "error", "error"}.
    bool write_error(const std::string& job, const std::string& error, std::string& why);

  private:
    report_file(std::string path, std::FILE* f) : path_(std::move(path)), file_(f) {}
    bool write_json(const nlohmann::ordered_json& j, std::string& why);
    std::string path_;
    std::FILE* file_;
};

}  // namespace zfarm::ventilator
