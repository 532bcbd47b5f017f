// The `exec` task kind's payload and output (PROTOCOL.md 6.4): what the
// ventilator asks a worker to run, and what the worker reports back. Both
// are msgpack maps with string keys, so a worker in another language can read
// and write them, and unknown keys are ignored (later fields are optional).
//
// Plain value types and pure functions: safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "zfarm/expected.hpp"

namespace zfarm::exec {

inline constexpr std::string_view k_kind = "exec";
inline constexpr std::size_t k_max_args = 65536;  // argv and env entries, each

// TASK payload: the command to run.
struct command {
    std::vector<std::string> argv;  // argv[0] is searched in PATH when it has no '/'
    std::vector<std::pair<std::string, std::string>> env{};  // set in the child's environment
    std::string dir{};  // working directory; empty: the worker's own
    bool operator==(const command&) const = default;
};

// RESULT output: how the command ended and what it printed.
struct outcome {
    std::optional<int> exit_code{};  // set when the command exited by itself
    int signal = 0;                  // the signal that ended it, 0 if none
    std::string out{};               // captured stdout (at most the worker's cap)
    std::string err{};               // captured stderr (likewise)
    std::uint64_t out_dropped = 0;   // stdout bytes past the cap, read and discarded
    std::uint64_t err_dropped = 0;
    std::uint64_t wall_us = 0;  // from spawn to exit
    std::uint64_t rss_kb = 0;   // peak resident set of the command (its largest process)
    std::string host{};         // where it ran
    std::string cmd{};          // the command as one shell-quoted line, for logs
    bool operator==(const outcome&) const = default;
};

std::string encode(const command& c);
std::string encode(const outcome& o);
// One-line reason on bad input; never throws, never allocates beyond the
// input's size.
expected<command, std::string> decode_command(std::string_view bytes);
expected<outcome, std::string> decode_outcome(std::string_view bytes);

// `arg` quoted for a POSIX shell: unchanged when it is made only of
// characters no shell treats specially, otherwise in single quotes (with
// each ' written as '\'').
std::string shell_quote(std::string_view arg);
// argv as one line a POSIX shell would split back into argv.
std::string shell_line(const std::vector<std::string>& argv);

}  // namespace zfarm::exec
