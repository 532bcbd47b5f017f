// zfarm-sink: records each task's result once and signals when jobs are done.
#include <spdlog/spdlog.h>

#include "job_log.hpp"
#include "sink.hpp"
#include "zfarm/cli.hpp"
#include "zfarm/endpoint.hpp"
#include "zfarm/logging.hpp"
#include "zfarm/signals.hpp"
#include "zfarm/version.hpp"

int main(int argc, char** argv) {
    using namespace zfarm;
    CLI::App app{"zfarm sink: records each task's result once, as JSON Lines or as the tasks' text",
                 "zfarm-sink"};
    common_flags common;
    sink::sink_options opt;
    add_common_flags(app, common);
    add_bind_flags(app, common);
    app.set_version_flag("--version", std::string(k_version));
    app.add_option("--results", opt.results_endpoint, "Endpoint to bind for results")
        ->capture_default_str();
    app.add_option("--control", opt.control_endpoint, "Endpoint to bind for ACK/DONE")
        ->capture_default_str();
    app.add_option("-o,--output", opt.output, "Append results to FILE (- for stdout)")
        ->capture_default_str();
    app.add_flag("--resume", opt.resume,
                 "Rebuild what was recorded from --output (cutting a torn last line) first "
                 "(needs --format jsonl)");
    std::string format = "jsonl";
    app.add_option("--format", format,
                   "jsonl: one JSON object per result; text: each task's output as it is, whole, "
                   "one task after another (an exec task's standard error goes to the sink's, "
                   "with a line for each failed task)")
        ->check(CLI::IsMember({"jsonl", "text"}))
        ->capture_default_str();
    app.add_flag("--keep-order", opt.keep_order,
                 "Write each job's results in id order (like parallel -k): a result is held, "
                 "and not acknowledged, until every lower id is written, so the ventilator's "
                 "--window bounds what is held");
    app.add_option("--keep-order-memory", opt.keep_order_memory,
                   "Bytes of results held for --keep-order per job at most; beyond, the lowest "
                   "held ones are written out of order, with a warning")
        ->check(CLI::Range(std::size_t{1} << 20, std::size_t{1} << 40))
        ->capture_default_str();
    app.add_option("--joblog", opt.joblog,
                   "Append a line per recorded result to FILE, in GNU parallel's --joblog "
                   "columns (Seq = id + 1)");
    app.add_flag("--once", opt.once, "Exit after the first job completes");
    double liveness = 2.5;
    app.add_option("--liveness-timeout", liveness,
                   "Seconds of silence after which a worker is lost and its tasks re-sent")
        ->check(CLI::Range(0.5, 3600.0))
        ->capture_default_str();
    curve_flags curve;
    add_curve_flags(app, curve, curve_program::sink);
    std::string http;
    auto* http_option =
        app.add_option("--http", http,
                       "Serve the status endpoint on HOST:PORT (:PORT for 127.0.0.1; port 0: any "
                       "free port, logged): GET / a live dashboard, /status JSON, /metrics for "
                       "Prometheus. Off by default");
    if (auto rc = parse_command_line(app, argc, argv)) return *rc;
    auto security = load_curve_flags(curve, curve_program::sink);
    if (!security) return usage_error(app.get_name(), security.error());
    opt.curve = std::move(*security);
    for (const auto* ep : {&opt.results_endpoint, &opt.control_endpoint})
        if (auto ok = check_endpoint(*ep, true); !ok)
            return usage_error(app.get_name(), ok.error());
    if (opt.resume && (opt.output.empty() || opt.output == "-"))
        return usage_error(app.get_name(), "--resume needs -o FILE, the output to resume");
    if (*http_option) {
        auto at = sink::parse_http_address(http);
        if (!at) return usage_error(app.get_name(), at.error());
        opt.http = *at;
    }
    opt.format = *sink::parse_output_format(format);
    if (opt.resume && opt.format != sink::output_format::jsonl)
        return usage_error(app.get_name(),
                           "--resume reads back JSON Lines: it cannot be used with --format text");
    if (!opt.joblog.empty())
        if (auto log = sink::job_log::open(opt.joblog); !log)
            return usage_error(app.get_name(), log.error());

    init_logging("sink", common.verbosity());
    install_stop_handlers();
    opt.transport = common.transport;
    log_curve(opt.curve);
    opt.liveness_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(liveness));
    auto summary = sink::run_sink(opt);
    if (!summary) {
        spdlog::error("{}", summary.error());
        return k_exit_usage;
    }
    if (opt.once && (summary->jobs_failed > 0 || summary->jobs_cancelled > 0))
        return k_exit_failed_tasks;
    return k_exit_ok;
}
