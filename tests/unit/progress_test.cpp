// Unit tests for ventilator/progress.hpp: the rate and ETA estimator on a
// steady, an accelerating and a stalled job, the line's format, and the live
// display's terminal output (log lines written above the line, a final
// newline).
#include "progress.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace zfarm::ventilator {
namespace {

using namespace std::chrono_literals;
using clock = rate_estimator::clock;

TEST(RateEstimator, SteadyJobGivesItsRateAndAnHonestEta) {
    rate_estimator r;
    const auto t0 = clock::now();
    for (int i = 0; i <= 100; ++i)  // 1000 tasks/s for 10 s, sampled every 100 ms
        r.sample(t0 + i * 100ms, static_cast<std::uint64_t>(i) * 100);
    EXPECT_NEAR(r.rate(), 1000.0, 1e-6);
    ASSERT_TRUE(r.eta_seconds(5000));
    EXPECT_NEAR(*r.eta_seconds(5000), 5.0, 1e-6);
    EXPECT_EQ(r.eta_seconds(0), 0.0);
}

TEST(RateEstimator, FollowsAJobThatSpeedsUpWithinItsWindow) {
    rate_estimator r(5s);
    const auto t0 = clock::now();
    std::uint64_t done = 0;
    auto t = t0;
    for (int i = 0; i < 100; ++i, t += 100ms)  // 10 s at 100/s
        r.sample(t, done += 10);
    EXPECT_NEAR(r.rate(), 100.0, 1.0);
    for (int i = 0; i < 60; ++i, t += 100ms)  // then 6 s at 1000/s
        r.sample(t, done += 100);
    // The window holds only the new pace: the ETA is not the whole job's
    // average (which would say about 2.5 times longer).
    EXPECT_NEAR(r.rate(), 1000.0, 25.0);
    EXPECT_NEAR(*r.eta_seconds(10000), 10.0, 0.3);
}

TEST(RateEstimator, AStalledJobHasNoEta) {
    rate_estimator r(5s);
    const auto t0 = clock::now();
    for (int i = 0; i <= 50; ++i)
        r.sample(t0 + i * 100ms, static_cast<std::uint64_t>(i) * 100);
    EXPECT_GT(r.rate(), 0.0);
    for (int i = 51; i <= 120; ++i)  // nothing done for 7 s
        r.sample(t0 + i * 100ms, 5000);
    EXPECT_EQ(r.rate(), 0.0);
    EXPECT_FALSE(r.eta_seconds(100));
}

TEST(RateEstimator, NoRateFromOneSampleOrTooShortASpan) {
    rate_estimator r;
    const auto t0 = clock::now();
    EXPECT_EQ(r.rate(), 0.0);
    r.sample(t0, 0);
    EXPECT_EQ(r.rate(), 0.0);
    r.sample(t0 + 50ms, 1000);
    EXPECT_EQ(r.rate(), 0.0);
    EXPECT_FALSE(r.eta_seconds(10));
}

TEST(ProgressLine, KnownTotal) {
    progress_state s;
    s.job = "render";
    s.done = 1234;
    s.total = 10000;
    s.workers = 4;
    s.elapsed_s = 75;
    EXPECT_EQ(progress_line(s, 4500, 117.2),
              "render 1,234/10,000 12.3% 4.5k/s ETA 1m57s 4 workers [1m15s]");
    s.failed = 2;
    s.retried = 5;
    s.workers = 1;
    EXPECT_EQ(progress_line(s, 950, std::nullopt),
              "render 1,234/10,000 12.3% 950/s ETA - 1 worker 2 failed 5 retried [1m15s]");
}

TEST(ProgressLine, UnknownTotalAndEdges) {
    progress_state s;
    s.job = "j";
    s.done = 999;
    s.workers = 0;
    EXPECT_EQ(progress_line(s, 1.5e6, std::nullopt), "j 999 done 1.50M/s 0 workers [0s]");
    s.total = 0;
    s.done = 0;
    EXPECT_EQ(progress_line(s, 0, 0.0), "j 0/0 100.0% 0/s ETA 0s 0 workers [0s]");
    s.total = 3;  // never above 100 %, nor rounded up to it
    s.done = 2;
    EXPECT_NE(progress_line(s, 0, std::nullopt).find(" 66.6% "), std::string::npos);
}

TEST(ProgressLine, NumberFormats) {
    EXPECT_EQ(group_digits(0), "0");
    EXPECT_EQ(group_digits(999), "999");
    EXPECT_EQ(group_digits(1000), "1,000");
    EXPECT_EQ(group_digits(1234567), "1,234,567");
    EXPECT_EQ(format_duration(0.4), "0s");
    EXPECT_EQ(format_duration(59.6), "1m00s");
    EXPECT_EQ(format_duration(3725), "1h02m");
    EXPECT_EQ(format_duration(-3), "0s");
    EXPECT_EQ(format_rate(0), "0/s");
    EXPECT_EQ(format_rate(999.4), "999/s");
    EXPECT_EQ(format_rate(45600), "45.6k/s");
}

// The live display writes to a temporary file standing in for a terminal.
std::string contents(std::FILE* f) {
    std::fflush(f);
    std::rewind(f);
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, f))
        out.append(buf, n);
    return out;
}

TEST(ProgressDisplay, LiveLineIsRedrawnInPlaceWithLogLinesAboveIt) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    progress_display d(f, true, 5s);
    progress_state s;
    s.job = "j";
    s.total = 10;
    const auto t0 = clock::now();
    d.update(s, t0);
    d.print_above("a log line\n");
    s.done = 10;
    d.update(s, t0 + 100ms);  // too soon: not drawn
    d.finish(s, t0 + 150ms);
    d.update(s, t0 + 2s);  // after the end: nothing more
    d.print_above("after\n");
    const std::string out = contents(f);
    std::fclose(f);
    EXPECT_EQ(out,
              "\r\x1b[Kj 0/10 0.0% 0/s ETA - 0 workers [0s]"
              "\r\x1b[Ka log line\nj 0/10 0.0% 0/s ETA - 0 workers [0s]"
              "\r\x1b[Kj 10/10 100.0% 0/s ETA 0s 0 workers [0s]\n"
              "after\n");
}

TEST(ProgressDisplay, NotLiveDrawsNothingOnItsStream) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    progress_display d(f, false, 1s);  // status lines go through the log instead
    progress_state s;
    s.job = "j";
    const auto t0 = clock::now();
    d.update(s, t0);
    d.update(s, t0 + 3s);
    d.finish(s, t0 + 4s);
    EXPECT_EQ(contents(f), "");
    std::fclose(f);
}

}  // namespace
}  // namespace zfarm::ventilator
