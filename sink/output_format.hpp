// How the sink renders one recorded result (PROTOCOL.md section 10): a JSON
// line (the default, `--format jsonl`), with the exec kind's outcome spread
// into its own keys (6.4), or the task's bare output (`--format text`, like
// GNU parallel's grouped output).
//
// Pure functions on values: safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "zfarm/exec_format.hpp"
#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::sink {

enum class output_format { jsonl, text };

// "jsonl" or "text"; anything else is a one-line reason.
expected<output_format, std::string> parse_output_format(std::string_view name);

// The JSON line for one result, without the trailing newline. An `exec`
// result whose output decodes as an outcome (6.4) is rendered with
// exec_json_line; any other result, and an exec output that does not decode,
// carries its output bytes in `output` (or `output_base64`).
std::string to_json_line(const proto::result& r);
// The JSON line of an exec result, `o` its decoded output: `output` and
// `stderr` are the command's (each replaced by `output_base64` or
// `stderr_base64` when not valid UTF-8), plus `exit`, `signal`, `rss_kb`,
// `host`, `cmd`, and `stdout_dropped` / `stderr_dropped` when not 0.
std::string exec_json_line(const proto::result& r, const exec::outcome& o);

// `bytes` is valid UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF), as a JSON string must be.
bool is_utf8(std::string_view bytes) noexcept;
// RFC 4648 base64, with padding.
std::string base64(std::string_view bytes);

// The decoded outcome of an exec result; nullopt for other kinds and for an
// output that does not decode (it is then written raw).
std::optional<exec::outcome> exec_outcome_of(const proto::result& r);

// Writes `buffer` to `f` and empties it; on a short write keeps what was not
// written (for the next try) and returns false.
bool write_all(std::FILE* f, std::string& buffer);

}  // namespace zfarm::sink
