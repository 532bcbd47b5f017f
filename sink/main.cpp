// zfarm-sink: records each task's result once and signals when jobs are done.
#include <spdlog/spdlog.h>

#include "sink.hpp"
#include "zfarm/cli.hpp"
#include "zfarm/endpoint.hpp"
#include "zfarm/logging.hpp"
#include "zfarm/signals.hpp"
#include "zfarm/version.hpp"

int main(int argc, char** argv) {
    using namespace zfarm;
    CLI::App app{"zfarm sink: records each task's result once, as JSON Lines", "zfarm-sink"};
    common_flags common;
    sink::sink_options opt;
    add_common_flags(app, common);
    app.set_version_flag("--version", std::string(k_version));
    app.add_option("--results", opt.results_endpoint, "Endpoint to bind for results")
        ->capture_default_str();
    app.add_option("--control", opt.control_endpoint, "Endpoint to bind for ACK/DONE")
        ->capture_default_str();
    app.add_option("-o,--output", opt.output, "Append results to FILE (- for stdout)")
        ->capture_default_str();
    app.add_flag("--resume", opt.resume,
                 "Rebuild what was recorded from --output (cutting a torn last line) first");
    app.add_flag("--once", opt.once, "Exit after the first job completes");
    double liveness = 2.5;
    app.add_option("--liveness-timeout", liveness,
                   "Seconds of silence after which a worker is lost and its tasks re-sent")
        ->check(CLI::Range(0.5, 3600.0))
        ->capture_default_str();
    if (auto rc = parse_command_line(app, argc, argv)) return *rc;
    for (const auto* ep : {&opt.results_endpoint, &opt.control_endpoint})
        if (auto ok = check_endpoint(*ep, true); !ok)
            return usage_error(app.get_name(), ok.error());
    if (opt.resume && (opt.output.empty() || opt.output == "-"))
        return usage_error(app.get_name(), "--resume needs -o FILE, the output to resume");

    init_logging("sink", common.verbosity());
    install_stop_handlers();
    opt.transport = common.transport;
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
