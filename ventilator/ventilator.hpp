// The ventilator: opens a job on the sink, streams its tasks to workers
// (push: a PUSH socket, round-robin; credit: a ROUTER, only to workers that
// granted credit), keeps every unacknowledged task in a bounded ledger,
// closes the job with its total and waits for the sink's DONE.
//
// run_ventilator() owns every socket and must be called from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "progress.hpp"
#include "task_source.hpp"
#include "zfarm/protocol.hpp"
#include "zfarm/sockets.hpp"

namespace zfarm::ventilator {

enum class dispatch_mode { push, credit };

struct ventilator_options {
    std::string tasks_endpoint = "tcp://*:5557";
    std::string credit_endpoint = "tcp://*:5560";
    std::string results_endpoint = "tcp://localhost:5558";
    std::string control_endpoint = "tcp://localhost:5559";
    dispatch_mode dispatch = dispatch_mode::push;
    std::string job;
    // Ask the sink what it recorded of the job (an earlier run) and send only
    // the rest.
    bool resume = false;
    std::size_t window = 4096;  // tasks in flight (sent, not acknowledged)
    std::uint32_t retries = 3;
    std::uint32_t task_timeout_ms = 0;
    // A task neither recorded nor reported held by a live worker this long
    // after it was sent is sent again.
    std::chrono::milliseconds lease{30000};
    // Stop at the first task the sink records failed (7.12): send nothing
    // new, let the tasks in flight finish, then cancel the job.
    bool halt_on_failure = false;
    // Launch-failure detection: by `connect_deadline` after the start, at
    // least `min_workers` workers must be connected (push: connections to
    // the tasks socket; credit: workers that granted credit), or the job is
    // cancelled. `expect_workers` is what the launch started: fewer is
    // reported, and min_workers defaults to it. 0: no check.
    std::size_t expect_workers = 0;
    std::size_t min_workers = 0;
    std::chrono::milliseconds connect_deadline{30000};
    transport_options transport;
    // CURVE on every socket: the tasks or credit socket admits only
    // `curve.allowed`; the sink is expected to hold `curve.server_key`
    // (PROTOCOL.md 12).
    curve::options curve;
};

struct job_outcome {
    std::string job;
    dispatch_mode dispatch = dispatch_mode::push;
    std::uint64_t total = 0;
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::uint32_t workers = 0;
    double seconds = 0;
    std::uint64_t retried = 0;  // tasks sent again (a failure with retries left, a loss, a lease)
    std::uint64_t skipped = 0;  // recorded by an earlier run (--resume), not sent
    // The sink's REPORT of the finished job (PROTOCOL.md 5.16), when it sent one.
    std::optional<proto::report> report{};
    bool interrupted = false;
    // Set when --halt-on-failure cancelled the job: the first failed task.
    // `total` is then the number of tasks sent and `failed` those seen failed.
    std::optional<std::uint64_t> halted_by;
    // Set when the task input failed mid-job (a bad line, a read error): the
    // job was cancelled; `total` is the number of tasks sent before it.
    std::string input_error{};
    // Set when fewer than min_workers were connected by the deadline: the
    // job was cancelled; this says how many and which.
    std::string launch_error{};
};

// Runs one job to completion. An error is a one-line reason (bad endpoint);
// an interrupted job is an outcome with interrupted set, and one whose task
// input failed mid-job (cancelled) an outcome with input_error set.
// `progress`, when given, is shown how far the job is as it runs.
expected<job_outcome, std::string> run_ventilator(const ventilator_options& opt,
                                                  task_source& source,
                                                  progress_display* progress = nullptr);

}  // namespace zfarm::ventilator
