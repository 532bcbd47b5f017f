// Unit tests for worker/src/builtin_kinds.cpp: sleep, spin and echo
// (PROTOCOL.md section 6), plus how the worker reports unknown kinds and
// throwing handlers.
//
// The built-in handlers are private to the worker, so these tests run a real
// zfarm::worker in-process over inproc:// sockets of a shared context: the
// test plays ventilator (PUSH tasks) and sink (PULL results, PUB control).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "zfarm/codec.hpp"
#include "zfarm/exec_format.hpp"
#include "zfarm/worker.hpp"

namespace {

using zfarm::handler_result;
using zfarm::task_view;
using zfarm::proto::result;
using zfarm::proto::task;
using zfarm::proto::task_status;

constexpr int k_receive_guard_ms = 10000;  // a hang guard, not a timing assertion

class in_process_worker {
  public:
    explicit in_process_worker(std::function<void(zfarm::worker&)> setup = {},
                               bool builtin_kinds = true,
                               std::function<void(zfarm::worker_options&)> configure = {})
        : previous_level_(spdlog::get_level()) {
        spdlog::set_level(spdlog::level::warn);
        static std::atomic<int> counter{0};
        const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
        tasks_.set(zmq::sockopt::linger, 0);
        tasks_.set(zmq::sockopt::sndtimeo, k_receive_guard_ms);
        tasks_.bind("inproc://builtin-kinds-tasks-" + tag);
        results_.set(zmq::sockopt::linger, 0);
        results_.set(zmq::sockopt::rcvtimeo, k_receive_guard_ms);
        results_.bind("inproc://builtin-kinds-results-" + tag);
        control_.set(zmq::sockopt::linger, 0);
        control_.bind("inproc://builtin-kinds-control-" + tag);

        zfarm::worker_options o;
        o.context = &ctx_;
        o.tasks_endpoint = "inproc://builtin-kinds-tasks-" + tag;
        o.results_endpoint = "inproc://builtin-kinds-results-" + tag;
        o.control_endpoint = "inproc://builtin-kinds-control-" + tag;
        o.identity = "unit-worker";
        o.threads = 2;
        o.builtin_kinds = builtin_kinds;
        if (configure) configure(o);
        worker_ = std::make_unique<zfarm::worker>(o);
        if (setup) setup(*worker_);
        thread_ = std::thread([this] { outcome_.emplace(worker_->run()); });
    }

    ~in_process_worker() {
        worker_->stop();  // drain: every task sent has been answered already
        thread_.join();
        if (outcome_ && !*outcome_) ADD_FAILURE() << "worker failed: " << outcome_->error().message;
        spdlog::set_level(previous_level_);
    }

    in_process_worker(const in_process_worker&) = delete;
    in_process_worker& operator=(const in_process_worker&) = delete;

    // Sends one TASK and returns its RESULT (skipping HELLO and HEARTBEAT).
    result run(const task& t) {
        const std::string wire = zfarm::proto::encode(zfarm::proto::message{t});
        if (!tasks_.send(zmq::buffer(wire), zmq::send_flags::none)) {
            ADD_FAILURE() << "the worker did not take the task";
            return {};
        }
        for (;;) {
            zmq::message_t m;
            if (!results_.recv(m, zmq::recv_flags::none)) {
                ADD_FAILURE() << "no RESULT for task " << t.id;
                return {};
            }
            auto d = zfarm::proto::decode(m.to_string_view());
            if (!d) {
                ADD_FAILURE() << "undecodable frame from the worker: " << d.error().detail;
                continue;
            }
            if (auto* r = std::get_if<result>(&*d)) return *r;
        }
    }

    result run(std::string kind, std::string payload, std::uint32_t timeout_ms = 0) {
        return run(task{"unit", next_id_++, 1, std::move(kind), std::move(payload), timeout_ms});
    }

  private:
    spdlog::level::level_enum previous_level_;
    zmq::context_t ctx_{1};
    zmq::socket_t tasks_{ctx_, zmq::socket_type::push};
    zmq::socket_t results_{ctx_, zmq::socket_type::pull};
    zmq::socket_t control_{ctx_, zmq::socket_type::pub};
    std::unique_ptr<zfarm::worker> worker_;
    std::optional<zfarm::expected<zfarm::worker_summary, zfarm::worker_error>> outcome_;
    std::thread thread_;
    std::uint64_t next_id_ = 0;
};

const std::string k_bad_ms = "payload must be a number of milliseconds (0-86400000), got ";

TEST(BuiltinKinds, SleepOfFiveMillisecondsSucceeds) {
    in_process_worker w;
    const result r = w.run("sleep", "5");
    EXPECT_EQ(r.status, task_status::ok) << r.error;
    EXPECT_EQ(r.output, "");
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.worker, "unit-worker");
    EXPECT_GE(r.elapsed_us, 5000u);
}

TEST(BuiltinKinds, SleepOfZeroSucceeds) {
    in_process_worker w;
    EXPECT_EQ(w.run("sleep", "0").status, task_status::ok);
}

TEST(BuiltinKinds, SleepRejectsANonNumericPayloadWithAClearReason) {
    // 6.1: "Any other payload fails the task with `payload must be a number of
    // milliseconds (0-86400000), got 'PAYLOAD'`".
    in_process_worker w;
    const result r = w.run("sleep", "abc");
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, k_bad_ms + "'abc'");
}

TEST(BuiltinKinds, SleepRejectsMalformedDurations) {
    // 6.1: "decimal ASCII digits: no sign, no spaces, no fraction, from `0` to
    // `86400000`".
    in_process_worker w;
    for (const char* payload :
         {"", "-5", "5ms", " 5", "5 ", "1.5", "0x10", "86400001", "99999999999999999999999"}) {
        const result r = w.run("sleep", payload);
        EXPECT_EQ(r.status, task_status::failed) << "'" << payload << "'";
        EXPECT_EQ(r.error.rfind(k_bad_ms, 0), 0u) << r.error;
    }
}

TEST(BuiltinKinds, QuotesOnlyTheStartOfALongBadPayload) {
    // 6.1: "at most the first 32 bytes of the payload are quoted".
    in_process_worker w;
    const result r = w.run("sleep", std::string(10000, 'x'));
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, k_bad_ms + "'" + std::string(32, 'x') + "'");
}

TEST(BuiltinKinds, SleepGivesUpAtItsDeadline) {
    // 6.6: "A handler that fails once the deadline has passed is reported
    // failed with error `timed out after N ms`". The longest sleep allowed (a
    // day), with a 30 ms per-attempt limit.
    in_process_worker w;
    const result r = w.run("sleep", "86400000", 30);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "timed out after 30 ms");
}

TEST(BuiltinKinds, SpinSucceeds) {
    in_process_worker w;
    const result r = w.run("spin", "5");
    EXPECT_EQ(r.status, task_status::ok) << r.error;
    EXPECT_GE(r.elapsed_us, 5000u);
}

TEST(BuiltinKinds, SpinRejectsANonNumericPayload) {
    in_process_worker w;
    const result r = w.run("spin", "abc");
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, k_bad_ms + "'abc'");
}

TEST(BuiltinKinds, SpinGivesUpAtItsDeadline) {
    in_process_worker w;
    const result r = w.run("spin", "86400000", 30);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "timed out after 30 ms");
}

TEST(BuiltinKinds, EchoReturnsItsPayload) {
    // 6.3: "The output is the payload, unchanged."
    in_process_worker w;
    const std::string binary("\x00\xff payload \x00\x01", 13);
    const result r = w.run("echo", binary);
    EXPECT_EQ(r.status, task_status::ok);
    EXPECT_EQ(r.output, binary);
    EXPECT_EQ(w.run("echo", "").output, "");
}

TEST(BuiltinKinds, UnknownKindFails) {
    // 5.3.4: "The zfarm worker's error is `unknown task kind 'KIND'`."
    in_process_worker w;
    const result r = w.run("teleport", "5");
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "unknown task kind 'teleport'");
}

TEST(BuiltinKinds, ThrowingHandlerBecomesAFailedResult) {
    // 5.4.1: "`handler threw: WHAT` when a handler throws".
    in_process_worker w([](zfarm::worker& wk) {
        wk.handle("boom",
                  [](const task_view&) -> handler_result { throw std::runtime_error("kaboom"); });
    });
    const result r = w.run("boom", "");
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "handler threw: kaboom");
    // The worker runs on.
    EXPECT_EQ(w.run("echo", "still here").output, "still here");
}

TEST(BuiltinKinds, AppHandlerReplacesABuiltinKind) {
    in_process_worker w([](zfarm::worker& wk) {
        wk.handle("echo", [](const task_view& t) -> handler_result {
            return "app: " + std::string(t.payload);
        });
    });
    EXPECT_EQ(w.run("echo", "x").output, "app: x");
}

TEST(BuiltinKinds, AreAbsentWhenTheAppOptsOut) {
    in_process_worker w({}, /*builtin_kinds=*/false);
    const result r = w.run("sleep", "5");
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "unknown task kind 'sleep'");
}

// The exec kind as the worker registers it (PROTOCOL.md 6.4); the handler
// itself is tested in exec_kind_test.cpp.
std::string exec_payload(std::vector<std::string> argv) {
    return zfarm::exec::encode(zfarm::exec::command{std::move(argv)});
}

void allow_exec(zfarm::worker_options& o) {
    o.allow_exec = true;
    o.max_output = 4;
}

TEST(ExecKindInWorker, IsRefusedUnlessAllowed) {
    // 6.4.1: "A worker MUST NOT run commands unless its operator allowed it
    // [...] it MUST fail the task, with no output"; "neither stops the worker".
    in_process_worker w;
    const result r = w.run("exec", exec_payload({"true"}));
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "exec is not allowed on this worker (start it with --allow-exec)");
    EXPECT_EQ(r.output, "");
    EXPECT_EQ(w.run("echo", "still here").output, "still here");
}

TEST(ExecKindInWorker, IsRefusedWithoutTheBuiltinKindsToo) {
    in_process_worker w({}, /*builtin_kinds=*/false);
    EXPECT_EQ(w.run("exec", exec_payload({"true"})).error,
              "exec is not allowed on this worker (start it with --allow-exec)");
}

TEST(ExecKindInWorker, RunsWhenAllowedWithTheWorkersOutputCap) {
    in_process_worker w({}, true, allow_exec);
    const result r = w.run("exec", exec_payload({"printf", "123456"}));
    ASSERT_EQ(r.status, task_status::ok) << r.error;
    EXPECT_EQ(r.kind, "exec");
    auto o = zfarm::exec::decode_outcome(r.output);
    ASSERT_TRUE(o) << o.error();
    EXPECT_EQ(o->out, "1234");
    EXPECT_EQ(o->out_dropped, 2u);
}

TEST(ExecKindInWorker, SendsTheOutputMapOfAFailedCommand) {
    // 6.4.3: "The output map is sent in every case but the refusal and the
    // bad payload of rule 1, so the sink records what a failed command printed."
    in_process_worker w({}, true, allow_exec);
    const result r = w.run("exec", exec_payload({"sh", "-c", "printf oops; exit 3"}));
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "exit code 3");
    auto o = zfarm::exec::decode_outcome(r.output);
    ASSERT_TRUE(o) << o.error();
    EXPECT_EQ(o->exit_code, 3);
    EXPECT_EQ(o->out, "oops");
}

TEST(ExecKindInWorker, CommandPastItsDeadlineTimesOutWithItsOutputMap) {
    in_process_worker w({}, true, allow_exec);
    const result r = w.run("exec", exec_payload({"sleep", "100"}), 300);
    EXPECT_EQ(r.status, task_status::failed);
    EXPECT_EQ(r.error, "timed out after 300 ms");
    auto o = zfarm::exec::decode_outcome(r.output);
    ASSERT_TRUE(o) << o.error();
    EXPECT_EQ(o->signal, SIGTERM);
    EXPECT_LT(r.elapsed_us, 300000u + 5000000u);
}

}  // namespace
