// Resuming a sink (zfarm-sink --resume): rebuilds what an earlier run
// recorded from its output file, so that a restarted sink records nothing
// twice and can tell a resuming ventilator what is left to do
// (PROTOCOL.md 10.1).
#pragma once

#include <cstdint>
#include <string>

#include "job_table.hpp"
#include "zfarm/expected.hpp"

namespace zfarm::sink {

struct recovery_report {
    std::uint64_t results = 0;     // lines restored
    std::size_t jobs = 0;          // distinct jobs among them
    std::uint64_t duplicates = 0;  // lines repeating an id restored before (left in the file)
    std::uint64_t torn_bytes = 0;  // cut from the end of the file: a line without its newline
    bool file_missing = false;
};

// Reads `path`, the output of an earlier sink, and restores each result into
// `jobs` (job_table::restore). A last line without its newline was torn by a
// crash mid-write: the file is truncated to the end of the last whole line,
// so that lines appended from now on stay whole. Any other line that is not
// a zfarm result fails the whole recovery with "PATH:LINE: reason". A file
// that does not exist restores nothing.
expected<recovery_report, std::string> recover(const std::string& path, job_table& jobs);

}  // namespace zfarm::sink
