// End-to-end: examples/python/worker.py, a worker written in Python from
// PROTOCOL.md alone (section 14), in real pipelines with the zfarm programs,
// in both dispatch modes. It runs a job of its own kind alone, shares a job
// with zfarm-worker, and leaves a running job gracefully (BYE, 5.7). The sink
// and the ventilator must drop none of its frames (3.7): every message it
// sends is a valid version 1 message.
//
// Needs python3 with the modules zmq and msgpack (Debian: python3-zmq,
// python3-msgpack); without them each test skips and says so.
#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

// The interpreter to run worker.py with: the first of $ZFARM_PYTHON, python3
// on PATH and /usr/bin/python3 that imports zmq and msgpack, as an absolute
// path; "" when none does.
std::string find_python() {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("ZFARM_PYTHON"); env && *env) candidates.push_back(env);
    candidates.insert(candidates.end(), {"python3", "/usr/bin/python3"});
    for (const auto& c : candidates) {
        if (c.find('\'') != std::string::npos) continue;
        const std::string cmd =
            "'" + c + "' -c 'import sys, zmq, msgpack; print(sys.executable)' 2>/dev/null";
        FILE* p = ::popen(cmd.c_str(), "r");
        if (!p) continue;
        std::array<char, 4096> buf{};
        std::string out;
        while (std::fgets(buf.data(), buf.size(), p))
            out += buf.data();
        if (::pclose(p) == 0 && !out.empty() && out.front() == '/') {
            out.erase(out.find_last_not_of("\r\n") + 1);
            return out;
        }
    }
    return "";
}

const std::string& python() {
    static const std::string path = find_python();
    return path;
}

constexpr const char* k_py_id = "py-worker";
constexpr const char* k_cpp_id = "cpp-worker";

class PythonWorker : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        if (python().empty())
            GTEST_SKIP() << "no python3 with the modules zmq and msgpack (tried $ZFARM_PYTHON, "
                            "python3, /usr/bin/python3); install python3-zmq and python3-msgpack";
    }

    std::string write_tasks(const std::vector<std::string>& lines) {
        return write_lines(farm.dir() / "tasks.jsonl", lines);
    }

    child_process& start_python_worker(const std::vector<std::string>& extra) {
        std::vector<std::string> args{"--id", k_py_id};
        args.insert(args.end(), extra.begin(), extra.end());
        return farm.start_external_worker({python(), ZFARM_PYTHON_WORKER}, args);
    }

    // Waits until the sink has logged the HELLO of each of `ids`, so that
    // every worker is connected before the ventilator starts.
    ::testing::AssertionResult wait_joined(const std::vector<std::string>& ids) {
        const bool ok = wait_until(
            [&] {
                const auto log = farm.sink().stderr_text();
                return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
                    return log.find("worker " + id + " joined") != std::string::npos;
                });
            },
            k_start_timeout);
        if (ok) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "the sink did not log every HELLO";
    }

    std::map<std::uint64_t, nlohmann::json> results_by_id() {
        return read_results_by_id(farm.output());
    }

    // Every frame the sink and the ventilator received was a valid message.
    void expect_no_bad_frames() {
        EXPECT_NE(farm.sink().stderr_text().find(", 0 bad frame(s) dropped"), std::string::npos)
            << "the sink dropped frames as malformed";
        EXPECT_EQ(farm.ventilator().stderr_text().find("dropped a bad frame"), std::string::npos)
            << "the ventilator dropped frames as malformed";
    }

    pipeline farm{GetParam()};
};

// 5.3 rule 4 (an unknown kind is a failed RESULT), 5.4 (RESULT's fields),
// 6.1 (sleep's payload), 7.6 (exit when done), 5.5 and 5.7 (HELLO, BYE).
TEST_P(PythonWorker, RunsItsOwnKindAndAnswersEveryTaskAlone) {
    const auto file = write_tasks({
        R"({"kind":"py-upper","payload":"grüße, zfarm"})",
        R"({"kind":"echo","payload":"hello"})",
        R"({"kind":"py-upper","payload":""})",
        R"({"kind":"sleep","payload":"30"})",
        R"({"kind":"frobnicate","payload":"x"})",
        R"({"kind":"sleep","payload":"abc"})",
        R"({"kind":"py-upper","payload":"Mixed Case 123"})",
    });
    const double before =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    farm.start_sink({"--once"});
    auto& py = start_python_worker({"--exit-when-done"});
    ASSERT_TRUE(wait_joined({k_py_id}));
    farm.start_ventilator({"--tasks-file", file, "--job", "py-alone", "--retries", "0"});

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1) << "two tasks fail";
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 1);
    EXPECT_EQ(py.wait_for_exit(k_exit_timeout), 0) << "--exit-when-done";
    const double after =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

    const auto results = read_results(farm.output());
    ASSERT_TRUE(has_each_id_once(results, 7));
    auto by_id = results_by_id();
    const std::map<std::uint64_t, std::string> outputs{
        {0, "GRÜSSE, ZFARM"}, {1, "hello"}, {2, ""}, {3, ""}, {6, "MIXED CASE 123"}};
    for (const auto& [id, output] : outputs) {
        EXPECT_EQ(by_id[id].value("status", ""), "ok") << by_id[id].dump();
        EXPECT_EQ(by_id[id].value("output", "?"), output) << by_id[id].dump();
        EXPECT_FALSE(by_id[id].contains("error")) << by_id[id].dump();
    }
    EXPECT_EQ(by_id[4].value("status", ""), "failed");
    EXPECT_EQ(by_id[4].value("error", ""), "unknown task kind 'frobnicate'");
    EXPECT_EQ(by_id[5].value("status", ""), "failed");
    EXPECT_EQ(by_id[5].value("error", ""),
              "payload must be a number of milliseconds (0-86400000), got 'abc'");
    for (const auto& r : results) {
        EXPECT_EQ(r.value("worker", ""), k_py_id) << r.dump();
        EXPECT_EQ(r.value("attempts", 0), 1) << r.dump();
        // started_us is wall-clock time (5.4, rule 2), elapsed_us a duration.
        EXPECT_GE(r.value("start", 0.0), before - 1) << r.dump();
        EXPECT_LE(r.value("start", 0.0), after + 1) << r.dump();
    }
    EXPECT_GE(by_id[3].value("ms", 0.0), 30.0) << "sleep 30 ran for 30 ms: " << by_id[3].dump();
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "py-alone", 7, 5, 2, 1));
    EXPECT_NE(farm.sink().stderr_text().find(std::string("worker ") + k_py_id + " left"),
              std::string::npos)
        << "no BYE";
    expect_no_bad_frames();
}

// The same job taken by zfarm-worker and the Python worker at once: echo and
// sleep, which both serve. Each task is recorded once, from either worker.
TEST_P(PythonWorker, SharesAJobWithZfarmWorker) {
    constexpr std::uint64_t n = 60;
    std::vector<std::string> lines;
    for (std::uint64_t i = 0; i < n; ++i)
        lines.push_back(i % 2 ? R"({"kind":"sleep","payload":"25"})"
                              : R"({"kind":"echo","payload":"task )" + std::to_string(i) + "\"}");
    const auto file = write_tasks(lines);
    farm.start_sink({"--once"});
    // --prefetch 1 each: in credit dispatch, zfarm-worker otherwise sizes its
    // queue from the task time (8.5), and after a few instant echoes it asks
    // for the whole job before the other worker's credit arrives.
    auto& cpp = farm.start_worker({"--exit-when-done", "--id", k_cpp_id, "--prefetch", "1"});
    auto& py = start_python_worker({"--exit-when-done", "--prefetch", "1"});
    ASSERT_TRUE(wait_joined({k_cpp_id, k_py_id}));
    farm.start_ventilator({"--tasks-file", file, "--job", "shared"});

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(cpp.wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(py.wait_for_exit(k_exit_timeout), 0);

    const auto results = read_results(farm.output());
    ASSERT_TRUE(has_each_id_once(results, n));
    EXPECT_TRUE(all_ok_first_attempt(results));
    std::map<std::string, int> per_worker;
    for (const auto& r : results) {
        ++per_worker[r.value("worker", "")];
        const auto id = r.value("id", std::uint64_t{0});
        EXPECT_EQ(r.value("output", "?"), id % 2 ? "" : "task " + std::to_string(id)) << r.dump();
    }
    // Both were connected to the sink before the job began, and it lasts at
    // least 30 x 25 ms of sleeps, ample time for both to connect to the
    // ventilator (reconnection within 110 ms, 2.4): each takes a share.
    EXPECT_GT(per_worker[k_cpp_id], 0);
    EXPECT_GT(per_worker[k_py_id], 0);
    EXPECT_EQ(per_worker.size(), 2u) << "results from a worker that is neither";
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "shared", n, n, 0, 2));
    expect_no_bad_frames();
}

// 9.3 and 5.7: on SIGTERM the Python worker finishes what it runs, hands the
// rest back in its BYE and exits 0; zfarm-worker runs what it left, and the
// job ends with every task recorded once.
TEST_P(PythonWorker, LeavesARunningJobGracefully) {
    constexpr std::uint64_t n = 60;
    std::vector<std::string> lines(n, R"({"kind":"sleep","payload":"40"})");
    const auto file = write_tasks(lines);
    farm.start_sink({"--once"});
    auto& cpp = farm.start_worker({"--exit-when-done", "--id", k_cpp_id});
    auto& py = start_python_worker({"--prefetch", "4"});
    ASSERT_TRUE(wait_joined({k_cpp_id, k_py_id}));
    farm.start_ventilator({"--tasks-file", file, "--job", "py-leaves"});

    // Once it has delivered a couple of results, it holds more, queued.
    ASSERT_TRUE(wait_until(
        [&] {
            int from_py = 0;
            for (const auto& line : read_lines(farm.output()))
                from_py +=
                    line.find(std::string("\"worker\":\"") + k_py_id + "\"") != std::string::npos;
            return from_py >= 2;
        },
        k_start_timeout));
    py.signal(SIGTERM);
    EXPECT_EQ(py.wait_for_exit(std::chrono::seconds(10)), 0) << "a graceful stop exits 0";

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(cpp.wait_for_exit(k_exit_timeout), 0);
    const auto results = read_results(farm.output());
    ASSERT_TRUE(has_each_id_once(results, n));
    for (const auto& r : results)
        EXPECT_EQ(r.value("status", ""), "ok") << r.dump();
    EXPECT_NE(farm.sink().stderr_text().find(std::string("worker ") + k_py_id + " left"),
              std::string::npos)
        << "no BYE";
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "py-leaves", n, n, 0, 2));
    expect_no_bad_frames();
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, PythonWorker, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
