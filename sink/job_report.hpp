// The REPORT of a finished job (PROTOCOL.md 5.16): what its ventilator
// prints at the end and writes with --report. Built once per job, when it
// finishes, from the job's aggregates (job_state: its task-time histogram and
// a tally per worker) and what the sink knows of each worker.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "job_table.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::sink {

// What the sink knows of a worker beyond its results.
struct worker_facts {
    std::string host;  // empty when unknown
    std::uint32_t threads = 0;
    bool present = true;  // neither lost nor gone (BYE) when the job finished
};

// At most this many worker rows, those that recorded the most tasks: the
// report must fit a frame, and a terminal.
inline constexpr std::size_t k_max_report_workers = 4096;

proto::report make_report(const job_state& j, const proto::done& d,
                          const std::function<worker_facts(const std::string&)>& about);

}  // namespace zfarm::sink
