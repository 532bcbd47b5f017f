// The worker's executor threads and the queue that feeds them.
//
// The run() thread (the owner) pushes tasks with submit(); each executor
// thread pops one, runs its handler, encodes the RESULT and sends it, with a
// small header frame, on its own inproc PUSH socket to the owner's PULL at
// `done_endpoint`. Everything here is safe to call from the owner thread
// while executors run; nothing here touches the owner's network sockets.
//
// Abandoning (PROTOCOL.md 6.6, 9.3): the owner can give up on a running
// handler that does not return. Its thread is detached and replaced; its
// state (slot, socket, handler table) is shared, so it never touches the pool
// when its handler returns, if ever: it drops its late result and ends. The
// owner closes an abandoned executor's socket, so terminating the context
// never waits for it, and the destructor never joins an abandoned thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "zfarm/protocol.hpp"
#include "zfarm/worker.hpp"

namespace zfarm::detail {

// Where a task came from, so its completion returns the right credit.
enum class origin : std::uint8_t { push = 0, credit = 1 };

struct handler_entry {
    handler_fn fn;
    bool inline_handler = false;
};
using handler_table = std::unordered_map<std::string, handler_entry>;

// One reading of the wall clock and of the monotonic clock, together: the
// wall clock at a later monotonic instant is the one advanced by the other.
// A run of quick tasks stamps each start (PROTOCOL.md 5.4, rule 2) with one
// clock reading instead of two; made afresh for each run (a frame of tasks),
// so a step of the wall clock shows from the next run on.
struct wall_clock_anchor {
    std::chrono::steady_clock::time_point steady;
    std::uint64_t unix_us = 0;
    static wall_clock_anchor now();
    std::uint64_t unix_us_at(std::chrono::steady_clock::time_point t) const;
};

// Runs `t` with `handler` (nullptr: no handler for its kind, which fails it)
// and writes every field of its RESULT into `r`, so that a caller running
// task after task reuses the capacity of r's strings. `anchor`: the wall
// clock of its start is the anchor's, advanced (else read). Never throws.
void execute_into(const handler_entry* handler, const proto::task& t, const std::string& worker_id,
                  const std::atomic<bool>* cancel, proto::result& r,
                  const wall_clock_anchor* anchor = nullptr);
// Runs one task's handler and builds its RESULT. Never throws.
proto::result execute(const handler_table& handlers, const proto::task& t,
                      const std::string& worker_id, const std::atomic<bool>* cancel);

// A running task the owner gave up on: what its failed RESULT needs.
struct abandoned_task {
    proto::task_ref ref;
    origin from = origin::push;
    std::uint32_t timeout_ms = 0;
    std::uint64_t started_us = 0;  // wall clock, Unix microseconds
    std::uint64_t elapsed_us = 0;  // from its start to the abandonment
    std::string kind{};            // the task's kind, for its RESULT
};

class executor_pool {
  public:
    using clock = std::chrono::steady_clock;

    // Copies `handlers`: executors keep their copy alive, even abandoned ones.
    executor_pool(zmq::context_t& ctx, std::string done_endpoint, unsigned threads,
                  const handler_table& handlers, std::string worker_id);
    // Joins the threads not abandoned (call shutdown first, and abandon what
    // may not return); never waits for an abandoned one.
    ~executor_pool();
    executor_pool(const executor_pool&) = delete;
    executor_pool& operator=(const executor_pool&) = delete;

    void submit(proto::task t, origin o);
    // Removes queued (not yet started) tasks of `job`; returns them with their origin.
    std::vector<std::pair<proto::task, origin>> remove_queued(const std::string& job);
    std::vector<std::pair<proto::task, origin>> remove_all_queued();
    // Asks running handlers of `job` (or all, when job is empty) to give up.
    void cancel_running(const std::string& job);
    // Tasks running or queued here: what a HEARTBEAT reports as held.
    // Abandoned tasks are not held.
    std::vector<proto::task_ref> holding() const;
    // Stops the threads once their current task is done.
    void shutdown();

    // Abandons every handler still running `grace` or more past its deadline
    // (tasks with a timeout only) and starts a new thread for each, so the
    // pool keeps its size. Their results, if they ever come, are dropped.
    std::vector<abandoned_task> abandon_overdue(clock::time_point now, clock::duration grace);
    // Abandons every running handler (asking it to give up) without replacing
    // its thread: for a worker that leaves now.
    std::vector<abandoned_task> abandon_running();
    // Abandoned threads whose handler has not returned yet.
    std::size_t abandoned_alive() const noexcept;

  private:
    struct executor;
    void spawn();                                                // with mu_ held
    abandoned_task abandon(executor& e, clock::time_point now);  // with mu_ and e.mu held
    static void run_thread(executor_pool* pool, std::shared_ptr<executor> me,
                           std::shared_ptr<const handler_table> handlers, std::string worker_id,
                           std::shared_ptr<std::atomic<std::size_t>> abandoned_alive);

    zmq::context_t& ctx_;
    std::string done_endpoint_;
    std::shared_ptr<const handler_table> handlers_;
    std::string worker_id_;
    std::shared_ptr<std::atomic<std::size_t>> abandoned_alive_;

    mutable std::mutex mu_;  // before any executor's mu
    std::condition_variable cv_;
    std::deque<std::pair<proto::task, origin>> queue_;
    std::vector<std::shared_ptr<executor>> executors_;  // not abandoned
    bool shutting_down_ = false;
    std::vector<std::thread> threads_;  // of executors_, same order
};

}  // namespace zfarm::detail
