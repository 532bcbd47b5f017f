// End-to-end: scripts/slurm/zfarm.sbatch submitted with `sbatch --wait` to
// a real Slurm cluster: munged, slurmctld and three slurmd (nodes n1, n2, n3)
// started on this machine by tests/support/slurm-cluster.sh. A job runs on
// all three nodes with every result recorded once; a job that cannot finish
// in its time limit has its workers leave before the walltime, losing
// nothing: each task they completed is recorded once, none is killed by
// Slurm, and a resubmission with --resume records exactly the rest.
//
// Needs root and Debian's slurm-wlm and munge (scripts/setup.sh installs
// them); skips and says why otherwise.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <optional>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

const std::filesystem::path k_source_dir = ZFARM_SOURCE_DIR;
const std::filesystem::path k_cluster_script = k_source_dir / "tests/support/slurm-cluster.sh";
const std::filesystem::path k_sbatch_script = k_source_dir / "scripts/slurm/zfarm.sbatch";
// A job of a few seconds, with sbatch --wait's polling and a job's start.
constexpr auto k_job_timeout = std::chrono::seconds(80);

// Why this machine cannot run the cluster, or "".
std::string missing_prerequisite() {
    if (::geteuid() != 0) return "needs root (the test cluster runs with SlurmUser=root)";
    for (const char* program : {"/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged",
                                "/usr/bin/sbatch", "/usr/bin/srun", "/usr/bin/squeue"})
        if (::access(program, X_OK) != 0)
            return std::string("no ") + program +
                   " (Debian's slurm-wlm and munge: scripts/setup.sh)";
    return "";
}

// The cluster, stopped (every daemon, by PID) when this goes away, also
// when the test failed.
class slurm_cluster {
  public:
    explicit slurm_cluster(const std::filesystem::path& dir) : dir_(dir) {
        std::filesystem::create_directories(dir_);
        child_process start("/usr/bin/bash", {k_cluster_script.string(), "start", dir_.string()},
                            dir_.parent_path(), "cluster-start");
        started_ = start.wait_for_exit(std::chrono::seconds(75)) == 0;
        if (!started_) error_ = start.stderr_text();
    }
    ~slurm_cluster() {
        child_process stop("/usr/bin/bash", {k_cluster_script.string(), "stop", dir_.string()},
                           dir_.parent_path(), "cluster-stop");
        if (stop.wait_for_exit(std::chrono::seconds(60)) != 0)
            ADD_FAILURE() << "slurm-cluster.sh stop failed: " << stop.stderr_text();
    }
    slurm_cluster(const slurm_cluster&) = delete;
    slurm_cluster& operator=(const slurm_cluster&) = delete;

    bool started() const noexcept { return started_; }
    const std::string& error() const noexcept { return error_; }
    std::filesystem::path conf() const { return dir_ / "slurm.conf"; }
    std::string controller_log() const { return read_file(dir_ / "log/slurmctld.log"); }
    // The last lines of every daemon's log, for failure messages.
    std::string logs() const {
        std::string out;
        for (const auto& entry : std::filesystem::directory_iterator(dir_ / "log"))
            out += "--- " + entry.path().string() + "\n" + last_lines(read_file(entry.path()), 8);
        return out;
    }

  private:
    std::filesystem::path dir_;
    bool started_ = false;
    std::string error_;
};

// Processes running one of this build's zfarm programs in a job of the
// cluster whose configuration is `conf` (jobs inherit the submitter's
// SLURM_CONF), so that tests running beside this one do not count.
std::set<pid_t> programs_of_jobs(const std::filesystem::path& conf) {
    std::set<pid_t> out;
    const auto bin = std::filesystem::canonical(bin_dir());
    const std::string mark = "SLURM_CONF=" + conf.string();
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::error_code ec;
        const auto exe = std::filesystem::read_symlink(entry.path() / "exe", ec);
        if (ec || exe.parent_path() != bin || !exe.filename().string().starts_with("zfarm-"))
            continue;
        // NUL-separated NAME=VALUE strings
        const std::string env = '\0' + read_file(entry.path() / "environ");
        if (env.find('\0' + mark + '\0') != std::string::npos)
            out.insert(static_cast<pid_t>(std::stol(name)));
    }
    return out;
}

// bash SCRIPT ARGS..., outside any Slurm job; returns its exit code.
int run_script(const temp_dir& dir, const std::string& script, const std::vector<std::string>& args,
               std::string& err) {
    std::vector<std::string> argv{"-u", "SLURM_JOB_ID", "bash", (k_source_dir / script).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    child_process p("/usr/bin/env", argv, dir.path(), "script");
    const auto code = p.wait_for_exit(k_exit_timeout);
    err = p.stdout_text() + p.stderr_text();
    return code.value_or(-1);
}

// Needs no cluster: the scripts' --help, and their usage errors.
TEST(SlurmScripts, SayHowToUseThemAndRefuseBadUsage) {
    temp_dir dir;
    std::string out;
    EXPECT_EQ(run_script(dir, "scripts/slurm/zfarm.sbatch", {"--help"}, out), 0);
    EXPECT_NE(out.find("Usage: sbatch"), std::string::npos) << out;
    EXPECT_NE(out.find("ZFARM_LEAVE_MARGIN"), std::string::npos) << out;
    EXPECT_EQ(run_script(dir, "scripts/slurm/zfarm.sbatch", {"--demo", "3"}, out), 2);
    EXPECT_NE(out.find("submit me with sbatch"), std::string::npos) << out;
    EXPECT_EQ(run_script(dir, "scripts/slurm-launch.sh", {"--help"}, out), 0);
    EXPECT_NE(out.find("Usage: scripts/slurm-launch.sh"), std::string::npos) << out;
    EXPECT_EQ(run_script(dir, "scripts/slurm-launch.sh", {"--threads", "0"}, out), 2);
    EXPECT_NE(out.find("--threads takes a positive number"), std::string::npos) << out;
}

class Slurm : public ::testing::Test {
  protected:
    void SetUp() override {
        if (auto why = missing_prerequisite(); !why.empty()) GTEST_SKIP() << why;
        cluster_.emplace(dir / "cluster");
        ASSERT_TRUE(cluster_->started()) << cluster_->error();
        std::filesystem::create_directories(submit_dir());
    }

    std::filesystem::path submit_dir() const { return dir / "submit"; }

    // sbatch --wait SBATCH_ARGS zfarm.sbatch SCRIPT_ARGS, from submit_dir(),
    // with `env` (NAME=VALUE) added to its environment, which the job gets.
    child_process& submit(const std::vector<std::string>& sbatch_args,
                          const std::vector<std::string>& script_args,
                          const std::vector<std::string>& env = {}) {
        std::vector<std::string> argv{"-C", submit_dir().string(),
                                      "SLURM_CONF=" + cluster_->conf().string(),
                                      "ZFARM_BIN=" + bin_dir().string()};
        argv.insert(argv.end(), env.begin(), env.end());
        argv.insert(argv.end(), {"sbatch", "--wait"});
        argv.insert(argv.end(), sbatch_args.begin(), sbatch_args.end());
        argv.push_back(k_sbatch_script.string());
        argv.insert(argv.end(), script_args.begin(), script_args.end());
        return jobs_.emplace_back("/usr/bin/env", argv, dir.path(),
                                  "sbatch-" + std::to_string(jobs_.size()));
    }

    // The job id sbatch printed ("Submitted batch job N").
    static std::string job_id(const child_process& sbatch) {
        std::smatch m;
        const auto out = sbatch.stdout_text();
        return std::regex_search(out, m, std::regex("Submitted batch job ([0-9]+)")) ? m[1].str()
                                                                                     : "";
    }

    // Every zfarm program the jobs started has exited.
    void expect_nothing_left() {
        const auto conf = cluster_->conf();
        EXPECT_TRUE(wait_until([&] { return programs_of_jobs(conf).empty(); }, k_start_timeout))
            << programs_of_jobs(conf).size() << " zfarm program(s) still running after the job";
    }

    temp_dir dir;
    std::optional<slurm_cluster> cluster_;
    std::deque<child_process> jobs_;
};

TEST_F(Slurm, ThreeNodesRunAJobWithAWorkerOnEachAndRecordEachResultOnce) {
    auto& sbatch = submit({"-N", "3", "--time=5", "-o", "job.out"},
                          {"--sleep", "90", "--ms", "200", "--job", "three"});
    ASSERT_EQ(sbatch.wait_for_exit(k_job_timeout), 0)
        << sbatch.stderr_text() << read_file(submit_dir() / "job.out") << cluster_->logs();
    const auto out = read_file(submit_dir() / "job.out");
    EXPECT_NE(out.find("job three: 90 tasks, 90 ok, 0 failed, 3 workers"), std::string::npos)
        << out;

    const auto results = read_results(submit_dir() / "zfarm-three.jsonl");
    EXPECT_TRUE(has_each_id_once(results, 90));
    EXPECT_TRUE(all_ok_first_attempt(results));
    // Each worker is named after its node ($SLURMD_NODENAME-PID).
    std::set<std::string> nodes;
    for (const auto& worker : workers_of(results))
        nodes.insert(worker.substr(0, worker.find('-')));
    EXPECT_EQ(nodes, (std::set<std::string>{"n1", "n2", "n3"}));
    const auto logs = submit_dir() / ("zfarm-" + job_id(sbatch) + ".logs");
    for (const char* log :
         {"sink.log", "ventilator.log", "worker-n1.log", "worker-n2.log", "worker-n3.log"})
        EXPECT_TRUE(std::filesystem::exists(logs / log)) << logs / log;
    // The batch script told the ventilator how many workers it started.
    EXPECT_NE(read_file(logs / "ventilator.log").find("3 of 3 expected worker(s) connected"),
              std::string::npos)
        << read_file(logs / "ventilator.log");
    expect_nothing_left();
}

TEST_F(Slurm, LaunchScriptSubmitsThisBuildsProgramsAndWaitsForTheJob) {
    auto& launch = jobs_.emplace_back(
        "/usr/bin/env",
        std::vector<std::string>{
            "-C", submit_dir().string(), "SLURM_CONF=" + cluster_->conf().string(),
            "ZFARM_BUILD_DIR=" + bin_dir().parent_path().string(), "bash",
            (k_source_dir / "scripts/slurm-launch.sh").string(), "-N", "2", "--time", "5", "--wait",
            "--threads", "3", "--echo", "20", "--job", "launched"},
        dir.path(), "slurm-launch");
    ASSERT_EQ(launch.wait_for_exit(k_job_timeout), 0) << launch.stderr_text() << cluster_->logs();
    const auto id = job_id(launch);
    const auto out = read_file(submit_dir() / ("zfarm-" + id + ".out"));
    EXPECT_NE(out.find("job launched: 20 tasks, 20 ok, 0 failed"), std::string::npos) << out;
    EXPECT_TRUE(has_each_id_once(read_results(submit_dir() / "zfarm-launched.jsonl"), 20));
    for (const char* node : {"n1", "n2"}) {
        const auto log = read_file(submit_dir() / ("zfarm-" + id + ".logs") /
                                   (std::string("worker-") + node + ".log"));
        EXPECT_NE(log.find("up: 3 thread(s)"), std::string::npos) << node << ":\n" << log;
    }
    expect_nothing_left();
}

// "Nothing lost", precisely: the first run ends on its own before its
// walltime (Slurm killed nothing); every worker left with BYE and exit 0;
// each task a worker reports completing is in the results file exactly once,
// ok, and the ventilator counts the same; every other task it sent was
// handed back in a BYE (sent = recorded + handed back, none in between);
// and the same job resubmitted with --resume records exactly the missing
// ones, so that every task is then recorded once.
TEST_F(Slurm, WorkersLeaveBeforeTheWalltimeAndAResumeFinishesTheJob) {
    const std::vector<std::string> workload{"--sleep", "30", "--ms", "3000", "--job", "short"};
    // Three workers of one thread need 30 s for it; they stop taking tasks
    // 40 s before the 60 s limit, so at most about 20 s of it runs. Each
    // holds two tasks queued besides its running one, to hand back.
    auto& first = submit({"-N", "3", "--time=1", "-o", "first.out"}, workload,
                         {"ZFARM_THREADS=1", "ZFARM_WORKER_ARGS=--prefetch 2",
                          "ZFARM_LEAVE_MARGIN=40", "ZFARM_LEAVE_GRACE=5"});
    // The sink, the ventilator and a worker per node (which shows that
    // expect_nothing_left() sees them).
    EXPECT_TRUE(
        wait_until([&] { return programs_of_jobs(cluster_->conf()).size() == 5; }, k_start_timeout))
        << programs_of_jobs(cluster_->conf()).size() << " programs";
    ASSERT_EQ(first.wait_for_exit(k_job_timeout), 1)
        << first.stderr_text() << read_file(submit_dir() / "first.out") << cluster_->logs();
    const auto id = job_id(first);
    const auto out = read_file(submit_dir() / "first.out");
    EXPECT_NE(out.find("the workers left before job short was done"), std::string::npos) << out;
    EXPECT_NE(out.find("--resume"), std::string::npos) << out;
    EXPECT_EQ(cluster_->controller_log().find("Time limit exhausted for JobId=" + id),
              std::string::npos)
        << "Slurm killed the job at its walltime";

    const auto output = submit_dir() / "zfarm-short.jsonl";
    const auto recorded = read_results_by_id(output);
    const auto lines = read_lines(output);
    EXPECT_EQ(lines.size(), recorded.size()) << "a task was recorded twice";
    EXPECT_GT(recorded.size(), 0u);
    EXPECT_LT(recorded.size(), 30u) << "the job was not cut short";
    for (const auto& [task, r] : recorded)
        EXPECT_EQ(r["status"], "ok") << r;

    // What the workers say they completed is what was recorded.
    const auto logs = submit_dir() / ("zfarm-" + id + ".logs");
    const std::regex leaving("worker n[1-3]-[0-9]+ leaving: ([0-9]+) ok, 0 failed");
    std::size_t completed = 0;
    for (const char* node : {"n1", "n2", "n3"}) {
        const auto log = read_file(logs / (std::string("worker-") + node + ".log"));
        std::smatch m;
        ASSERT_TRUE(std::regex_search(log, m, leaving)) << node << ":\n" << log;
        EXPECT_NE(log.find("leaving in "), std::string::npos) << log;
        completed += std::stoul(m[1].str());
    }
    EXPECT_EQ(completed, recorded.size());
    // The ventilator: "worker W gone: N task(s) of job short sent again" for
    // each BYE, then "interrupted: RECORDED of SENT sent task(s) recorded".
    const auto vent_log = read_file(logs / "ventilator.log");
    std::size_t handed_back = 0;
    const std::regex gone("gone: ([0-9]+) task\\(s\\) of job short sent again");
    for (auto it = std::sregex_iterator(vent_log.begin(), vent_log.end(), gone);
         it != std::sregex_iterator(); ++it)
        handed_back += std::stoul((*it)[1].str());
    std::smatch m;
    ASSERT_TRUE(
        std::regex_search(vent_log, m, std::regex("interrupted: ([0-9]+) of ([0-9]+) sent")))
        << vent_log;
    EXPECT_EQ(std::stoul(m[1].str()), recorded.size()) << vent_log;
    EXPECT_GT(handed_back, 0u) << vent_log;
    EXPECT_EQ(std::stoul(m[2].str()), recorded.size() + handed_back) << vent_log;
    std::printf("[slurm] cut short before the walltime: %zu of 30 recorded, %zu handed back\n",
                recorded.size(), handed_back);
    expect_nothing_left();

    std::vector<std::string> again{"--resume"};
    again.insert(again.end(), workload.begin(), workload.end());
    auto& second = submit({"-N", "3", "--time=5", "-o", "second.out"}, again, {"ZFARM_THREADS=4"});
    ASSERT_EQ(second.wait_for_exit(k_job_timeout), 0)
        << second.stderr_text() << read_file(submit_dir() / "second.out") << cluster_->logs();
    const auto all = read_results(output);
    EXPECT_TRUE(has_each_id_once(all, 30));
    for (const auto& r : all)
        EXPECT_EQ(r["status"], "ok") << r;
    const auto after = read_lines(output);
    ASSERT_GE(after.size(), lines.size());
    EXPECT_TRUE(std::equal(lines.begin(), lines.end(), after.begin()))
        << "the first run's results were rewritten";
    expect_nothing_left();
}

}  // namespace
}  // namespace zfarm::test
