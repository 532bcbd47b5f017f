// End-to-end: the sink's status endpoint (zfarm-sink --http) during and after
// a real job: /status and /metrics agree with each other and with the job
// (recorded never above the total and never going back while it runs; ok +
// failed == total at the end; retries counted), every worker is listed with
// its host and pid, and bad requests neither crash nor stall the sink.
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include <algorithm>
#include <csignal>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"
#include "support/raw_tcp.hpp"
#include "support/status_client.hpp"

namespace zfarm::test {
namespace {

constexpr int k_tasks = 120;  // every tenth fails
constexpr int k_fail_every = 10;
const std::string k_job = "status-e2e";

// ok/failed lines for a command job whose task fails on "fail".
std::vector<std::string> ok_and_fail_lines() {
    std::vector<std::string> lines;
    for (int i = 0; i < k_tasks; ++i)
        lines.push_back(i % k_fail_every == k_fail_every - 1 ? "fail" : "ok");
    return lines;
}

std::string tasks_series(const std::string& status) {
    return "zfarm_tasks_total{job=\"" + k_job + "\",status=\"" + status + "\"}";
}

const nlohmann::json* job_in(const nlohmann::json& status) {
    if (!status.is_object()) return nullptr;
    for (const auto& j : status["jobs"])
        if (j["name"] == k_job) return &j;
    return nullptr;
}

class SinkStatusEndpoint : public ::testing::TestWithParam<std::string> {
  protected:
    pipeline farm{GetParam()};
};

TEST_P(SinkStatusEndpoint, ScrapesDuringAndAfterAJobAddUp) {
    farm.start_sink({"--http", "127.0.0.1:0"});
    const auto port = wait_for_http_port(farm.sink());
    ASSERT_TRUE(port) << farm.sink().stderr_text();
    farm.start_worker({"--threads", "2", "--allow-exec"});
    farm.start_worker({"--threads", "2", "--allow-exec"});
    // About 3 s of 100 ms commands on four threads: long enough to be
    // scraped while it runs.
    const auto input = write_lines(farm.dir() / "input.txt", ok_and_fail_lines());
    farm.start_ventilator({"--input", input, "--job", k_job, "--retries", "1", "--shell", "--",
                           "sleep 0.1; test {} = ok"});

    // Mid-job: some recorded, not all (the total is known once the
    // ventilator has sent every task).
    nlohmann::json mid;
    ASSERT_TRUE(wait_until(
        [&] {
            mid = get_status(*port);
            const auto* j = job_in(mid);
            return j && (*j)["recorded"] > 0 && !(*j)["done"].get<bool>();
        },
        k_exit_timeout))
        << mid.dump();
    const auto first = (*job_in(mid))["recorded"].get<std::uint64_t>();
    EXPECT_LT(first, k_tasks);
    if (!(*job_in(mid))["total"].is_null()) {
        EXPECT_EQ((*job_in(mid))["total"], k_tasks);
    }

    // Metrics and status taken at once agree; a later scrape never goes back.
    const auto metrics = http_get(*port, "/metrics");
    ASSERT_TRUE(metrics);
    const auto ok = metric_value(*metrics, tasks_series("ok"));
    const auto failed = metric_value(*metrics, tasks_series("failed"));
    ASSERT_TRUE(ok && failed) << *metrics;
    EXPECT_GE(*ok + *failed, static_cast<double>(first));
    EXPECT_LE(*ok + *failed, k_tasks);
    EXPECT_EQ(metric_value(*metrics, "zfarm_jobs_open"), 1) << *metrics;
    ASSERT_TRUE(wait_until(
        [&] {
            const auto later = get_status(*port);
            const auto* j = job_in(later);
            return j && (*j)["recorded"] > first;
        },
        k_exit_timeout))
        << "the count did not move on";
    bool went_back = false;
    std::uint64_t last = first;
    for (int i = 0; i < 5; ++i) {
        const auto status = get_status(*port);
        const auto* j = job_in(status);
        if (!j) break;
        const auto now = (*j)["recorded"].get<std::uint64_t>();
        went_back = went_back || now < last;
        last = now;
    }
    EXPECT_FALSE(went_back);
    EXPECT_TRUE(wait_until(
        [&] {
            const auto s = get_status(*port);
            return s.is_object() && s["in_flight"] > 0 && s["rate"] > 0;
        },
        k_exit_timeout))
        << "no task in flight nor rate seen while the job ran";

    EXPECT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 1) << "some tasks failed";

    // After: everything adds up to the job.
    nlohmann::json after;
    ASSERT_TRUE(wait_until(
        [&] {
            after = get_status(*port);
            const auto* j = job_in(after);
            return j && (*j)["done"].get<bool>();
        },
        k_exit_timeout))
        << after.dump();
    const auto& job = *job_in(after);
    const int failing = k_tasks / k_fail_every;
    EXPECT_EQ(job["total"], k_tasks);
    EXPECT_EQ(job["ok"], k_tasks - failing);
    EXPECT_EQ(job["failed"], failing);
    EXPECT_EQ(job["ok"].get<int>() + job["failed"].get<int>(), job["total"].get<int>());
    EXPECT_EQ(job["percent"], 100.0);
    EXPECT_EQ(after["retries"], failing) << "each failing task was tried twice";
    EXPECT_EQ(after["tasks_recorded"], k_tasks);
    ASSERT_FALSE(after["failures"].empty());
    for (const auto& f : after["failures"]) {
        EXPECT_EQ(f["job"], k_job);
        EXPECT_FALSE(f["error"].get<std::string>().empty()) << f.dump();
    }

    ASSERT_EQ(after["workers"].size(), 2u) << after.dump();
    std::set<long> pids;
    for (const auto& w : after["workers"]) {
        EXPECT_FALSE(w["host"].get<std::string>().empty()) << w.dump();
        EXPECT_EQ(w["threads"], 2) << w.dump();
        EXPECT_EQ(w["state"], "alive") << w.dump();
        pids.insert(w["pid"].get<long>());
    }
    std::set<long> expected;
    for (auto* p : farm.workers())
        expected.insert(p->pid());
    EXPECT_EQ(pids, expected);

    const auto final_metrics = http_get(*port, "/metrics");
    ASSERT_TRUE(final_metrics);
    EXPECT_EQ(metric_value(*final_metrics, tasks_series("ok")), k_tasks - failing);
    EXPECT_EQ(metric_value(*final_metrics, tasks_series("failed")), failing);
    EXPECT_EQ(metric_value(*final_metrics, "zfarm_task_retries_total"), failing);
    EXPECT_EQ(metric_value(*final_metrics, "zfarm_task_duration_seconds_count"), k_tasks);
    EXPECT_EQ(metric_value(*final_metrics, "zfarm_task_duration_seconds_bucket{le=\"+Inf\"}"),
              k_tasks);
    EXPECT_EQ(metric_value(*final_metrics, "zfarm_task_duration_seconds_bucket{le=\"0.05\"}"), 0)
        << "every task slept 100 ms";
    EXPECT_GE(metric_value(*final_metrics, "zfarm_task_duration_seconds_sum").value_or(0),
              k_tasks * 0.1);
    EXPECT_EQ(metric_value(*final_metrics, "zfarm_workers_alive"), 2);
    EXPECT_EQ(metric_value(*final_metrics, "zfarm_jobs_open"), 0);

    farm.sink().signal(SIGTERM);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0) << "the HTTP server held the sink";
    for (auto* p : farm.workers())
        p->signal(SIGTERM);
}

// Sends `bytes` on a fresh connection to 127.0.0.1:port and returns what
// comes back before the server closes it (or 5 s pass); with `await_reply`
// false, closes the connection at once. (Not half-closed after sending:
// httplib answers no client that has shut down its side.)
std::string raw_exchange(std::uint16_t port, const std::string& bytes, bool await_reply = true) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return {};
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        char buf[4096];
        for (ssize_t n; await_reply && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
            reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reply;
}

TEST_P(SinkStatusEndpoint, BadRequestsGetAnErrorAndTheSinkServesOn) {
    farm.start_sink({"--http", ":0"});
    const auto port = wait_for_http_port(farm.sink());
    ASSERT_TRUE(port) << farm.sink().stderr_text();
    EXPECT_EQ(raw_exchange(*port, "GARBAGE\r\n\r\n").substr(0, 12), "HTTP/1.1 400");
    EXPECT_EQ(raw_exchange(*port, "BREW /status HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 12),
              "HTTP/1.1 400");
    EXPECT_EQ(raw_exchange(*port,
                           "POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
                           "abc")
                  .substr(0, 12),
              "HTTP/1.1 405");
    EXPECT_EQ(raw_exchange(*port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 12),
              "HTTP/1.1 404");
    EXPECT_EQ(
        raw_exchange(*port, "GET /" + std::string(100000, 'a') + " HTTP/1.1\r\n\r\n").substr(0, 12),
        "HTTP/1.1 414");
    (void)raw_exchange(*port, std::string("\0\xff\r\n\r\n", 6), false);
    (void)raw_exchange(*port, "GET /status HTTP/1.1\r\n", false);  // cut short

    {
        // As many silent clients as the server has threads: each is let go
        // after its read timeout, and the status still comes.
        silent_connections idle({*port}, 4);
        ASSERT_EQ(idle.size(), 4u);
        EXPECT_TRUE(get_status(*port).is_object()) << "silent clients stalled the endpoint";
    }

    // The sink still serves, and records a job.
    EXPECT_TRUE(get_status(*port).is_object());
    farm.start_worker();
    auto& v = farm.start_ventilator({"--echo", "50", "--job", "after-garbage"});
    EXPECT_EQ(v.wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(read_results(farm.output()).size(), 50u);
    farm.sink().signal(SIGINT);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    farm.workers().front()->signal(SIGINT);
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, SinkStatusEndpoint, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

TEST(SinkStatusEndpointCli, BadAddressIsAUsageError) {
    temp_dir dir;
    child_process sink("zfarm-sink",
                       {"--results", tcp_endpoint(free_tcp_port()), "--control",
                        tcp_endpoint(free_tcp_port()), "--http", "9100"},
                       dir.path(), "sink");
    EXPECT_EQ(sink.wait_for_exit(k_exit_timeout), 2);
    const auto err = sink.stderr_text();
    EXPECT_NE(err.find("--http 9100"), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line: " << err;
}

TEST(SinkStatusEndpointCli, PortInUseIsAClearError) {
    temp_dir dir;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    child_process sink(
        "zfarm-sink",
        {"--results", tcp_endpoint(free_tcp_port()), "--control", tcp_endpoint(free_tcp_port()),
         "--http", "127.0.0.1:" + std::to_string(ntohs(addr.sin_port))},
        dir.path(), "sink");
    EXPECT_EQ(sink.wait_for_exit(k_exit_timeout), 2);
    ::close(fd);
    EXPECT_NE(sink.stderr_text().find("cannot listen on 127.0.0.1:"), std::string::npos)
        << sink.stderr_text();
}

}  // namespace
}  // namespace zfarm::test
