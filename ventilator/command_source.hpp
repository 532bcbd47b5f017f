// The task source of a command job (zfarm-ventilator [--input FILE] -- CMD
// ARG...): one `exec` task per input line, its payload the command template
// expanded for that line (PROTOCOL.md 6.4). Lines are read one at a time, so
// an input of any length is never held in memory; the same input gives the
// same tasks in the same order (ids), which --resume relies on.
// Not thread-safe; owned by the ventilator's main thread.
#pragma once

#include <memory>
#include <string>

#include "command_template.hpp"
#include "task_source.hpp"
#include "zfarm/expected.hpp"

namespace zfarm::ventilator {

// Reads `path` ("-" for stdin). Each line, without its "\n" or "\r\n", is one
// task, an empty line too (an empty argument, as in GNU parallel); a last
// line without "\n" counts. Task N (from 0) is numbered N + 1 for {#}.
// Opening fails with a one-line reason ("cannot read PATH: REASON"); next()
// fails with "PATH:LINE: REASON" on a line holding a NUL byte (no argument
// can carry one) or on a read error.
expected<std::unique_ptr<task_source>, std::string> open_command_source(const std::string& path,
                                                                        command_template tpl);

}  // namespace zfarm::ventilator
