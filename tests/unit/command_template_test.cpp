// Unit tests for ventilator/command_template.hpp: GNU parallel's replacement
// strings (the expected values were checked against GNU parallel 20221122,
// `parallel --dry-run echo {} {.} {/} {//} {/.} ::: LINE`), direct and shell
// commands, and a shell run proving that quoted input comes back as data.
#include "command_template.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using zfarm::ventilator::basename_of;
using zfarm::ventilator::basename_without_extension;
using zfarm::ventilator::command_options;
using zfarm::ventilator::command_template;
using zfarm::ventilator::dirname_of;
using zfarm::ventilator::without_extension;
using argv_t = std::vector<std::string>;

argv_t expand(const argv_t& words, std::string_view line, std::uint64_t seq = 1) {
    return command_template(words).expand(line, seq).argv;
}

// The /bin/sh -c script for `words` and `line`.
std::string script(const argv_t& words, std::string_view line, std::uint64_t seq = 1) {
    command_options opt;
    opt.shell = true;
    const auto argv = command_template(words, opt).expand(line, seq).argv;
    EXPECT_EQ(argv.size(), 3u);
    EXPECT_EQ(argv[0], "/bin/sh");
    EXPECT_EQ(argv[1], "-c");
    return argv.size() == 3 ? argv[2] : std::string();
}

struct path_case {
    std::string line, no_ext, base, dir, base_no_ext;
};

// ---------------------------------------------------------------------------
// The path replacements, as GNU parallel computes them.

TEST(CommandTemplate, PathReplacementsMatchGnuParallel) {
    const std::vector<path_case> cases = {
        // line          {.}            {/}          {//}     {/.}
        {"a/b.c", "a/b", "b.c", "a", "b"},
        {"foo", "foo", "foo", ".", "foo"},
        {"a/b/", "a/b/", "", "a", ""},
        {".hidden", "", ".hidden", ".", ""},
        {"a.b/c", "a.b/c", "c", "a.b", "c"},
        {"x.tar.gz", "x.tar", "x.tar.gz", ".", "x.tar"},
        {"/abs/f.txt", "/abs/f", "f.txt", "/abs", "f"},
        {"/", "/", "", "/", ""},
        {"", "", "", ".", ""},
        {"./x", "./x", "x", ".", "x"},
        {"a/.b", "a/", ".b", "a", ""},
        {"dir/.hidden", "dir/", ".hidden", "dir", ""},
        {"a..b", "a.", "a..b", ".", "a."},
        {"a.", "a", "a.", ".", "a"},
        {"..b", ".", "..b", ".", "."},
        {"a b/c d.e", "a b/c d", "c d.e", "a b", "c d"},
        {"//x", "//x", "x", "/", "x"},
        {"a//b", "a//b", "b", "a", "b"},
        {"a//", "a//", "", ".", ""},
        {"//", "//", "", "/", ""},
        {"a/b//", "a/b//", "", "a", ""},
        {".", "", ".", ".", ""},
        {"..", ".", "..", ".", "."},
        {"../x", "../x", "x", "..", "x"},
        {"a/b/.", "a/b/", ".", "a/b", ""},
        {"/.", "/", ".", "/", ""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("line '" + c.line + "'");
        EXPECT_EQ(without_extension(c.line), c.no_ext);
        EXPECT_EQ(basename_of(c.line), c.base);
        EXPECT_EQ(dirname_of(c.line), c.dir);
        EXPECT_EQ(basename_without_extension(c.line), c.base_no_ext);
    }
}

// ---------------------------------------------------------------------------
// Direct commands: replacements verbatim, no shell.

TEST(CommandTemplate, EveryReplacementStringExpands) {
    EXPECT_EQ(expand({"cmd", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}"}, "dir/x.tar.gz", 7),
              (argv_t{"cmd", "dir/x.tar.gz", "dir/x.tar", "x.tar.gz", "dir", "x.tar", "7"}));
}

TEST(CommandTemplate, ReplacementsInsideAnArgument) {
    EXPECT_EQ(expand({"convert", "{}", "out/{/.}.png"}, "in/photo.jpg"),
              (argv_t{"convert", "in/photo.jpg", "out/photo.png"}));
    EXPECT_EQ(expand({"--in={}"}, "a b"), (argv_t{"--in=a b"}));
}

TEST(CommandTemplate, SeveralReplacementsInOneArgument) {
    EXPECT_EQ(expand({"echo", "{//}:{/}:{#}:{}{}"}, "d/f", 12), (argv_t{"echo", "d:f:12:d/fd/f"}));
}

TEST(CommandTemplate, TaskNumberIsItsSequence) {
    EXPECT_EQ(expand({"job-{#}"}, "x", 1), (argv_t{"job-1"}));  // {#} counts: nothing appended
    EXPECT_EQ(expand({"echo", "{#}"}, "x", 18446744073709551615ull),
              (argv_t{"echo", "18446744073709551615"}));
}

TEST(CommandTemplate, LineIsAppendedWhenNoReplacementString) {
    const command_template t({"gzip", "-k"});
    EXPECT_FALSE(t.has_replacement());
    EXPECT_EQ(t.expand("a b.txt", 1).argv, (argv_t{"gzip", "-k", "a b.txt"}));
    EXPECT_EQ(expand({"gzip"}, ""), (argv_t{"gzip", ""}));  // an empty line: an empty argument
}

TEST(CommandTemplate, OtherBracesAreKeptAsWritten) {
    EXPECT_EQ(expand({"echo", "{x}", "{", "}", "{{}}", "{/..}"}, "v"),
              (argv_t{"echo", "{x}", "{", "}", "{v}", "{/..}"}));
}

TEST(CommandTemplate, DirectCommandPassesInputVerbatim) {
    for (const std::string line : {"it's \"quoted\"", "$(rm -rf /)", "`id`", "-n", "a;b|c&d",
                                   "ünïcødé ✓", "", "  spaced  "}) {
        SCOPED_TRACE(line);
        EXPECT_EQ(expand({"printf", "%s\\n", "{}"}, line), (argv_t{"printf", "%s\\n", line}));
    }
}

TEST(CommandTemplate, EmptyLineExpandsToEmpty) {
    EXPECT_EQ(expand({"echo", "x{}y", "{.}", "{//}"}, ""), (argv_t{"echo", "xy", "", "."}));
}

TEST(CommandTemplate, EnvAndDirGoIntoEveryCommand) {
    command_options opt;
    opt.env = {{"LANG", "C"}, {"EMPTY", ""}};
    opt.dir = "/srv/data";
    const auto c = command_template({"wc", "-l"}, opt).expand("f", 1);
    EXPECT_EQ(c.argv, (argv_t{"wc", "-l", "f"}));
    EXPECT_EQ(c.env, opt.env);
    EXPECT_EQ(c.dir, "/srv/data");
}

// ---------------------------------------------------------------------------
// --shell: the words are shell text; replacements are quoted.

TEST(CommandTemplate, ShellJoinsWordsAndQuotesReplacements) {
    EXPECT_EQ(script({"echo {} | wc -c"}, "a b"), "echo 'a b' | wc -c");
    EXPECT_EQ(script({"echo", "{}", "|", "wc", "-c"}, "a b"), "echo 'a b' | wc -c");
    EXPECT_EQ(script({"cp", "{}", "out/{/.}.bak"}, "d/it's.txt"),
              "cp 'd/it'\\''s.txt' out/'it'\\''s'.bak");
    EXPECT_EQ(script({"echo", "{#}", "{//}"}, "plain", 3), "echo 3 .");
}

TEST(CommandTemplate, ShellAppendsTheQuotedLine) {
    EXPECT_EQ(script({"wc", "-c"}, "a; rm -rf ~"), "wc -c 'a; rm -rf ~'");
    EXPECT_EQ(script({"echo"}, ""), "echo ''");
}

TEST(CommandTemplate, ShellQuotesDangerousInput) {
    EXPECT_EQ(script({"echo", "{}"}, "$(rm -rf /)"), "echo '$(rm -rf /)'");
    EXPECT_EQ(script({"echo", "{}"}, "`id`"), "echo '`id`'");
    EXPECT_EQ(script({"echo", "{}"}, "say \"hi\""), "echo 'say \"hi\"'");
    EXPECT_EQ(script({"echo", "{}"}, "-n"), "echo -n");  // a word, not shell syntax
}

// Runs `sh_script` with /bin/sh -c (popen does exactly that) and returns what
// it printed.
std::string run_shell(const std::string& sh_script) {
    FILE* p = ::popen(sh_script.c_str(), "r");
    if (!p) {
        ADD_FAILURE() << "popen failed";
        return {};
    }
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
        out.append(buf, n);
    EXPECT_EQ(::pclose(p), 0) << sh_script;
    return out;
}

TEST(CommandTemplate, ShellQuotingIsSafeWhenRunBySh) {
    const std::vector<std::string> lines = {
        "plain",
        "with space",
        "it's",
        "say \"hi\"",
        "$(echo pwned)",
        "`echo pwned`",
        "$HOME",
        "a;b|c&d>e",
        "-n",
        "--help",
        "*",
        "~",
        "\\n\\t",
        "ünïcødé ✓",
        "  lead",
        "trail  ",
        "{}",
        "'",
        "''\"\"'",
        "#comment",
        "!history",
        "a\tb",
        "",
    };
    for (const auto& line : lines) {
        SCOPED_TRACE("line [" + line + "]");
        const std::string s = script({"printf", "'%s\\n'", "{}", "x{/}y"}, line);
        EXPECT_EQ(run_shell(s), line + "\n" + "x" + basename_of(line) + "y\n") << s;
        const std::string appended = script({"printf", "'[%s]\\n'"}, line);
        EXPECT_EQ(run_shell(appended), "[" + line + "]\n") << appended;
    }
}

}  // namespace
