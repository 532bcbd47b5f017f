// For end-to-end tests of the sink's status endpoint (zfarm-sink --http):
// the port the sink logged, and GETs of /status and /metrics with bounded
// timeouts. Used from the test's main thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "support/process.hpp"

namespace zfarm::test {

// The port in the sink's "http: listening on http://HOST:PORT/" line, once
// it is logged (up to k_start_timeout); nullopt if it never is.
std::optional<std::uint16_t> wait_for_http_port(child_process& sink);

// GET http://127.0.0.1:PORT/PATH: the body of a 200 answer, nullopt for
// anything else (no answer within 5 s, another status).
std::optional<std::string> http_get(std::uint16_t port, const std::string& path);

// /status parsed; null JSON when it cannot be fetched.
nlohmann::json get_status(std::uint16_t port);

// The value of the sample `series` (the name with its labels exactly as the
// sink writes them, e.g. `zfarm_tasks_total{job="j",status="ok"}`) in
// Prometheus text, or nullopt when there is no such line.
std::optional<double> metric_value(const std::string& text, const std::string& series);

}  // namespace zfarm::test
