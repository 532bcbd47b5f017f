// The Jepsen-style report every fault test prints and checks: what was
// attempted, what the sink recorded (ok, failed, lost, recorded twice), how
// often a RESULT reached the sink again (duplicate deliveries), how many
// workers were killed, and the longest a lost worker's task waited to run
// again. A fault test passes only with lost = 0 and duplicates recorded = 0.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace zfarm::test {

struct fault_report {
    std::uint64_t attempted = 0;
    std::uint64_t recorded_ok = 0;
    std::uint64_t failed = 0;
    std::uint64_t lost = 0;
    std::uint64_t duplicates_recorded = 0;
    std::uint64_t retried = 0;  // recorded with attempts > 1: the work was sent again
    // RESULTs that reached the sink again and were dropped (its leaving log).
    std::optional<std::uint64_t> duplicate_deliveries;
    std::uint64_t kills = 0;  // workers (or a sink, a ventilator) killed or crashed
    // Longest time from a kill to the start of a task sent again after it.
    std::optional<double> longest_wait_s;
};

// Counts ids 0..n-1 in the sink's results.
fault_report tally(const std::vector<nlohmann::json>& results, std::uint64_t n);

// From the sink's log, "... N duplicate result(s) dropped ...": N (the
// last such line, when a sink was restarted: the sum of all of them).
std::optional<std::uint64_t> duplicate_deliveries(const std::string& sink_log);

// For each task sent again (attempts > 1), the time from the last kill
// before its recorded attempt started to that start; the longest. None
// without kills, or when no such attempt ran.
std::optional<double> longest_wait(const std::vector<nlohmann::json>& results,
                                   std::vector<std::chrono::system_clock::time_point> kills);

// "attempted A, recorded ok B, failed C, lost D, duplicates recorded E,
// duplicate deliveries F, re-sent G, kills H, longest wait W s"
std::string describe(const fault_report& r);

// Prints "[fault] WHAT: " + describe(r) and flushes.
void print(const fault_report& r, const std::string& what);

}  // namespace zfarm::test
