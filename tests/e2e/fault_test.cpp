// Fault injection: real processes really killed or stopped mid-job, and
// handlers that hang or crash (zfarm-fault-worker, tests/support/
// fault_worker.cpp). Each test reports, Jepsen-style, what was attempted and
// what the sink recorded, and passes only when nothing was lost and nothing
// was recorded twice (PROTOCOL.md 11: every task of a job is recorded exactly
// once).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "support/fault_report.hpp"
#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

using wall_clock = std::chrono::system_clock;

// One JSON line per task for --tasks-file: {"kind":..,"payload":..}.
void write_tasks(const std::filesystem::path& path,
                 const std::vector<std::pair<std::string, std::string>>& tasks) {
    std::ofstream out(path);
    for (const auto& [kind, payload] : tasks)
        out << nlohmann::json{{"kind", kind}, {"payload", payload}}.dump() << "\n";
}

// n sleeps of `ms`, with `kind` (payload "") at index `at`.
std::vector<std::pair<std::string, std::string>> sleeps_with(std::uint64_t n, int ms,
                                                             std::uint64_t at,
                                                             const std::string& kind) {
    std::vector<std::pair<std::string, std::string>> tasks(n, {"sleep", std::to_string(ms)});
    tasks[at] = {kind, ""};
    return tasks;
}

const nlohmann::json* result_for(const std::vector<nlohmann::json>& results, std::uint64_t id) {
    for (const auto& j : results)
        if (j.value("id", ~std::uint64_t{0}) == id) return &j;
    return nullptr;
}

class Faults : public ::testing::TestWithParam<std::string> {
  protected:
    pipeline farm{GetParam()};
    // Detect a silent worker within 2 s; leases far longer, so recovery in
    // these tests comes from LOST, not from lease expiry.
    std::vector<std::string> sink_args{"--once", "--liveness-timeout", "2"};

    // A sink, `workers` workers and a ventilator running `n` sleep tasks of
    // `ms` each as `job`; returns once `recorded` results are in. The rest
    // of the job must take far longer than a loaded machine may take between
    // `recorded` and the fault the test then injects: seconds, not a
    // fraction of one.
    void start_job(std::uint64_t n, int workers, int ms, const std::string& job,
                   std::uint64_t recorded) {
        farm.start_sink(sink_args);
        for (int i = 0; i < workers; ++i)
            farm.start_worker({"--exit-when-done"});
        farm.start_ventilator({"--sleep", std::to_string(n), "--ms", std::to_string(ms), "--lease",
                               "60", "--job", job});
        ASSERT_TRUE(
            wait_until([&] { return count_lines(farm.output()) >= recorded; }, k_start_timeout));
    }

    // When workers were killed (or crashed), for the report; and when any
    // fault struck (kills and others), for its longest wait.
    std::vector<wall_clock::time_point> kills_;
    std::vector<wall_clock::time_point> faults_;

    void kill(child_process& w) {
        kills_.push_back(wall_clock::now());
        faults_.push_back(kills_.back());
        w.kill();
    }

    // After the ventilator exited: the sink exits `sink_rc` (0: every task
    // ok), and the job's n ids are each recorded once. Prints the report;
    // returns the results.
    std::vector<nlohmann::json> expect_nothing_lost(std::uint64_t n, const std::string& fault,
                                                    int sink_rc = 0) {
        EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), sink_rc);
        auto results = read_results(farm.output());
        auto report = tally(results, n);
        report.duplicate_deliveries = duplicate_deliveries(farm.sink().stderr_text());
        report.kills = kills_.size();
        report.longest_wait_s = longest_wait(results, faults_);
        print(report, fault + ", " + farm.dispatch());
        EXPECT_EQ(report.lost, 0u);
        EXPECT_EQ(report.duplicates_recorded, 0u);
        EXPECT_TRUE(report.duplicate_deliveries) << "the sink's leaving line has no count";
        return results;
    }
};

// Starts a replacement for every supervised worker that died (exited
// non-zero or by a signal), as a process supervisor would, and counts the
// deaths. A worker that exited 0 left on purpose (--exit-when-done once the
// job is done): it is not replaced.
class supervisor {
  public:
    supervisor(pipeline& farm, std::vector<std::string> args, std::string program)
        : farm_(farm), args_(std::move(args)), program_(std::move(program)) {}

    void start(int n) {
        for (int i = 0; i < n; ++i)
            alive_.push_back(&farm_.start_worker(args_, program_));
    }

    // Replaces the dead; returns how many it replaced.
    int tend() {
        int replaced = 0;
        std::vector<child_process*> still;
        for (auto* w : alive_) {
            if (w->running()) {
                still.push_back(w);
                continue;
            }
            const int rc = w->wait_for_exit(std::chrono::milliseconds(0)).value_or(-1);
            if (rc == 0) continue;
            exit_codes_.push_back(rc);
            deaths_.push_back(wall_clock::now());
            still.push_back(&farm_.start_worker(args_, program_));
            ++replaced;
        }
        alive_ = std::move(still);
        return replaced;
    }

    const std::vector<child_process*>& alive() const { return alive_; }
    const std::vector<int>& exit_codes() const { return exit_codes_; }
    const std::vector<wall_clock::time_point>& deaths() const { return deaths_; }

  private:
    pipeline& farm_;
    std::vector<std::string> args_;
    std::string program_;
    std::vector<child_process*> alive_;
    std::vector<int> exit_codes_;
    std::vector<wall_clock::time_point> deaths_;
};

// 11.3: a worker killed with SIGKILL mid-job loses nothing: the sink declares
// it lost and the ventilator sends its tasks again.
TEST_P(Faults, WorkerKilledMidJobLosesNothing) {
    constexpr std::uint64_t n = 3000;
    ASSERT_NO_FATAL_FAILURE(start_job(n, 4, 5, "kill9", n / 4));
    kill(*farm.workers()[1]);

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    const auto results = expect_nothing_lost(n, "kill -9 one of 4 workers");
    EXPECT_TRUE(has_each_id_once(results, n));
}

// 11.3: a worker stopped (SIGSTOP) longer than the liveness timeout is lost;
// its tasks are sent again, the job does not stall while it is stopped, and
// its late results after SIGCONT are dropped as duplicates.
TEST_P(Faults, StoppedWorkerDoesNotStallTheJob) {
    constexpr std::uint64_t n = 1500;
    ASSERT_NO_FATAL_FAILURE(start_job(n, 3, 5, "sigstop", n / 5));
    auto* victim = farm.workers()[0];
    victim->signal(SIGSTOP);
    // The job completes while the victim is still stopped.
    const auto rc = farm.ventilator().wait_for_exit(k_exit_timeout);
    victim->signal(SIGCONT);
    ASSERT_EQ(rc, 0);
    expect_nothing_lost(n, "SIGSTOP one of 3 workers");
}

// Issue 3, test 2: every worker killed halfway through, new ones started
// later: the job completes, each id recorded once.
TEST_P(Faults, AllWorkersKilledAndReplacedLosesNothing) {
    constexpr std::uint64_t n = 2000;
    ASSERT_NO_FATAL_FAILURE(start_job(n, 4, 10, "massacre", n / 2));
    for (auto* w : farm.workers())
        kill(*w);
    // The sink declares them all lost before any replacement joins.
    ASSERT_TRUE(wait_until(
        [&] {
            const auto log = farm.sink().stderr_text();
            std::size_t lost = 0;
            for (auto at = log.find(" lost:"); at != std::string::npos;
                 at = log.find(" lost:", at + 1))
                ++lost;
            return lost >= 4;
        },
        k_start_timeout));
    for (int i = 0; i < 4; ++i)
        farm.start_worker({"--exit-when-done"});

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    expect_nothing_lost(n, "kill -9 all 4 workers at 50 %, then 4 new ones");
}

// Issue 3, test 7: SIGTERM mid-task drains the worker: it finishes what it
// holds, says BYE and exits 0; nothing is lost or recorded twice.
TEST_P(Faults, TerminatedWorkerDrainsAndLosesNothing) {
    constexpr std::uint64_t n = 400;
    ASSERT_NO_FATAL_FAILURE(start_job(n, 3, 10, "drain", n / 4));
    auto* leaving = farm.workers()[0];
    leaving->signal(SIGTERM);
    EXPECT_EQ(leaving->wait_for_exit(k_exit_timeout), 0);

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    expect_nothing_lost(n, "SIGTERM one of 3 workers mid-job");
    // 5.7: what it held and had not started went back in its BYE and was
    // sent again at once (its LOST), not at a sweep or after a lease. A push
    // worker holds everything that reached it (8.1, rule 2), so it has some.
    const auto log = leaving->stderr_text();
    const auto at = log.find("queued task(s) handed back");
    if (farm.dispatch() == "push") {
        ASSERT_NE(at, std::string::npos) << last_lines(log, 5);
    }
    if (at != std::string::npos) {
        const auto name_at = log.find("info worker ") + 12;  // "worker NAME up: ..."
        const std::string name = log.substr(name_at, log.find(' ', name_at) - name_at);
        const auto vlog = farm.ventilator().stderr_text();
        EXPECT_NE(vlog.find("worker " + name + " gone: "), std::string::npos) << vlog;
        EXPECT_EQ(vlog.find("worker " + name + " gone: 0 task(s)"), std::string::npos) << vlog;
    }
}

// 11: a task whose attempts run out (--retries) is recorded failed with the
// reason of each attempt, and the job still completes (exit 1).
TEST_P(Faults, TaskIsRecordedFailedWhenItsAttemptsRunOut) {
    farm.start_sink(sink_args);
    farm.start_worker();
    farm.start_ventilator({"--sleep", "1", "--ms", "600000", "--retries", "0", "--job", "doomed"});
    ASSERT_TRUE(wait_until(
        [&] { return farm.ventilator().stderr_text().find("all 1 task(s)") != std::string::npos; },
        k_start_timeout));
    // The sink must know the worker to declare it lost (else the lease, much
    // later, would catch the task).
    ASSERT_TRUE(
        wait_until([&] { return farm.sink().stderr_text().find("joined") != std::string::npos; },
                   k_start_timeout));
    kill(*farm.workers()[0]);

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    const auto results = expect_nothing_lost(1, "kill -9 the worker of a task with --retries 0", 1);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].value("status", ""), "failed");
    EXPECT_NE(results[0].value("error", "").find("attempt 1: "), std::string::npos)
        << results[0].dump();
    EXPECT_NE(results[0].value("error", "").find("lost"), std::string::npos) << results[0].dump();
}

// Issue 3, test 4; PROTOCOL.md 6.6: a handler that never returns, ignoring
// its deadline, is abandoned a grace after the deadline: its attempt is
// recorded failed with the timeout, the worker keeps its capacity, runs
// every other task, and still exits (it never waits for the hung thread).
// A worker's failed RESULT is final (7.11, rule 5): --retries does not
// send the task again.
TEST_P(Faults, HungHandlerIsAbandonedAndRecordedTimedOut) {
    constexpr std::uint64_t n = 200;
    constexpr std::uint64_t hung = 37;
    const auto tasks = farm.dir() / "tasks.jsonl";
    write_tasks(tasks, sleeps_with(n, 5, hung, "hang"));
    farm.start_sink(sink_args);
    for (int i = 0; i < 2; ++i)
        farm.start_worker({"--exit-when-done"}, "zfarm-fault-worker");
    farm.start_ventilator({"--tasks-file", tasks.string(), "--task-timeout", "0.5", "--retries",
                           "1", "--lease", "60", "--job", "hung"});

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    const auto results = expect_nothing_lost(n, "a handler hangs forever", 1);
    for (auto* w : farm.workers())
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();
    const auto* r = result_for(results, hung);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->value("status", ""), "failed");
    // A timeout is a failure, retried (--retries 1: two attempts, 5.14).
    EXPECT_EQ(r->value("attempts", 0), 2);
    EXPECT_EQ(r->value("error", ""),
              "attempt 1: timed out after 500 ms; the handler did not return and was abandoned; "
              "attempt 2: timed out after 500 ms; the handler did not return and was abandoned")
        << r->dump();
    EXPECT_GE(r->value("ms", 0.0), 1500.0) << "abandoned only a grace (1 s) after the deadline";
    for (const auto& j : results)
        if (j.value("id", hung) != hung) {
            EXPECT_EQ(j.value("status", ""), "ok") << j.dump();
        }
}

// PROTOCOL.md 6.6: a worker that had to abandon more than max(4, threads)
// handlers says BYE and exits 3; what it held is sent again elsewhere.
TEST_P(Faults, WorkerLeavesWhenTooManyHandlersHang) {
    constexpr std::uint64_t n = 30;
    const auto tasks = farm.dir() / "tasks.jsonl";
    auto list = sleeps_with(n, 5, 0, "hang");
    for (std::uint64_t id = 1; id < 5; ++id)
        list[id * 6] = {"hang", ""};
    write_tasks(tasks, list);
    farm.start_sink(sink_args);
    auto& doomed = farm.start_worker({"--exit-when-done"}, "zfarm-fault-worker");
    // --retries 0: each hang fails once, so the worker meets exactly five.
    farm.start_ventilator({"--tasks-file", tasks.string(), "--task-timeout", "0.2", "--retries",
                           "0", "--lease", "60", "--job", "hangs"});
    // One hang at a time, each abandoned ~1.2 s after it starts: the fifth
    // exceeds the cap of 4.
    EXPECT_EQ(doomed.wait_for_exit(k_exit_timeout), 3);
    EXPECT_NE(doomed.stderr_text().find("5 handlers did not return past their deadline"),
              std::string::npos)
        << last_lines(doomed.stderr_text(), 5);
    farm.start_worker({"--exit-when-done"});  // runs what is left (hangs fail there)

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    const auto results = expect_nothing_lost(n, "5 handlers hang on a 1-thread worker", 1);
    std::uint64_t timed_out = 0;
    for (const auto& j : results)
        if (j.value("error", "").find("abandoned") != std::string::npos) ++timed_out;
    EXPECT_EQ(timed_out, 5u);
}

// Issue 3, test 5; PROTOCOL.md 11.2, rule 5: a poison task that crashes
// every worker that runs it is sent retries + 1 times, then recorded failed
// with the reason of each lost attempt; it kills exactly that many workers,
// and every other task is recorded once. In credit dispatch a worker holds
// only what it runs (5 ms tasks), so every other task is ok. In push
// dispatch tasks queued behind the poison at its worker die with it, and a
// sweep re-sends them together in id order, so round-robin can queue one
// behind the poison again and again until its attempts run out too
// (collateral: counted, and each such failure names only lost workers).
TEST_P(Faults, PoisonTaskKillsRetriesPlusOneWorkersAndIsRecordedFailed) {
    constexpr std::uint64_t n = 200;
    constexpr std::uint64_t poison = 50;
    const auto tasks = farm.dir() / "tasks.jsonl";
    write_tasks(tasks, sleeps_with(n, 5, poison, "crash"));
    farm.start_sink(sink_args);
    supervisor sup(farm, {"--exit-when-done"}, "zfarm-fault-worker");
    sup.start(3);
    farm.start_ventilator(
        {"--tasks-file", tasks.string(), "--retries", "2", "--lease", "60", "--job", "poison"});
    const auto deadline = std::chrono::steady_clock::now() + k_exit_timeout;
    while (farm.ventilator().running() && std::chrono::steady_clock::now() < deadline &&
           sup.deaths().size() < 10) {
        sup.tend();
        wait_until([&] { return !farm.ventilator().running(); }, 20ms);
    }
    kills_ = faults_ = sup.deaths();

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1);
    const auto results = expect_nothing_lost(n, "a poison task crashes its workers", 1);
    std::uint64_t collateral = 0;
    for (const auto& j : results) {
        if (j.value("id", poison) == poison || j.value("status", "") == "ok") continue;
        ++collateral;
        const auto why = j.value("error", "");
        EXPECT_EQ(why.find("timed out"), std::string::npos) << j.dump();
        EXPECT_NE(why.find("attempt 3: "), std::string::npos) << j.dump();
        EXPECT_NE(why.find("was lost"), std::string::npos) << j.dump();
    }
    std::printf("[fault] poison, %s: %llu other task(s) failed with it (collateral)\n",
                farm.dispatch().c_str(), static_cast<unsigned long long>(collateral));
    if (farm.dispatch() == "credit") {
        EXPECT_EQ(collateral, 0u);
    }
    EXPECT_EQ(sup.deaths().size(), 3u);
    for (int rc : sup.exit_codes())
        EXPECT_EQ(rc, 128 + SIGABRT);
    const auto* r = result_for(results, poison);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->value("status", ""), "failed");
    EXPECT_EQ(r->value("attempts", 0), 3);
    const auto error = r->value("error", "");
    for (const char* attempt : {"attempt 1: ", "attempt 2: ", "attempt 3: "})
        EXPECT_NE(error.find(attempt), std::string::npos) << error;
    EXPECT_NE(error.find("lost"), std::string::npos) << error;
}

// Issue 3, test 1: one of 4 workers killed with SIGKILL at random every 2 s
// of a 20,000-task job, and restarted at once: every task is recorded once.
TEST_P(Faults, RandomKillEveryTwoSecondsLosesNothing) {
    constexpr std::uint64_t n = 20000;
    farm.start_sink(sink_args);
    supervisor sup(farm, {"--exit-when-done"}, "zfarm-worker");
    sup.start(4);
    farm.start_ventilator(
        {"--sleep", std::to_string(n), "--ms", "3", "--lease", "60", "--job", "chaos"});
    std::mt19937 pick(20261127);  // fixed: the same victims each run
    const auto deadline = std::chrono::steady_clock::now() + 2 * k_exit_timeout;
    while (std::chrono::steady_clock::now() < deadline &&
           !wait_until([&] { return !farm.ventilator().running(); }, 2s)) {
        if (sup.alive().empty()) break;  // all left: the job is done
        auto* victim = sup.alive()[pick() % sup.alive().size()];
        kill(*victim);
        sup.tend();
    }

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    const auto results = expect_nothing_lost(n, "kill -9 a random one of 4 workers every 2 s");
    EXPECT_TRUE(has_each_id_once(results, n));
    EXPECT_GE(kills_.size(), 3u);
}

// Issue 3, test 7; PROTOCOL.md 9.3, rule 3: a second SIGTERM abandons the
// running task: the worker says BYE and exits 0 at once, without its RESULT,
// and the task is sent again and recorded once.
TEST_P(Faults, SecondSigtermAbandonsTheRunningTask) {
    constexpr std::uint64_t n = 2;
    constexpr auto task_ms = 8000;
    const auto tasks = farm.dir() / "tasks.jsonl";
    write_tasks(tasks, {{"nap", std::to_string(task_ms)}, {"nap", std::to_string(task_ms)}});
    farm.start_sink(sink_args);
    for (int i = 1; i <= 2; ++i)
        farm.start_worker({"--exit-when-done", "--threads", "2", "--id", "fw-" + std::to_string(i)},
                          "zfarm-fault-worker");
    farm.start_ventilator({"--tasks-file", tasks.string(), "--lease", "60", "--job", "abandon"});
    child_process* victim = nullptr;
    ASSERT_TRUE(wait_until(
        [&] {
            for (auto* w : farm.workers())
                if (w->stderr_text().find("nap abandon/") != std::string::npos) victim = w;
            return victim != nullptr;
        },
        k_start_timeout));
    const std::string victim_id = victim == farm.workers()[0] ? "fw-1" : "fw-2";

    const auto signalled = std::chrono::steady_clock::now();
    faults_.push_back(wall_clock::now());
    victim->signal(SIGTERM);
    // Signals sent at once may merge: repeat until the worker leaves.
    std::optional<int> rc;
    while (!rc && std::chrono::steady_clock::now() - signalled < k_exit_timeout) {
        victim->signal(SIGTERM);
        rc = victim->wait_for_exit(std::chrono::milliseconds(500));
    }
    const auto took = std::chrono::steady_clock::now() - signalled;
    EXPECT_EQ(rc, 0);
    EXPECT_LT(took, std::chrono::milliseconds(task_ms / 3)) << "it waited for its task";

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    auto results = expect_nothing_lost(n, "SIGTERM twice to a worker running an 8 s task");
    EXPECT_TRUE(has_each_id_once(results, n));
    std::uint64_t sent_again = 0;
    for (const auto& j : results) {
        EXPECT_EQ(j.value("status", ""), "ok") << j.dump();
        EXPECT_NE(j.value("worker", ""), victim_id) << j.dump();
        if (j.value("attempts", 1) > 1) ++sent_again;
    }
    EXPECT_GE(sent_again, 1u);
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, Faults, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
