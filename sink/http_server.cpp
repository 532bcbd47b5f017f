#include "http_server.hpp"

#include <sys/socket.h>

#include <charconv>
#include <chrono>

#include <httplib.h>

#include "dashboard.hpp"
#include "metrics_format.hpp"
#include "status_json.hpp"

namespace zfarm::sink {
namespace {

// Few threads: the handlers copy a snapshot's rendering out, and the machine
// runs the sink's main loop and maybe workers. A connection holds a thread
// while it is open, so idle keep-alive ones (a dashboard tab) are let go
// after a second, and one that sends nothing after two.
constexpr std::size_t k_threads = 4;
constexpr time_t k_keep_alive_seconds = 1;
constexpr time_t k_io_timeout_seconds = 2;
constexpr std::size_t k_max_request_body = 64 * 1024;

// Serves the latest snapshot rendered by `format`, or 503 before the first.
template <class Format>
void serve_snapshot(const snapshot_board& board, httplib::Response& res,
                    std::string_view content_type, Format format) {
    const auto s = board.latest();
    if (!s) {
        res.status = 503;
        res.set_content("no status yet\n", "text/plain; charset=utf-8");
        return;
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(format(*s), std::string(content_type));
}

void add_routes(httplib::Server& server, const snapshot_board& board) {
    using httplib::Request;
    using httplib::Response;
    server.set_pre_routing_handler([](const Request& req, Response& res) {
        if (req.method == "GET" || req.method == "HEAD")
            return httplib::Server::HandlerResponse::Unhandled;
        res.status = 405;
        res.set_header("Allow", "GET, HEAD");
        return httplib::Server::HandlerResponse::Handled;
    });
    server.Get("/", [](const Request&, Response& res) {
        res.set_content(std::string(dashboard_html()), "text/html; charset=utf-8");
    });
    server.Get("/status", [&board](const Request&, Response& res) {
        serve_snapshot(board, res, "application/json", format_status);
    });
    server.Get("/metrics", [&board](const Request&, Response& res) {
        serve_snapshot(board, res, k_metrics_content_type, format_metrics);
    });
    // Every error gets a one-line text body saying what it is.
    server.set_error_handler(
        httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
            std::string what = std::to_string(res.status);
            if (res.status == 404) what += " not found: " + req.path;
            if (res.status == 405) what += " method not allowed: " + req.method + " (GET or HEAD)";
            res.set_content(what + "\n", "text/plain; charset=utf-8");
            return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content("500 Internal Server Error\n", "text/plain; charset=utf-8");
    });
}

}  // namespace

expected<http_address, std::string> parse_http_address(std::string_view text) {
    const auto bad = [&](std::string_view why) {
        return unexpected{"--http " + std::string(text) + ": " + std::string(why) +
                          " (expected HOST:PORT, e.g. 127.0.0.1:9100, or :PORT for loopback)"};
    };
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    std::string_view host = text.substr(0, colon);
    const std::string_view port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string_view::npos)
        return bad("an IPv6 address goes in brackets");
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535)
        return bad("the port is not a number from 0 to 65535");
    return http_address{host.empty() ? "127.0.0.1" : std::string(host),
                        static_cast<std::uint16_t>(value)};
}

expected<std::unique_ptr<status_server>, std::string> status_server::start(
    const http_address& at, const snapshot_board& board) {
    auto server = std::make_unique<httplib::Server>();
    server->new_task_queue = [] { return new httplib::ThreadPool(k_threads); };
    server->set_keep_alive_timeout(k_keep_alive_seconds);
    server->set_read_timeout(k_io_timeout_seconds);
    server->set_write_timeout(k_io_timeout_seconds);
    server->set_payload_max_length(k_max_request_body);
    // httplib's default also sets SO_REUSEPORT, with which a second sink on
    // the same port would silently share it; SO_REUSEADDR alone lets a
    // restarted sink take its port back from TIME_WAIT.
    server->set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    add_routes(*server, board);
    int port = at.port;
    if (port == 0)
        port = server->bind_to_any_port(at.host);
    else if (!server->bind_to_port(at.host, port))
        port = -1;
    if (port <= 0)
        return unexpected{"--http: cannot listen on " + at.host + ":" + std::to_string(at.port) +
                          " (port in use, or not an address of this host?)"};
    return std::unique_ptr<status_server>(
        new status_server(std::move(server), static_cast<std::uint16_t>(port)));
}

status_server::status_server(std::unique_ptr<httplib::Server> server, std::uint16_t port)
    : server_(std::move(server)), port_(port) {
    thread_ = std::thread([this] {
        server_->listen_after_bind();
        listening_ended_ = true;
    });
    // stop() is a no-op until the server runs: wait for it, so that the
    // destructor cannot miss it and wait forever on a server still starting.
    while (!server_->is_running() && !listening_ended_)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

status_server::~status_server() {
    server_->stop();
    thread_.join();
}

}  // namespace zfarm::sink
