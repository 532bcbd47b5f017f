// zfarm-ventilator's command jobs on the command line: the command after
// `--`, the flags that shape it (--input, --shell, --env, --workdir), their
// checks, and the task source they make (command_source.hpp).
// Called from main() only; not thread-safe (reads the environment).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "task_source.hpp"
#include "zfarm/expected.hpp"

namespace zfarm::ventilator {

struct command_flags {
    std::vector<std::string> words;  // the command: everything after the first `--`
    bool separator = false;          // `--` was given (maybe with nothing after it)
    std::string input = "-";
    bool shell = false;
    std::vector<std::string> env;  // variable names
    std::string workdir;
    CLI::Option_group* group = nullptr;  // the flags above, to tell whether any was given

    bool command_given() const { return separator; }
};

// Takes the words after the first "--" out of argv (into flags.words) and
// shortens argc to what comes before it, for CLI11 to parse the rest. A
// "--" that is an option's value must be written --job=--.
void take_command(int& argc, char** argv, command_flags& flags);

// Adds the option group "command jobs" (--input, --shell, --env, --workdir)
// and a help footer on the replacement strings.
void add_command_flags(CLI::App& app, command_flags& flags);

// Checks the flags and builds the source: a one-line usage error when the
// command is missing or starts with '-', a flag was given without a command,
// an --env name is not a variable set here, or the input cannot be read.
expected<std::unique_ptr<task_source>, std::string> make_command_source(const command_flags& flags);

}  // namespace zfarm::ventilator
