// End-to-end: the sink's dashboard (zfarm-sink --http, GET /) loaded in
// headless Chromium during a real job: the rendered DOM shows the job with
// its progress, one row per worker and the failure with its reason; a
// screenshot is kept as a test artifact (build/test-artifacts/). Skipped
// when chromium is not installed (scripts/setup.sh installs it).
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <random>
#include <regex>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"
#include "support/status_client.hpp"

namespace zfarm::test {
namespace {

constexpr const char* k_chromium = "/usr/bin/chromium";
constexpr auto k_browser_timeout = std::chrono::seconds(30);
const std::string k_job = "dash-e2e";

// Headless Chromium runs, each with a fresh profile, every process it
// starts marked in its environment so that all of them are killed after.
class browser {
  public:
    explicit browser(const temp_dir& dir)
        : dir_(dir),
          mark_("ZFARM_TEST_BROWSER=" + std::to_string(::getpid()) + "-" +
                std::to_string(std::random_device{}())) {}
    ~browser() { kill_all(); }
    browser(const browser&) = delete;
    browser& operator=(const browser&) = delete;

    // Runs chromium with `args` after the common flags, up to
    // k_browser_timeout; returns its stdout, or nullopt if it failed or hung.
    std::optional<std::string> run(const std::string& name, const std::vector<std::string>& args) {
        std::vector<std::string> argv = {
            mark_,
            k_chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--user-data-dir=" + (dir_ / (name + "-profile")).string()};
        argv.insert(argv.end(), args.begin(), args.end());
        child_process p("/usr/bin/env", argv, dir_.path(), name);
        const auto rc = p.wait_for_exit(k_browser_timeout);
        kill_all();
        if (rc != 0) {
            ADD_FAILURE() << name << ": chromium "
                          << (rc ? "exited " + std::to_string(*rc) : "hung") << "\n"
                          << last_lines(p.stderr_text(), 20);
            return std::nullopt;
        }
        return p.stdout_text();
    }

  private:
    // Chromium's helper processes (zygote, renderer, GPU) are not its
    // children alone: kill every marked one and wait until none is left.
    void kill_all() {
        for (pid_t pid : processes_with_env(mark_))
            ::kill(pid, SIGKILL);
        EXPECT_TRUE(wait_until([&] { return processes_with_env(mark_).empty(); }, k_exit_timeout))
            << "chromium processes left behind";
    }

    const temp_dir& dir_;
    std::string mark_;
};

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

TEST(SinkDashboard, ChromiumRendersTheRunningJobAndItsWorkers) {
    if (::access(k_chromium, X_OK) != 0) GTEST_SKIP() << k_chromium << " is not installed";
    pipeline farm("credit");
    farm.start_sink({"--http", "127.0.0.1:0"});
    const auto port = wait_for_http_port(farm.sink());
    ASSERT_TRUE(port) << farm.sink().stderr_text();
    farm.start_worker({"--threads", "2", "--allow-exec"});
    farm.start_worker({"--threads", "2", "--allow-exec"});
    // Four rounds of 3 s commands on four threads: the job runs for about
    // twelve seconds; the first task fails.
    std::vector<std::string> lines(16, "ok");
    lines[0] = "fail";
    const auto input = write_lines(farm.dir() / "input.txt", lines);
    farm.start_ventilator({"--input", input, "--job", k_job, "--retries", "0", "--shell", "--",
                           "sleep 3; test {} = ok"});

    nlohmann::json status;
    ASSERT_TRUE(wait_until(
        [&] {
            status = get_status(*port);
            if (!status.is_object()) return false;
            for (const auto& j : status["jobs"])
                if (j["name"] == k_job && j["recorded"] >= 4) return status["workers"].size() == 2;
            return false;
        },
        k_exit_timeout))
        << status.dump();

    browser chromium(farm.dir());
    const std::string url = "http://127.0.0.1:" + std::to_string(*port) + "/";
    const auto dom =
        chromium.run("chromium-dom", {"--virtual-time-budget=2000", "--dump-dom", url});
    ASSERT_TRUE(dom);

    // The job, with its progress as a percent and a bar of that width.
    EXPECT_EQ(count_of(*dom, "data-job=\"" + k_job + "\""), 1u) << *dom;
    // The total is known once the ventilator has sent every task (with
    // credit dispatch, when the workers had room for them all).
    bool total_known = false;
    for (const auto& j : status["jobs"])
        total_known = total_known || (j["name"] == k_job && !j["total"].is_null());
    std::smatch m;
    if (total_known) {
        ASSERT_TRUE(std::regex_search(*dom, m, std::regex(R"(class="percent">(\d+\.\d) %<)")))
            << *dom;
        const double percent = std::stod(m[1]);
        EXPECT_GE(percent, 100.0 * 4 / 16) << "four were recorded before the page loaded";
        EXPECT_LE(percent, 100.0);
        EXPECT_NE(dom->find(" / 16 · "), std::string::npos) << "recorded / total shown";
    } else {
        ASSERT_TRUE(std::regex_search(
            *dom, m, std::regex(R"(class="percent">(\d+) done \(total not known yet\)<)")))
            << *dom;
        EXPECT_GE(std::stoi(m[1]), 4);
    }
    EXPECT_TRUE(std::regex_search(
        *dom,
        std::regex(R"(class="progress( unknown)?"><div class="bar" style="width: \d+(\.\d+)?%;")")))
        << *dom;
    // One row per worker, by name.
    EXPECT_EQ(count_of(*dom, "<tr class=\"worker alive\""), 2u) << *dom;
    for (const auto& w : status["workers"])
        EXPECT_NE(dom->find("data-worker=\"" + w["name"].get<std::string>() + "\""),
                  std::string::npos)
            << w.dump();
    // The failure with its reason, and the page says it is live.
    EXPECT_EQ(count_of(*dom, "<li class=\"failure\""), 1u) << *dom;
    EXPECT_NE(dom->find("exit"), std::string::npos) << "the failure's reason";
    EXPECT_NE(dom->find("id=\"conn\" class=\"\">live<"), std::string::npos) << *dom;
    EXPECT_NE(dom->find("<polyline id=\"chart-line\" points=\""), std::string::npos);

    const auto shot = farm.dir() / "dashboard.png";
    ASSERT_TRUE(chromium.run("chromium-shot",
                             {"--virtual-time-budget=2000", "--screenshot=" + shot.string(),
                              "--window-size=1200,800", url}));
    const std::string png = read_file(shot);
    ASSERT_GT(png.size(), 10000u) << "no screenshot, or a blank one";
    EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
    const auto artifacts = bin_dir().parent_path() / "test-artifacts";
    std::filesystem::create_directories(artifacts);
    const auto kept = artifacts / "dashboard.png";
    std::filesystem::copy_file(shot, kept, std::filesystem::copy_options::overwrite_existing);
    std::cout << "dashboard screenshot: " << kept.string() << std::endl;
    RecordProperty("screenshot", kept.string());

    EXPECT_TRUE(get_status(*port)["jobs"][0]["done"] == false)
        << "the job ended before the screenshot: it shows a finished job";
    EXPECT_TRUE(farm.ventilator().wait_for_exit(k_exit_timeout).has_value());
    farm.sink().signal(SIGTERM);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    for (auto* p : farm.workers())
        p->signal(SIGTERM);
}

}  // namespace
}  // namespace zfarm::test
