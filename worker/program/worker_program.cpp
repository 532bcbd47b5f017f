#include "worker_program.hpp"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include <spdlog/spdlog.h>

#include "zfarm/cli.hpp"
#include "zfarm/endpoint.hpp"
#include "zfarm/logging.hpp"
#include "zfarm/signals.hpp"
#include "zfarm/version.hpp"
#include "zfarm/worker.hpp"

namespace zfarm {
namespace {

// --leave-at's value: Unix seconds, or +SECONDS from now (decimals allowed),
// up to 4e9 (year 2096: far from overflowing the clock's nanoseconds).
std::optional<std::chrono::system_clock::time_point> parse_leave_at(const std::string& text) {
    const bool relative = !text.empty() && text[0] == '+';
    const char* first = text.data() + (relative ? 1 : 0);
    const char* last = text.data() + text.size();
    double seconds = 0;
    const auto [end, ec] = std::from_chars(first, last, seconds, std::chars_format::fixed);
    if (first == last || ec != std::errc{} || end != last || !std::isfinite(seconds) ||
        seconds < 0 || seconds > 4e9)
        return std::nullopt;
    const auto offset = std::chrono::round<std::chrono::system_clock::duration>(
        std::chrono::duration<double>(seconds));
    return (relative ? std::chrono::system_clock::now() : std::chrono::system_clock::time_point{}) +
           offset;
}

}  // namespace

int worker_program(int argc, char** argv, const std::string& program,
                   const std::function<void(worker&)>& add_kinds) {
    CLI::App app{"zfarm worker: takes tasks from a ventilator, sends results to a sink", program};
    common_flags common;
    worker_options opt;
    std::string host;
    add_common_flags(app, common);
    app.set_version_flag("--version", std::string(k_version));
    auto* connect = app.add_option(
        "--connect", host, "Host running the ventilator and sink (default ports 5557-5560)");
    auto* tasks = app.add_option("--tasks", opt.tasks_endpoint,
                                 "Ventilator's tasks endpoint (push dispatch)");
    auto* credit = app.add_option("--credit", opt.credit_endpoint,
                                  "Ventilator's credit endpoint (credit dispatch)");
    auto* results = app.add_option("--results", opt.results_endpoint, "Sink's results endpoint");
    auto* control = app.add_option("--control", opt.control_endpoint, "Sink's control endpoint");
    for (auto* o : {tasks, credit, results, control})
        o->excludes(connect);
    app.add_option("--threads", opt.threads, "Tasks run at once")
        ->check(CLI::Range(1u, 4096u))
        ->capture_default_str();
    app.add_option("--prefetch", opt.prefetch,
                   "Tasks queued beyond --threads (default: sized from task time)")
        ->check(CLI::Range(0, 100000));
    app.add_option("--id", opt.identity, "Worker identity (default HOST-PID-RANDOM)");
    app.add_flag("--allow-exec", opt.allow_exec,
                 "Run exec tasks: commands sent by whoever can reach the ventilator's ports");
    app.add_option("--max-output", opt.max_output,
                   "Bytes of an exec command's stdout, and of its stderr, kept in its result "
                   "(suffixes K, M, G: 1024s); keep twice this below the sink's --max-message")
        ->transform(CLI::AsSizeValue(false))
        ->capture_default_str();
    app.add_flag("--exit-when-done", opt.exit_when_done,
                 "Exit once the sink reports every open job done");
    curve_flags curve;
    add_curve_flags(app, curve, curve_program::worker);
    std::string leave_at;
    double leave_grace = 30;
    app.add_option("--leave-at", leave_at,
                   "Leave at this time, Unix seconds or +SECONDS from now (e.g. before a batch "
                   "allocation ends): take no new task and hand the queued ones back; after "
                   "--leave-grace, abandon the running ones and hand them back too; then exit 0");
    app.add_option("--leave-grace", leave_grace,
                   "Seconds the running tasks may take to finish after --leave-at")
        ->check(CLI::Range(0.0, 86400.0))
        ->capture_default_str();
    if (auto rc = parse_command_line(app, argc, argv)) return *rc;
    auto security = load_curve_flags(curve, curve_program::worker);
    if (!security) return usage_error(app.get_name(), security.error());
    opt.curve = std::move(*security);

    if (opt.tasks_endpoint.empty() && opt.credit_endpoint.empty() && opt.results_endpoint.empty() &&
        opt.control_endpoint.empty()) {
        if (host.empty()) host = "localhost";
    }
    if (!host.empty()) {
        opt.tasks_endpoint = tcp_endpoint(host, k_port_tasks);
        opt.credit_endpoint = tcp_endpoint(host, k_port_credit);
        opt.results_endpoint = tcp_endpoint(host, k_port_results);
        opt.control_endpoint = tcp_endpoint(host, k_port_control);
    }
    if (opt.results_endpoint.empty() || opt.control_endpoint.empty())
        return usage_error(app.get_name(),
                           "--results and --control are both required without --connect");
    if (opt.tasks_endpoint.empty() && opt.credit_endpoint.empty())
        return usage_error(app.get_name(), "--tasks or --credit is required without --connect");
    if (opt.identity.size() > 255)  // a ZeroMQ routing id holds at most 255 bytes
        return usage_error(app.get_name(), "--id is longer than 255 bytes");
    if (!leave_at.empty()) {
        opt.leave_at = parse_leave_at(leave_at);
        if (!opt.leave_at)
            return usage_error(app.get_name(),
                               "--leave-at takes Unix seconds or +SECONDS, not '" + leave_at + "'");
    }
    opt.leave_grace =
        std::chrono::round<std::chrono::milliseconds>(std::chrono::duration<double>(leave_grace));
    for (const auto* ep : {&opt.tasks_endpoint, &opt.credit_endpoint, &opt.results_endpoint,
                           &opt.control_endpoint}) {
        if (ep->empty()) continue;
        if (auto ok = check_endpoint(*ep, false); !ok)
            return usage_error(app.get_name(), ok.error());
    }

    init_logging("worker", common.verbosity());
    install_stop_handlers();
    opt.transport = common.transport;
    opt.observe_stop_signals = true;
    log_curve(opt.curve);
    if (opt.allow_exec)
        spdlog::info("exec tasks allowed: commands run as this user, {} bytes kept of each output",
                     opt.max_output);
    if (opt.allow_exec && 2 * opt.max_output + 65536 > opt.transport.max_message)
        spdlog::warn(
            "--max-output {} lets an exec result outgrow a {}-byte frame; a sink with that "
            "--max-message would drop it",
            opt.max_output, opt.transport.max_message);
    if (opt.leave_at) {
        const auto in =
            std::chrono::duration<double>(*opt.leave_at - std::chrono::system_clock::now());
        spdlog::info("leaving in {:.1f} s (--leave-at), abandoning running tasks {:.1f} s later",
                     std::max(in.count(), 0.0), leave_grace);
    }
    zfarm::worker w(std::move(opt));
    if (add_kinds) add_kinds(w);
    auto outcome = w.run();
    if (!outcome) {
        spdlog::error("{}", outcome.error().message);
        switch (outcome.error().code) {
            case worker_errc::bad_options:
            case worker_errc::refused:
                return k_exit_usage;
            case worker_errc::hung_handlers:
                return k_exit_hung_handlers;
            default:
                return k_exit_failed_tasks;
        }
    }
    return k_exit_ok;
}

}  // namespace zfarm
