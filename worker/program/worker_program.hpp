// The zfarm-worker command line: flags, endpoint checks, logging, stop
// signals, and the exit status, over zfarm::worker. zfarm-worker's main() is
// one call to it; test programs that embed extra task kinds (the fault worker)
// reuse it so they take the same flags and exit the same way.
//
// Not part of the installed API. Called once, from main's thread.
#pragma once

#include <functional>
#include <string>

#include "zfarm/worker.hpp"

namespace zfarm {

// Parses argv as zfarm-worker does (the program name in messages is
// `program`), builds the worker, calls `add_kinds` on it (after the built-in
// kinds are registered) and runs it. Returns the process exit status: 0 done
// or stopped, 1 a fatal socket or internal error, 2 bad usage,
// k_exit_hung_handlers when too many handlers hung (PROTOCOL.md 6.6).
int worker_program(int argc, char** argv, const std::string& program,
                   const std::function<void(worker&)>& add_kinds = {});

}  // namespace zfarm
