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
#include <vector>

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
    // The next task into `out`, whose strings a source may fill in place
    // (their capacity kept from an earlier task): true, false at the end, or
    // a one-line error. By default, next() moved into `out`.
    virtual expected<bool, std::string> next_into(task_spec& out);
    // How many tasks there are in all, when known before the end.
    virtual std::optional<std::uint64_t> size() const { return std::nullopt; }
};

// Tasks taken from a source and not yet sent, first in first out. A popped
// element is kept for a later task, with its strings' capacity, so that
// with next_into() a stream of tasks passes through without allocating.
class task_queue {
  public:
    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
    task_spec& operator[](std::size_t i) noexcept {
        return ring_[(head_ + i) & (ring_.size() - 1)];
    }
    task_spec& front() noexcept { return (*this)[0]; }
    void pop_front() noexcept {
        head_ = (head_ + 1) & (ring_.size() - 1);
        --count_;
    }
    // The element after the last, to fill, then push_back(): it may hold an
    // earlier task's strings.
    task_spec& next_slot();
    void push_back() noexcept { ++count_; }

  private:
    std::vector<task_spec> ring_;  // a power of two long, once used
    std::size_t head_ = 0;
    std::size_t count_ = 0;
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
