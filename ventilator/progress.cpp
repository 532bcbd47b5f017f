#include "progress.hpp"

#include <sys/ioctl.h>

#include <spdlog/spdlog.h>

#include <cmath>

namespace zfarm::ventilator {
namespace {

constexpr auto k_live_redraw = std::chrono::milliseconds(200);
constexpr auto k_sample_every = std::chrono::milliseconds(100);
constexpr auto k_min_span = std::chrono::milliseconds(200);
// Erases the line the cursor is on.
constexpr std::string_view k_clear_line = "\r\x1b[K";

}  // namespace

void rate_estimator::sample(clock::time_point now, std::uint64_t done) {
    samples_.emplace_back(now, done);
    // Keep one sample at or before the window's start, so the slope always
    // spans the whole window once the job is that old.
    while (samples_.size() > 2 && samples_[1].first <= now - window_)
        samples_.pop_front();
}

double rate_estimator::rate() const noexcept {
    if (samples_.size() < 2) return 0;
    const auto& [t0, n0] = samples_.front();
    const auto& [t1, n1] = samples_.back();
    if (t1 - t0 < k_min_span || n1 < n0) return 0;
    return static_cast<double>(n1 - n0) / std::chrono::duration<double>(t1 - t0).count();
}

std::optional<double> rate_estimator::eta_seconds(std::uint64_t remaining) const noexcept {
    if (remaining == 0) return 0.0;
    const double r = rate();
    if (r <= 0) return std::nullopt;
    return static_cast<double>(remaining) / r;
}

std::string group_digits(std::uint64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    out.reserve(digits.size() + digits.size() / 3);
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string format_duration(double seconds) {
    const auto s = static_cast<std::uint64_t>(std::llround(std::max(seconds, 0.0)));
    char buf[32];
    if (s < 60) {
        std::snprintf(buf, sizeof buf, "%llus", static_cast<unsigned long long>(s));
    } else if (s < 3600) {
        std::snprintf(buf, sizeof buf, "%llum%02llus", static_cast<unsigned long long>(s / 60),
                      static_cast<unsigned long long>(s % 60));
    } else {
        std::snprintf(buf, sizeof buf, "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                      static_cast<unsigned long long>(s / 60 % 60));
    }
    return buf;
}

std::string format_rate(double r) {
    char buf[32];
    if (r < 1000) {
        std::snprintf(buf, sizeof buf, "%.0f/s", r);
    } else if (r < 1e6) {
        std::snprintf(buf, sizeof buf, "%.1fk/s", r / 1e3);
    } else {
        std::snprintf(buf, sizeof buf, "%.2fM/s", r / 1e6);
    }
    return buf;
}

std::string progress_line(const progress_state& s, double rate, std::optional<double> eta) {
    std::string line(s.job);
    line += ' ';
    if (s.total) {
        line += group_digits(s.done) + "/" + group_digits(*s.total);
        char pct[16];
        const double p = *s.total == 0 ? 100.0
                                       : 100.0 * static_cast<double>(std::min(s.done, *s.total)) /
                                             static_cast<double>(*s.total);
        std::snprintf(pct, sizeof pct, " %.1f%%", std::floor(p * 10) / 10);
        line += pct;
    } else {
        line += group_digits(s.done) + " done";
    }
    line += ' ' + format_rate(rate);
    if (s.total) line += " ETA " + (eta ? format_duration(*eta) : std::string("-"));
    line += ' ' + std::to_string(s.workers) + (s.workers == 1 ? " worker" : " workers");
    if (s.failed > 0) line += ' ' + group_digits(s.failed) + " failed";
    if (s.retried > 0) line += ' ' + group_digits(s.retried) + " retried";
    line += " [" + format_duration(s.elapsed_s) + "]";
    return line;
}

progress_display::progress_display(std::FILE* out, bool live, clock::duration interval)
    : out_(out), live_(live), interval_(interval) {}

void progress_display::update(const progress_state& s, clock::time_point now) {
    if (finished_) return;
    if (now >= next_sample_) {  // the loop calls often: a rate needs far fewer samples
        rate_.sample(now, s.done - s.resumed);
        next_sample_ = now + k_sample_every;
    }
    if (now < next_draw_) return;
    if (!live_) {
        if (interval_ <= clock::duration::zero()) return;
        if (next_draw_ == clock::time_point{}) {  // the first line after one interval
            next_draw_ = now + interval_;
            return;
        }
        next_draw_ = now + interval_;
        spdlog::info("progress: {}", progress_line(s, rate_.rate(), remaining_eta(s)));
        return;
    }
    next_draw_ = now + k_live_redraw;
    std::lock_guard lock(mu_);
    draw(s);
}

std::optional<double> progress_display::remaining_eta(const progress_state& s) const {
    if (!s.total) return std::nullopt;
    return rate_.eta_seconds(*s.total > s.done ? *s.total - s.done : 0);
}

void progress_display::finish(const progress_state& s, clock::time_point now) {
    rate_.sample(now, s.done - s.resumed);
    if (finished_ || !live_) {
        finished_ = true;
        return;
    }
    std::lock_guard lock(mu_);
    draw(s);
    std::fputc('\n', out_);
    std::fflush(out_);
    line_.clear();
    finished_ = true;
}

void progress_display::draw(const progress_state& s) {
    line_ = progress_line(s, rate_.rate(), remaining_eta(s));
    // A line wider than the terminal wraps, and "\r ESC[K" would then erase
    // only its last row: cut it to the width (read each time: it may change).
    winsize ws{};
    if (ioctl(fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && line_.size() >= ws.ws_col)
        line_.resize(ws.ws_col - 1u);
    std::fwrite(k_clear_line.data(), 1, k_clear_line.size(), out_);
    std::fwrite(line_.data(), 1, line_.size(), out_);
    std::fflush(out_);
}

void progress_display::print_above(std::string_view text) {
    std::lock_guard lock(mu_);
    if (!line_.empty()) std::fwrite(k_clear_line.data(), 1, k_clear_line.size(), out_);
    std::fwrite(text.data(), 1, text.size(), out_);
    if (!line_.empty()) std::fwrite(line_.data(), 1, line_.size(), out_);
    std::fflush(out_);
}

void progress_log_sink::sink_it_(const spdlog::details::log_msg& msg) {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    display_->print_above(std::string_view(formatted.data(), formatted.size()));
}

}  // namespace zfarm::ventilator
