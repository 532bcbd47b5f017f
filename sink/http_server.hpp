// The sink's status endpoint (`zfarm-sink --http HOST:PORT`): an HTTP server
// (cpp-httplib) on threads of its own, serving
//   GET /         the dashboard (dashboard.html, self-contained)
//   GET /status   the latest snapshot as JSON (status_json.hpp)
//   GET /metrics  the latest snapshot for Prometheus (metrics_format.hpp)
// Any other path is 404; any method but GET and HEAD is 405. Handlers only
// read the snapshot_board, so a slow or hostile client costs the sink's main
// loop nothing. The server stops, and its threads are joined, when the
// status_server is destroyed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "status_snapshot.hpp"
#include "zfarm/expected.hpp"

namespace httplib {
class Server;
}

namespace zfarm::sink {

struct http_address {
    std::string host;        // a name or address of this host; for IPv6 without brackets
    std::uint16_t port = 0;  // 0: any free port
};

// "HOST:PORT", "[IPV6]:PORT", or ":PORT" (127.0.0.1: loopback unless told
// otherwise). A one-line reason when it is none of those.
expected<http_address, std::string> parse_http_address(std::string_view text);

class status_server {
  public:
    // Listens on `at` and serves `board`, which must outlive the server.
    // A one-line reason when it cannot listen there.
    static expected<std::unique_ptr<status_server>, std::string> start(const http_address& at,
                                                                       const snapshot_board& board);
    ~status_server();
    status_server(const status_server&) = delete;
    status_server& operator=(const status_server&) = delete;

    // The port listened on (the one picked, when asked for port 0).
    std::uint16_t port() const noexcept { return port_; }

  private:
    status_server(std::unique_ptr<httplib::Server> server, std::uint16_t port);

    std::unique_ptr<httplib::Server> server_;
    std::uint16_t port_;
    std::atomic<bool> listening_ended_{false};
    std::thread thread_;
};

}  // namespace zfarm::sink
