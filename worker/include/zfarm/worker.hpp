// zfarm::worker: the embeddable worker. An application registers a handler per
// task kind, then run() connects to a ventilator and a sink and executes tasks
// until the job is done (with exit_when_done), stop() is called, or the
// process is asked to stop (SIGINT/SIGTERM, when install_stop_handlers() ran).
//
// Threads: run() owns every ZeroMQ socket and must be called from one thread
// at a time. Handlers run on `threads` executor threads (or inline on the
// run() thread when registered inline); a handler must be safe to call
// concurrently when threads > 1. stop() may be called from any thread, and is
// async-signal-safe. No exception crosses this API: errors are values.
//
// Processes: with worker_options::allow_exec, `exec` tasks run commands as
// child processes (PROTOCOL.md 6.4), each in a process group of its own;
// the worker then needs SIGCHLD not ignored, and restores its default if it is.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "zfarm/expected.hpp"
#include "zfarm/sockets.hpp"

namespace zmq {
class context_t;
}

namespace zfarm {

// What a handler sees of a task. Views are valid only during the call.
class task_view {
  public:
    task_view(std::string_view job_name, std::uint64_t task_id, std::uint32_t attempt_no,
              std::string_view task_kind, std::string_view task_payload,
              const std::atomic<bool>* cancel, std::chrono::steady_clock::time_point deadline)
        : job(job_name),
          id(task_id),
          attempt(attempt_no),
          kind(task_kind),
          payload(task_payload),
          cancel_(cancel),
          deadline_(deadline) {}

    std::string_view job;
    std::uint64_t id;
    std::uint32_t attempt;
    std::string_view kind;
    std::string_view payload;

    // True once the worker wants this task abandoned (a second stop, the job
    // was cancelled, or its deadline passed). Long handlers should poll it.
    bool cancelled() const noexcept {
        return (cancel_ && cancel_->load(std::memory_order_relaxed)) ||
               std::chrono::steady_clock::now() >= deadline_;
    }
    std::chrono::steady_clock::time_point deadline() const noexcept { return deadline_; }

  private:
    const std::atomic<bool>* cancel_;
    std::chrono::steady_clock::time_point deadline_;
};

// Why a task failed, and what it output all the same. Most kinds output
// nothing when they fail; `exec` reports how its command ended (PROTOCOL.md
// 6.4). Made implicitly from a reason, so `return unexpected{reason};`
// works with a std::string or a string literal.
struct task_error {
    task_error() = default;
    task_error(std::string why, std::string out = {})  // NOLINT: implicit by design
        : reason(std::move(why)), output(std::move(out)) {}
    task_error(const char* why) : reason(why) {}  // NOLINT: implicit by design

    std::string reason;  // empty: recorded as "failed"
    std::string output;  // sent in the failed RESULT's `output`
};

// A handler returns the task's output bytes, or a task_error (the task is
// then recorded as failed with its reason and output). A handler that throws
// is treated as failing with the exception's what() and no output.
using handler_result = expected<std::string, task_error>;
using handler_fn = std::function<handler_result(const task_view&)>;

inline constexpr std::uint64_t k_default_max_output = 1024 * 1024;

struct worker_options {
    std::string tasks_endpoint;    // ventilator's PUSH (push dispatch)
    std::string credit_endpoint;   // ventilator's ROUTER (credit dispatch)
    std::string results_endpoint;  // sink's PULL
    std::string control_endpoint;  // sink's PUB
    unsigned threads = 1;          // executor threads
    int prefetch = -1;             // tasks queued beyond `threads`; -1: sized automatically
    std::string identity;          // empty: HOST-PID-RANDOM
    bool exit_when_done = false;   // return from run() after a DONE (see PROTOCOL.md)
    bool builtin_kinds = true;     // register sleep, spin, echo
    // Run `exec` tasks: commands from whoever can send this worker tasks
    // (PROTOCOL.md 6.4, 12). Off: they fail with "exec is not allowed on this
    // worker (start it with --allow-exec)". Either way `exec` is registered,
    // on executor threads; handle("exec", ...) replaces it.
    bool allow_exec = false;
    // Bytes of an exec command's stdout, and of its stderr, kept in its
    // result; what it writes beyond is read, counted and dropped.
    std::uint64_t max_output = k_default_max_output;
    // Leave at this wall-clock time (e.g. before a batch allocation ends): then
    // act as on a first stop() (take no new task, hand the queued ones back),
    // and leave_grace later as on a second (abandon the running ones and hand
    // them back too); run() then returns normally, after BYE (PROTOCOL.md 9.3).
    std::optional<std::chrono::system_clock::time_point> leave_at;
    std::chrono::milliseconds leave_grace{30000};
    // Also stop when zfarm::install_stop_handlers() saw SIGINT/SIGTERM (the
    // zfarm-worker program sets this; an embedding app calls stop() instead).
    bool observe_stop_signals = false;
    transport_options transport;
    // CURVE (PROTOCOL.md 12): with `curve.keys` set, every socket is a CURVE
    // client, expecting the sink to hold `curve.server_key` and the
    // ventilator `curve.ventilator_key` (default: `curve.server_key`); the
    // sink's and the ventilator's allow-lists must hold `curve.keys`'s public
    // key. Off by default. run() fails with bad_options when it is on without
    // a server key, or this libzmq has no CURVE.
    curve::options curve;
    // The app's context, so inproc:// endpoints reach sockets in the same
    // process. Null: the worker makes its own.
    zmq::context_t* context = nullptr;
};

// hung_handlers: more handlers than max(4, threads) ran on past their tasks'
// deadlines and were abandoned (PROTOCOL.md 6.6); the worker said BYE and
// left, as it can no longer be trusted to keep its capacity.
// refused: the sink or the ventilator refused this worker's handshake (its
// CURVE key is not allowed, or the two ends disagree on keys or mechanism).
enum class worker_errc { bad_options, socket_error, internal, hung_handlers, refused };

struct worker_error {
    worker_errc code;
    std::string message;  // one line
};

struct worker_summary {
    std::uint64_t tasks_ok = 0;
    std::uint64_t tasks_failed = 0;
    std::uint64_t frames_dropped = 0;
};

class worker {
  public:
    explicit worker(worker_options options);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // Registers (or replaces) the handler for `kind`. Inline handlers run on
    // the run() thread and must be quick and non-blocking (echo is); they
    // skip the hand-off to an executor thread. Call before run().
    void handle(std::string kind, handler_fn fn, bool inline_handler = false);

    // Blocks until done, stopped, or a fatal socket error.
    expected<worker_summary, worker_error> run();

    // Asks run() to return: the first call drains (no new tasks; running and
    // queued ones finish and are reported), the second abandons queued and
    // running tasks: run() returns without waiting for running handlers, which
    // are asked to give up (cancelled()) and whose results are dropped.
    //
    // A handler still running a second (PROTOCOL.md 6.6) past its task's
    // deadline is abandoned too: its attempt is reported failed, its thread is
    // replaced, and its result, should it return, is dropped. Its thread keeps
    // the handler table alive; what else a handler uses must outlive it.
    void stop() noexcept;

    const std::string& identity() const noexcept;

  private:
    class impl;
    std::unique_ptr<impl> impl_;
};

// CamelCase spellings of the two names an application writes most. zfarm's
// names are STL-style snake_case (STYLE.md, habit 5: they read like std,
// cppzmq and msgpack, which zfarm code calls all day), so `worker` and
// `worker_options` are the canonical names, used in zfarm's own code, its
// docs and its CMake target (zfarm::worker). These aliases are the same
// types, for callers who expect CamelCase class names; they will not go away.
using Worker = worker;
using WorkerOptions = worker_options;

// The built-in kinds (DESIGN.md): `sleep` and `spin` take a decimal number of
// milliseconds as payload; `echo` returns its payload.
void register_builtin_kinds(worker& w);

}  // namespace zfarm
