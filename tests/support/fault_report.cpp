#include "support/fault_report.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>

namespace zfarm::test {
namespace {

double unix_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

fault_report tally(const std::vector<nlohmann::json>& results, std::uint64_t n) {
    fault_report r;
    r.attempted = n;
    std::map<std::uint64_t, int> seen;
    for (const auto& j : results) {
        const auto id = j.value("id", std::uint64_t{0});
        if (++seen[id] > 1) ++r.duplicates_recorded;
        (j.value("status", "") == "ok" ? r.recorded_ok : r.failed)++;
        if (j.value("attempts", 1) > 1) ++r.retried;
    }
    for (std::uint64_t id = 0; id < n; ++id)
        if (!seen.contains(id)) ++r.lost;
    return r;
}

std::optional<std::uint64_t> duplicate_deliveries(const std::string& sink_log) {
    const std::string marker = " duplicate result(s) dropped";
    std::optional<std::uint64_t> total;
    for (auto at = sink_log.find(marker); at != std::string::npos;
         at = sink_log.find(marker, at + 1)) {
        auto from = at;
        while (from > 0 && std::isdigit(static_cast<unsigned char>(sink_log[from - 1])))
            --from;
        if (from == at) continue;
        total = total.value_or(0) + std::stoull(sink_log.substr(from, at - from));
    }
    return total;
}

std::optional<double> longest_wait(const std::vector<nlohmann::json>& results,
                                   std::vector<std::chrono::system_clock::time_point> kills) {
    if (kills.empty()) return std::nullopt;
    std::sort(kills.begin(), kills.end());
    std::optional<double> longest;
    for (const auto& j : results) {
        if (j.value("attempts", 1) <= 1) continue;
        const double start = j.value("start", 0.0);
        double last_kill = -1;
        for (const auto& k : kills)
            if (unix_seconds(k) <= start) last_kill = unix_seconds(k);
        if (last_kill >= 0) longest = std::max(longest.value_or(0.0), start - last_kill);
    }
    return longest;
}

std::string describe(const fault_report& r) {
    char wait[32] = "-";
    if (r.longest_wait_s) std::snprintf(wait, sizeof wait, "%.2f s", *r.longest_wait_s);
    return "attempted " + std::to_string(r.attempted) + ", recorded ok " +
           std::to_string(r.recorded_ok) + ", failed " + std::to_string(r.failed) + ", lost " +
           std::to_string(r.lost) + ", duplicates recorded " +
           std::to_string(r.duplicates_recorded) + ", duplicate deliveries " +
           (r.duplicate_deliveries ? std::to_string(*r.duplicate_deliveries) : "?") + ", re-sent " +
           std::to_string(r.retried) + ", kills " + std::to_string(r.kills) + ", longest wait " +
           wait;
}

void print(const fault_report& r, const std::string& what) {
    std::printf("[fault] %s: %s\n", what.c_str(), describe(r).c_str());
    std::fflush(stdout);
}

}  // namespace zfarm::test
