#include "command_cli.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "command_source.hpp"

namespace zfarm::ventilator {
namespace {

constexpr const char* k_footer = R"(Command jobs (GNU parallel style):
  zfarm-ventilator [FLAGS] [--input FILE] -- CMD [ARG...]
  runs CMD once per input line (stdin without --input), each line one exec task.
  Replacement strings, anywhere in CMD's words (out/{/.}.txt):
    {}    the line                     {#}   the task number, from 1
    {.}   the line without extension   {/}   its basename
    {//}  its dirname ('.' if none)    {/.}  its basename without extension
  Without any, the line is appended as the last argument. Lines are taken
  whole (a trailing \r\n or \n removed; an empty line is an empty argument).
  Without --shell, CMD runs directly, each replacement put into its argument
  as is. With --shell, CMD's words are joined with spaces and run by
  /bin/sh -c as shell text, each replacement (or the appended line)
  shell-quoted, so input is passed as data: do not quote {} yourself.
  Example: ls *.txt | zfarm-ventilator --dispatch credit -- gzip -k {})";

}  // namespace

void take_command(int& argc, char** argv, command_flags& flags) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--") != 0) continue;
        flags.separator = true;
        flags.words.assign(argv + i + 1, argv + argc);
        argc = i;
        return;
    }
}

void add_command_flags(CLI::App& app, command_flags& flags) {
    auto* g = app.add_option_group("command jobs", "with a command after --");
    g->add_option("--input", flags.input, "One task per line of FILE (- or absent: stdin)")
        ->type_name("FILE");
    g->add_flag("--shell", flags.shell,
                "Run the command by /bin/sh -c as shell text; replacements are shell-quoted");
    g->add_option("--env", flags.env,
                  "Set NAME in every task's environment to its value here "
                  "(repeatable; an unset NAME is an error)")
        ->type_name("NAME")
        ->allow_extra_args(false);
    g->add_option("--workdir", flags.workdir,
                  "Run commands in DIR on the worker's host (default: the worker's own)")
        ->type_name("DIR");
    flags.group = g;
    app.footer(k_footer);
}

expected<std::unique_ptr<task_source>, std::string> make_command_source(
    const command_flags& flags) {
    if (!flags.command_given()) {
        for (const auto* o : flags.group->get_options())
            if (o->count() > 0) return unexpected{o->get_name() + " needs a command after --"};
        return unexpected{std::string("no command given")};  // not called without one
    }
    if (flags.words.empty())
        return unexpected{std::string("-- must be followed by a command to run per input line")};
    if (flags.words.front().starts_with('-'))
        return unexpected{"the command after -- starts with '" + flags.words.front() +
                          "': give zfarm-ventilator's flags before --"};
    command_options opt;
    opt.shell = flags.shell;
    opt.dir = flags.workdir;
    for (const auto& name : flags.env) {
        if (name.empty() || name.find('=') != std::string::npos)
            return unexpected{"--env takes a variable name, got '" + name + "'"};
        const char* value = std::getenv(name.c_str());
        if (!value) return unexpected{"--env " + name + ": " + name + " is not set"};
        const bool seen = std::any_of(opt.env.begin(), opt.env.end(),
                                      [&](const auto& kv) { return kv.first == name; });
        if (!seen) opt.env.emplace_back(name, value);
    }
    return open_command_source(flags.input, command_template(flags.words, std::move(opt)));
}

}  // namespace zfarm::ventilator
