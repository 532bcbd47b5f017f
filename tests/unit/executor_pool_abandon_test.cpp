// Unit tests for worker/src/executor_pool.hpp's abandoning: a handler that
// does not return past its task's deadline is given up on, its thread is
// replaced, its late result is dropped, and nothing waits for it
// (PROTOCOL.md 6.6, 9.3).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "executor_pool.hpp"
#include "zfarm/codec.hpp"

namespace {

using namespace std::chrono_literals;
using zfarm::handler_result;
using zfarm::task_view;
using zfarm::detail::executor_pool;
using zfarm::detail::handler_table;
using zfarm::detail::origin;
using zfarm::proto::task;
using clock_type = std::chrono::steady_clock;

// A handler that blocks, ignoring cancellation, until the test opens the gate.
// Shared, so a handler still blocked after the pool is gone has it.
struct gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    int entered = 0;
    std::atomic<int> returned{0};

    void release() {
        {
            std::lock_guard lock(mu);
            open = true;
        }
        cv.notify_all();
    }
};

template <class Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds timeout = 10s) {
    const auto deadline = clock_type::now() + timeout;
    while (!pred()) {
        if (clock_type::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

class ExecutorPoolAbandon : public ::testing::Test {
  protected:
    zmq::context_t ctx{1};
    zmq::socket_t done{ctx, zmq::socket_type::pull};
    std::string endpoint = "inproc://executor-pool-abandon-test";
    std::shared_ptr<gate> g = std::make_shared<gate>();
    handler_table handlers;

    void SetUp() override {
        done.bind(endpoint);
        handlers["block"] =
            zfarm::detail::handler_entry{[g = g](const task_view&) -> handler_result {
                                             std::unique_lock lock(g->mu);
                                             ++g->entered;
                                             g->cv.wait(lock, [&] { return g->open; });
                                             g->returned.fetch_add(1);
                                             return std::string("late");
                                         },
                                         false};
        handlers["quick"] = zfarm::detail::handler_entry{
            [](const task_view&) -> handler_result { return std::string("quick"); }, false};
    }

    void TearDown() override {
        g->release();  // lets blocked handlers end before the context goes
    }

    int entered() {
        std::lock_guard lock(g->mu);
        return g->entered;
    }

    // The next RESULT handed back, or nullopt within `timeout`.
    std::optional<zfarm::proto::result> next_result(std::chrono::milliseconds timeout) {
        zmq::pollitem_t item{done.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
        zmq::message_t header, body;
        (void)done.recv(header);
        (void)done.recv(body);
        auto decoded = zfarm::proto::decode(body.to_string_view());
        if (!decoded) return std::nullopt;
        return std::get<zfarm::proto::result>(*decoded);
    }

    static task make_task(std::uint64_t id, std::string kind, std::uint32_t timeout_ms) {
        return task{"j", id, 1, std::move(kind), "", timeout_ms};
    }
};

TEST_F(ExecutorPoolAbandon, LeavesAHandlerAloneUntilItsDeadlinePlusTheGrace) {
    executor_pool pool(ctx, endpoint, 1, handlers, "w");
    pool.submit(make_task(1, "block", 10000), origin::push);
    ASSERT_TRUE(eventually([&] { return entered() == 1; }));
    EXPECT_TRUE(pool.abandon_overdue(clock_type::now(), 1s).empty());
    EXPECT_TRUE(pool.abandon_overdue(clock_type::now() + 10s, 1s).empty());
    EXPECT_EQ(pool.holding().size(), 1u);
    pool.abandon_running();
}

TEST_F(ExecutorPoolAbandon, NeverAbandonsATaskWithoutATimeout) {
    executor_pool pool(ctx, endpoint, 1, handlers, "w");
    pool.submit(make_task(1, "block", 0), origin::push);
    ASSERT_TRUE(eventually([&] { return entered() == 1; }));
    EXPECT_TRUE(pool.abandon_overdue(clock_type::now() + 24h, 0s).empty());
    g->release();
    const auto r = next_result(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->output, "late");
}

TEST_F(ExecutorPoolAbandon, ReplacesAHungThreadAndDropsItsLateResult) {
    executor_pool pool(ctx, endpoint, 1, handlers, "w");
    pool.submit(make_task(7, "block", 50), origin::credit);
    ASSERT_TRUE(eventually([&] { return entered() == 1; }));

    const auto gone = pool.abandon_overdue(clock_type::now() + 2s, 1s);
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].ref.id, 7u);
    EXPECT_EQ(gone[0].from, origin::credit);
    EXPECT_EQ(gone[0].timeout_ms, 50u);
    EXPECT_GE(gone[0].elapsed_us, 1'000'000u);
    EXPECT_GT(gone[0].started_us, 0u);
    EXPECT_TRUE(pool.holding().empty()) << "an abandoned task is no longer held";
    EXPECT_EQ(pool.abandoned_alive(), 1u);

    // The pool kept its one thread: the next task runs.
    pool.submit(make_task(8, "quick", 50), origin::push);
    const auto quick = next_result(10s);
    ASSERT_TRUE(quick);
    EXPECT_EQ(quick->id, 8u);

    // The hung handler returns at last: its result is dropped.
    g->release();
    ASSERT_TRUE(eventually([&] { return pool.abandoned_alive() == 0; }));
    EXPECT_EQ(g->returned.load(), 1);
    EXPECT_FALSE(next_result(0ms));
}

TEST_F(ExecutorPoolAbandon, DestructorDoesNotWaitForAbandonedHandlers) {
    auto pool = std::make_unique<executor_pool>(ctx, endpoint, 2, handlers, "w");
    pool->submit(make_task(1, "block", 0), origin::push);
    pool->submit(make_task(2, "block", 0), origin::push);
    pool->submit(make_task(3, "block", 0), origin::push);  // queued
    ASSERT_TRUE(eventually([&] { return entered() == 2; }));

    EXPECT_EQ(pool->remove_all_queued().size(), 1u);
    EXPECT_EQ(pool->abandon_running().size(), 2u);
    EXPECT_TRUE(pool->holding().empty());
    const auto before = clock_type::now();
    pool->shutdown();
    pool.reset();
    EXPECT_LT(clock_type::now() - before, 5s);

    // The detached handlers outlive the pool and end cleanly when released.
    g->release();
    ASSERT_TRUE(eventually([&] { return g->returned.load() == 2; }));
    EXPECT_FALSE(next_result(0ms));
}

TEST_F(ExecutorPoolAbandon, AbandonedHandlersAreAskedToGiveUp) {
    std::atomic<bool> saw_cancel{false};
    handlers["polite"] =
        zfarm::detail::handler_entry{[&saw_cancel](const task_view& t) -> handler_result {
                                         while (!t.cancelled())
                                             std::this_thread::sleep_for(1ms);
                                         saw_cancel = true;
                                         return std::string();
                                     },
                                     false};
    executor_pool pool(ctx, endpoint, 1, handlers, "w");
    pool.submit(make_task(1, "polite", 0), origin::push);
    ASSERT_TRUE(eventually([&] { return pool.holding().size() == 1; }));
    ASSERT_TRUE(eventually([&] { return !pool.abandon_running().empty(); }));
    ASSERT_TRUE(eventually([&] { return pool.abandoned_alive() == 0; }));
    EXPECT_TRUE(saw_cancel);
    EXPECT_FALSE(next_result(0ms));
}

}  // namespace
