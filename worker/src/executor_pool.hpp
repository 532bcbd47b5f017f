// The worker's executor threads and the queue that feeds them.
//
// The run() thread (the owner) pushes tasks with submit(); each executor
// thread pops one, runs its handler, encodes the RESULT and sends it, with a
// small header frame, on its own inproc PUSH socket to the owner's PULL at
// `done_endpoint`. Everything here is safe to call from the owner thread
// while executors run; nothing here touches the owner's network sockets.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
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

// Runs one task's handler and builds its RESULT. Never throws.
proto::result execute(const handler_table& handlers, const proto::task& t,
                      const std::string& worker_id, const std::atomic<bool>* cancel);

class executor_pool {
  public:
    executor_pool(zmq::context_t& ctx, std::string done_endpoint, unsigned threads,
                  const handler_table& handlers, std::string worker_id);
    ~executor_pool();  // joins the threads (abandoning nothing: call shutdown first)

    void submit(proto::task t, origin o);
    // Removes queued (not yet started) tasks of `job`; returns them with their origin.
    std::vector<std::pair<proto::task, origin>> remove_queued(const std::string& job);
    std::vector<std::pair<proto::task, origin>> remove_all_queued();
    // Asks running handlers of `job` (or all, when job is empty) to give up.
    void cancel_running(const std::string& job);
    // Tasks running or queued here: what a HEARTBEAT reports as held.
    std::vector<proto::task_ref> holding() const;
    // Stops the threads once their current task is done.
    void shutdown();

  private:
    struct slot {
        std::atomic<bool> cancel{false};
        bool busy = false;
        proto::task_ref current;
    };
    void run_thread(std::size_t index);

    zmq::context_t& ctx_;
    std::string done_endpoint_;
    const handler_table& handlers_;
    std::string worker_id_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::pair<proto::task, origin>> queue_;
    std::vector<std::unique_ptr<slot>> slots_;
    bool shutting_down_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace zfarm::detail
