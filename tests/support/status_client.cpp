#include "support/status_client.hpp"

#include <regex>
#include <sstream>

#include <httplib.h>

#include "support/pipeline.hpp"

namespace zfarm::test {

std::optional<std::uint16_t> wait_for_http_port(child_process& sink) {
    static const std::regex listening(R"(http: listening on http://[^ ]+:(\d+)/)");
    std::optional<std::uint16_t> port;
    wait_until(
        [&] {
            std::smatch m;
            const std::string log = sink.stderr_text();
            if (std::regex_search(log, m, listening))
                port = static_cast<std::uint16_t>(std::stoi(m[1]));
            return port.has_value() || !sink.running();
        },
        k_start_timeout);
    return port;
}

std::optional<std::string> http_get(std::uint16_t port, const std::string& path) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    const auto r = client.Get(path);
    if (!r || r->status != 200) return std::nullopt;
    return r->body;
}

nlohmann::json get_status(std::uint16_t port) {
    const auto body = http_get(port, "/status");
    if (!body) return nullptr;
    return nlohmann::json::parse(*body, nullptr, false);
}

std::optional<double> metric_value(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ')
            return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
}

}  // namespace zfarm::test
