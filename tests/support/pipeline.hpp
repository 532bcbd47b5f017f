// A whole zfarm pipeline for end-to-end tests: a sink, workers and a
// ventilator on four fresh ports of 127.0.0.1 (or of another local address),
// their logs and the sink's output in one temp dir, and checks on the
// recorded results.
//
// Used from the test's main thread. When the test has failed, the destructor
// prints the tail of every program's logs; every program still running is
// then killed and reaped.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/process.hpp"

namespace zfarm::test {

// Generous bounds for events that take well under a second on an idle machine.
inline constexpr auto k_start_timeout = std::chrono::seconds(30);
inline constexpr auto k_exit_timeout = std::chrono::seconds(60);

struct pipeline_ports {
    std::uint16_t tasks = 0;
    std::uint16_t credit = 0;
    std::uint16_t results = 0;
    std::uint16_t control = 0;
};

class pipeline {
  public:
    // `dispatch` is the ventilator's --dispatch: "push" or "credit". `host`
    // is the IPv4 address the sink and the ventilator bind and every program
    // connects to (for a worker in a network namespace: the host end of its
    // veth, which programs on the host reach over loopback).
    explicit pipeline(std::string dispatch = "push", std::string host = "127.0.0.1");
    ~pipeline();
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;

    const std::string& dispatch() const noexcept { return dispatch_; }
    const pipeline_ports& ports() const noexcept { return ports_; }
    const temp_dir& dir() const noexcept { return dir_; }
    // The sink's -o file.
    std::filesystem::path output() const { return dir_ / "results.jsonl"; }

    // --results --control -o output(), then `extra`. A second sink (after the
    // first was killed) becomes sink() and logs as sink-N.
    child_process& start_sink(const std::vector<std::string>& extra = {});
    // All four endpoints, then `extra`. Named worker-1, worker-2, ...
    // `program`: zfarm-worker, or zfarm-fault-worker (tests/support/fault_worker.cpp).
    child_process& start_worker(const std::vector<std::string>& extra = {},
                                const std::string& program = "zfarm-worker");
    // A worker that is not zfarm-worker (e.g. one in another language):
    // command[0] (a path) with the rest of `command`, then all four endpoints
    // (--tasks --credit --results --control), then `extra`. Named as
    // start_worker names them, and listed in workers().
    child_process& start_external_worker(const std::vector<std::string>& command,
                                         const std::vector<std::string>& extra = {});
    // As start_worker, run under `prefix` (e.g. {"ip", "netns", "exec", NS}):
    // prefix[0] with the rest of `prefix`, the zfarm-worker path, then the args.
    child_process& start_worker_under(const std::vector<std::string>& prefix,
                                      const std::vector<std::string>& extra = {});
    // All four endpoints and --dispatch, then `extra` (the workload, --job).
    // A second ventilator becomes ventilator() and logs as ventilator-N.
    child_process& start_ventilator(const std::vector<std::string>& extra);

    // The common case: a sink with --once, `workers` workers with
    // --exit-when-done, and a ventilator running `workload` as job `job`.
    void start(int workers, const std::vector<std::string>& workload,
               const std::string& job = "e2e");

    child_process& sink() { return *sink_; }
    child_process& ventilator() { return *ventilator_; }
    const std::vector<child_process*>& workers() const noexcept { return workers_; }

  private:
    std::vector<std::string> all_endpoints() const;

    std::string endpoint(std::uint16_t port) const;

    std::string dispatch_;
    std::string host_;
    temp_dir dir_;
    pipeline_ports ports_;
    std::deque<child_process> programs_;
    child_process* sink_ = nullptr;
    child_process* ventilator_ = nullptr;
    std::vector<child_process*> workers_;
};

// The sink's JSON lines, parsed. A line that is not JSON fails the test.
std::vector<nlohmann::json> read_results(const std::filesystem::path& path);

// The sink's JSON lines by id (a later line with the same id wins).
std::map<std::uint64_t, nlohmann::json> read_results_by_id(const std::filesystem::path& path);

// Writes `lines` to `path`, each followed by '\n'; returns the path.
std::string write_lines(const std::filesystem::path& path, const std::vector<std::string>& lines);

// Ids 0..n-1 each appear exactly once, and no other id appears.
::testing::AssertionResult has_each_id_once(const std::vector<nlohmann::json>& results,
                                            std::uint64_t n);

// Every result has status "ok" and attempts 1.
::testing::AssertionResult all_ok_first_attempt(const std::vector<nlohmann::json>& results);

// The distinct "worker" fields.
std::set<std::string> workers_of(const std::vector<nlohmann::json>& results);

// The ventilator's stdout is exactly one line
// "job JOB: TOTAL tasks, OK ok, FAILED failed, WORKERS workers, T s".
::testing::AssertionResult is_summary_line(const std::string& out, const std::string& job,
                                           std::uint64_t total, std::uint64_t ok,
                                           std::uint64_t failed, std::size_t workers);

}  // namespace zfarm::test
