// How the sink renders one recorded result (PROTOCOL.md section 10): a JSON
// line (the default, `--format jsonl`), with the exec kind's outcome spread
// into its own keys (6.4), or the task's bare output (`--format text`, like
// GNU parallel's grouped output).
//
// Pure functions on values: safe from any thread.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "zfarm/exec_format.hpp"
#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::sink {

enum class output_format { jsonl, text };

// "jsonl" or "text"; anything else is a one-line reason.
expected<output_format, std::string> parse_output_format(std::string_view name);

// Appends the JSON line for one result to `out`, without the trailing
// newline. `o`: the decoded outcome of an exec result (exec_outcome_of), whose
// `output` and `stderr` are then the command's (each replaced by
// `output_base64` or `stderr_base64` when not valid UTF-8), plus `exit`,
// `signal`, `rss_kb`, `host`, `cmd`, and `stdout_dropped` / `stderr_dropped`
// when not 0 (10, rule 4). nullptr: the RESULT's output bytes are written in
// `output` (or `output_base64`, 10 rule 2). `ms` and `start` are exact
// decimals of the integer microseconds (10, rule 5). Each string is escaped
// and checked in one pass; nothing is allocated but `out`'s growth.
void append_json_line(std::string& out, const proto::result& r, const exec::outcome* o);
// The same line as a string, an exec result's outcome decoded here.
std::string to_json_line(const proto::result& r);

// `bytes` is valid UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF), as a JSON string must be.
bool is_utf8(std::string_view bytes) noexcept;

// The decoded outcome of an exec result; nullopt for other kinds and for an
// output that does not decode (it is then written raw).
std::optional<exec::outcome> exec_outcome_of(const proto::result& r);

// Writes `buffer` to `f` and empties it; on a short write keeps what was not
// written (for the next try) and returns false.
bool write_all(std::FILE* f, std::string& buffer);

}  // namespace zfarm::sink
