#include "support/curve_keys.hpp"

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "support/process.hpp"

namespace zfarm::test {

test_keys make_keys(const std::filesystem::path& dir, const std::string& name) {
    std::filesystem::create_directories(dir);
    const std::string base = (dir / name).string();
    child_process keygen("zfarm-keygen", {base}, dir, "keygen-" + name);
    const auto code = keygen.wait_for_exit(std::chrono::seconds(30));
    if (code != 0)
        throw std::runtime_error("zfarm-keygen " + base + " failed: " + keygen.stderr_text());
    test_keys k{base + ".key", base + ".pub", {}, {}};
    auto pair = curve::read_secret_file(k.secret_file);
    if (!pair) throw std::runtime_error(pair.error());
    k.keys = *pair;
    k.fingerprint = curve::fingerprint(k.keys.public_key);
    return k;
}

std::string allow_list(const std::filesystem::path& dir, const std::string& name,
                       const std::vector<const test_keys*>& admitted) {
    const auto list = dir / name;
    std::filesystem::create_directories(list);
    for (const auto* k : admitted) {
        const std::filesystem::path pub(k->public_file);
        std::filesystem::copy_file(pub, list / pub.filename(),
                                   std::filesystem::copy_options::overwrite_existing);
    }
    return list.string();
}

std::vector<std::string> server_flags(const test_keys& own, const std::string& allow) {
    return {"--curve-secret", own.secret_file, "--allow", allow};
}

std::vector<std::string> client_flags(const test_keys& own, const test_keys& sink,
                                      const test_keys* ventilator) {
    std::vector<std::string> flags{"--curve-secret", own.secret_file, "--curve-server-key",
                                   sink.public_file};
    if (ventilator) flags.insert(flags.end(), {"--curve-ventilator-key", ventilator->public_file});
    return flags;
}

::testing::AssertionResult no_log_holds_a_secret(const std::filesystem::path& dir,
                                                 const std::vector<const test_keys*>& keys) {
    bool curve_log_seen = false;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        const auto ext = entry.path().extension();
        if (ext == ".key" || ext == ".pub") continue;
        const std::string text = read_file(entry.path());
        if (ext == ".stderr" && text.find("CURVE on") != std::string::npos) curve_log_seen = true;
        for (const auto* k : keys)
            if (text.find(curve::to_z85(k->keys.secret_key)) != std::string::npos)
                return ::testing::AssertionFailure()
                       << entry.path().string() << " holds the secret key of " << k->secret_file;
    }
    if (!curve_log_seen)
        return ::testing::AssertionFailure()
               << "no log under " << dir.string() << " says \"CURVE on\": nothing was checked";
    return ::testing::AssertionSuccess();
}

namespace {

std::string next_monitor_endpoint() {
    static std::atomic<int> n{0};
    return "inproc://zfarm-test-handshake-" + std::to_string(n++);
}

}  // namespace

handshake_probe::handshake_probe(const std::string& endpoint, const curve::key_pair* own,
                                 const curve::key& server_key, zmq::socket_type type)
    : ctx_(1), socket_(ctx_, type), monitor_(ctx_, zmq::socket_type::pair) {
    socket_.set(zmq::sockopt::linger, 0);
    if (own) {
        socket_.set(zmq::sockopt::curve_serverkey, zmq::const_buffer(server_key.data(), 32));
        socket_.set(zmq::sockopt::curve_publickey, zmq::const_buffer(own->public_key.data(), 32));
        socket_.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(own->secret_key.data(), 32));
    }
    const std::string monitor_ep = next_monitor_endpoint();
    if (zmq_socket_monitor(socket_.handle(), monitor_ep.c_str(), ZMQ_EVENT_ALL) != 0)
        throw std::runtime_error("cannot monitor a test socket");
    monitor_.connect(monitor_ep);
    socket_.connect(endpoint);
}

handshake_probe::~handshake_probe() {
    (void)zmq_socket_monitor(socket_.handle(), nullptr, 0);
}

void handshake_probe::send(const std::string& frame) {
    (void)socket_.send(zmq::buffer(frame), zmq::send_flags::dontwait);
}

handshake_outcome handshake_probe::wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (outcome_ == handshake_outcome::none && std::chrono::steady_clock::now() < deadline) {
        zmq::pollitem_t item{monitor_.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(50));
        zmq::message_t event;
        while (monitor_.recv(event, zmq::recv_flags::dontwait)) {
            zmq::message_t address;
            if (event.more()) (void)monitor_.recv(address, zmq::recv_flags::none);
            std::uint16_t id = 0;
            if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
            if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                outcome_ = handshake_outcome::succeeded;
            } else if (id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                       id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                       id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || id == ZMQ_EVENT_DISCONNECTED) {
                if (outcome_ == handshake_outcome::none) outcome_ = handshake_outcome::failed;
            }
        }
    }
    return outcome_;
}

}  // namespace zfarm::test
