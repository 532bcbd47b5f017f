// /status: a status_snapshot as one JSON object, what the dashboard polls.
// Times are Unix seconds (`started`, `at`, `taken`) or durations in seconds
// (`*_seconds`); an unknown total or ETA is null. Text from the wire (job and
// worker names, failure reasons) that is not valid UTF-8 is repaired with
// U+FFFD rather than failing the response.
#pragma once

#include <string>

#include "status_snapshot.hpp"

namespace zfarm::sink {

std::string format_status(const status_snapshot& s);

}  // namespace zfarm::sink
