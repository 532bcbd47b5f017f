// Encoding and decoding of protocol messages (see protocol.hpp, PROTOCOL.md).
//
// decode() never throws and never allocates more than a bounded multiple of
// its input: a hand-written msgpack reader (src/msgpack_reader.hpp) checks
// every declared length against the bytes left and the limits of 3.4 before
// it reads a field straight into its message, trailing bytes are rejected,
// and every failure is a typed decode_error. Stateless; any thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::proto {

enum class decode_errc {
    empty,           // zero-length frame
    malformed,       // not valid msgpack, or truncated
    trailing_bytes,  // a complete object followed by more bytes
    limit_exceeded,  // a container, string or nesting depth above the limits
    not_an_array,    // the top-level object is not an array
    bad_version,     // version field missing, not an integer, or not ours
    unknown_type,    // type code this version does not define
    bad_field,       // a field is missing or of the wrong msgpack type or range
};

struct decode_error {
    decode_errc code;
    std::string detail;  // one line, for logs
};

std::string_view to_string(decode_errc c) noexcept;

// The encoding of `m` in `out` (cleared first).
void encode(const message& m, std::string& out);
std::string encode(const message& m);
// Appends the encoding of `m` to `out`. The task and result overloads spare
// the hot paths a copy into a `message`.
void encode_append(const message& m, std::string& out);
void encode_append(const task& m, std::string& out);
void encode_append(const result& m, std::string& out);
// A TASK from its fields, where they are not held in a `task`.
void encode_task(std::string& out, std::string_view job, std::uint64_t id, std::uint32_t attempt,
                 std::string_view kind, std::string_view payload, std::uint32_t timeout_ms);

// One frame carrying the messages added to it, in order: a BATCH
// (PROTOCOL.md 5.15), or the message alone when only one was added, so a lone
// task or result costs nothing extra. Not thread-safe.
class batch_encoder {
  public:
    batch_encoder() { clear(); }
    void clear();
    void add(const task& m) { encode_append(m, buf_), ++count_; }
    void add(const result& m) { encode_append(m, buf_), ++count_; }
    void add(const message& m) { encode_append(m, buf_), ++count_; }
    void add_task(std::string_view job, std::uint64_t id, std::uint32_t attempt,
                  std::string_view kind, std::string_view payload, std::uint32_t timeout_ms) {
        encode_task(buf_, job, id, attempt, kind, payload, timeout_ms), ++count_;
    }
    // The bytes of one encoded message (not a BATCH).
    void add_encoded(std::string_view encoded) { buf_.append(encoded), ++count_; }

    std::size_t count() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    // Bytes of the messages added so far.
    std::size_t bytes() const noexcept { return buf_.size() - k_prefix; }
    // Whether adding a message of about `more` bytes would pass the sender's
    // limits (k_max_batch_messages, max_bytes()); never for an empty batch.
    bool full_for(std::size_t more) const noexcept {
        return count_ > 0 && (count_ >= k_max_batch_messages || bytes() + more > max_bytes_);
    }
    // A batch must fit the receiver's frame size (5.15, rule 5): a sender
    // keeps it to half of its own --max-message, which the programs of one
    // pipeline share, and to k_max_batch_bytes.
    void limit_bytes_for(std::size_t max_message) noexcept {
        max_bytes_ = std::min(k_max_batch_bytes, max_message / 2);
    }
    std::size_t max_bytes() const noexcept { return max_bytes_; }
    // The frame to send (empty when nothing was added). Valid until the next
    // change.
    std::string_view frame();

  private:
    // Room for the BATCH header, written in front of the messages by frame():
    // fixarray(3), version, type, then the shortest array header for count_.
    static constexpr std::size_t k_prefix = 8;
    std::string buf_;
    std::size_t count_ = 0;
    std::size_t max_bytes_ = k_max_batch_bytes;
};

// Decodes a frame holding one message. A BATCH is refused (unknown_type):
// this is for sockets that carry no batches.
expected<message, decode_error> decode(std::span<const std::byte> frame) noexcept;
inline expected<message, decode_error> decode(std::string_view frame) noexcept {
    return decode(std::as_bytes(std::span<const char>(frame.data(), frame.size())));
}

// The messages of one frame, as decode_frame() reads them: one element per
// message, the message or why that one was dropped. It keeps the messages of
// earlier frames, also beyond the current frame's size, and decode_frame()
// reads the next frame into them, so that their strings and lists keep
// their capacity: a stream of frames of varying sizes decodes with no
// allocation once the slots have grown. What slots retain is bounded
// (k_max_retained_bytes of messages, give or take the last frame). A caller
// may move from or change an element; the next decode_frame() overwrites
// it. Not thread-safe.
class decoded_frame {
  public:
    using element = expected<message, decode_error>;
    // Past this many bytes of messages held in its slots (the largest each
    // slot ever held, summed), the next decode_frame() starts afresh.
    static constexpr std::size_t k_max_retained_bytes = 8u << 20;

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    element& operator[](std::size_t i) noexcept { return slots_[i]; }
    const element& operator[](std::size_t i) const noexcept { return slots_[i]; }
    element& back() noexcept { return slots_[size_ - 1]; }
    const element& back() const noexcept { return slots_[size_ - 1]; }
    element* begin() noexcept { return slots_.data(); }
    element* end() noexcept { return slots_.data() + size_; }
    const element* begin() const noexcept { return slots_.data(); }
    const element* end() const noexcept { return slots_.data() + size_; }

  private:
    class filler;  // how decode_frame() writes it
    friend void decode_frame(std::span<const std::byte> frame, decoded_frame& out) noexcept;
    std::vector<element> slots_;
    std::vector<std::size_t> slot_bytes_;  // the largest message each slot held
    std::size_t retained_ = 0;             // their sum
    std::size_t size_ = 0;
};

// Decodes a frame from a socket that carries batches (tasks, credit,
// results): one message, or each message of a BATCH in order (5.15), into
// `out`, replacing what it held. A frame that cannot be read at all gives
// one error.
void decode_frame(std::span<const std::byte> frame, decoded_frame& out) noexcept;
inline void decode_frame(std::string_view frame, decoded_frame& out) noexcept {
    decode_frame(std::as_bytes(std::span<const char>(frame.data(), frame.size())), out);
}

}  // namespace zfarm::proto
