// Unit tests for worker/src/exec_kind.hpp and child_process.hpp: how an
// `exec` command is killed, with its whole process group, at its deadline or
// when its task is cancelled, and what it leaves behind when it ends
// (PROTOCOL.md 6.4, rules 4 and 5). Waits are bounded and generous: these
// must hold on a loaded two-core machine.
#include "exec_kind.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "executor_pool.hpp"
#include "unit/exec_test_helpers.hpp"
#include "unit/temp_dir.hpp"
#include "zfarm/exec_format.hpp"

namespace {

using namespace zfarm::unit;

TEST(ExecKind, KillsTheWholeProcessGroupAtTheDeadline) {
    // 6.4.4: "When the attempt's deadline passes (6.6), the worker MUST kill
    // the command's whole process group, and reports the task failed with
    // error `timed out after N ms` (the map's `signal` is the signal that
    // ended it)". Run through execute(), which writes the timeout's text.
    zfarm::unit::temp_dir dir;
    const std::string pid_file = dir.file("background.pid");
    zfarm::detail::handler_table table;
    table["exec"] = zfarm::detail::handler_entry{
        [k = std::make_shared<exec_kind>(k_mib)](const task_view& t) { return (*k)(t); }, false};
    const zfarm::proto::task t{
        "unit",
        7,
        1,
        "exec",
        payload({"sh", "-c", "sleep 100 & echo $! > " + pid_file + "; echo started; wait"}),
        2000};
    const auto start = clock_type::now();
    const auto r = zfarm::detail::execute(table, t, "unit-worker", nullptr);
    EXPECT_LT(seconds_since(start), 2.0 + 5.0);
    EXPECT_EQ(r.status, zfarm::proto::task_status::failed);
    EXPECT_EQ(r.error, "timed out after 2000 ms");
    auto o = zfarm::exec::decode_outcome(r.output);
    ASSERT_TRUE(o) << o.error();
    EXPECT_EQ(o->signal, SIGTERM);
    EXPECT_EQ(o->out, "started\n");
    const std::string pid = wait_for_line(pid_file, 1s);
    ASSERT_FALSE(pid.empty()) << "the command did not start its background child in 2 s";
    EXPECT_TRUE(wait_until_gone(std::stoi(pid))) << "background child " << pid << " survived";
}

TEST(ExecKind, CancellationKillsTheWholeProcessGroup) {
    zfarm::unit::temp_dir dir;
    const std::string pid_file = dir.file("background.pid");
    exec_kind k(k_mib);
    std::atomic<bool> cancel{false};
    std::thread canceller([&] {
        wait_for_line(pid_file);
        cancel = true;
    });
    const auto start = clock_type::now();
    const auto r = run(k, payload({"sh", "-c", "sleep 100 & echo $! > " + pid_file + "; wait"}),
                       clock_type::time_point::max(), &cancel);
    canceller.join();
    EXPECT_LT(seconds_since(start), 10.0 + 5.0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, "cancelled");
    EXPECT_EQ(outcome_of(r).signal, SIGTERM);
    const std::string pid = wait_for_line(pid_file, 1s);
    ASSERT_FALSE(pid.empty());
    EXPECT_TRUE(wait_until_gone(std::stoi(pid))) << "background child " << pid << " survived";
}

TEST(ExecKind, SendsSigkillWhenTheCommandIgnoresSigterm) {
    // 6.4.4 (informative): "SIGTERM to the group, then SIGKILL 500 ms later".
    zfarm::unit::temp_dir dir;
    const std::string ready = dir.file("ready");
    exec_kind k(k_mib);
    std::atomic<bool> cancel{false};
    clock_type::time_point cancelled_at;
    std::thread canceller([&] {
        wait_for_line(ready);
        cancelled_at = clock_type::now();
        cancel = true;
    });
    const auto r = run(
        k, payload({"sh", "-c", "trap '' TERM; echo > " + ready + "; while :; do sleep 1; done"}),
        clock_type::time_point::max(), &cancel);
    canceller.join();
    const double after_cancel = seconds_since(cancelled_at);
    ASSERT_FALSE(r);
    EXPECT_EQ(outcome_of(r).signal, SIGKILL);
    EXPECT_GE(after_cancel, 0.45);
    EXPECT_LT(after_cancel, 10.0);
}

TEST(ExecKind, OutputHeldOpenByAnEscapedGrandchildHoldsTheHandlerAtMostASecond) {
    // 6.4.5: "its output is read until every writer has closed it or 1 s has
    // passed". The grandchild leaves the group (setsid), so it outlives the
    // command and keeps its stdout open.
    zfarm::unit::temp_dir dir;
    const std::string pid_file = dir.file("grandchild.pid");
    exec_kind k(k_mib);
    const auto start = clock_type::now();
    const auto r = run(k, payload({"sh", "-c",
                                   "setsid sh -c 'echo $$ > " + pid_file +
                                       "; exec sleep 60' & "
                                       "while [ ! -s " +
                                       pid_file + " ]; do sleep 0.01; done; echo leader done"}));
    const double took = seconds_since(start);
    const std::string pid = wait_for_line(pid_file, 1s);
    if (!pid.empty()) ::kill(std::stoi(pid), SIGKILL);
    ASSERT_TRUE(r) << reason_of(r);
    EXPECT_EQ(outcome_of(r).out, "leader done\n");
    EXPECT_LT(took, 4.0);  // the 1 s read-on, plus slack for a loaded machine; not 60 s
}

}  // namespace
