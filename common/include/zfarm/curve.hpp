// CURVE security (PROTOCOL.md 12): key files, allow-lists, and the ZAP
// handler that makes libzmq authenticate CURVE clients.
//
// Key files use czmq's certificate layout, so keys made by other ZeroMQ
// tools work too:
//
//     curve
//         public-key = "Z85 (40 characters)"
//         secret-key = "Z85 (40 characters)"     (secret files only)
//
// An allow-list file may instead hold bare Z85 public keys, one per line;
// `#` starts a comment in both.
//
// Why a ZAP handler: libzmq 4.3 (without the draft API) lets any client
// whose handshake succeeds connect to a CURVE server when no ZAP handler is
// running — encryption without authentication. The handler must be bound,
// in the same context, before any CURVE server socket binds.
//
// Functions are thread-safe; a zap_handler runs its own thread and socket.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <zmq.hpp>

#include "zfarm/expected.hpp"

namespace zfarm::curve {

using key = std::array<std::uint8_t, 32>;

struct key_pair {
    key public_key{};
    key secret_key{};
};

// Z85 text (40 characters) of a key, and back.
std::string to_z85(const key& k);
expected<key, std::string> from_z85(std::string_view text);
// A short, non-secret name for a public key in logs: its first 12 Z85
// characters.
std::string fingerprint(const key& public_key);

// True when this libzmq was built with CURVE.
bool available() noexcept;

// A fresh key pair (libzmq's zmq_curve_keypair).
expected<key_pair, std::string> generate();

// Writes `base`.key (public and secret, mode 0600) and `base`.pub (public
// only, mode 0644), refusing to overwrite either. Returns the two paths,
// secret first, as "SECRET PUBLIC".
expected<std::pair<std::string, std::string>, std::string> write_key_files(const std::string& base,
                                                                           const key_pair& keys);

// Reads a secret key file. Refused, with a one-line reason, when it cannot
// be read, holds no secret-key, or can be read or written by group or
// others (it must be 0600 or stricter).
expected<key_pair, std::string> read_secret_file(const std::string& path);
// Reads the public key of a key file (secret or public).
expected<key, std::string> read_public_file(const std::string& path);

// The public keys a binding program admits: from a file (every key in it)
// or a directory (every regular file in it whose name does not start with
// a dot; a file holding no key is an error, so a typo is not silently
// ignored). Never empty on success.
expected<std::set<key>, std::string> read_allow_list(const std::string& path);

// One program's CURVE configuration (PROTOCOL.md 12). CURVE is on when
// `keys` is set; every socket of the program then uses it. The secret key
// is never logged: name a key in logs by its fingerprint().
struct options {
    std::optional<key_pair> keys;  // this program's own key pair
    // Connecting sides: the sink's public key, which is also the
    // ventilator's unless `ventilator_key` is set (a worker connects to both).
    std::optional<key> server_key;
    std::optional<key> ventilator_key;
    // Binding sides: the client public keys admitted (the ZAP handler's).
    std::set<key> allowed;

    bool on() const noexcept { return keys.has_value(); }
    // The public key a client expects of the ventilator.
    const std::optional<key>& ventilator_server_key() const noexcept {
        return ventilator_key ? ventilator_key : server_key;
    }
};

// The ZAP handler (RFC 27) for one context: admits CURVE clients whose key
// is in the allow-list, refuses every other client and every other
// mechanism, and logs each refused (address, key) once.
class zap_handler {
  public:
    // Binds inproc://zeromq.zap.01 in `ctx` and starts answering. Fails when
    // the endpoint is taken (another handler in this context) or the thread
    // cannot start; the program must then not bind CURVE sockets.
    static expected<std::unique_ptr<zap_handler>, std::string> start(zmq::context_t& ctx,
                                                                     std::set<key> allowed);
    ~zap_handler();
    zap_handler(const zap_handler&) = delete;
    zap_handler& operator=(const zap_handler&) = delete;

    std::uint64_t admitted() const noexcept { return admitted_.load(); }
    std::uint64_t refused() const noexcept { return refused_.load(); }

  private:
    zap_handler(zmq::socket_t socket, std::set<key> allowed);
    void run();

    zmq::socket_t socket_;  // owned by the handler's thread once it runs
    std::set<key> allowed_;
    std::set<std::pair<std::string, key>> logged_;  // handler thread only
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> admitted_{0};
    std::atomic<std::uint64_t> refused_{0};
    std::thread thread_;
};

// True when a socket is bound at inproc://zeromq.zap.01 in `ctx`, i.e. a ZAP
// handler is there for libzmq to ask (found by trying to bind a probe
// socket there, which fails while the endpoint is taken).
bool zap_bound(zmq::context_t& ctx);

// For a program that binds CURVE sockets in `ctx`: starts the ZAP handler
// admitting `opt.allowed`, then checks with zap_bound() that one is bound, so
// that no CURVE server of this program can run without authentication.
// Call before binding any socket; keep the handler alive until every socket
// of `ctx` is closed, and destroy it before `ctx`. Returns null when CURVE is
// off, or a one-line reason (CURVE unavailable, the handler cannot start,
// none is bound). The environment variable ZFARM_TEST_NO_ZAP=1 skips
// starting the handler, for the regression test of that last check only.
expected<std::unique_ptr<zap_handler>, std::string> start_authentication(zmq::context_t& ctx,
                                                                         const options& opt);

}  // namespace zfarm::curve
