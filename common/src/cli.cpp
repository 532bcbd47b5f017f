#include "zfarm/cli.hpp"

#include <cstdio>

#include <spdlog/spdlog.h>

namespace zfarm {

void add_common_flags(CLI::App& app, common_flags& flags) {
    app.add_flag("-v,--verbose", flags.verbose, "More log detail on stderr (repeat for more)");
    app.add_flag("-q,--quiet", flags.quiet, "Log errors only");
    app.add_option("--max-message", flags.transport.max_message,
                   "Largest frame accepted on any socket that receives messages, in bytes "
                   "(ZMQ_MAXMSGSIZE; the others take 64 KiB)")
        ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 31))
        ->capture_default_str();
}

void add_bind_flags(CLI::App& app, common_flags& flags) {
    app.add_option_function<double>(
           "--handshake-timeout",
           [&flags](double seconds) {
               flags.transport.handshake_ivl_ms = static_cast<int>(seconds * 1000.0);
           },
           "Seconds a peer connecting to a bound socket has to complete its ZMTP (and CURVE) "
           "handshake before it is disconnected (ZMQ_HANDSHAKE_IVL)")
        ->check(CLI::Range(0.1, 600.0))
        ->default_str("5");
}

void add_curve_flags(CLI::App& app, curve_flags& flags, curve_program program) {
    const bool binds = program != curve_program::worker;
    const bool connects = program != curve_program::sink;
    app.add_option("--curve-secret", flags.secret,
                   "This program's CURVE key pair (a .key file from zfarm-keygen, mode 0600): "
                   "turns on CURVE encryption and authentication on every socket" +
                       std::string(binds ? "; needs --allow" : "") +
                       (connects ? "; needs --curve-server-key" : ""))
        ->option_text("FILE");
    if (connects)
        app.add_option("--curve-server-key", flags.server_key,
                       program == curve_program::worker
                           ? "The sink's public key (its .pub file); also the ventilator's, "
                             "unless --curve-ventilator-key is given"
                           : "The sink's public key (its .pub file)")
            ->option_text("FILE");
    if (program == curve_program::worker)
        app.add_option("--curve-ventilator-key", flags.ventilator_key,
                       "The ventilator's public key, when it has a key pair of its own "
                       "(default: --curve-server-key's)")
            ->option_text("FILE");
    if (binds)
        app.add_option("--allow", flags.allow,
                       program == curve_program::sink
                           ? "Public keys of the workers and ventilators this sink admits: a "
                             "directory of .pub files, or one file of keys; every other peer "
                             "is refused (needs --curve-secret)"
                           : "Public keys of the workers this ventilator admits: a directory of "
                             ".pub files, or one file of keys; every other peer is refused "
                             "(needs --curve-secret)")
            ->option_text("DIR|FILE");
}

expected<curve::options, std::string> load_curve_flags(const curve_flags& flags,
                                                       curve_program program) {
    curve::options c;
    if (flags.secret.empty()) {
        for (const auto& [flag, value] :
             {std::pair{"--curve-server-key", &flags.server_key},
              std::pair{"--curve-ventilator-key", &flags.ventilator_key},
              std::pair{"--allow", &flags.allow}})
            if (!value->empty()) return unexpected{std::string(flag) + " needs --curve-secret"};
        return c;
    }
    if (!curve::available())
        return unexpected{
            std::string("--curve-secret: this libzmq was built without CURVE; it cannot encrypt")};
    if (program != curve_program::worker && flags.allow.empty())
        return unexpected{std::string(
            "--curve-secret needs --allow: with no public key allowed, nothing could connect")};
    if (program != curve_program::sink && flags.server_key.empty())
        return unexpected{
            std::string("--curve-secret needs --curve-server-key: the sink's public key")};
    auto keys = curve::read_secret_file(flags.secret);
    if (!keys) return unexpected{keys.error()};
    c.keys = *keys;
    if (!flags.server_key.empty()) {
        auto k = curve::read_public_file(flags.server_key);
        if (!k) return unexpected{"--curve-server-key: " + k.error()};
        c.server_key = *k;
    }
    if (!flags.ventilator_key.empty()) {
        auto k = curve::read_public_file(flags.ventilator_key);
        if (!k) return unexpected{"--curve-ventilator-key: " + k.error()};
        c.ventilator_key = *k;
    }
    if (!flags.allow.empty()) {
        auto allowed = curve::read_allow_list(flags.allow);
        if (!allowed) return unexpected{"--allow: " + allowed.error()};
        c.allowed = std::move(*allowed);
    }
    return c;
}

void log_curve(const curve::options& c) {
    if (!c.on()) return;
    if (c.allowed.empty())
        spdlog::info("CURVE on: public key {}...", curve::fingerprint(c.keys->public_key));
    else
        spdlog::info("CURVE on: public key {}..., {} client key(s) allowed",
                     curve::fingerprint(c.keys->public_key), c.allowed.size());
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        return k_exit_ok;
    } catch (const CLI::CallForAllHelp&) {
        std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
        return k_exit_ok;
    } catch (const CLI::CallForVersion& e) {
        std::fputs((std::string(e.what()) + "\n").c_str(), stdout);
        return k_exit_ok;
    } catch (const CLI::ParseError& e) {
        return usage_error(app.get_name(), std::string(e.what()) + " (see --help)");
    }
    return std::nullopt;
}

int usage_error(const std::string& program, const std::string& what) {
    std::fprintf(stderr, "%s: error: %s\n", program.c_str(), what.c_str());
    return k_exit_usage;
}

}  // namespace zfarm
