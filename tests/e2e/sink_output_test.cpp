// End-to-end: the sink's output options. --keep-order writes each job's
// results in id order though tasks complete out of order, holds at most the
// ventilator's window, and keeps the held tasks' leases alive (PROTOCOL.md
// 7.3 rule 4); --format text writes each task's output whole; --joblog
// writes GNU parallel's job log.
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

class SinkOutput : public ::testing::TestWithParam<std::string> {
  protected:
    std::string write_tasks(const std::vector<std::string>& lines) {
        return write_lines(farm.dir() / "tasks.jsonl", lines);
    }
    static std::string sleep_task(int ms) {
        return R"({"kind":"sleep","payload":")" + std::to_string(ms) + R"("})";
    }
    // Three lines, each naming the task.
    static std::string echo_text(int id) {
        std::string s;
        for (int line = 1; line <= 3; ++line)
            s += "task " + std::to_string(id) + " line " + std::to_string(line) + "\n";
        return s;
    }
    std::string echo_tasks(int n) {
        std::vector<std::string> lines;
        for (int i = 0; i < n; ++i)
            lines.push_back(nlohmann::json{{"kind", "echo"}, {"payload", echo_text(i)}}.dump());
        return write_tasks(lines);
    }
    // A sink with --once and `sink_args`, `workers` workers with
    // --exit-when-done and `worker_args`, and a ventilator: all exit 0.
    void run_job(const std::vector<std::string>& sink_args, int workers,
                 const std::vector<std::string>& worker_args,
                 const std::vector<std::string>& ventilator_args) {
        auto args = sink_args;
        args.push_back("--once");
        farm.start_sink(args);
        for (int i = 0; i < workers; ++i) {
            auto w = worker_args;
            w.push_back("--exit-when-done");
            farm.start_worker(w);
        }
        auto v = ventilator_args;
        v.insert(v.end(), {"--job", "out"});
        farm.start_ventilator(v);
        ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
        ASSERT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
        for (auto* w : farm.workers())
            EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();
    }
    static std::uint64_t id_of(const nlohmann::json& r) { return r.at("id").get<std::uint64_t>(); }
    static double end_of(const nlohmann::json& r) {
        return r.at("start").get<double>() + r.at("ms").get<double>() / 1000.0;
    }

    pipeline farm{GetParam()};
};

TEST_P(SinkOutput, KeepOrderWritesIdsInOrderThoughTasksCompleteOutOfOrder) {
    // The first task sleeps longest: with four at once, later ids finish first.
    constexpr int n = 16;
    std::vector<std::string> tasks;
    for (int i = 0; i < n; ++i)
        tasks.push_back(sleep_task((n - i) * 20));
    run_job({"--keep-order"}, 2, {"--threads", "2"}, {"--tasks-file", write_tasks(tasks)});

    const auto results = read_results(farm.output());
    ASSERT_TRUE(has_each_id_once(results, n));
    EXPECT_TRUE(all_ok_first_attempt(results));
    for (std::size_t i = 0; i < results.size(); ++i)
        EXPECT_EQ(id_of(results[i]), i) << "line " << i + 1;
    bool out_of_order = false;  // the test is only worth something if so
    for (std::size_t i = 0; i + 1 < results.size(); ++i)
        for (std::size_t j = i + 1; j < results.size(); ++j)
            out_of_order |= end_of(results[i]) > end_of(results[j]);
    EXPECT_TRUE(out_of_order) << "every task finished in id order: nothing was reordered";
}

TEST_P(SinkOutput, KeepOrderHoldsAtMostTheWindowAndRenewsTheHeldLeases) {
    // Task 0 runs past two leases while 1..3 finish at once and are held:
    // they fill the window of 4, so task 4 is sent only once task 0 is
    // written, and their leases are renewed by the relay (no worker holds
    // them), so nothing is sent again.
    std::vector<std::string> tasks{sleep_task(6500)};
    for (int i = 1; i < 8; ++i)
        tasks.push_back(sleep_task(5));
    // Four threads per worker: 1..3 run beside task 0 whichever worker each
    // is dispatched to.
    run_job({"--keep-order"}, 2, {"--threads", "4"},
            {"--tasks-file", write_tasks(tasks), "--window", "4", "--lease", "3"});

    const auto results = read_results(farm.output());
    ASSERT_TRUE(has_each_id_once(results, 8));
    EXPECT_TRUE(all_ok_first_attempt(results));
    for (std::size_t i = 0; i < results.size(); ++i)
        EXPECT_EQ(id_of(results[i]), i) << "line " << i + 1;
    const double end_0 = end_of(results[0]);
    for (std::size_t i = 4; i < results.size(); ++i)
        EXPECT_GE(results[i].at("start").get<double>(), end_0 - 0.001)
            << "task " << i << " started before task 0 ended: more than the window was held";
    // The ventilator's closing count of tasks sent again (workers leaving
    // at the end log "gone: 0 task(s) ... sent again", which is no resend).
    EXPECT_EQ(farm.ventilator().stderr_text().find("were sent again after a loss or lease expiry"),
              std::string::npos)
        << "a held task's lease ran out:\n"
        << last_lines(farm.ventilator().stderr_text(), 20);
}

TEST_P(SinkOutput, TextFormatWritesEachTaskOutputWhole) {
    constexpr int n = 200;
    run_job({"--format", "text"}, 3, {}, {"--tasks-file", echo_tasks(n)});

    std::istringstream in(read_file(farm.output()));
    std::map<int, int> seen;
    std::string a, b, c;
    while (std::getline(in, a)) {
        ASSERT_TRUE(std::getline(in, b) && std::getline(in, c)) << "a task cut short after " << a;
        int id = -1;
        ASSERT_EQ(std::sscanf(a.c_str(), "task %d line 1", &id), 1) << a;
        ASSERT_EQ(a + "\n" + b + "\n" + c + "\n", echo_text(id)) << "interleaved";
        ++seen[id];
    }
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(n));
    for (const auto& [id, count] : seen)
        EXPECT_EQ(count, 1) << "task " << id;
    EXPECT_EQ(farm.sink().stderr_text().find("zfarm-sink: task"), std::string::npos)
        << "no task failed";
}

TEST_P(SinkOutput, TextFormatWithKeepOrderIsTheOutputsInIdOrder) {
    constexpr int n = 100;
    run_job({"--format", "text", "--keep-order"}, 3, {}, {"--tasks-file", echo_tasks(n)});
    std::string expected;
    for (int i = 0; i < n; ++i)
        expected += echo_text(i);
    EXPECT_EQ(read_file(farm.output()), expected);
}

TEST_P(SinkOutput, JobLogHasAHeaderAndALinePerTask) {
    const auto joblog = farm.dir() / "joblog.tsv";
    run_job({"--joblog", joblog.string()}, 2, {}, {"--demo", "20"});

    const auto lines = read_lines(joblog);
    ASSERT_EQ(lines.size(), 21u) << read_file(joblog);
    EXPECT_EQ(lines[0],
              "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand");
    std::set<std::string> seqs;
    std::set<std::string> hosts;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        std::vector<std::string> cols;
        std::istringstream line(lines[i]);
        for (std::string col; std::getline(line, col, '\t');)
            cols.push_back(col);
        ASSERT_EQ(cols.size(), 9u) << lines[i];
        seqs.insert(cols[0]);
        hosts.insert(cols[1]);
        EXPECT_GT(std::stod(cols[2]), 1.7e9) << "Unix seconds";
        EXPECT_EQ(cols[4], "0");
        EXPECT_EQ(cols[5], "0");
        EXPECT_EQ(cols[6], "0") << "ok";
        EXPECT_EQ(cols[7], "0");
        EXPECT_EQ(cols[8], "sleep") << "the kind, for tasks that are not commands";
    }
    std::set<std::string> expected_seqs;
    for (int i = 1; i <= 20; ++i)
        expected_seqs.insert(std::to_string(i));
    EXPECT_EQ(seqs, expected_seqs);
    EXPECT_EQ(hosts, workers_of(read_results(farm.output())));
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, SinkOutput, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
