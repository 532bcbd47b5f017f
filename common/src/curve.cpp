#include "zfarm/curve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>

#include "zfarm/system.hpp"

namespace zfarm::curve {
namespace {

constexpr std::string_view k_zap_endpoint = "inproc://zeromq.zap.01";

// The value of `name = "VALUE"` on a line, or empty.
std::string_view quoted_value(std::string_view line, std::string_view name) {
    const auto at = line.find(name);
    if (at == std::string_view::npos) return {};
    auto rest = line.substr(at + name.size());
    const auto open = rest.find('"');
    if (open == std::string_view::npos) return {};
    rest = rest.substr(open + 1);
    const auto close = rest.find('"');
    if (close == std::string_view::npos) return {};
    return rest.substr(0, close);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// Every key a key file or allow-list file holds: public-key values, or bare
// Z85 lines. `secret` receives the secret-key value, if any.
expected<std::vector<key>, std::string> parse_keys(const std::string& path, std::string* secret) {
    std::ifstream in(path);
    if (!in) return unexpected{"cannot read " + path + ": " + errno_text(errno)};
    std::vector<key> keys;
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        std::string_view l = trim(line);
        if (l.empty() || l.front() == '#' || l == "curve" || l.starts_with("metadata")) continue;
        std::string_view text;
        if (l.find("secret-key") != std::string_view::npos) {
            text = quoted_value(l, "secret-key");
            if (secret) *secret = std::string(text);
            continue;
        }
        text = l.find("public-key") != std::string_view::npos ? quoted_value(l, "public-key") : l;
        auto k = from_z85(text);
        if (!k) return unexpected{path + ":" + std::to_string(number) + ": " + k.error()};
        keys.push_back(*k);
    }
    return keys;
}

expected<bool, std::string> write_file(const std::string& path, const std::string& text,
                                       mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return unexpected{"cannot create " + path + ": " + errno_text(errno)};
    bool ok = ::fchmod(fd, mode) == 0;
    for (std::size_t done = 0; ok && done < text.size();) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            ok = false;
        } else {
            done += static_cast<std::size_t>(n);
        }
    }
    const int e = errno;
    ::close(fd);
    if (!ok) return unexpected{"cannot write " + path + ": " + errno_text(e)};
    return true;
}

std::string header(std::string_view what) {
    char stamp[32];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return "#   zfarm CURVE " + std::string(what) + ", made by zfarm-keygen on " + stamp + "\n";
}

}  // namespace

std::string to_z85(const key& k) {
    char text[41];
    zmq_z85_encode(text, k.data(), k.size());
    return std::string(text, 40);
}

expected<key, std::string> from_z85(std::string_view text) {
    if (text.size() != 40)
        return unexpected{"a CURVE key is 40 Z85 characters, not " + std::to_string(text.size())};
    const std::string z(text);
    key k{};
    if (!zmq_z85_decode(k.data(), z.c_str())) return unexpected{std::string("not Z85 text")};
    return k;
}

std::string fingerprint(const key& public_key) {
    return to_z85(public_key).substr(0, 12);
}

bool available() noexcept {
    return zmq_has("curve") != 0;
}

expected<key_pair, std::string> generate() {
    if (!available()) return unexpected{std::string("this libzmq has no CURVE support")};
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0)
        return unexpected{std::string("cannot make a key pair: ") + zmq_strerror(zmq_errno())};
    key_pair kp;
    kp.public_key = *from_z85(std::string_view(pub, 40));
    kp.secret_key = *from_z85(std::string_view(sec, 40));
    return kp;
}

expected<std::pair<std::string, std::string>, std::string> write_key_files(const std::string& base,
                                                                           const key_pair& keys) {
    const std::string secret_path = base + ".key", public_path = base + ".pub";
    for (const auto& p : {secret_path, public_path})
        if (std::filesystem::exists(p)) return unexpected{p + " exists; not overwriting it"};
    const std::string pub = "    public-key = \"" + to_z85(keys.public_key) + "\"\n";
    auto s = write_file(secret_path,
                        header("secret key: keep it private") + "curve\n" + pub +
                            "    secret-key = \"" + to_z85(keys.secret_key) + "\"\n",
                        0600);
    if (!s) return unexpected{s.error()};
    auto p = write_file(public_path, header("public key") + "curve\n" + pub, 0644);
    if (!p) {
        ::unlink(secret_path.c_str());
        return unexpected{p.error()};
    }
    return std::pair{secret_path, public_path};
}

expected<key_pair, std::string> read_secret_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return unexpected{"cannot read " + path + ": " + errno_text(errno)};
    if (!S_ISREG(st.st_mode)) return unexpected{path + " is not a regular file"};
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return unexpected{path + " is a secret key but has mode " + mode +
                          ": others may read it; chmod 600 it"};
    }
    std::string secret;
    auto keys = parse_keys(path, &secret);
    if (!keys) return unexpected{keys.error()};
    if (secret.empty()) return unexpected{path + " holds no secret-key"};
    if (keys->size() != 1) return unexpected{path + " must hold exactly one public-key"};
    auto sk = from_z85(secret);
    if (!sk) return unexpected{path + ": secret-key: " + sk.error()};
    key_pair kp{keys->front(), *sk};
    // The public key must be the secret's: derive it and compare.
    char derived[41];
    const std::string secret_z85 = to_z85(kp.secret_key);
    if (zmq_curve_public(derived, secret_z85.c_str()) != 0 ||
        std::string_view(derived, 40) != to_z85(kp.public_key))
        return unexpected{path + ": the public-key does not belong to the secret-key"};
    return kp;
}

expected<key, std::string> read_public_file(const std::string& path) {
    auto keys = parse_keys(path, nullptr);
    if (!keys) return unexpected{keys.error()};
    if (keys->size() != 1) return unexpected{path + " must hold exactly one public key"};
    return keys->front();
}

expected<std::set<key>, std::string> read_allow_list(const std::string& path) {
    std::error_code ec;
    std::vector<std::string> files;
    if (std::filesystem::is_directory(path, ec)) {
        for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
            const auto name = entry.path().filename().string();
            if (name.empty() || name.front() == '.' || !entry.is_regular_file()) continue;
            files.push_back(entry.path().string());
        }
        if (ec) return unexpected{"cannot list " + path + ": " + ec.message()};
        if (files.empty()) return unexpected{path + " holds no key file"};
    } else {
        files.push_back(path);
    }
    std::set<key> allowed;
    for (const auto& f : files) {
        std::string secret;
        auto keys = parse_keys(f, &secret);
        if (!keys) return unexpected{keys.error()};
        if (!secret.empty())
            return unexpected{f + " holds a secret key; an allow-list takes public keys only"};
        if (keys->empty()) return unexpected{f + " holds no public key"};
        allowed.insert(keys->begin(), keys->end());
    }
    return allowed;
}

// --- ZAP ---------------------------------------------------------------------

expected<std::unique_ptr<zap_handler>, std::string> zap_handler::start(zmq::context_t& ctx,
                                                                       std::set<key> allowed) {
    try {
        zmq::socket_t s(ctx, zmq::socket_type::rep);
        s.set(zmq::sockopt::linger, 0);
        s.bind(std::string(k_zap_endpoint));
        std::unique_ptr<zap_handler> h(new zap_handler(std::move(s), std::move(allowed)));
        h->thread_ = std::thread([p = h.get()] { p->run(); });
        return h;
    } catch (const zmq::error_t& e) {
        return unexpected{std::string("cannot start the ZAP handler on ") +
                          std::string(k_zap_endpoint) + ": " + e.what()};
    } catch (const std::system_error& e) {
        return unexpected{std::string("cannot start the ZAP handler's thread: ") + e.what()};
    }
}

zap_handler::zap_handler(zmq::socket_t socket, std::set<key> allowed)
    : socket_(std::move(socket)), allowed_(std::move(allowed)) {}

zap_handler::~zap_handler() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

void zap_handler::run() {
    // RFC 27: a request is version, request id, domain, address, identity,
    // mechanism, then the mechanism's credentials (CURVE: the client's
    // 32-byte public key). A reply is version, request id, status code,
    // status text, user id, metadata.
    while (!stop_) {
        zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
        try {
            if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
            std::vector<zmq::message_t> parts;
            do {
                zmq::message_t m;
                if (!socket_.recv(m, zmq::recv_flags::none)) break;
                parts.push_back(std::move(m));
            } while (parts.back().more() && parts.size() < 16);
            while (socket_.get(zmq::sockopt::rcvmore)) {  // more than 16 parts: drain
                zmq::message_t rest;
                (void)socket_.recv(rest, zmq::recv_flags::none);
            }
            const std::string version = parts.size() > 0 ? parts[0].to_string() : "";
            const std::string request_id = parts.size() > 1 ? parts[1].to_string() : "";
            const std::string address = parts.size() > 3 ? parts[3].to_string() : "";
            const std::string mechanism = parts.size() > 5 ? parts[5].to_string() : "";
            bool ok = false;
            key client{};
            if (version == "1.0" && mechanism == "CURVE" && parts.size() >= 7 &&
                parts[6].size() == client.size()) {
                std::memcpy(client.data(), parts[6].data(), client.size());
                ok = allowed_.count(client) > 0;
            }
            if (ok) {
                ++admitted_;
            } else {
                ++refused_;
                if (logged_.size() < 10000 && logged_.emplace(address, client).second)
                    spdlog::warn("refused a connection from {}: {}",
                                 address.empty() ? "?" : address,
                                 mechanism == "CURVE"
                                     ? "key " + fingerprint(client) + "... is not on the allow-list"
                                     : "no CURVE key (mechanism " +
                                           (mechanism.empty() ? "?" : mechanism) + ")");
            }
            const std::string user_id = ok ? fingerprint(client) : "";
            socket_.send(zmq::buffer(std::string_view("1.0")), zmq::send_flags::sndmore);
            socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
            socket_.send(zmq::buffer(std::string_view(ok ? "200" : "400")),
                         zmq::send_flags::sndmore);
            socket_.send(zmq::buffer(std::string_view(ok ? "OK" : "not allowed")),
                         zmq::send_flags::sndmore);
            socket_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
            socket_.send(zmq::buffer(std::string_view()), zmq::send_flags::none);
        } catch (const zmq::error_t& e) {
            if (e.num() == ETERM) return;
            if (e.num() != EINTR) spdlog::error("ZAP handler: {}", e.what());
        }
    }
}

bool zap_bound(zmq::context_t& ctx) {
    zmq::socket_t probe(ctx, zmq::socket_type::rep);
    probe.set(zmq::sockopt::linger, 0);
    try {
        probe.bind(std::string(k_zap_endpoint));
    } catch (const zmq::error_t& e) {
        return e.num() == EADDRINUSE;
    }
    // Nobody was there. Unbind now: closing alone frees the endpoint only
    // once libzmq's reaper gets to the socket.
    probe.unbind(std::string(k_zap_endpoint));
    return false;
}

expected<std::unique_ptr<zap_handler>, std::string> start_authentication(zmq::context_t& ctx,
                                                                         const options& opt) {
    if (!opt.on()) return std::unique_ptr<zap_handler>();
    if (!available()) return unexpected{std::string("this libzmq was built without CURVE")};
    std::unique_ptr<zap_handler> handler;
    const char* skip = std::getenv("ZFARM_TEST_NO_ZAP");
    if (!skip || std::string_view(skip) != "1") {
        auto h = zap_handler::start(ctx, opt.allowed);
        if (!h) return unexpected{h.error()};
        handler = std::move(*h);
    }
    try {
        if (!zap_bound(ctx))
            return unexpected{"no ZAP handler is bound at " + std::string(k_zap_endpoint) +
                              ": libzmq would admit any CURVE client key; refusing to run"};
    } catch (const zmq::error_t& e) {
        return unexpected{std::string("cannot check for a ZAP handler: ") + e.what()};
    }
    return handler;
}

}  // namespace zfarm::curve
