// A command line with GNU parallel's replacement strings, expanded once per
// input line into the payload of an `exec` task (PROTOCOL.md 6.4):
//
//   {}    the line                      {#}   the task number, 1-based (id + 1)
//   {.}   the line without extension    {/}   its basename
//   {//}  its dirname                   {/.}  its basename without extension
//
// The path replacements follow GNU parallel exactly (its Perl substitutions
// and File::Basename's dirname): `{.}` removes the last `.` and what follows
// when no `/` follows it (x.tar.gz -> x.tar, .hidden -> ""), `{/}` is what
// follows the last `/` (a/b/ -> ""), `{//}` is `.` for a line without `/`.
// Text that is none of these (`{x}`, `{`) is kept as written.
//
// Without a shell, argv is the command's words with each replacement put
// into its word verbatim. With a shell, the words are joined with spaces as
// shell text and run as `/bin/sh -c LINE`, each replacement inserted
// shell-quoted, so any input line is passed as data. A command without any
// replacement string gets the line as one more, last, argument (quoted with
// a shell), as GNU parallel does.
//
// Plain value type; const member functions are safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "zfarm/exec_format.hpp"

namespace zfarm::ventilator {

// GNU parallel's path replacements of one input line; exposed for tests.
std::string without_extension(std::string_view line);           // {.}
std::string basename_of(std::string_view line);                 // {/}
std::string dirname_of(std::string_view line);                  // {//}
std::string basename_without_extension(std::string_view line);  // {/.}

struct command_options {
    bool shell = false;                                      // run through /bin/sh -c
    std::vector<std::pair<std::string, std::string>> env{};  // into every task's `env`
    std::string dir{};                                       // every task's `dir`
};

inline constexpr std::string_view k_shell_path = "/bin/sh";

class command_template {
  public:
    // `words` is the command as given after `--`; precondition: not empty.
    explicit command_template(const std::vector<std::string>& words, command_options opt = {});

    // The command for input `line`, the task numbered `seq` ({#}).
    exec::command expand(std::string_view line, std::uint64_t seq) const;

    // Whether any word holds a replacement string (if not, the line is appended).
    bool has_replacement() const noexcept { return has_replacement_; }

  private:
    enum class part_kind { text, line, seq, no_ext, base, dir, base_no_ext };
    struct part {
        part_kind kind;
        std::string text;  // for part_kind::text
    };
    using word = std::vector<part>;

    static word parse(std::string_view w, bool& found);
    std::string render(const word& w, std::string_view line, std::uint64_t seq) const;

    std::vector<word> words_;
    command_options opt_;
    bool has_replacement_ = false;
};

}  // namespace zfarm::ventilator
