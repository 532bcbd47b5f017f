// Command-line conventions shared by the three programs: CLI11 parsing that
// prints a one-line reason and exits 2 on bad usage (0 for --help), and the
// flags every program has (verbosity, transport limits, CURVE keys).
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "zfarm/curve.hpp"
#include "zfarm/expected.hpp"
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
// Adds --handshake-timeout (ZMQ_HANDSHAKE_IVL of bound sockets) to a
// program that binds.
void add_bind_flags(CLI::App& app, common_flags& flags);

// Which program's CURVE flags (PROTOCOL.md 12): the sink binds only, the
// ventilator binds and connects to the sink, the worker connects to both.
enum class curve_program { sink, ventilator, worker };

// The CURVE flags as given: file and directory paths, empty when not given.
struct curve_flags {
    std::string secret;          // --curve-secret: this program's key pair
    std::string server_key;      // --curve-server-key: the sink's public key
    std::string ventilator_key;  // --curve-ventilator-key (worker): the ventilator's
    std::string allow;           // --allow: public keys admitted (binding sides)
};

// Adds the CURVE flags that `program` takes to `app`.
void add_curve_flags(CLI::App& app, curve_flags& flags, curve_program program);

// Reads the key files the flags name and checks they make sense together:
// every other CURVE flag needs --curve-secret; with it, a binding program
// needs --allow and a connecting one --curve-server-key, and this libzmq
// must have CURVE. Returns the options (CURVE off when no flag was given)
// or a one-line reason naming the flag or file at fault (a usage error).
expected<curve::options, std::string> load_curve_flags(const curve_flags& flags,
                                                       curve_program program);

// Logs that CURVE is on (this program's public key fingerprint, never the
// secret; how many client keys it admits), or nothing when it is off.
void log_curve(const curve::options& c);

// Parses argv. Returns an exit code when the program should exit now (help
// printed: 0; bad usage: one line on stderr, 2), or nullopt to go on.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// Prints "PROGRAM: error: WHAT" on stderr and returns k_exit_usage.
int usage_error(const std::string& program, const std::string& what);

}  // namespace zfarm
