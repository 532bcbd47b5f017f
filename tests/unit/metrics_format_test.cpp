// Unit tests for sink/metrics_format.hpp: /metrics checked line by line
// against the Prometheus text exposition format 0.0.4 by a small validator:
// every line is a comment (# HELP, # TYPE) or `name{labels} value`; a
// family's HELP and TYPE come before its samples, once, and its samples are
// together; counters end in _total; a histogram's buckets are cumulative and
// end in le="+Inf", equal to its _count; label values escape \, " and
// newline.
#include "metrics_format.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace {

using zfarm::sink::escape_label_value;
using zfarm::sink::format_metrics;
using zfarm::sink::job_row;
using zfarm::sink::status_snapshot;

struct sample {
    std::string name;
    std::map<std::string, std::string> labels;  // unescaped
    double value = 0;
};

struct exposition {
    std::vector<sample> samples;
    std::map<std::string, std::string> types;

    // The value of the sample `name` with exactly `labels`, or NaN.
    double value(const std::string& name,
                 const std::map<std::string, std::string>& labels = {}) const {
        for (const auto& s : samples)
            if (s.name == name && s.labels == labels) return s.value;
        return NAN;
    }
};

// Parses `{a="x",b="y"}` (without the braces) into `out`; false when it is
// not that, or a value has an escape other than \\, \" and \n.
bool parse_labels(const std::string& text, std::map<std::string, std::string>& out) {
    static const std::regex name(R"([a-zA-Z_][a-zA-Z0-9_]*)");
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t eq = text.find('=', i);
        if (eq == std::string::npos || !std::regex_match(text.substr(i, eq - i), name))
            return false;
        const std::string key = text.substr(i, eq - i);
        if (eq + 1 >= text.size() || text[eq + 1] != '"') return false;
        std::string value;
        std::size_t j = eq + 2;
        for (;; ++j) {
            if (j >= text.size()) return false;
            if (text[j] == '"') break;
            if (text[j] == '\n') return false;  // a raw newline inside a value
            if (text[j] != '\\') {
                value += text[j];
                continue;
            }
            if (++j >= text.size()) return false;
            if (text[j] == '\\')
                value += '\\';
            else if (text[j] == '"')
                value += '"';
            else if (text[j] == 'n')
                value += '\n';
            else
                return false;
        }
        if (!out.emplace(key, value).second) return false;  // a label twice
        i = j + 1;
        if (i < text.size() && text[i++] != ',') return false;
    }
    return true;
}

bool parse_value(const std::string& text, double& v) {
    if (text == "+Inf")
        v = INFINITY;
    else if (text == "-Inf")
        v = -INFINITY;
    else if (text == "NaN")
        v = NAN;
    else {
        std::size_t used = 0;
        try {
            v = std::stod(text, &used);
        } catch (const std::exception&) {
            return false;
        }
        return used == text.size();
    }
    return true;
}

// The family a sample belongs to: a histogram's _bucket, _sum and _count
// belong to the histogram.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s = suffix;
        if (name.size() > s.size() && name.ends_with(s)) {
            const std::string base = name.substr(0, name.size() - s.size());
            if (auto it = types.find(base); it != types.end() && it->second == "histogram")
                return base;
        }
    }
    return name;
}

::testing::AssertionResult validate(const std::string& text, exposition& out) {
    static const std::regex comment(R"(# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
    static const std::regex line_re(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))");
    static const std::set<std::string> known_types = {"counter", "gauge", "histogram", "summary",
                                                      "untyped"};
    if (text.empty() || text.back() != '\n')
        return ::testing::AssertionFailure() << "the text must end with a line feed";
    std::set<std::string> helped, closed;
    std::string current;  // the family whose samples come now
    std::istringstream in(text);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const auto fail = [&]() {
            return ::testing::AssertionFailure() << "line " << n << " `" << line << "`: ";
        };
        std::smatch m;
        if (line.starts_with("#")) {
            if (!std::regex_match(line, m, comment)) return fail() << "not a HELP or TYPE line";
            const std::string name = m[2];
            if (closed.contains(name) || current == name)
                return fail() << "HELP or TYPE after the family's samples";
            if (m[1] == "HELP" && !helped.insert(name).second) return fail() << "a second HELP";
            if (m[1] == "TYPE") {
                if (!known_types.contains(m[3])) return fail() << "unknown type";
                if (!out.types.emplace(name, m[3]).second) return fail() << "a second TYPE";
                if (m[3] == "counter" && !name.ends_with("_total"))
                    return fail() << "a counter's name must end in _total";
            }
            continue;
        }
        if (!std::regex_match(line, m, line_re)) return fail() << "not `name{labels} value`";
        sample s{m[1], {}, 0};
        if (!parse_labels(m[3], s.labels)) return fail() << "bad labels";
        if (!parse_value(m[4], s.value)) return fail() << "bad value";
        const std::string family = family_of(s.name, out.types);
        if (!out.types.contains(family) || !helped.contains(family))
            return fail() << "a sample before its family's HELP and TYPE";
        if (family != current) {
            if (closed.contains(family)) return fail() << "the family's samples are not together";
            if (!current.empty()) closed.insert(current);
            current = family;
        }
        out.samples.push_back(std::move(s));
    }
    // Histograms: cumulative buckets in ascending `le`, ending in +Inf == _count.
    for (const auto& [family, type] : out.types) {
        if (type != "histogram") continue;
        double last_le = -INFINITY, last_count = 0;
        bool inf = false;
        for (const auto& s : out.samples) {
            if (s.name != family + "_bucket") continue;
            double le = 0;
            if (!s.labels.contains("le") || !parse_value(s.labels.at("le"), le))
                return ::testing::AssertionFailure() << family << ": a bucket without le";
            if (le <= last_le || s.value < last_count)
                return ::testing::AssertionFailure()
                       << family << ": buckets not ascending and cumulative at le=" << le;
            last_le = le;
            last_count = s.value;
            inf = std::isinf(le);
        }
        if (!inf) return ::testing::AssertionFailure() << family << ": no le=\"+Inf\" bucket";
        if (last_count != out.value(family + "_count"))
            return ::testing::AssertionFailure() << family << ": +Inf bucket is not _count";
        if (std::isnan(out.value(family + "_sum")))
            return ::testing::AssertionFailure() << family << ": no _sum";
    }
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult valid(const std::string& text) {
    exposition e;
    return validate(text, e);
}

status_snapshot example() {
    status_snapshot s;
    s.jobs.push_back(job_row{"render", 90, 3, 200, 12.5, 8.0, 1.7e9, 10, false});
    s.jobs.push_back(job_row{"old", 5, 0, 5, 0, std::nullopt, 1.7e9, 2, true});
    s.counters = {4, 2, 1, 1, 3, 1};
    s.in_flight = 6;
    s.uptime_seconds = 12.25;
    for (std::uint64_t us : {800ull, 3000ull, 3000ull, 40000ull, 2000000ull, 5000000000ull})
        s.durations.observe(us);
    return s;
}

TEST(MetricsFormat, EveryLineFollowsTheExpositionFormat) {
    exposition e;
    EXPECT_TRUE(validate(format_metrics(example()), e));
}

TEST(MetricsFormat, EmptySnapshotIsValidToo) {
    exposition e;
    EXPECT_TRUE(validate(format_metrics(status_snapshot{}), e));
    EXPECT_EQ(e.value("zfarm_task_duration_seconds_count"), 0);
    EXPECT_EQ(e.value("zfarm_task_duration_seconds_bucket", {{"le", "+Inf"}}), 0);
}

TEST(MetricsFormat, CountersAndGaugesCarryTheSnapshotsValues) {
    exposition e;
    ASSERT_TRUE(validate(format_metrics(example()), e));
    EXPECT_EQ(e.types["zfarm_tasks_total"], "counter");
    EXPECT_EQ(e.value("zfarm_tasks_total", {{"job", "render"}, {"status", "ok"}}), 90);
    EXPECT_EQ(e.value("zfarm_tasks_total", {{"job", "render"}, {"status", "failed"}}), 3);
    EXPECT_EQ(e.value("zfarm_tasks_total", {{"job", "old"}, {"status", "ok"}}), 5);
    EXPECT_EQ(e.value("zfarm_task_retries_total"), 4);
    EXPECT_EQ(e.value("zfarm_duplicate_results_total"), 2);
    EXPECT_EQ(e.value("zfarm_dropped_frames_total"), 1);
    EXPECT_EQ(e.value("zfarm_workers_lost_total"), 1);
    EXPECT_EQ(e.types["zfarm_workers_alive"], "gauge");
    EXPECT_EQ(e.value("zfarm_workers_alive"), 3);
    EXPECT_EQ(e.value("zfarm_tasks_in_flight"), 6);
    EXPECT_EQ(e.value("zfarm_jobs_open"), 1);
    EXPECT_EQ(e.value("zfarm_sink_uptime_seconds"), 12.25);
}

TEST(MetricsFormat, HistogramIsInSecondsCumulativeWithSumAndCount) {
    exposition e;
    ASSERT_TRUE(validate(format_metrics(example()), e));
    EXPECT_EQ(e.types["zfarm_task_duration_seconds"], "histogram");
    const std::string b = "zfarm_task_duration_seconds_bucket";
    EXPECT_EQ(e.value(b, {{"le", "0.001"}}), 1);
    EXPECT_EQ(e.value(b, {{"le", "0.005"}}), 3);
    EXPECT_EQ(e.value(b, {{"le", "0.05"}}), 4);
    EXPECT_EQ(e.value(b, {{"le", "2.5"}}), 5);
    EXPECT_EQ(e.value(b, {{"le", "+Inf"}}), 6);
    EXPECT_EQ(e.value("zfarm_task_duration_seconds_count"), 6);
    EXPECT_DOUBLE_EQ(e.value("zfarm_task_duration_seconds_sum"),
                     (800 + 3'000 + 3'000 + 40'000 + 2'000'000 + 5'000'000'000.0) / 1e6);
}

TEST(MetricsFormat, LabelValuesEscapeBackslashQuoteAndNewline) {
    EXPECT_EQ(escape_label_value(R"(a\b)"), R"(a\\b)");
    EXPECT_EQ(escape_label_value(R"(say "hi")"), R"(say \"hi\")");
    EXPECT_EQ(escape_label_value("two\nlines"), R"(two\nlines)");
    EXPECT_EQ(escape_label_value("plain-job_1 é"), "plain-job_1 é");
}

TEST(MetricsFormat, AJobNamedWithEveryEscapeReadsBackAsItself) {
    status_snapshot s;
    const std::string nasty = "dir\\name \"quoted\"\nsecond line";
    s.jobs.push_back(job_row{nasty, 1, 1, std::nullopt, 0, std::nullopt, 0, 0, false});
    const std::string text = format_metrics(s);
    exposition e;
    ASSERT_TRUE(validate(text, e)) << text;
    EXPECT_EQ(e.value("zfarm_tasks_total", {{"job", nasty}, {"status", "failed"}}), 1);
    EXPECT_NE(text.find(R"(job="dir\\name \"quoted\"\nsecond line")"), std::string::npos);
}

TEST(MetricsFormat, ValidatorRejectsWhatTheFormatForbids) {
    EXPECT_FALSE(valid("zfarm_x 1\n")) << "a sample without TYPE";
    EXPECT_FALSE(valid("# HELP a_total h\n# TYPE a_total counter\na_total{l=\"x\\q\"} 1\n"))
        << "an unknown escape";
    EXPECT_FALSE(valid("# HELP a h\n# TYPE a counter\na 1\n")) << "a counter without _total";
    EXPECT_FALSE(valid("# HELP g h\n# TYPE g gauge\ng 1\n# HELP k h\n# TYPE k gauge\nk 1\ng 2\n"))
        << "a family's samples apart";
    EXPECT_TRUE(valid("# HELP g h\n# TYPE g gauge\ng{a=\"x\\\\y\"} 1.5\n"));
    EXPECT_FALSE(
        valid("# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
              "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"))
        << "buckets not cumulative";
    EXPECT_FALSE(
        valid("# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\n"
              "h_count 1\n"))
        << "no +Inf bucket";
}

}  // namespace
