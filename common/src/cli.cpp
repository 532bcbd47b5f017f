#include "zfarm/cli.hpp"

#include <cstdio>

namespace zfarm {

void add_common_flags(CLI::App& app, common_flags& flags) {
    app.add_flag("-v,--verbose", flags.verbose, "More log detail on stderr (repeat for more)");
    app.add_flag("-q,--quiet", flags.quiet, "Log errors only");
    app.add_option("--max-message", flags.transport.max_message,
                   "Largest frame accepted on any socket, in bytes (ZMQ_MAXMSGSIZE)")
        ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 31))
        ->capture_default_str();
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
