// Unit tests for worker/src/executor_pool.hpp's execute(): one task's handler
// run and turned into a RESULT, whatever the handler does.
#include "executor_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

using zfarm::handler_result;
using zfarm::task_view;
using zfarm::unexpected;
using zfarm::detail::execute;
using zfarm::detail::handler_table;
using zfarm::proto::task;
using zfarm::proto::task_status;

const std::string k_worker = "node7-1234-beef";

task make_task(std::string kind, std::string payload = "", std::uint32_t timeout_ms = 0) {
    return task{"render", 42, 3, std::move(kind), std::move(payload), timeout_ms};
}

// The wall clock now, in Unix microseconds, as RESULT's started_us counts.
std::uint64_t wall_clock_us() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

handler_table table_with(std::string kind, zfarm::handler_fn fn) {
    handler_table h;
    h[std::move(kind)] = zfarm::detail::handler_entry{std::move(fn), false};
    return h;
}

TEST(Execute, ReturnsTheHandlersOutputAsAnOkResult) {
    const auto h = table_with("upper", [](const task_view& t) -> handler_result {
        return "got " + std::string(t.payload);
    });
    const auto r = execute(h, make_task("upper", "x"), k_worker, nullptr);
    EXPECT_EQ(r.status, task_status::ok);
    EXPECT_EQ(r.output, "got x");
    EXPECT_EQ(r.error, "");
}

TEST(Execute, CopiesTheTaskIdentityIntoTheResult) {
    const auto h =
        table_with("noop", [](const task_view&) -> handler_result { return std::string(); });
    const auto r = execute(h, make_task("noop"), k_worker, nullptr);
    EXPECT_EQ(r.job, "render");
    EXPECT_EQ(r.id, 42u);
    EXPECT_EQ(r.attempt, 3u);
    EXPECT_EQ(r.worker, k_worker);
}

TEST(Execute, ShowsTheHandlerEveryFieldOfTheTask) {
    task seen_task;
    const auto h = table_with("look", [&](const task_view& t) -> handler_result {
        seen_task = task{std::string(t.job),     t.id, t.attempt, std::string(t.kind),
                         std::string(t.payload), 0};
        return std::string();
    });
    const std::string binary("\x00\xff\x01", 3);
    execute(h, make_task("look", binary), k_worker, nullptr);
    EXPECT_EQ(seen_task.job, "render");
    EXPECT_EQ(seen_task.id, 42u);
    EXPECT_EQ(seen_task.attempt, 3u);
    EXPECT_EQ(seen_task.kind, "look");
    EXPECT_EQ(seen_task.payload, binary);
}

TEST(Execute, FailsAnUnknownKind) {
    // PROTOCOL.md 5.3.4: "A worker that has no handler for `kind` MUST answer
    // with a failed RESULT."
    const auto r = execute(handler_table{}, make_task("teleport"), k_worker, nullptr);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "unknown task kind 'teleport'");
    EXPECT_EQ(r.output, "");
    EXPECT_EQ(r.id, 42u);
}

TEST(Execute, RecordsTheHandlersErrorReason) {
    const auto h = table_with("fail", [](const task_view&) -> handler_result {
        return unexpected{std::string("disk full")};
    });
    const auto r = execute(h, make_task("fail"), k_worker, nullptr);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "disk full");
}

TEST(Execute, SendsTheOutputOfAFailedHandler) {
    // PROTOCOL.md 5.4: "a failed task's is empty unless its kind says
    // otherwise (exec reports how the command failed, 6.4)".
    const auto h = table_with("fail", [](const task_view&) -> handler_result {
        return unexpected{zfarm::task_error{"exit code 3", "what it printed"}};
    });
    const auto r = execute(h, make_task("fail"), k_worker, nullptr);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "exit code 3");
    EXPECT_EQ(r.output, "what it printed");
}

TEST(Execute, IntoTheResultOfAnEarlierTaskLeavesNothingOfIt) {
    // The worker runs inline kinds into one reused RESULT: every field is the
    // new task's, the failure of the one before included.
    auto h = table_with("fail", [](const task_view&) -> handler_result {
        return unexpected{zfarm::task_error{"exit code 3", "a long output of the failed one"}};
    });
    h["echo"] = zfarm::detail::handler_entry{
        [](const task_view& t) -> handler_result { return std::string(t.payload); }, true};
    zfarm::proto::result r;
    zfarm::detail::execute_into(&h.at("fail"), make_task("fail"), k_worker, nullptr, r);
    ASSERT_EQ(r.status, task_status::failed);
    task next{"j2", 7, 1, "echo", "hi", 0};
    zfarm::detail::execute_into(&h.at("echo"), next, "w2", nullptr, r);
    EXPECT_EQ(r.job, "j2");
    EXPECT_EQ(r.id, 7u);
    EXPECT_EQ(r.attempt, 1u);
    EXPECT_EQ(r.worker, "w2");
    EXPECT_EQ(r.kind, "echo");
    EXPECT_EQ(r.status, task_status::ok);
    EXPECT_EQ(r.output, "hi");
    EXPECT_EQ(r.error, "");
    zfarm::detail::execute_into(nullptr, make_task("teleport"), k_worker, nullptr, r);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "unknown task kind 'teleport'");
    EXPECT_EQ(r.output, "");
    EXPECT_EQ(r.job, "render");
}

TEST(Execute, GivesAnEmptyErrorReasonAName) {
    // PROTOCOL.md 5.4.1: "A worker MUST set `error` to a non-empty reason when
    // `status` is 1"; the zfarm worker "uses `failed` when a handler gives no reason".
    const auto h = table_with(
        "fail", [](const task_view&) -> handler_result { return unexpected{std::string()}; });
    const auto r = execute(h, make_task("fail"), k_worker, nullptr);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "failed");
}

TEST(Execute, TurnsAThrowingHandlerIntoAFailedResult) {
    // worker.hpp: "A handler that throws is treated as returning the exception's what()".
    const auto h = table_with(
        "boom", [](const task_view&) -> handler_result { throw std::runtime_error("kaboom"); });
    const auto r = execute(h, make_task("boom"), k_worker, nullptr);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "handler threw: kaboom");
}

TEST(Execute, TurnsANonStandardExceptionIntoAFailedResult) {
    const auto h = table_with("boom", [](const task_view&) -> handler_result { throw 42; });
    const auto r = execute(h, make_task("boom"), k_worker, nullptr);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "handler threw a non-standard exception");
}

TEST(Execute, MeasuresElapsedTime) {
    const auto h = table_with("nap", [](const task_view&) -> handler_result {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return std::string();
    });
    const auto r = execute(h, make_task("nap"), k_worker, nullptr);
    EXPECT_GE(r.elapsed_us, 20000u);
}

TEST(Execute, StampsTheStartWithTheWallClock) {
    // PROTOCOL.md 5.4.2: "A worker MUST set `started_us` from its wall clock
    // when the attempt starts (just before the handler runs)".
    std::uint64_t handler_ran_at = 0;
    const auto h = table_with("stamp", [&](const task_view&) -> handler_result {
        handler_ran_at = wall_clock_us();
        return std::string();
    });
    const std::uint64_t before = wall_clock_us();
    const auto r = execute(h, make_task("stamp"), k_worker, nullptr);
    EXPECT_GE(r.started_us, before);
    EXPECT_LE(r.started_us, handler_ran_at);
}

TEST(Execute, WithAClockAnchorStampsTheStartFromItAdvancedByTheMonotonicClock) {
    // The worker reads the wall clock once per frame of inline tasks: each
    // start is that reading advanced by the monotonic clock (PROTOCOL.md
    // 5.4, rule 2).
    const zfarm::detail::wall_clock_anchor fixed{std::chrono::steady_clock::now(), 1000};
    EXPECT_EQ(fixed.unix_us_at(fixed.steady + std::chrono::microseconds(2500)), 3500u);

    std::uint64_t handler_ran_at = 0;
    const auto h = table_with("stamp", [&](const task_view&) -> handler_result {
        handler_ran_at = wall_clock_us();
        return std::string();
    });
    const auto clocks = zfarm::detail::wall_clock_anchor::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    zfarm::proto::result r;
    zfarm::detail::execute_into(&h.at("stamp"), make_task("stamp"), k_worker, nullptr, r, &clocks);
    EXPECT_GE(r.started_us, clocks.unix_us + 20000) << "not advanced by the monotonic clock";
    EXPECT_LE(r.started_us, handler_ran_at + 1);  // both truncated to microseconds
}

TEST(Execute, StampsTheStartOfAnUnknownKindToo) {
    const std::uint64_t r_started =
        execute(handler_table{}, make_task("nope"), k_worker, nullptr).started_us;
    EXPECT_GT(r_started, 0u);
}

TEST(Execute, PassesTheCancelFlagToTheHandler) {
    std::atomic<bool> cancel{false};
    const auto h = table_with("poll", [](const task_view& t) -> handler_result {
        return std::string(t.cancelled() ? "cancelled" : "running");
    });
    EXPECT_EQ(execute(h, make_task("poll"), k_worker, &cancel).output, "running");
    cancel = true;
    EXPECT_EQ(execute(h, make_task("poll"), k_worker, &cancel).output, "cancelled");
}

TEST(Execute, WithoutTimeoutTheDeadlineIsNever) {
    const auto h = table_with("deadline", [](const task_view& t) -> handler_result {
        return std::string(t.deadline() == std::chrono::steady_clock::time_point::max() ? "never"
                                                                                        : "set");
    });
    EXPECT_EQ(execute(h, make_task("deadline"), k_worker, nullptr).output, "never");
}

TEST(Execute, TimeoutSetsTheDeadline) {
    const auto before = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point deadline;
    const auto h = table_with("deadline", [&](const task_view& t) -> handler_result {
        deadline = t.deadline();
        return std::string();
    });
    execute(h, make_task("deadline", "", 5000), k_worker, nullptr);
    EXPECT_GE(deadline, before + std::chrono::milliseconds(5000));
    EXPECT_LE(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(5000));
}

TEST(Execute, HandlerSeesItselfCancelledPastItsDeadline) {
    const auto h = table_with("late", [](const task_view& t) -> handler_result {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return std::string(t.cancelled() ? "past deadline" : "in time");
    });
    EXPECT_EQ(execute(h, make_task("late", "", 1), k_worker, nullptr).output, "past deadline");
}

// 6.6: a handler that gives up past its deadline is recorded as timed out.
TEST(Execute, FailureAfterTheDeadlineIsReportedAsATimeout) {
    const auto h = table_with("slow", [](const task_view& t) -> handler_result {
        while (!t.cancelled())
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return unexpected{std::string("cancelled")};
    });
    const auto r = execute(h, make_task("slow", "", 5), k_worker, nullptr);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "timed out after 5 ms");
}

TEST(Execute, TimeoutKeepsTheFailedHandlersOutput) {
    const auto h = table_with("slow", [](const task_view& t) -> handler_result {
        while (!t.cancelled())
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return unexpected{zfarm::task_error{"killed by signal 15 (TERM)", "partial"}};
    });
    const auto r = execute(h, make_task("slow", "", 5), k_worker, nullptr);
    EXPECT_EQ(r.error, "timed out after 5 ms");
    EXPECT_EQ(r.output, "partial");
}

TEST(Execute, FailureBeforeTheDeadlineKeepsItsReason) {
    const auto h = table_with("bad", [](const task_view&) -> handler_result {
        return unexpected{std::string("bad payload")};
    });
    EXPECT_EQ(execute(h, make_task("bad", "", 60000), k_worker, nullptr).error, "bad payload");
}

}  // namespace
