#include "zfarm/exec_format.hpp"

#include <algorithm>
#include <limits>

#include <msgpack.hpp>

#include "msgpack_writer.hpp"

namespace zfarm::exec {
namespace {

using detail::pack_bin;
using detail::pack_str;
using detail::packer;
using detail::string_writer;

// Thrown only inside the decoders and caught at their boundary.
struct bad_field {
    std::string what;
};

std::string_view key_of(const msgpack::object& k) {
    if (k.type != msgpack::type::STR) throw bad_field{"a key is not a string"};
    return {k.via.str.ptr, k.via.str.size};
}
std::string text(const msgpack::object& o, std::string_view field) {
    if (o.type != msgpack::type::STR) throw bad_field{std::string(field) + " is not a string"};
    return {o.via.str.ptr, o.via.str.size};
}
std::string bytes(const msgpack::object& o, std::string_view field) {
    if (o.type == msgpack::type::BIN) return {o.via.bin.ptr, o.via.bin.size};
    if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
    throw bad_field{std::string(field) + " is not bin"};
}
std::uint64_t uint(const msgpack::object& o, std::string_view field) {
    if (o.type != msgpack::type::POSITIVE_INTEGER)
        throw bad_field{std::string(field) + " is not an unsigned integer"};
    return o.via.u64;
}

// Unpacks one map, with every container and string bounded by the input's
// own size (as the message decoder does, PROTOCOL.md 3.4).
template <class F>
auto decode_map(std::string_view in, F&& read)
    -> expected<decltype(read(msgpack::object_map{})), std::string> {
    if (in.empty()) return unexpected{std::string("empty")};
    const std::size_t max_elems = std::min(in.size(), k_max_args * 4);
    const msgpack::unpack_limit limits(max_elems, max_elems / 2, in.size(), in.size(), 0, 8);
    try {
        std::size_t offset = 0;
        msgpack::object_handle oh =
            msgpack::unpack(in.data(), in.size(), offset, nullptr, nullptr, limits);
        if (offset != in.size())
            return unexpected{std::to_string(in.size() - offset) + " bytes after the map"};
        if (oh.get().type != msgpack::type::MAP) return unexpected{std::string("not a map")};
        return read(oh.get().via.map);
    } catch (const bad_field& e) {
        return unexpected{e.what};
    } catch (const std::bad_alloc&) {
        return unexpected{std::string("too large")};
    } catch (const std::exception& e) {
        return unexpected{std::string("malformed msgpack: ") + e.what()};
    }
}

}  // namespace

std::string encode(const command& c) {
    std::string out;
    string_writer w{&out};
    packer p(w);
    p.pack_map(1 + (c.env.empty() ? 0 : 1) + (c.dir.empty() ? 0 : 1));
    pack_str(p, "argv");
    p.pack_array(static_cast<std::uint32_t>(c.argv.size()));
    for (const auto& a : c.argv)
        pack_str(p, a);
    if (!c.env.empty()) {
        pack_str(p, "env");
        p.pack_map(static_cast<std::uint32_t>(c.env.size()));
        for (const auto& [name, value] : c.env) {
            pack_str(p, name);
            pack_str(p, value);
        }
    }
    if (!c.dir.empty()) {
        pack_str(p, "dir");
        pack_str(p, c.dir);
    }
    return out;
}

expected<command, std::string> decode_command(std::string_view bytes_in) {
    return decode_map(bytes_in, [](const msgpack::object_map& m) {
        command c;
        bool have_argv = false;
        for (std::uint32_t i = 0; i < m.size; ++i) {
            const auto key = key_of(m.ptr[i].key);
            const auto& v = m.ptr[i].val;
            if (key == "argv") {
                if (v.type != msgpack::type::ARRAY) throw bad_field{"argv is not an array"};
                if (v.via.array.size == 0) throw bad_field{"argv is empty"};
                if (v.via.array.size > k_max_args) throw bad_field{"argv is too long"};
                c.argv.clear();
                for (std::uint32_t a = 0; a < v.via.array.size; ++a)
                    c.argv.push_back(text(v.via.array.ptr[a], "argv element"));
                have_argv = true;
            } else if (key == "env") {
                if (v.type != msgpack::type::MAP) throw bad_field{"env is not a map"};
                if (v.via.map.size > k_max_args) throw bad_field{"env is too long"};
                c.env.clear();
                for (std::uint32_t e = 0; e < v.via.map.size; ++e) {
                    auto name = text(v.via.map.ptr[e].key, "env name");
                    if (name.empty() || name.find('=') != std::string::npos ||
                        name.find('\0') != std::string::npos)
                        throw bad_field{"env name '" + name.substr(0, 32) + "' is not valid"};
                    auto value = text(v.via.map.ptr[e].val, "env value");
                    if (value.find('\0') != std::string::npos)
                        throw bad_field{"env value of " + name.substr(0, 32) + " has a NUL byte"};
                    c.env.emplace_back(std::move(name), std::move(value));
                }
            } else if (key == "dir") {
                c.dir = text(v, "dir");
                if (c.dir.find('\0') != std::string::npos) throw bad_field{"dir has a NUL byte"};
            }  // unknown keys: ignored (later revisions may add some)
        }
        if (!have_argv) throw bad_field{"no argv"};
        for (const auto& a : c.argv)
            if (a.find('\0') != std::string::npos) throw bad_field{"argv has a NUL byte"};
        return c;
    });
}

std::string encode(const outcome& o) {
    std::string out;
    string_writer w{&out};
    packer p(w);
    p.pack_map(10);
    pack_str(p, "exit");
    if (o.exit_code)
        p.pack(*o.exit_code);
    else
        p.pack_nil();
    pack_str(p, "signal");
    p.pack(static_cast<std::uint32_t>(std::max(o.signal, 0)));
    pack_str(p, "stdout");
    pack_bin(p, o.out);
    pack_str(p, "stderr");
    pack_bin(p, o.err);
    pack_str(p, "stdout_dropped");
    p.pack(o.out_dropped);
    pack_str(p, "stderr_dropped");
    p.pack(o.err_dropped);
    pack_str(p, "wall_us");
    p.pack(o.wall_us);
    pack_str(p, "rss_kb");
    p.pack(o.rss_kb);
    pack_str(p, "host");
    pack_str(p, o.host);
    pack_str(p, "cmd");
    pack_str(p, o.cmd);
    return out;
}

expected<outcome, std::string> decode_outcome(std::string_view bytes_in) {
    return decode_map(bytes_in, [](const msgpack::object_map& m) {
        outcome o;
        for (std::uint32_t i = 0; i < m.size; ++i) {
            const auto key = key_of(m.ptr[i].key);
            const auto& v = m.ptr[i].val;
            if (key == "exit") {
                if (v.type == msgpack::type::NIL) {
                    o.exit_code.reset();
                } else {
                    const auto code = uint(v, "exit");
                    if (code > 255) throw bad_field{"exit is out of range"};
                    o.exit_code = static_cast<int>(code);
                }
            } else if (key == "signal") {
                const auto sig = uint(v, "signal");
                if (sig > 255) throw bad_field{"signal is out of range"};
                o.signal = static_cast<int>(sig);
            } else if (key == "stdout") {
                o.out = bytes(v, "stdout");
            } else if (key == "stderr") {
                o.err = bytes(v, "stderr");
            } else if (key == "stdout_dropped") {
                o.out_dropped = uint(v, "stdout_dropped");
            } else if (key == "stderr_dropped") {
                o.err_dropped = uint(v, "stderr_dropped");
            } else if (key == "wall_us") {
                o.wall_us = uint(v, "wall_us");
            } else if (key == "rss_kb") {
                o.rss_kb = uint(v, "rss_kb");
            } else if (key == "host") {
                o.host = text(v, "host");
            } else if (key == "cmd") {
                o.cmd = text(v, "cmd");
            }
        }
        return o;
    });
}

std::string shell_quote(std::string_view arg) {
    const bool plain = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.' || c == '/' || c == ',' || c == ':' || c == '+' ||
               c == '@' || c == '%' || c >= 0x80;
    });
    if (plain) return std::string(arg);
    std::string out = "'";
    for (char c : arg) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += '\'';
    return out;
}

std::string shell_line(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty()) out += ' ';
        out += shell_quote(a);
    }
    return out;
}

}  // namespace zfarm::exec
