// zfarm-ventilator: opens a job, streams its tasks to workers, waits for the
// sink to record them all, prints one summary line and exits with the job's
// status (0 all ok, 1 some failed, interrupted or halted, 2 bad usage). The
// tasks are a built-in workload, a tasks file, or a command run once per
// input line (command_cli.hpp).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>

#include <spdlog/spdlog.h>

#include "command_cli.hpp"
#include "final_report.hpp"
#include "task_source.hpp"
#include "ventilator.hpp"
#include "zfarm/cli.hpp"
#include "zfarm/endpoint.hpp"
#include "zfarm/logging.hpp"
#include "zfarm/signals.hpp"
#include "zfarm/version.hpp"

namespace {

std::string default_job_name() {
    char stamp[32];
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    return std::string("job-") + stamp + "-" + std::to_string(getpid());
}

// Prints how the job ended (one line on stdout, the contract's summary) and
// returns the exit status.
int finish(const zfarm::ventilator::job_outcome& o) {
    using namespace zfarm;
    if (o.interrupted) return k_exit_failed_tasks;
    if (!o.launch_error.empty()) {
        std::printf("job %s cancelled: %s\n", o.job.c_str(), o.launch_error.c_str());
        std::fflush(stdout);
        return k_exit_usage;
    }
    if (!o.input_error.empty()) return o.total == 0 ? k_exit_usage : k_exit_failed_tasks;
    if (o.halted_by) {
        std::printf(
            "job %s halted: task %llu failed; %llu tasks sent, %llu failed, job cancelled, "
            "%.3f s\n",
            o.job.c_str(), static_cast<unsigned long long>(*o.halted_by),
            static_cast<unsigned long long>(o.total), static_cast<unsigned long long>(o.failed),
            o.seconds);
        std::fflush(stdout);
        return k_exit_failed_tasks;
    }
    std::printf("job %s: %llu tasks, %llu ok, %llu failed, %u workers, %.3f s\n", o.job.c_str(),
                static_cast<unsigned long long>(o.total), static_cast<unsigned long long>(o.ok),
                static_cast<unsigned long long>(o.failed), o.workers, o.seconds);
    std::fflush(stdout);
    return o.failed > 0 ? k_exit_failed_tasks : k_exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace zfarm;
    using namespace zfarm::ventilator;
    CLI::App app{"zfarm ventilator: streams a job's tasks to workers and waits for the sink",
                 "zfarm-ventilator"};
    common_flags common;
    ventilator_options opt;
    add_common_flags(app, common);
    add_bind_flags(app, common);
    app.set_version_flag("--version", std::string(k_version));

    std::string sink_host;
    std::string dispatch = "push";
    double task_timeout = 0;
    auto* tasks_opt =
        app.add_option("--tasks", opt.tasks_endpoint, "Endpoint to bind for tasks (push dispatch)")
            ->capture_default_str();
    auto* credit_opt =
        app.add_option("--credit", opt.credit_endpoint, "Endpoint to bind for credit dispatch")
            ->capture_default_str();
    app.add_option("--dispatch", dispatch,
                   "push: round-robin PUSH; credit: only to workers with credit")
        ->check(CLI::IsMember({"push", "credit"}))
        ->capture_default_str();
    auto* sink_opt =
        app.add_option("--sink", sink_host, "Host running the sink (ports 5558, 5559)");
    app.add_option("--results", opt.results_endpoint, "Sink's results endpoint")
        ->excludes(sink_opt)
        ->capture_default_str();
    app.add_option("--control", opt.control_endpoint, "Sink's control endpoint")
        ->excludes(sink_opt)
        ->capture_default_str();
    app.add_option("--job", opt.job, "Job name (default job-DATE-TIME-PID)");
    app.add_option("--window", opt.window, "Tasks in flight at most (sent, not yet recorded)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}))
        ->capture_default_str();
    app.add_option("--retries", opt.retries, "Attempts after the first before a task is failed")
        ->check(CLI::Range(0u, 1000u))
        ->capture_default_str();
    double lease = 30.0;
    app.add_option("--lease", lease,
                   "Seconds before a task no live worker reports holding is sent again")
        ->check(CLI::Range(0.1, 86400.0))
        ->capture_default_str();
    app.add_option("--task-timeout", task_timeout, "Seconds one attempt may run (0: no limit)")
        ->check(CLI::Range(0.0, 86400.0 * 30));
    auto* job_opt = app.get_option("--job");
    app.add_flag("--resume", opt.resume,
                 "Continue job --job: send only the tasks the sink has not recorded")
        ->needs(job_opt);
    double progress_interval = 5;
    app.add_option("--progress-interval", progress_interval,
                   "Seconds between status lines when stderr is not a terminal (0: none; on a "
                   "terminal a live line is redrawn instead; -q silences both)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 86400.0));
    double connect_deadline = 30;
    auto* expect_opt =
        app.add_option("--expect-workers", opt.expect_workers,
                       "Workers the launch started: report by --connect-deadline which of them "
                       "connected, and fail (exit 2) if fewer than --min-workers did")
            ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
    auto* min_opt = app.add_option("--min-workers", opt.min_workers,
                                   "Workers that must be connected by --connect-deadline, or the "
                                   "job is cancelled and the exit status is 2 (default: "
                                   "--expect-workers)")
                        ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
    app.add_option("--connect-deadline", connect_deadline,
                   "Seconds from the start for --expect-workers / --min-workers")
        ->capture_default_str()
        ->check(CLI::Range(0.1, 86400.0));
    std::string report_path;
    app.add_option("--report", report_path,
                   "Write the end-of-job report to FILE as JSON: counts, wall time, task-time "
                   "percentiles, a row per worker (also for a job halted, cancelled or "
                   "interrupted, without the sink's part); exit 2 if it cannot be written");
    app.add_flag("--halt-on-failure", opt.halt_on_failure,
                 "At the first task recorded failed (after its retries): send no new task, "
                 "let those in flight finish, cancel the job and exit 1");
    (void)tasks_opt;
    (void)credit_opt;

    auto* workload =
        app.add_option_group("workload", "exactly one of these, or a command after --");
    std::uint64_t demo_n = 0, echo_n = 0, sleep_n = 0, spin_n = 0, seed = 1, ms = 0;
    std::size_t size = 32;
    std::string tasks_file;
    auto* demo =
        workload->add_option("--demo", demo_n, "N tasks sleeping 1-100 ms (the Guide's workload)");
    auto* echo = workload->add_option("--echo", echo_n, "N echo tasks (throughput)");
    auto* sleep = workload->add_option("--sleep", sleep_n, "N tasks sleeping --ms each");
    auto* spin = workload->add_option("--spin", spin_n, "N tasks burning CPU --ms each");
    auto* file = workload->add_option("--tasks-file", tasks_file,
                                      "JSON Lines: {\"kind\":..,\"payload\":..} (- for stdin)");
    workload->require_option(0, 1);
    command_flags command;
    add_command_flags(app, command);
    auto* seed_opt =
        app.add_option("--seed", seed, "Seed for --demo")->capture_default_str()->needs(demo);
    auto* size_opt = app.add_option("--size", size, "Payload bytes for --echo")
                         ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
                         ->capture_default_str()
                         ->needs(echo);
    auto* ms_opt = app.add_option("--ms", ms, "Milliseconds for --sleep / --spin")
                       ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{86400000}));
    (void)seed_opt;
    (void)size_opt;
    curve_flags curve;
    add_curve_flags(app, curve, curve_program::ventilator);
    take_command(argc, argv, command);
    if (auto rc = parse_command_line(app, argc, argv)) return *rc;

    const std::string prog = app.get_name();
    auto security = load_curve_flags(curve, curve_program::ventilator);
    if (!security) return usage_error(prog, security.error());
    opt.curve = std::move(*security);
    const bool workload_given = *demo || *echo || *sleep || *spin || *file;
    if (workload_given && command.command_given())
        return usage_error(prog,
                           "a command after -- is the workload: give it without "
                           "--demo, --echo, --sleep, --spin or --tasks-file");
    if (!workload_given && !command.command_given() && command.group->count_all() == 0)
        return usage_error(prog,
                           "no workload: give one of --demo, --echo, --sleep, --spin, "
                           "--tasks-file, or a command after -- (see --help)");
    std::unique_ptr<task_source> source;
    if (!workload_given || command.group->count_all() > 0) {  // errors if a flag lacks its command
        auto c = make_command_source(command);
        if (!c) return usage_error(prog, c.error());
        source = std::move(*c);
    }
    if ((*sleep || *spin) && !*ms_opt) return usage_error(prog, "--sleep and --spin need --ms");
    if (*ms_opt && !*sleep && !*spin)
        return usage_error(prog, "--ms only applies to --sleep and --spin");
    if (!sink_host.empty()) {
        opt.results_endpoint = tcp_endpoint(sink_host, k_port_results);
        opt.control_endpoint = tcp_endpoint(sink_host, k_port_control);
    }
    opt.dispatch = dispatch == "credit" ? dispatch_mode::credit : dispatch_mode::push;
    const std::string& bind_ep =
        opt.dispatch == dispatch_mode::credit ? opt.credit_endpoint : opt.tasks_endpoint;
    if (auto ok = check_endpoint(bind_ep, true); !ok) return usage_error(prog, ok.error());
    for (const auto* ep : {&opt.results_endpoint, &opt.control_endpoint})
        if (auto ok = check_endpoint(*ep, false); !ok) return usage_error(prog, ok.error());
    if (opt.job.empty()) opt.job = default_job_name();
    if (opt.job.size() > proto::k_max_name)
        return usage_error(prog, "--job is longer than 256 bytes");
    if (*min_opt && *expect_opt && opt.min_workers > opt.expect_workers)
        return usage_error(prog, "--min-workers is more than --expect-workers");
    opt.connect_deadline =
        std::chrono::milliseconds(static_cast<std::int64_t>(connect_deadline * 1000.0));
    opt.task_timeout_ms = static_cast<std::uint32_t>(task_timeout * 1000.0);
    opt.lease = std::chrono::milliseconds(static_cast<std::int64_t>(lease * 1000.0));
    if (size + 1024 > common.transport.max_message)
        return usage_error(prog, "--size does not fit in --max-message");

    if (*demo) source = make_demo_source(demo_n, seed);
    if (*echo) source = make_fixed_source(echo_n, "echo", std::string(size, 'x'));
    if (*sleep) source = make_fixed_source(sleep_n, "sleep", std::to_string(ms));
    if (*spin) source = make_fixed_source(spin_n, "spin", std::to_string(ms));
    if (*file) {
        if (tasks_file != "-") {
            if (auto n = validate_tasks_file(tasks_file); !n) return usage_error(prog, n.error());
        }
        auto f = open_tasks_file(tasks_file);
        if (!f) return usage_error(prog, f.error());
        source = std::move(*f);
    }

    std::optional<report_file> report;
    if (!report_path.empty()) {
        auto f = report_file::open(report_path);
        if (!f) return usage_error(prog, f.error());
        report.emplace(std::move(*f));
    }

    init_logging("ventilator", common.verbosity());
    // Progress on stderr: a live line on a terminal (log lines are written
    // above it), else a status line through the log every interval.
    std::shared_ptr<progress_display> progress;
    if (!common.quiet) {
        const bool live = isatty(STDERR_FILENO) == 1;
        progress = std::make_shared<progress_display>(
            stderr, live,
            std::chrono::duration_cast<progress_display::clock::duration>(
                std::chrono::duration<double>(progress_interval)));
        if (live) {
            auto& sinks = spdlog::default_logger()->sinks();
            auto sink = std::make_shared<progress_log_sink>(progress);
            sink->set_pattern("%H:%M:%S.%e %n %l %v");
            sinks.clear();
            sinks.push_back(std::move(sink));
        }
    }
    install_stop_handlers();
    opt.transport = common.transport;
    log_curve(opt.curve);
    if (opt.resume && command.command_given() && command.input == "-")
        spdlog::warn(
            "--resume with input from stdin: it must be the same lines as the run it "
            "continues, or the wrong tasks are skipped");
    auto outcome = run_ventilator(opt, *source, progress.get());
    if (!outcome) {
        spdlog::error("{}", outcome.error());
        if (std::string why; report && !report->write_error(opt.job, outcome.error(), why))
            spdlog::error("{}", why);
        return k_exit_usage;
    }
    const auto& o = *outcome;
    // The report first (stderr), so that the summary is the last line.
    const bool done =
        !o.interrupted && o.launch_error.empty() && o.input_error.empty() && !o.halted_by;
    if (done && !common.quiet) std::fputs(format_report(o).c_str(), stderr);
    const int status = finish(o);
    if (report) {
        std::string why;
        if (!report->write(o, why)) {
            spdlog::error("{}", why);
            return k_exit_usage;
        }
    }
    return status;
}
