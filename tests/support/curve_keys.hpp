// CURVE test support for end-to-end tests: key pairs made by the real
// zfarm-keygen, allow-list directories, ZeroMQ peers in the test process
// that connect with chosen credentials and report how their handshake ended,
// and the check that no log holds a secret key (PROTOCOL.md 12).
//
// Used from the test's main thread; a handshake_probe owns its context and
// sockets.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "zfarm/curve.hpp"

namespace zfarm::test {

// A key pair written by `zfarm-keygen DIR/NAME`, and what tests check with.
struct test_keys {
    std::string secret_file;  // DIR/NAME.key (mode 0600)
    std::string public_file;  // DIR/NAME.pub
    curve::key_pair keys;
    std::string fingerprint;  // as the programs log it (curve::fingerprint)
};

// Runs zfarm-keygen (logs in `dir`); throws std::runtime_error when it fails.
test_keys make_keys(const std::filesystem::path& dir, const std::string& name);

// A fresh directory `dir`/NAME holding copies of the given public key files:
// an allow-list for --allow. Returns its path.
std::string allow_list(const std::filesystem::path& dir, const std::string& name,
                       const std::vector<const test_keys*>& admitted);

// The CURVE flags of a binding program: --curve-secret and --allow.
std::vector<std::string> server_flags(const test_keys& own, const std::string& allow);
// The CURVE flags of a connecting program: --curve-secret, --curve-server-key
// and, when `ventilator` is set, --curve-ventilator-key.
std::vector<std::string> client_flags(const test_keys& own, const test_keys& sink,
                                      const test_keys* ventilator = nullptr);

// No file in `dir` (recursively) other than key files (*.key, *.pub) holds
// the Z85 text of any of the secret keys; and at least one log (*.stderr)
// says "CURVE on", so that the check looked at the logs of CURVE programs.
::testing::AssertionResult no_log_holds_a_secret(const std::filesystem::path& dir,
                                                 const std::vector<const test_keys*>& keys);

// How a ZeroMQ handshake ended, seen from the connecting side's monitor.
enum class handshake_outcome {
    none,       // nothing yet
    succeeded,  // ZMQ_EVENT_HANDSHAKE_SUCCEEDED
    failed,     // a ZMQ_EVENT_HANDSHAKE_FAILED_* event, or disconnected before success
};

// A PUSH socket in its own context, connected to `endpoint` with the given
// credentials: `own` null is the NULL mechanism; otherwise a CURVE client of
// `server_key`. Sends what it is given and reports its handshake.
class handshake_probe {
  public:
    handshake_probe(const std::string& endpoint, const curve::key_pair* own,
                    const curve::key& server_key, zmq::socket_type type = zmq::socket_type::push);
    ~handshake_probe();
    handshake_probe(const handshake_probe&) = delete;
    handshake_probe& operator=(const handshake_probe&) = delete;

    // Queues one single-frame message (never blocks; dropped if the queue is full).
    void send(const std::string& frame);
    // Waits up to `timeout` for the handshake to end; returns how it ended
    // (none when it has not within the timeout).
    handshake_outcome wait(std::chrono::milliseconds timeout);

  private:
    zmq::context_t ctx_;
    zmq::socket_t socket_;
    zmq::socket_t monitor_;
    handshake_outcome outcome_ = handshake_outcome::none;
};

}  // namespace zfarm::test
