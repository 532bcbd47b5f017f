// Unit tests for ventilator/command_source.hpp: one exec task per input
// line, in order, with the task number of its line.
#include "command_source.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "temp_dir.hpp"
#include "zfarm/exec_format.hpp"

namespace {

using zfarm::unit::temp_dir;
using zfarm::ventilator::command_options;
using zfarm::ventilator::command_template;
using zfarm::ventilator::open_command_source;
using zfarm::ventilator::task_source;
using argv_t = std::vector<std::string>;

// Every task's argv; fails the test on an error or a task that is not exec.
std::vector<argv_t> drain(task_source& src) {
    std::vector<argv_t> out;
    for (;;) {
        auto t = src.next();
        if (!t) {
            ADD_FAILURE() << "source failed: " << t.error();
            return out;
        }
        if (!*t) return out;
        EXPECT_EQ((*t)->kind, "exec");
        auto c = zfarm::exec::decode_command((*t)->payload);
        if (!c) {
            ADD_FAILURE() << "bad payload: " << c.error();
            return out;
        }
        out.push_back(c->argv);
    }
}

TEST(CommandSource, OneTaskPerLineInOrderNumberedFromOne) {
    temp_dir dir;
    const auto path = dir.write("in.txt", "a.txt\nb/c.txt\nd\n");
    auto src = open_command_source(path, command_template({"echo", "{#}", "{/.}"}));
    ASSERT_TRUE(src) << src.error();
    EXPECT_EQ(drain(**src),
              (std::vector<argv_t>{{"echo", "1", "a"}, {"echo", "2", "c"}, {"echo", "3", "d"}}));
    auto again = (*src)->next();  // the end is sticky
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
}

TEST(CommandSource, StripsCrLfKeepsEmptyLinesAndALastLineWithoutNewline) {
    temp_dir dir;
    const auto path = dir.write("in.txt", "one\r\n\r\n\ntwo words \r\nin\rside\nlast");
    auto src = open_command_source(path, command_template({"cmd"}));
    ASSERT_TRUE(src) << src.error();
    EXPECT_EQ(drain(**src), (std::vector<argv_t>{{"cmd", "one"},
                                                 {"cmd", ""},
                                                 {"cmd", ""},
                                                 {"cmd", "two words "},
                                                 {"cmd", "in\rside"},
                                                 {"cmd", "last"}}));
}

TEST(CommandSource, EmptyFileHasNoTasks) {
    temp_dir dir;
    auto src = open_command_source(dir.write("in.txt", ""), command_template({"cmd"}));
    ASSERT_TRUE(src) << src.error();
    EXPECT_TRUE(drain(**src).empty());
}

TEST(CommandSource, SameInputGivesSameTasks) {
    temp_dir dir;
    const auto path = dir.write("in.txt", "x\ny\n");
    auto first = open_command_source(path, command_template({"f", "{}", "{#}"}));
    auto second = open_command_source(path, command_template({"f", "{}", "{#}"}));
    ASSERT_TRUE(first && second);
    EXPECT_EQ(drain(**first), drain(**second));
}

TEST(CommandSource, StreamsALongInputTaskByTask) {
    temp_dir dir;
    std::string text;
    for (int i = 0; i < 20000; ++i)
        text += "line-" + std::to_string(i) + "\n";
    auto src = open_command_source(dir.write("in.txt", text), command_template({"f"}));
    ASSERT_TRUE(src) << src.error();
    for (int i = 0; i < 20000; ++i) {
        auto t = (*src)->next();
        ASSERT_TRUE(t && *t) << "task " << i;
        auto c = zfarm::exec::decode_command((*t)->payload);
        ASSERT_TRUE(c);
        ASSERT_EQ(c->argv.back(), "line-" + std::to_string(i));
    }
    auto end = (*src)->next();
    ASSERT_TRUE(end);
    EXPECT_FALSE(*end);
}

TEST(CommandSource, PayloadCarriesEnvDirAndShell) {
    temp_dir dir;
    command_options opt;
    opt.shell = true;
    opt.env = {{"K", "v"}};
    opt.dir = "/w";
    auto src = open_command_source(dir.write("in.txt", "a b\n"),
                                   command_template({"echo", "{}", "|", "wc", "-c"}, opt));
    ASSERT_TRUE(src) << src.error();
    auto t = (*src)->next();
    ASSERT_TRUE(t && *t);
    auto c = zfarm::exec::decode_command((*t)->payload);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->argv, (argv_t{"/bin/sh", "-c", "echo 'a b' | wc -c"}));
    EXPECT_EQ(c->env, opt.env);
    EXPECT_EQ(c->dir, "/w");
}

TEST(CommandSource, LineWithNulByteIsAnErrorNamingTheLine) {
    temp_dir dir;
    const auto path = dir.write("in.txt", std::string("ok\nbad\0byte\n", 12));
    auto src = open_command_source(path, command_template({"cmd"}));
    ASSERT_TRUE(src) << src.error();
    ASSERT_TRUE((*src)->next());
    auto bad = (*src)->next();
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find(path + ":2:"), std::string::npos) << bad.error();
    EXPECT_NE(bad.error().find("NUL"), std::string::npos) << bad.error();
}

TEST(CommandSource, UnreadableInputIsAnError) {
    temp_dir dir;
    auto missing = open_command_source(dir.file("nope"), command_template({"cmd"}));
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().find("cannot read " + dir.file("nope")), std::string::npos);
    auto directory = open_command_source(dir.path().string(), command_template({"cmd"}));
    ASSERT_FALSE(directory);
    EXPECT_NE(directory.error().find("is a directory"), std::string::npos);
}

}  // namespace
