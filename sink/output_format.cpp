#include "output_format.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace zfarm::sink {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

// The UTF-8 sequence that starts at `p` (p < end, *p >= 0x80): whether it is
// well-formed (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF) and its size. When it is not, `size` is that of its maximal
// subpart (at least 1): the bytes one U+FFFD replaces, as nlohmann::json's
// error_handler_t::replace did before this writer and Unicode recommends.
struct utf8_sequence {
    std::size_t size;
    bool valid;
};
utf8_sequence utf8_sequence_at(const unsigned char* p, const unsigned char* end) noexcept {
    const unsigned c = *p;
    std::size_t more = 0;
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
        return {1, false};
    }
    for (std::size_t n = 1; n <= more; ++n) {
        if (p + n == end || p[n] < lo || p[n] > hi) return {n, false};
        lo = 0x80;
        hi = 0xBF;
    }
    return {more + 1, true};
}

// Bytes a JSON string holds as they are: printable ASCII but `"` and `\`.
constexpr std::array<bool, 256> k_plain = [] {
    std::array<bool, 256> t{};
    for (unsigned c = 0x20; c < 0x80; ++c)
        t[c] = c != '"' && c != '\\';
    return t;
}();

// Whether the 8 bytes at `p` are all plain (k_plain), tested at once: a byte
// below 0x20, equal to `"` or `\`, or with its high bit set sets the high bit
// of its lane (a borrow can set higher lanes too, but only after a lane that
// is not plain, so the answer for the word is exact).
bool plain_word(const unsigned char* p) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101, high = 0x8080808080808080;
    std::uint64_t x;
    std::memcpy(&x, p, sizeof x);
    const auto has_zero = [&](std::uint64_t v) { return (v - ones) & ~v; };
    const std::uint64_t special =
        ((x - 0x20 * ones) & ~x) | has_zero(x ^ ('"' * ones)) | has_zero(x ^ ('\\' * ones)) | x;
    return (special & high) == 0;
}

// Where escaped text goes: a std::string, or a cursor into a buffer that
// has room for it (no check: the caller made sure).
struct cursor {
    char*& pos;
    void append(const char* s, std::size_t n) {
        std::memcpy(pos, s, n);
        pos += n;
    }
    cursor& operator+=(std::string_view s) {
        append(s.data(), s.size());
        return *this;
    }
};
// The most bytes the escaping below writes for one byte of input (\u00XX).
constexpr std::size_t k_max_escaped = 6;

// `c` (a control character, `"` or `\`) as a JSON escape; other control
// characters than the five with a short form as \u00XX, in lower case hex.
template <class Out>
void append_escape(Out& out, unsigned char c) {
    switch (c) {
        case '"':
            out += "\\\""sv;
            return;
        case '\\':
            out += "\\\\"sv;
            return;
        case '\b':
            out += "\\b"sv;
            return;
        case '\f':
            out += "\\f"sv;
            return;
        case '\n':
            out += "\\n"sv;
            return;
        case '\r':
            out += "\\r"sv;
            return;
        case '\t':
            out += "\\t"sv;
            return;
        default: {
            static constexpr char k_hex[] = "0123456789abcdef";
            const char u[] = {'\\', 'u', '0', '0', k_hex[c >> 4], k_hex[c & 15]};
            out.append(u, sizeof u);
        }
    }
}

enum class on_invalid {
    stop,     // return at the first bad sequence: the caller writes the bytes otherwise
    replace,  // write each bad sequence as U+FFFD
};

// Appends `s` as the inside of a JSON string: `"`, `\` and control characters
// escaped, everything else (DEL and well-formed UTF-8 included) copied, in
// runs. Returns whether `s` is valid UTF-8; on on_invalid::stop part of it
// may have been appended, for the caller to cut.
template <class Out>
bool append_escaped(Out& out, std::string_view s, on_invalid mode) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    const auto* run = p;  // start of the bytes to copy as they are
    bool valid = true;
    while (p < end) {
        while (end - p >= 8 && plain_word(p))
            p += 8;
        if (p == end) break;
        if (k_plain[*p]) {
            ++p;
            continue;
        }
        if (*p < 0x80) {
            out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
            append_escape(out, *p);
            run = ++p;
            continue;
        }
        const utf8_sequence seq = utf8_sequence_at(p, end);
        if (!seq.valid) {
            if (mode == on_invalid::stop) return false;
            out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
            out += k_replacement;
            valid = false;
            run = p + seq.size;
        }
        p += seq.size;
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    return valid;
}

// RFC 4648 base64, with padding.
void append_base64(std::string& out, std::string_view in) {
    static constexpr char k_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto byte = [&](std::size_t i) {
        return static_cast<unsigned>(static_cast<unsigned char>(in[i]));
    };
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        const char quad[] = {k_alphabet[(v >> 18) & 63], k_alphabet[(v >> 12) & 63],
                             k_alphabet[(v >> 6) & 63], k_alphabet[v & 63]};
        out.append(quad, sizeof quad);
    }
    if (i < in.size()) {
        unsigned v = byte(i) << 16;
        if (i + 1 < in.size()) v |= byte(i + 1) << 8;
        const char quad[] = {k_alphabet[(v >> 18) & 63], k_alphabet[(v >> 12) & 63],
                             i + 1 < in.size() ? k_alphabet[(v >> 6) & 63] : '=', '='};
        out.append(quad, sizeof quad);
    }
}

// Writes one line into `out`. Keys, numbers and punctuation gather on the
// stack, and so do the strings that surely fit escaped: a short line (an
// echo result's) reaches `out` in one append, since an append per piece
// cost more than the escaping. A longer string is escaped straight into
// `out`, after what gathered. Between two strings a line has at most ~140
// bytes of keys and numbers (the exec line's rss_kb, signal, start and
// status with their keys), well within k_reserve.
class line_writer {
  public:
    explicit line_writer(std::string& out) : out_(out) {}

    line_writer& raw(std::string_view s) {
        std::memcpy(pos_, s.data(), s.size());
        pos_ += s.size();
        return *this;
    }
    template <class Int>
    line_writer& number(Int v) {
        pos_ = std::to_chars(pos_, pos_ + 20, v).ptr;
        return *this;
    }
    // `v` / 10^digits as an exact decimal: no exponent, the fraction's
    // trailing zeros trimmed (1234, 3: 1.234; 5, 3: 0.005; 2000, 3: 2). A
    // JSON number that readers parse to the nearest double, as they did the
    // double divided here before, and exact for those that keep decimals.
    line_writer& decimal(std::uint64_t v, int digits) {
        std::uint64_t scale = 1;
        for (int i = 0; i < digits; ++i)
            scale *= 10;
        number(v / scale);
        std::uint64_t fraction = v % scale;
        if (fraction == 0) return *this;
        pos_[0] = '.';
        for (int i = digits; i >= 1; --i, fraction /= 10)
            pos_[i] = static_cast<char>('0' + fraction % 10);
        int last = digits;
        while (pos_[last] == '0')
            --last;
        pos_ += last + 1;
        return *this;
    }
    // `s` escaped (append_escaped): gathered too when it surely fits, so
    // that a short line reaches `out` in one append; else after what gathered.
    bool text(std::string_view s, on_invalid mode) {
        const std::ptrdiff_t room = buf_ + sizeof buf_ - pos_ - k_reserve;
        if (room > 0 && s.size() <= static_cast<std::size_t>(room) / k_max_escaped) {
            cursor c{pos_};
            return append_escaped(c, s, mode);
        }
        flush();
        return append_escaped(out_, s, mode);
    }
    void base64(std::string_view s) {
        flush();
        append_base64(out_, s);
    }
    std::string& flush() {
        out_.append(buf_, static_cast<std::size_t>(pos_ - buf_));
        pos_ = buf_;
        return out_;
    }
    // Where the line is now, for rewind(): what was written since is undone.
    std::size_t mark() const { return out_.size() + static_cast<std::size_t>(pos_ - buf_); }
    void rewind(std::size_t at) {
        flush();
        out_.resize(at);
    }

  private:
    // Room kept free after a string gathered here: the keys, numbers and
    // punctuation up to the next string (raw() and number() do not check).
    static constexpr std::size_t k_reserve = 256;
    std::string& out_;
    char buf_[1024];
    char* pos_ = buf_;
};

std::string_view status_of(const proto::result& r) {
    return r.status == proto::task_status::ok ? R"("ok")"sv : R"("failed")"sv;
}

// Keys are written in alphabetical order: the order of the nlohmann::json
// object (a sorted map) the lines were dumped from before, so they stay
// byte-for-byte what they were but for `ms` and `start` (10, rule 1 makes
// the order insignificant to readers).

// The line of a result whose output is written as bytes. `base64`: the
// output goes in `output_base64`, and bad sequences in the other strings
// become U+FFFD; otherwise every string is checked and the line is given up
// (false) at the first that is not UTF-8 (10, rule 2).
bool append_plain_line(std::string& out, const proto::result& r, bool base64) {
    const on_invalid mode = base64 ? on_invalid::replace : on_invalid::stop;
    line_writer w(out);
    const auto text = [&](std::string_view s) { return w.text(s, mode) || base64; };
    w.raw(R"({"attempts":)").number(r.attempt);
    if (!r.error.empty()) {
        w.raw(R"(,"error":")");
        if (!text(r.error)) return false;
        w.raw(R"(")");
    }
    w.raw(R"(,"id":)").number(r.id).raw(R"(,"job":")");
    if (!text(r.job)) return false;
    w.raw(R"(","ms":)").decimal(r.elapsed_us, 3);
    if (base64) {
        w.raw(R"(,"output_base64":")");
        w.base64(r.output);
    } else {
        w.raw(R"(,"output":")");
        if (!text(r.output)) return false;
    }
    w.raw(R"(","start":)").decimal(r.started_us, 6);
    w.raw(R"(,"status":)").raw(status_of(r)).raw(R"(,"worker":")");
    if (!text(r.worker)) return false;
    w.raw(R"("})").flush();
    return true;
}

// `bytes` as `name`'s value, or `name`_base64's when not UTF-8 (10, rule 4),
// after a comma.
void text_or_base64(line_writer& w, std::string_view name, std::string_view bytes) {
    const std::size_t at = w.mark();
    w.raw(R"(,")").raw(name).raw(R"(":")");
    if (w.text(bytes, on_invalid::stop)) {
        w.raw(R"(")");
        return;
    }
    w.rewind(at);
    w.raw(R"(,")").raw(name).raw(R"(_base64":")");
    w.base64(bytes);
    w.raw(R"(")");
}

void append_exec_line(std::string& out, const proto::result& r, const exec::outcome& o) {
    constexpr on_invalid names = on_invalid::replace;
    line_writer w(out);
    w.raw(R"({"attempts":)").number(r.attempt).raw(R"(,"cmd":")");
    w.text(o.cmd, names);
    w.raw(R"(")");
    if (!r.error.empty()) {
        w.raw(R"(,"error":")");
        w.text(r.error, names);
        w.raw(R"(")");
    }
    w.raw(R"(,"exit":)");
    if (o.exit_code)
        w.number(*o.exit_code);
    else
        w.raw("null");
    w.raw(R"(,"host":")");
    w.text(o.host, names);
    w.raw(R"(","id":)").number(r.id).raw(R"(,"job":")");
    w.text(r.job, names);
    w.raw(R"(","ms":)").decimal(r.elapsed_us, 3);
    text_or_base64(w, "output", o.out);
    w.raw(R"(,"rss_kb":)").number(o.rss_kb).raw(R"(,"signal":)").number(o.signal);
    w.raw(R"(,"start":)").decimal(r.started_us, 6);
    w.raw(R"(,"status":)").raw(status_of(r));
    text_or_base64(w, "stderr", o.err);
    if (o.err_dropped > 0) w.raw(R"(,"stderr_dropped":)").number(o.err_dropped);
    if (o.out_dropped > 0) w.raw(R"(,"stdout_dropped":)").number(o.out_dropped);
    w.raw(R"(,"worker":")");
    w.text(r.worker, names);
    w.raw(R"("})").flush();
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

void append_json_line(std::string& out, const proto::result& r, const exec::outcome* o) {
    if (o) return append_exec_line(out, r, *o);
    // The hot path of every other kind: one pass, and a second only for a
    // line with a string that is not UTF-8.
    const std::size_t at = out.size();
    if (append_plain_line(out, r, false)) return;
    out.resize(at);
    append_plain_line(out, r, true);
}

std::string to_json_line(const proto::result& r) {
    std::string line;
    const auto o = exec_outcome_of(r);
    append_json_line(line, r, o ? &*o : nullptr);
    return line;
}

bool is_utf8(std::string_view bytes) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    while (p < end) {
        if (*p < 0x80) {
            ++p;
            continue;
        }
        const utf8_sequence seq = utf8_sequence_at(p, end);
        if (!seq.valid) return false;
        p += seq.size;
    }
    return true;
}

}  // namespace zfarm::sink
