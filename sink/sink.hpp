// The sink: binds the results PULL and control PUB sockets, records each
// task's result once (job_table), writes it (result_writer), publishes
// batched ACKs, and DONE when a job is complete (PROTOCOL.md).
//
// run() owns both sockets and must be called from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "http_server.hpp"
#include "output_format.hpp"
#include "zfarm/sockets.hpp"

namespace zfarm::sink {

struct sink_options {
    std::string results_endpoint = "tcp://*:5558";
    std::string control_endpoint = "tcp://*:5559";
    std::string output = "-";  // "-": stdout
    bool once = false;         // return after the first job completes
    bool resume = false;       // rebuild the recorded set from `output` first
    output_format format = output_format::jsonl;
    // Write each job's results in id order (PROTOCOL.md 7.3 rule 4).
    bool keep_order = false;
    std::size_t keep_order_memory = std::size_t{1} << 30;  // bytes held per job at most
    std::string joblog;  // GNU parallel style job log; empty: none
    // A worker silent this long is lost: its tasks are re-sent (LOST).
    std::chrono::steady_clock::duration liveness_timeout = std::chrono::milliseconds(2500);
    transport_options transport;
    // CURVE on both sockets, admitting only `curve.allowed` (PROTOCOL.md 12).
    curve::options curve;
    // Where to serve the status endpoint (/metrics, /status, the dashboard);
    // none: not served.
    std::optional<http_address> http;
};

struct sink_summary {
    std::uint64_t jobs_done = 0;
    std::uint64_t jobs_failed = 0;  // done with at least one failed task
    std::uint64_t jobs_cancelled = 0;
    std::uint64_t frames_dropped = 0;
};

// Returns a one-line reason on a configuration or fatal I/O error.
expected<sink_summary, std::string> run_sink(const sink_options& opt);

}  // namespace zfarm::sink
