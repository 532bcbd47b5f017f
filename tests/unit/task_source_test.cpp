// Unit tests for ventilator/task_source.hpp: the built-in workloads and the
// JSON Lines tasks file.
#include "task_source.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "temp_dir.hpp"
#include "zfarm/protocol.hpp"

namespace {

using zfarm::unit::temp_dir;
using zfarm::ventilator::make_demo_source;
using zfarm::ventilator::make_fixed_source;
using zfarm::ventilator::open_tasks_file;
using zfarm::ventilator::parse_task_line;
using zfarm::ventilator::task_source;
using zfarm::ventilator::task_spec;
using zfarm::ventilator::validate_tasks_file;

// Pulls every task; fails the test on an error.
std::vector<task_spec> drain(task_source& src) {
    std::vector<task_spec> out;
    for (;;) {
        auto t = src.next();
        if (!t) {
            ADD_FAILURE() << "source failed: " << t.error();
            return out;
        }
        if (!*t) return out;
        out.push_back(std::move(**t));
    }
}

std::vector<std::string> payloads(const std::vector<task_spec>& tasks) {
    std::vector<std::string> out;
    for (const auto& t : tasks)
        out.push_back(t.payload);
    return out;
}

// ---------------------------------------------------------------------------
// Built-in workloads.

TEST(TaskSource, FixedSourceGivesNCopiesThenEnds) {
    auto src = make_fixed_source(3, "echo", std::string("a\0b", 3));
    const auto tasks = drain(*src);
    ASSERT_EQ(tasks.size(), 3u);
    for (const auto& t : tasks) {
        EXPECT_EQ(t.kind, "echo");
        EXPECT_EQ(t.payload, std::string("a\0b", 3));
    }
    // The end is sticky.
    auto again = src->next();
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
}

TEST(TaskSource, FixedSourceOfZeroTasksEndsAtOnce) {
    auto src = make_fixed_source(0, "sleep", "1");
    EXPECT_TRUE(drain(*src).empty());
}

TEST(TaskSource, NextIntoOverwritesAnEarlierTasksStringsInPlace) {
    // The ventilator fills reused slots: nothing of the earlier task stays,
    // and the fixed source's strings reuse the slot's room.
    auto src = make_fixed_source(2, "echo", "xy");
    task_spec slot{"a much longer kind than echo", std::string(100, 'p')};
    auto got = src->next_into(slot);
    ASSERT_TRUE(got) << got.error();
    ASSERT_TRUE(*got);
    EXPECT_EQ(slot.kind, "echo");
    EXPECT_EQ(slot.payload, "xy");
    EXPECT_GE(slot.payload.capacity(), 100u);
    ASSERT_TRUE(*src->next_into(slot));
    got = src->next_into(slot);
    ASSERT_TRUE(got);
    EXPECT_FALSE(*got) << "two tasks, then the end";
}

TEST(TaskSource, NextIntoOfAnySourceGivesWhatNextGives) {
    temp_dir dir;
    auto src = open_tasks_file(dir.write("tasks.jsonl",
                                         "{\"kind\":\"sleep\",\"payload\":\"5\"}\n"
                                         "{\"kind\":\"echo\"}\n"
                                         "not json\n"));
    ASSERT_TRUE(src) << src.error();
    task_spec slot{"old", "old payload"};
    ASSERT_TRUE(*(*src)->next_into(slot));
    EXPECT_EQ(slot.kind, "sleep");
    EXPECT_EQ(slot.payload, "5");
    ASSERT_TRUE(*(*src)->next_into(slot));
    EXPECT_EQ(slot.kind, "echo");
    EXPECT_EQ(slot.payload, "");
    EXPECT_FALSE((*src)->next_into(slot)) << "a bad line is an error";
}

TEST(TaskQueue, IsFirstInFirstOutAcrossGrowthAndReusesItsElements) {
    zfarm::ventilator::task_queue q;
    EXPECT_TRUE(q.empty());
    std::uint64_t pushed = 0, popped = 0;
    // Interleaved pushes and pops, so the ring wraps before it grows.
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < round % 7 + 1; ++i) {
            task_spec& slot = q.next_slot();
            slot.kind = "k";
            slot.payload = std::to_string(pushed++);
            q.push_back();
        }
        for (int i = 0; i < round % 5 && !q.empty(); ++i) {
            EXPECT_EQ(q.front().payload, std::to_string(popped++));
            q.pop_front();
        }
        ASSERT_EQ(q.size(), pushed - popped);
        for (std::size_t i = 0; i < q.size(); ++i)
            ASSERT_EQ(q[i].payload, std::to_string(popped + i));
    }
    while (!q.empty()) {
        EXPECT_EQ(q.front().payload, std::to_string(popped++));
        q.pop_front();
    }
    EXPECT_EQ(popped, pushed);
}

TEST(TaskQueue, APoppedElementComesBackWithItsStringsOnceTheRingWraps) {
    zfarm::ventilator::task_queue q;
    constexpr int n = 8;  // never more held: the ring stays this long
    for (int i = 0; i < n; ++i) {
        q.next_slot().payload = std::string(100, 'x');
        q.push_back();
    }
    for (int i = 0; i < n; ++i)
        q.pop_front();
    for (int i = 0; i < n; ++i) {
        EXPECT_GE(q.next_slot().payload.capacity(), 100u) << i;
        q.push_back();
        q.pop_front();
    }
}

TEST(TaskSource, DemoSourceGivesSleepsOfOneToHundredMilliseconds) {
    auto src = make_demo_source(2000, 1);
    const auto tasks = drain(*src);
    ASSERT_EQ(tasks.size(), 2000u);
    bool saw_low = false;
    bool saw_high = false;
    for (const auto& t : tasks) {
        EXPECT_EQ(t.kind, "sleep");
        const int ms = std::stoi(t.payload);
        EXPECT_EQ(std::to_string(ms), t.payload) << "not a plain decimal";
        EXPECT_GE(ms, 1);
        EXPECT_LE(ms, 100);
        saw_low = saw_low || ms <= 5;
        saw_high = saw_high || ms >= 95;
    }
    EXPECT_TRUE(saw_low && saw_high) << "2000 draws should span the range";
}

TEST(TaskSource, DemoSourceIsDeterministicForASeed) {
    auto a = make_demo_source(100, 42);
    auto b = make_demo_source(100, 42);
    EXPECT_EQ(payloads(drain(*a)), payloads(drain(*b)));
}

TEST(TaskSource, DemoSourceDiffersForAnotherSeed) {
    auto a = make_demo_source(100, 42);
    auto b = make_demo_source(100, 43);
    EXPECT_NE(payloads(drain(*a)), payloads(drain(*b)));
}

// ---------------------------------------------------------------------------
// One tasks-file line.

TEST(TaskSource, ParsesKindAndStringPayload) {
    auto t = parse_task_line(R"({"kind":"sleep","payload":"5"})");
    ASSERT_TRUE(t) << t.error();
    EXPECT_EQ(t->kind, "sleep");
    EXPECT_EQ(t->payload, "5");
}

TEST(TaskSource, SendsStringPayloadAsIsWithoutQuotes) {
    auto t = parse_task_line(R"({"kind":"exec","payload":"echo \"hi\"\n"})");
    ASSERT_TRUE(t) << t.error();
    EXPECT_EQ(t->payload, "echo \"hi\"\n");
}

TEST(TaskSource, SendsNumericPayloadAsJsonText) {
    auto t = parse_task_line(R"({"kind":"sleep","payload":5})");
    ASSERT_TRUE(t) << t.error();
    EXPECT_EQ(t->payload, "5");
    auto f = parse_task_line(R"({"kind":"k","payload":2.5})");
    ASSERT_TRUE(f) << f.error();
    EXPECT_EQ(f->payload, "2.5");
}

TEST(TaskSource, SendsObjectAndArrayPayloadsAsJsonText) {
    auto t = parse_task_line(R"({"kind":"render", "payload": {"frame": 7, "tags": ["a", "b"]}})");
    ASSERT_TRUE(t) << t.error();
    EXPECT_EQ(t->kind, "render");
    EXPECT_EQ(t->payload, R"({"frame":7,"tags":["a","b"]})");
    auto a = parse_task_line(R"({"kind":"k","payload":[1,true,null]})");
    ASSERT_TRUE(a) << a.error();
    EXPECT_EQ(a->payload, "[1,true,null]");
}

TEST(TaskSource, MissingPayloadIsEmpty) {
    auto t = parse_task_line(R"({"kind":"echo"})");
    ASSERT_TRUE(t) << t.error();
    EXPECT_EQ(t->payload, "");
}

TEST(TaskSource, IgnoresOtherMembers) {
    auto t = parse_task_line(R"({"id":3,"kind":"echo","payload":"x","note":"ignored"})");
    ASSERT_TRUE(t) << t.error();
    EXPECT_EQ(t->kind, "echo");
    EXPECT_EQ(t->payload, "x");
}

TEST(TaskSource, RejectsBadJson) {
    for (const char* line : {R"({"kind":"sleep")", R"({kind: "sleep"})", "sleep 5",
                             R"({"kind":"a"} {"kind":"b"})", R"({"kind":"a",})"}) {
        auto t = parse_task_line(line);
        ASSERT_FALSE(t) << line;
        EXPECT_EQ(t.error(), "not valid JSON") << line;
    }
}

TEST(TaskSource, RejectsJsonThatIsNotAnObject) {
    for (const char* line : {R"(["sleep","5"])", R"("sleep")", "5", "null"}) {
        auto t = parse_task_line(line);
        ASSERT_FALSE(t) << line;
        EXPECT_EQ(t.error(), "expected a JSON object") << line;
    }
}

TEST(TaskSource, RejectsMissingEmptyOrNonStringKind) {
    for (const char* line : {R"({"payload":"5"})", R"({"kind":"","payload":"5"})", R"({"kind":5})",
                             R"({"kind":null})", R"({"kind":["sleep"]})", R"({"Kind":"sleep"})"}) {
        auto t = parse_task_line(line);
        ASSERT_FALSE(t) << line;
        EXPECT_EQ(t.error(), "\"kind\" must be a non-empty string") << line;
    }
}

TEST(TaskSource, RejectsKindLongerThanTheProtocolAllows) {
    const std::string at_limit(zfarm::proto::k_max_name, 'k');
    auto ok = parse_task_line(R"({"kind":")" + at_limit + R"("})");
    ASSERT_TRUE(ok) << ok.error();
    EXPECT_EQ(ok->kind, at_limit);
    auto t = parse_task_line(R"({"kind":")" + at_limit + R"(k"})");
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error(), "\"kind\" is too long");
}

// ---------------------------------------------------------------------------
// Tasks files.

TEST(TaskSource, ReadsTasksFileInOrder) {
    temp_dir dir;
    const std::string path = dir.write("tasks.jsonl",
                                       "{\"kind\":\"sleep\",\"payload\":\"5\"}\n"
                                       "{\"kind\":\"echo\",\"payload\":{\"x\":1}}\n"
                                       "{\"kind\":\"spin\",\"payload\":20}");  // no final newline
    auto src = open_tasks_file(path);
    ASSERT_TRUE(src) << src.error();
    const auto tasks = drain(**src);
    ASSERT_EQ(tasks.size(), 3u);
    EXPECT_EQ(tasks[0].kind, "sleep");
    EXPECT_EQ(tasks[0].payload, "5");
    EXPECT_EQ(tasks[1].kind, "echo");
    EXPECT_EQ(tasks[1].payload, R"({"x":1})");
    EXPECT_EQ(tasks[2].kind, "spin");
    EXPECT_EQ(tasks[2].payload, "20");
}

TEST(TaskSource, SkipsBlankLines) {
    temp_dir dir;
    const std::string path = dir.write("tasks.jsonl",
                                       "\n"
                                       "{\"kind\":\"a\"}\n"
                                       "   \t \n"
                                       "\r\n"
                                       "{\"kind\":\"b\"}\r\n"
                                       "\n");
    auto src = open_tasks_file(path);
    ASSERT_TRUE(src) << src.error();
    const auto tasks = drain(**src);
    ASSERT_EQ(tasks.size(), 2u);
    EXPECT_EQ(tasks[0].kind, "a");
    EXPECT_EQ(tasks[1].kind, "b");
}

TEST(TaskSource, EmptyFileHasNoTasks) {
    temp_dir dir;
    auto src = open_tasks_file(dir.write("empty.jsonl", ""));
    ASSERT_TRUE(src) << src.error();
    EXPECT_TRUE(drain(**src).empty());
}

TEST(TaskSource, MissingFileGivesAOneLineReason) {
    temp_dir dir;
    const std::string path = dir.file("no-such-file.jsonl");
    auto src = open_tasks_file(path);
    ASSERT_FALSE(src);
    EXPECT_EQ(src.error(), "cannot read " + path + ": No such file or directory");
}

TEST(TaskSource, DirectoryGivesAOneLineReason) {
    temp_dir dir;
    auto src = open_tasks_file(dir.path().string());
    ASSERT_FALSE(src);
    EXPECT_EQ(src.error(), "cannot read " + dir.path().string() + ": is a directory");
}

TEST(TaskSource, BadLineNamesFileAndLineNumber) {
    temp_dir dir;
    const std::string path = dir.write("tasks.jsonl",
                                       "{\"kind\":\"a\"}\n"
                                       "\n"
                                       "{\"kind\":\"\"}\n");
    auto src = open_tasks_file(path);
    ASSERT_TRUE(src) << src.error();
    auto first = (*src)->next();
    ASSERT_TRUE(first && *first);
    auto second = (*src)->next();
    ASSERT_FALSE(second);
    // Blank lines count: the bad line is the file's third.
    EXPECT_EQ(second.error(), path + ":3: \"kind\" must be a non-empty string");
}

TEST(TaskSource, ValidateCountsTasks) {
    temp_dir dir;
    const std::string path = dir.write("tasks.jsonl",
                                       "{\"kind\":\"a\"}\n\n{\"kind\":\"b\",\"payload\":1}\n"
                                       "{\"kind\":\"c\",\"payload\":\"x\"}\n");
    auto n = validate_tasks_file(path);
    ASSERT_TRUE(n) << n.error();
    EXPECT_EQ(*n, 3u);
}

TEST(TaskSource, ValidateReportsTheLineNumberOfABadLine) {
    temp_dir dir;
    std::string content;
    for (int i = 0; i < 6; ++i)
        content += "{\"kind\":\"sleep\",\"payload\":\"1\"}\n";
    content += "\n";
    content += "{\"kind\":\"sleep\",\"payload\":\"1\"\n";  // line 8: unterminated
    content += "{\"kind\":\"sleep\",\"payload\":\"1\"}\n";
    const std::string path = dir.write("tasks.jsonl", content);
    auto n = validate_tasks_file(path);
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error(), path + ":8: not valid JSON");
}

TEST(TaskSource, ValidatePassesOnOpenErrors) {
    temp_dir dir;
    auto n = validate_tasks_file(dir.file("missing.jsonl"));
    ASSERT_FALSE(n);
    EXPECT_NE(n.error().find("cannot read"), std::string::npos) << n.error();
    EXPECT_EQ(n.error().find('\n'), std::string::npos) << n.error();
}

}  // namespace
