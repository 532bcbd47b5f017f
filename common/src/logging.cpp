#include "zfarm/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace zfarm {

void init_logging(std::string_view program, int verbosity) {
    auto logger = spdlog::stderr_color_mt(std::string(program));
    logger->set_pattern("%H:%M:%S.%e %n %^%l%$ %v");
    switch (verbosity) {
        case -1:
            logger->set_level(spdlog::level::err);
            break;
        case 0:
            logger->set_level(spdlog::level::info);
            break;
        case 1:
            logger->set_level(spdlog::level::debug);
            break;
        default:
            logger->set_level(spdlog::level::trace);
            break;
    }
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
}

void drop_counter::drop(std::string_view socket, std::string_view sender, std::string_view reason) {
    ++count_;
    std::string key = std::string(socket) + "|" + std::string(sender);
    if (warned_.size() >= k_max_senders || !warned_.insert(key).second) return;
    spdlog::warn("dropped a bad frame on {} from {}: {} (further drops from it are only counted)",
                 socket, sender.empty() ? "an unknown peer" : sender, reason);
}

}  // namespace zfarm
