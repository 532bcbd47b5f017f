#include "result_writer.hpp"

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

namespace zfarm::sink {
namespace {

std::string base64(std::string_view in) {
    static constexpr char k_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                           (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += k_alphabet[(v >> 18) & 63];
        out += k_alphabet[(v >> 12) & 63];
        out += k_alphabet[(v >> 6) & 63];
        out += k_alphabet[v & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += k_alphabet[(v >> 18) & 63];
        out += k_alphabet[(v >> 12) & 63];
        out += i + 1 < in.size() ? k_alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

}  // namespace

std::string to_json_line(const proto::result& r) {
    using nlohmann::json;
    json j = {{"job", r.job},
              {"id", r.id},
              {"status", r.status == proto::task_status::ok ? "ok" : "failed"},
              {"attempts", r.attempt},
              {"worker", r.worker},
              {"ms", static_cast<double>(r.elapsed_us) / 1000.0},
              {"start", static_cast<double>(r.started_us) / 1e6},
              {"output", r.output}};
    if (!r.error.empty()) j["error"] = r.error;
    try {
        return j.dump();
    } catch (const json::type_error&) {
        // Output (or an error text) that is not UTF-8: carry the bytes as base64.
        j.erase("output");
        j["output_base64"] = base64(r.output);
        return j.dump(-1, ' ', false, json::error_handler_t::replace);
    }
}

expected<result_writer, std::string> result_writer::open(const std::string& path) {
    if (path.empty() || path == "-") return result_writer(stdout, false);
    std::FILE* f = std::fopen(path.c_str(), "a");
    if (!f) return unexpected{"cannot open " + path + " for appending: " + std::strerror(errno)};
    return result_writer(f, true);
}

result_writer::result_writer(result_writer&& o) noexcept
    : file_(o.file_), owned_(o.owned_), buffer_(std::move(o.buffer_)) {
    o.file_ = nullptr;
    o.owned_ = false;
}

result_writer::~result_writer() {
    if (!file_) return;
    flush();
    if (owned_) std::fclose(file_);
}

void result_writer::write(const proto::result& r) {
    buffer_ += to_json_line(r);
    buffer_ += '\n';
    if (buffer_.size() >= (1u << 20)) flush();
}

bool result_writer::flush() {
    if (!file_) return false;
    if (!buffer_.empty()) {
        const std::size_t n = std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
        if (n != buffer_.size()) {
            buffer_.erase(0, n);
            return false;
        }
        buffer_.clear();
    }
    return std::fflush(file_) == 0;
}

}  // namespace zfarm::sink
