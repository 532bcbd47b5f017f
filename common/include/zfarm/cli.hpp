// Command-line conventions shared by the three programs: CLI11 parsing that
// prints a one-line reason and exits 2 on bad usage (0 for --help), and the
// flags every program has (verbosity, transport limits).
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "zfarm/sockets.hpp"

namespace zfarm {

inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_failed_tasks = 1;
inline constexpr int k_exit_usage = 2;
// zfarm-worker only: more handlers hung past their deadline than it tolerates.
inline constexpr int k_exit_hung_handlers = 3;

struct common_flags {
    int verbose = 0;
    bool quiet = false;
    transport_options transport;
    int verbosity() const { return quiet ? -1 : verbose; }
};

// Adds -v/--verbose, -q/--quiet, --max-message to `app`.
void add_common_flags(CLI::App& app, common_flags& flags);

// Parses argv. Returns an exit code when the program should exit now (help
// printed: 0; bad usage: one line on stderr, 2), or nullopt to go on.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// Prints "PROGRAM: error: WHAT" on stderr and returns k_exit_usage.
int usage_error(const std::string& program, const std::string& what);

}  // namespace zfarm
