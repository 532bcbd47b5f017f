// Reading msgpack straight from a frame's bytes, for the message decoder
// (codec.cpp): one value's header at a time, with no object tree and no
// allocation but for an error's text. It checks what msgpack-c's unpacker
// checked with the limits of PROTOCOL.md 3.4, and finds the same first fault
// in the same order: a truncated value, or the byte 0xc1 that msgpack never
// uses, is malformed; an array or map longer than its limit, a container
// nested deeper than the limit, or any ext value exceeds the limits.
//
// Private to zfarm_common. A reader is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "zfarm/codec.hpp"

namespace zfarm::detail {

// The kinds of value a reader hands back. A signed integer format holding a
// value >= 0 reads as `uint`, as it did through msgpack-c.
enum class mp_type : std::uint8_t { nil, boolean, uint, negative, float_, str, bin, array, map };

struct mp_value {
    mp_type type = mp_type::nil;
    std::uint64_t n = 0;  // uint: the value; bool: 0 or 1; str, bin: bytes; array, map: count
    const char* data = nullptr;  // str, bin: the bytes, in the frame
};

class msgpack_reader {
  public:
    // `max_depth`: the deepest nesting level a container may sit at (the
    // frame's top-level value is level 1). Any array may hold at most
    // min(size, 262144) elements and any map half that (3.4): every element
    // takes a byte, so no honest container declares more than the frame has.
    msgpack_reader(const char* data, std::size_t size, std::size_t max_depth) noexcept
        : begin_(reinterpret_cast<const unsigned char*>(data)),
          p_(begin_),
          end_(begin_ + size),
          max_array_(size < k_array_limit ? size : k_array_limit),
          max_depth_(max_depth) {}

    // Reads the header of the value at the cursor, at nesting `level`, and
    // the bytes of a str or bin; an array's or map's elements come next.
    // False, with error() set (malformed or limit_exceeded), when the value
    // is not one a message may hold. The forms zfarm's encoder writes for
    // small values are read here, inline; the others by read_any().
    [[gnu::always_inline]] bool read(mp_value& v, std::size_t level) {
        if (p_ != end_) {
            const unsigned c = *p_;
            if (c <= 0x7f) {
                ++p_;
                return set(v, mp_type::uint, c);
            }
            if ((c & 0xe0) == 0xa0 && left() > (c & 0x1f)) {
                ++p_;
                return body(v, mp_type::str, c & 0x1f);
            }
            if ((c & 0xf0) == 0x90) {
                ++p_;
                return container(v, mp_type::array, c & 0x0f, level);
            }
            if (c == 0xc4 && left() >= 2 && left() - 2 >= p_[1]) {
                p_ += 2;
                return body(v, mp_type::bin, p_[-1]);
            }
            if (c >= 0xcc && c <= 0xcf && left() > (1u << (c - 0xcc))) {
                const unsigned bytes = 1u << (c - 0xcc);
                std::uint64_t n = 0;
                for (unsigned i = 1; i <= bytes; ++i)
                    n = (n << 8) | p_[i];
                p_ += 1 + bytes;
                return set(v, mp_type::uint, n);
            }
        }
        return read_any(v, level);
    }

    // read() for any value.
    [[gnu::noinline]] bool read_any(mp_value& v, std::size_t level) {
        if (p_ == end_) return truncated();
        const unsigned c = *p_++;
        if (c <= 0x7f) return set(v, mp_type::uint, c);
        if (c >= 0xe0) return set(v, mp_type::negative, 0);
        if (c >= 0xa0 && c <= 0xbf) return body(v, mp_type::str, c & 0x1f);
        if (c >= 0x90 && c <= 0x9f) return container(v, mp_type::array, c & 0x0f, level);
        if (c >= 0x80 && c <= 0x8f) return container(v, mp_type::map, c & 0x0f, level);
        std::uint64_t n = 0;
        switch (c) {
            case 0xc0:
                return set(v, mp_type::nil, 0);
            case 0xc2:
            case 0xc3:
                return set(v, mp_type::boolean, c & 1);
            case 0xc4:
                return big_endian<1>(n) && body(v, mp_type::bin, n);
            case 0xc5:
                return big_endian<2>(n) && body(v, mp_type::bin, n);
            case 0xc6:
                return big_endian<4>(n) && body(v, mp_type::bin, n);
            case 0xc7:  // ext 8, 16, 32: a length, a type byte, the data
                return big_endian<1>(n) && ext(n + 1);
            case 0xc8:
                return big_endian<2>(n) && ext(n + 1);
            case 0xc9:
                return big_endian<4>(n) && ext(n + 1);
            case 0xca:
                return skip_bytes(4) && set(v, mp_type::float_, 0);
            case 0xcb:
                return skip_bytes(8) && set(v, mp_type::float_, 0);
            case 0xcc:
                return big_endian<1>(n) && set(v, mp_type::uint, n);
            case 0xcd:
                return big_endian<2>(n) && set(v, mp_type::uint, n);
            case 0xce:
                return big_endian<4>(n) && set(v, mp_type::uint, n);
            case 0xcf:
                return big_endian<8>(n) && set(v, mp_type::uint, n);
            case 0xd0:
                return signed_int<1>(v);
            case 0xd1:
                return signed_int<2>(v);
            case 0xd2:
                return signed_int<4>(v);
            case 0xd3:
                return signed_int<8>(v);
            case 0xd4:
            case 0xd5:
            case 0xd6:
            case 0xd7:
            case 0xd8:  // fixext 1 to 16: a type byte, then the data
                return ext(1 + (std::uint64_t{1} << (c - 0xd4)));
            case 0xd9:
                return big_endian<1>(n) && body(v, mp_type::str, n);
            case 0xda:
                return big_endian<2>(n) && body(v, mp_type::str, n);
            case 0xdb:
                return big_endian<4>(n) && body(v, mp_type::str, n);
            case 0xdc:
                return big_endian<2>(n) && container(v, mp_type::array, n, level);
            case 0xdd:
                return big_endian<4>(n) && container(v, mp_type::array, n, level);
            case 0xde:
                return big_endian<2>(n) && container(v, mp_type::map, n, level);
            case 0xdf:
                return big_endian<4>(n) && container(v, mp_type::map, n, level);
            default:  // 0xc1
                return never_used();
        }
    }

    // Reads past the value at the cursor and everything it holds, checking
    // it as read() does. Recurses once per level, at most max_depth deep.
    bool skip(std::size_t level) {
        mp_value v;
        if (!read(v, level)) return false;
        std::uint64_t elements = v.type == mp_type::array ? v.n
                                 : v.type == mp_type::map ? 2 * v.n
                                                          : 0;
        for (; elements > 0; --elements)
            if (!skip(level + 1)) return false;
        return true;
    }

    std::size_t offset() const noexcept { return static_cast<std::size_t>(p_ - begin_); }
    void seek(std::size_t offset) noexcept { p_ = begin_ + offset; }
    std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - p_); }
    bool at_end() const noexcept { return p_ == end_; }

    // Why the last read failed; also where the decoder puts its own errors.
    proto::decode_error& error() noexcept { return error_; }
    // Sets error() and returns false.
    bool fail(proto::decode_errc code, std::string detail) {
        error_.code = code;
        error_.detail = std::move(detail);
        return false;
    }

  private:
    static constexpr std::size_t k_array_limit = proto::k_max_ids_per_message * 4;

    static bool set(mp_value& v, mp_type t, std::uint64_t n) noexcept {
        v.type = t;
        v.n = n;
        return true;
    }
    bool skip_bytes(std::uint64_t n) {
        if (left() < n) return truncated();
        p_ += n;
        return true;
    }
    // An unsigned integer of N bytes, most significant first.
    template <unsigned N>
    bool big_endian(std::uint64_t& n) {
        if (left() < N) return truncated();
        n = 0;
        for (unsigned i = 0; i < N; ++i)
            n = (n << 8) | p_[i];
        p_ += N;
        return true;
    }
    template <unsigned N>
    bool signed_int(mp_value& v) {
        std::uint64_t n = 0;
        if (!big_endian<N>(n)) return false;
        constexpr unsigned shift = 64 - 8 * N;
        const auto value = static_cast<std::int64_t>(n << shift) >> shift;  // sign-extended
        return value >= 0 ? set(v, mp_type::uint, static_cast<std::uint64_t>(value))
                          : set(v, mp_type::negative, 0);
    }
    [[gnu::always_inline]] bool body(mp_value& v, mp_type t, std::uint64_t n) {
        if (left() < n) return truncated();
        v.data = reinterpret_cast<const char*>(p_);
        p_ += n;
        return set(v, t, n);
    }
    // An ext value of `n` bytes after its header: refused once it is all
    // there (a cut one is malformed, as for msgpack-c).
    bool ext(std::uint64_t n) {
        if (left() < n) return truncated();
        return ext_refused();
    }
    [[gnu::always_inline]] bool container(mp_value& v, mp_type t, std::uint64_t n,
                                          std::size_t level) {
        const std::size_t limit = t == mp_type::array ? max_array_ : max_array_ / 2;
        if (n > limit) return too_long(t, n, limit);
        if (level > max_depth_) return too_deep();
        return set(v, t, n);
    }

    // The errors, out of the way of the reads.
    [[gnu::cold, gnu::noinline]] bool truncated() {
        return fail(proto::decode_errc::malformed,
                    "truncated at offset " + std::to_string(offset()));
    }
    [[gnu::cold, gnu::noinline]] bool never_used() {
        return fail(proto::decode_errc::malformed,
                    "byte 0xc1 (never used) at offset " + std::to_string(offset() - 1));
    }
    [[gnu::cold, gnu::noinline]] bool ext_refused() {
        return fail(proto::decode_errc::limit_exceeded,
                    "ext value at offset " + std::to_string(offset()) + " (none allowed)");
    }
    [[gnu::cold, gnu::noinline]] bool too_long(mp_type t, std::uint64_t n, std::size_t limit) {
        const bool array = t == mp_type::array;
        return fail(proto::decode_errc::limit_exceeded,
                    std::string(array ? "array of " : "map of ") + std::to_string(n) +
                        (array ? " elements" : " pairs") + " at offset " +
                        std::to_string(offset()) + ", more than " + std::to_string(limit));
    }
    [[gnu::cold, gnu::noinline]] bool too_deep() {
        return fail(proto::decode_errc::limit_exceeded,
                    "containers nested deeper than " + std::to_string(max_depth_) +
                        " levels at offset " + std::to_string(offset()));
    }

    const unsigned char* begin_;
    const unsigned char* p_;
    const unsigned char* end_;
    std::size_t max_array_;
    std::size_t max_depth_;
    proto::decode_error error_{proto::decode_errc::malformed, {}};
};

}  // namespace zfarm::detail
