// How far a job is, shown while it runs (the ventilator's stderr): a live
// line redrawn in place when stderr is a terminal, or a plain status line
// every few seconds when it is not (a log file, a pipe). Never on stdout,
// where the summary and (with `-o -` on the sink) results may go.
//
// Single-threaded, like the ventilator; the log sink that shares the
// terminal with the live line locks the display's mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/sinks/base_sink.h>

namespace zfarm::ventilator {

// Tasks done per second over the last few seconds, and the time left at
// that rate. Samples are (time, tasks done so far), taken often (every
// redraw); the rate is the slope over a sliding window, so a job that speeds
// up or slows down shows its new pace within the window, and one that stops
// shows no estimate rather than a stale one.
class rate_estimator {
  public:
    using clock = std::chrono::steady_clock;
    explicit rate_estimator(clock::duration window = std::chrono::seconds(5)) : window_(window) {}

    void sample(clock::time_point now, std::uint64_t done);
    // Tasks per second over the window; 0 until two samples span 200 ms.
    double rate() const noexcept;
    // Seconds to finish `remaining` tasks at rate(); nullopt when there is
    // no rate (the start, or nothing done for a whole window).
    std::optional<double> eta_seconds(std::uint64_t remaining) const noexcept;

  private:
    clock::duration window_;
    std::deque<std::pair<clock::time_point, std::uint64_t>> samples_;
};

struct progress_state {
    std::string_view job;
    std::uint64_t done = 0;     // recorded (ok or failed), including by an earlier run
    std::uint64_t resumed = 0;  // of done, recorded by an earlier run (not part of the rate)
    std::optional<std::uint64_t> total;  // known up front, or once the input ended
    std::uint64_t failed = 0;
    std::uint64_t retried = 0;  // tasks sent again
    std::size_t workers = 0;    // connected (push) or granting credit (credit)
    double elapsed_s = 0;
};

// One line, no newline: "JOB 1,234/10,000 12.3% 4.5k/s ETA 1m57s 4 workers
// 2 failed 5 retried" (failed and retried only when not 0; ETA "-" when
// there is no rate; "1,234 done" when the total is not known).
std::string progress_line(const progress_state& s, double rate, std::optional<double> eta);
// 1234567 -> "1,234,567"; 0.5 -> "0s"; 3725 -> "1h02m"; rates "950/s", "4.5k/s", "1.20M/s".
std::string group_digits(std::uint64_t n);
std::string format_duration(double seconds);
std::string format_rate(double per_second);

class progress_display {
  public:
    using clock = std::chrono::steady_clock;
    // live: redraw one line in place (a terminal); otherwise a status line
    // through the log every `interval` (0: never).
    progress_display(std::FILE* out, bool live, clock::duration interval);

    // Called as often as convenient; draws at most 5 times a second (live)
    // or once per interval.
    void update(const progress_state& s, clock::time_point now);
    // The final state, drawn at once; a live line ends with its newline.
    void finish(const progress_state& s, clock::time_point now);
    // For the log sink: writes `text` (whole lines) above the live line.
    void print_above(std::string_view text);
    bool live() const noexcept { return live_; }

  private:
    void draw(const progress_state& s);  // with mu_ held
    std::optional<double> remaining_eta(const progress_state& s) const;

    std::FILE* out_;
    bool live_;
    clock::duration interval_;
    rate_estimator rate_;
    clock::time_point next_draw_{};
    clock::time_point next_sample_{};
    std::string line_;  // the live line on screen, empty when none
    bool finished_ = false;
    std::mutex mu_;
};

// An spdlog sink that writes log lines above a live progress line.
class progress_log_sink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit progress_log_sink(std::shared_ptr<progress_display> display)
        : display_(std::move(display)) {}

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override {}

  private:
    std::shared_ptr<progress_display> display_;
};

}  // namespace zfarm::ventilator
