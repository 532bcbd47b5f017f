// Unit tests for common/include/zfarm/exec_format.hpp: the exec kind's
// payload and output maps (PROTOCOL.md 6.4) and shell quoting.
#include "zfarm/exec_format.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace zfarm::exec;

TEST(ExecFormat, CommandRoundTrips) {
    const command c{{"grep", "-c", "a b", "it's"}, {{"LANG", "C"}, {"X", ""}}, "/tmp"};
    auto back = decode_command(encode(c));
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(*back, c);
    const command bare{{"true"}};
    auto b = decode_command(encode(bare));
    ASSERT_TRUE(b) << b.error();
    EXPECT_EQ(*b, bare);
}

TEST(ExecFormat, OutcomeRoundTripsWithAndWithoutExitCode) {
    outcome o{0, 0, "out\n", std::string("e\0rr", 4), 10, 0, 1234, 2048, "node1", "echo hi"};
    auto back = decode_outcome(encode(o));
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(*back, o);
    outcome killed;
    killed.signal = 9;
    auto k = decode_outcome(encode(killed));
    ASSERT_TRUE(k) << k.error();
    EXPECT_FALSE(k->exit_code.has_value());
    EXPECT_EQ(k->signal, 9);
}

TEST(ExecFormat, BadCommandsAreRefusedWithAReason) {
    EXPECT_EQ(decode_command("").error(), "empty");
    EXPECT_EQ(decode_command("\x91\x01").error(), "not a map");
    EXPECT_EQ(decode_command("\x80").error(), "no argv");  // {}
    EXPECT_EQ(decode_command("\x81\xa4"
                             "argv\x90")
                  .error(),
              "argv is empty");  // {argv: []}
    EXPECT_EQ(decode_command("\x81\xa4"
                             "argv\x91\x01")
                  .error(),
              "argv element is not a string");
    EXPECT_EQ(decode_command(std::string("\x81\xa4"
                                         "argv\x91\xa3"
                                         "a\0b",
                                         11))
                  .error(),
              "argv has a NUL byte");
    EXPECT_EQ(decode_command("\x82\xa4"
                             "argv\x91\xa1"
                             "a\xa3"
                             "env\x81\xa3"
                             "A=B\xa0")
                  .error(),
              "env name 'A=B' is not valid");
    EXPECT_EQ(decode_command("\x81\xa4"
                             "argv\x91\xa1"
                             "a\xc0")
                  .error(),
              "1 bytes after the map");
    command nul_dir{{"pwd"}, {}, std::string("/tmp\0/x", 7)};
    EXPECT_EQ(decode_command(encode(nul_dir)).error(), "dir has a NUL byte");
    command nul_env{{"env"}, {{"X", std::string("a\0b", 3)}}};
    EXPECT_EQ(decode_command(encode(nul_env)).error(), "env value of X has a NUL byte");
    // Unknown keys are ignored.
    auto c = decode_command(
        "\x82\xa4"
        "argv\x91\xa1"
        "a\xa3new\x01");
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->argv, std::vector<std::string>{"a"});
}

TEST(ExecFormat, HugeDeclaredSizesDoNotAllocate) {
    // A map declaring four billion entries, an array likewise, a str of 4 GiB.
    EXPECT_FALSE(decode_command("\xdf\xff\xff\xff\xff"));
    EXPECT_FALSE(
        decode_command("\x81\xa4"
                       "argv\xdd\xff\xff\xff\xff"));
    EXPECT_FALSE(decode_outcome("\x81\xa6stdout\xdb\xff\xff\xff\xff"));
}

TEST(ExecFormat, ShellQuoteLeavesPlainWordsAndQuotesTheRest) {
    EXPECT_EQ(shell_quote("file-1.txt"), "file-1.txt");
    EXPECT_EQ(shell_quote("/usr/bin/x"), "/usr/bin/x");
    EXPECT_EQ(shell_quote(""), "''");
    EXPECT_EQ(shell_quote("a b"), "'a b'");
    EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
    EXPECT_EQ(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    EXPECT_EQ(shell_quote("*"), "'*'");
    EXPECT_EQ(shell_quote("naïve"), "naïve");
    EXPECT_EQ(shell_line({"echo", "a b", "-n"}), "echo 'a b' -n");
}

}  // namespace
