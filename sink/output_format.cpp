#include "output_format.hpp"

#include <nlohmann/json.hpp>

namespace zfarm::sink {
namespace {

using nlohmann::json;

json common_keys(const proto::result& r) {
    return {{"job", r.job},
            {"id", r.id},
            {"status", r.status == proto::task_status::ok ? "ok" : "failed"},
            {"attempts", r.attempt},
            {"worker", r.worker},
            {"ms", static_cast<double>(r.elapsed_us) / 1000.0},
            {"start", static_cast<double>(r.started_us) / 1e6}};
}

// `bytes` under `key` as text, or under `key`_base64 when it is not UTF-8.
void put_bytes(json& j, const std::string& key, const std::string& bytes) {
    if (is_utf8(bytes))
        j[key] = bytes;
    else
        j[key + "_base64"] = base64(bytes);
}

}  // namespace

expected<output_format, std::string> parse_output_format(std::string_view name) {
    if (name == "jsonl") return output_format::jsonl;
    if (name == "text") return output_format::text;
    return unexpected{"unknown output format '" + std::string(name) + "' (jsonl or text)"};
}

bool write_all(std::FILE* f, std::string& buffer) {
    if (buffer.empty()) return true;
    const std::size_t n = std::fwrite(buffer.data(), 1, buffer.size(), f);
    if (n != buffer.size()) {
        buffer.erase(0, n);
        return false;
    }
    buffer.clear();
    return true;
}

std::optional<exec::outcome> exec_outcome_of(const proto::result& r) {
    if (r.kind != exec::k_kind) return std::nullopt;
    auto o = exec::decode_outcome(r.output);
    if (!o) return std::nullopt;
    return std::move(*o);
}

std::string to_json_line(const proto::result& r) {
    if (r.kind == exec::k_kind)
        if (auto o = exec_outcome_of(r)) return exec_json_line(r, *o);
    // The hot path of every other kind: one object built in one go.
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

std::string exec_json_line(const proto::result& r, const exec::outcome& o) {
    json j = common_keys(r);
    put_bytes(j, "output", o.out);
    put_bytes(j, "stderr", o.err);
    j["exit"] = o.exit_code ? json(*o.exit_code) : json(nullptr);
    j["signal"] = o.signal;
    j["rss_kb"] = o.rss_kb;
    j["host"] = o.host;
    j["cmd"] = o.cmd;
    if (o.out_dropped > 0) j["stdout_dropped"] = o.out_dropped;
    if (o.err_dropped > 0) j["stderr_dropped"] = o.err_dropped;
    if (!r.error.empty()) j["error"] = r.error;
    // The outputs are valid by now; names and texts that are not UTF-8 get
    // U+FFFD for their bad bytes.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_utf8(std::string_view bytes) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* end = p + bytes.size();
    while (p < end) {
        const unsigned c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int more = 0;
        unsigned lo = 0x80, hi = 0xBF;  // bounds of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0) lo = 0xA0;  // overlong
            if (c == 0xED) hi = 0x9F;  // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0) lo = 0x90;  // overlong
            if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
        } else {
            return false;
        }
        if (end - p <= more) return false;
        if (p[1] < lo || p[1] > hi) return false;
        for (int i = 2; i <= more; ++i)
            if (p[i] < 0x80 || p[i] > 0xBF) return false;
        p += more + 1;
    }
    return true;
}

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

}  // namespace zfarm::sink
