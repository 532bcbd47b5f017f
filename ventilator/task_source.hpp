// Where a job's tasks come from: the built-in workloads (--demo, --echo,
// --sleep, --spin) and a JSON Lines file (--tasks-file). Sources are pulled
// one task at a time, so a stream of any length is never held in memory.
// Not thread-safe; owned by the ventilator's main thread.
#pragma once

#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "zfarm/expected.hpp"

namespace zfarm::ventilator {

struct task_spec {
    std::string kind;
    std::string payload;
};

class task_source {
  public:
    virtual ~task_source() = default;
    // The next task, nullopt at the end, or a one-line error (bad input).
    virtual expected<std::optional<task_spec>, std::string> next() = 0;
    // How many tasks there are in all, when known before the end.
    virtual std::optional<std::uint64_t> size() const { return std::nullopt; }
};

// N tasks of `kind`, each with payload `payload`.
std::unique_ptr<task_source> make_fixed_source(std::uint64_t n, std::string kind,
                                               std::string payload);
// The ZeroMQ Guide's workload: N sleep tasks of 1-100 ms, from `seed`.
std::unique_ptr<task_source> make_demo_source(std::uint64_t n, std::uint64_t seed);
// JSON Lines, one {"kind": STRING, "payload": ANY} per line; blank lines are
// skipped. A string payload is sent as is, anything else as its JSON text.
// Opening fails with a one-line reason; "-" reads stdin.
expected<std::unique_ptr<task_source>, std::string> open_tasks_file(const std::string& path);
// Checks a whole tasks file before any task is sent, so bad input is a
// usage error rather than a half-run job. Returns the number of tasks.
expected<std::uint64_t, std::string> validate_tasks_file(const std::string& path);

// Parses one tasks-file line; exposed for tests.
expected<task_spec, std::string> parse_task_line(const std::string& line);

}  // namespace zfarm::ventilator
