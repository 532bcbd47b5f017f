#include "zfarm/codec.hpp"

#include <msgpack.hpp>

#include "msgpack_writer.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

namespace zfarm::proto {
namespace {

constexpr std::size_t k_max_depth = 4;

using detail::pack_bin;
using detail::pack_str;
using detail::packer;
using detail::string_writer;
void pack_ref(packer& p, const task_ref& r) {
    p.pack_array(3);
    pack_str(p, r.job);
    p.pack(r.id);
    p.pack(r.attempt);
}
void header(packer& p, msg_type t, std::uint32_t nfields) {
    p.pack_array(2 + nfields);
    p.pack(k_protocol_version);
    p.pack(static_cast<std::uint8_t>(t));
}

void pack_task(packer& p, std::string_view job, std::uint64_t id, std::uint32_t attempt,
               std::string_view kind, std::string_view payload, std::uint32_t timeout_ms) {
    header(p, msg_type::task, 6);
    pack_str(p, job);
    p.pack(id);
    p.pack(attempt);
    pack_str(p, kind);
    pack_bin(p, payload);
    p.pack(timeout_ms);
}

struct encoder {
    packer& p;
    void operator()(const job_open& m) {
        header(p, msg_type::job_open, 3);
        pack_str(p, m.job);
        p.pack(m.resume);
        p.pack(m.retries);
    }
    void operator()(const job_close& m) {
        header(p, msg_type::job_close, 3);
        pack_str(p, m.job);
        p.pack(m.total);
        p.pack(m.cancel);
    }
    void operator()(const task& m) {
        pack_task(p, m.job, m.id, m.attempt, m.kind, m.payload, m.timeout_ms);
    }
    void operator()(const result& m) {
        header(p, msg_type::result, 10);
        pack_str(p, m.job);
        p.pack(m.id);
        p.pack(m.attempt);
        pack_str(p, m.worker);
        p.pack(static_cast<std::uint8_t>(m.status));
        p.pack(m.elapsed_us);
        pack_bin(p, m.output);
        pack_str(p, m.error);
        p.pack(m.started_us);
        pack_str(p, m.kind);
    }
    void operator()(const hello& m) {
        header(p, msg_type::hello, 5);
        pack_str(p, m.worker);
        pack_str(p, m.host);
        p.pack(m.pid);
        p.pack(m.threads);
        pack_str(p, m.version);
    }
    void operator()(const heartbeat& m) {
        header(p, msg_type::heartbeat, 3);
        pack_str(p, m.worker);
        p.pack(m.tasks_done);
        p.pack_array(static_cast<std::uint32_t>(m.running.size()));
        for (const auto& r : m.running)
            pack_ref(p, r);
    }
    void operator()(const bye& m) {
        header(p, msg_type::bye, 2);
        pack_str(p, m.worker);
        p.pack_array(static_cast<std::uint32_t>(m.returned.size()));
        for (const auto& r : m.returned)
            pack_ref(p, r);
    }
    void operator()(const ack& m) {
        header(p, msg_type::ack, 4);
        pack_str(p, m.job);
        p.pack_array(static_cast<std::uint32_t>(m.ids.size()));
        for (auto id : m.ids)
            p.pack(id);
        p.pack_array(static_cast<std::uint32_t>(m.running.size()));
        for (auto id : m.running)
            p.pack(id);
        p.pack_array(static_cast<std::uint32_t>(m.failed.size()));
        for (auto id : m.failed)
            p.pack(id);
    }
    void operator()(const lost& m) {
        header(p, msg_type::lost, 2);
        pack_str(p, m.worker);
        p.pack_array(static_cast<std::uint32_t>(m.tasks.size()));
        for (const auto& r : m.tasks)
            pack_ref(p, r);
    }
    void operator()(const done& m) {
        header(p, msg_type::done, 7);
        pack_str(p, m.job);
        p.pack(m.total);
        p.pack(m.ok);
        p.pack(m.failed);
        p.pack(m.workers);
        p.pack(m.elapsed_ms);
        p.pack(m.open_jobs);
    }
    void operator()(const stop& m) {
        header(p, msg_type::stop, 2);
        pack_str(p, m.job);
        pack_str(p, m.reason);
    }
    void operator()(const credit& m) {
        header(p, msg_type::credit, 3);
        pack_str(p, m.worker);
        p.pack(m.amount);
        p.pack(m.reset);
    }
    void operator()(const recorded& m) {
        header(p, msg_type::recorded, 4);
        pack_str(p, m.job);
        p.pack(m.floor);
        p.pack_array(static_cast<std::uint32_t>(m.ids.size()));
        for (auto id : m.ids)
            p.pack(id);
        p.pack(m.more);
    }
    void operator()(const retry& m) {
        header(p, msg_type::retry, 4);
        pack_str(p, m.job);
        p.pack(m.id);
        p.pack(m.attempt);
        pack_str(p, m.reason);
    }
};

// Thrown only inside decode() and caught at its boundary.
struct field_error {
    std::string what;
};

// Reads the fields of a message array in order, checking type and range.
class field_reader {
  public:
    field_reader(const msgpack::object_array& a, std::uint32_t first) : a_(a), next_(first) {}

    const msgpack::object& next(const char* name) {
        if (next_ >= a_.size) throw field_error{std::string("missing field ") + name};
        return a_.ptr[next_++];
    }
    // False when the sender left out the remaining fields: fields added to a
    // message after version 1 was first published are optional (3.2).
    bool has_more() const noexcept { return next_ < a_.size; }
    template <class U>
    U uint(const char* name) {
        return as_uint<U>(next(name), name);
    }
    bool boolean(const char* field) {
        const auto& o = next(field);
        if (o.type != msgpack::type::BOOLEAN)
            throw field_error{std::string("field ") + field + " is not bool"};
        return o.via.boolean;
    }
    std::string name(const char* field) { return as_name(next(field), field); }
    std::string bytes(const char* field) {
        const auto& o = next(field);
        if (o.type == msgpack::type::BIN) return std::string(o.via.bin.ptr, o.via.bin.size);
        if (o.type == msgpack::type::STR) return std::string(o.via.str.ptr, o.via.str.size);
        throw field_error{std::string("field ") + field + " is not bin"};
    }
    std::string text(const char* field) {
        const auto& o = next(field);
        if (o.type != msgpack::type::STR)
            throw field_error{std::string("field ") + field + " is not str"};
        return std::string(o.via.str.ptr, o.via.str.size);
    }
    const msgpack::object_array& array(const char* field) {
        const auto& o = next(field);
        if (o.type != msgpack::type::ARRAY)
            throw field_error{std::string("field ") + field + " is not an array"};
        if (o.via.array.size > k_max_ids_per_message)
            throw field_error{std::string("field ") + field + " has too many elements"};
        return o.via.array;
    }

    template <class U>
    static U as_uint(const msgpack::object& o, const char* name) {
        if (o.type != msgpack::type::POSITIVE_INTEGER)
            throw field_error{std::string("field ") + name + " is not an unsigned integer"};
        if (o.via.u64 > std::numeric_limits<U>::max())
            throw field_error{std::string("field ") + name + " is out of range"};
        return static_cast<U>(o.via.u64);
    }
    static std::string as_name(const msgpack::object& o, const char* field) {
        if (o.type != msgpack::type::STR)
            throw field_error{std::string("field ") + field + " is not str"};
        if (o.via.str.size > k_max_name)
            throw field_error{std::string("field ") + field + " is too long"};
        return std::string(o.via.str.ptr, o.via.str.size);
    }
    static task_ref as_ref(const msgpack::object& o) {
        if (o.type != msgpack::type::ARRAY || o.via.array.size < 3)
            throw field_error{"task reference is not [job, id, attempt]"};
        const auto& a = o.via.array;
        return task_ref{as_name(a.ptr[0], "job"), as_uint<std::uint64_t>(a.ptr[1], "id"),
                        as_uint<std::uint32_t>(a.ptr[2], "attempt")};
    }

  private:
    const msgpack::object_array& a_;
    std::uint32_t next_;
};

std::vector<task_ref> read_refs(field_reader& r, const char* field) {
    const auto& a = r.array(field);
    std::vector<task_ref> out;
    out.reserve(a.size);
    for (std::uint32_t i = 0; i < a.size; ++i)
        out.push_back(field_reader::as_ref(a.ptr[i]));
    return out;
}

std::vector<std::uint64_t> read_ids(field_reader& r, const char* field) {
    const auto& a = r.array(field);
    std::vector<std::uint64_t> out;
    out.reserve(a.size);
    for (std::uint32_t i = 0; i < a.size; ++i)
        out.push_back(field_reader::as_uint<std::uint64_t>(a.ptr[i], field));
    return out;
}

message decode_fields(msg_type t, field_reader& r) {
    switch (t) {
        case msg_type::job_open: {
            job_open m;
            m.job = r.name("job");
            if (r.has_more()) m.resume = r.boolean("resume");
            if (r.has_more()) m.retries = r.uint<std::uint32_t>("retries");
            return m;
        }
        case msg_type::job_close: {
            job_close m;
            m.job = r.name("job");
            m.total = r.uint<std::uint64_t>("total");
            m.cancel = r.boolean("cancel");
            return m;
        }
        case msg_type::task: {
            task m;
            m.job = r.name("job");
            m.id = r.uint<std::uint64_t>("id");
            m.attempt = r.uint<std::uint32_t>("attempt");
            m.kind = r.name("kind");
            m.payload = r.bytes("payload");
            m.timeout_ms = r.uint<std::uint32_t>("timeout_ms");
            return m;
        }
        case msg_type::result: {
            result m;
            m.job = r.name("job");
            m.id = r.uint<std::uint64_t>("id");
            m.attempt = r.uint<std::uint32_t>("attempt");
            m.worker = r.name("worker");
            auto status = r.uint<std::uint8_t>("status");
            if (status > 1) throw field_error{"field status is out of range"};
            m.status = static_cast<task_status>(status);
            m.elapsed_us = r.uint<std::uint64_t>("elapsed_us");
            m.output = r.bytes("output");
            m.error = r.text("error");
            m.started_us = r.uint<std::uint64_t>("started_us");
            if (r.has_more()) m.kind = r.name("kind");
            return m;
        }
        case msg_type::hello: {
            hello m;
            m.worker = r.name("worker");
            m.host = r.name("host");
            m.pid = r.uint<std::uint32_t>("pid");
            m.threads = r.uint<std::uint32_t>("threads");
            m.version = r.name("version");
            return m;
        }
        case msg_type::heartbeat: {
            heartbeat m;
            m.worker = r.name("worker");
            m.tasks_done = r.uint<std::uint64_t>("tasks_done");
            m.running = read_refs(r, "running");
            return m;
        }
        case msg_type::bye: {
            bye m;
            m.worker = r.name("worker");
            if (r.has_more()) m.returned = read_refs(r, "returned");
            return m;
        }
        case msg_type::ack: {
            ack m;
            m.job = r.name("job");
            m.ids = read_ids(r, "ids");
            m.running = read_ids(r, "running");
            if (r.has_more()) m.failed = read_ids(r, "failed");
            return m;
        }
        case msg_type::lost: {
            lost m;
            m.worker = r.name("worker");
            m.tasks = read_refs(r, "tasks");
            return m;
        }
        case msg_type::done: {
            done m;
            m.job = r.name("job");
            m.total = r.uint<std::uint64_t>("total");
            m.ok = r.uint<std::uint64_t>("ok");
            m.failed = r.uint<std::uint64_t>("failed");
            m.workers = r.uint<std::uint32_t>("workers");
            m.elapsed_ms = r.uint<std::uint64_t>("elapsed_ms");
            m.open_jobs = r.uint<std::uint32_t>("open_jobs");
            return m;
        }
        case msg_type::stop: {
            stop m;
            m.job = r.name("job");
            m.reason = r.text("reason");
            return m;
        }
        case msg_type::credit: {
            credit m;
            m.worker = r.name("worker");
            m.amount = r.uint<std::uint32_t>("amount");
            m.reset = r.boolean("reset");
            return m;
        }
        case msg_type::recorded: {
            recorded m;
            m.job = r.name("job");
            m.floor = r.uint<std::uint64_t>("floor");
            m.ids = read_ids(r, "ids");
            m.more = r.boolean("more");
            return m;
        }
        case msg_type::retry: {
            retry m;
            m.job = r.name("job");
            m.id = r.uint<std::uint64_t>("id");
            m.attempt = r.uint<std::uint32_t>("attempt");
            m.reason = r.text("reason");
            return m;
        }
        case msg_type::batch:
            break;
    }
    throw field_error{"unknown type"};  // unreachable: checked by the caller
}

decode_error fail(decode_errc c, std::string detail) {
    return decode_error{c, std::move(detail)};
}

}  // namespace

std::string_view to_string(msg_type t) noexcept {
    switch (t) {
        case msg_type::job_open:
            return "JOB_OPEN";
        case msg_type::job_close:
            return "JOB_CLOSE";
        case msg_type::task:
            return "TASK";
        case msg_type::result:
            return "RESULT";
        case msg_type::hello:
            return "HELLO";
        case msg_type::heartbeat:
            return "HEARTBEAT";
        case msg_type::bye:
            return "BYE";
        case msg_type::ack:
            return "ACK";
        case msg_type::lost:
            return "LOST";
        case msg_type::done:
            return "DONE";
        case msg_type::stop:
            return "STOP";
        case msg_type::credit:
            return "CREDIT";
        case msg_type::recorded:
            return "RECORDED";
        case msg_type::retry:
            return "RETRY";
        case msg_type::batch:
            return "BATCH";
    }
    return "?";
}

msg_type type_of(const message& m) noexcept {
    return static_cast<msg_type>(m.index() + 1);
}

std::string_view to_string(decode_errc c) noexcept {
    switch (c) {
        case decode_errc::empty:
            return "empty frame";
        case decode_errc::malformed:
            return "malformed msgpack";
        case decode_errc::trailing_bytes:
            return "trailing bytes";
        case decode_errc::limit_exceeded:
            return "limit exceeded";
        case decode_errc::not_an_array:
            return "not an array";
        case decode_errc::bad_version:
            return "bad version";
        case decode_errc::unknown_type:
            return "unknown message type";
        case decode_errc::bad_field:
            return "bad field";
    }
    return "?";
}

void encode(const message& m, std::string& out) {
    out.clear();
    encode_append(m, out);
}

void encode_append(const message& m, std::string& out) {
    string_writer w{&out};
    packer p(w);
    std::visit(encoder{p}, m);
}

void encode_append(const task& m, std::string& out) {
    string_writer w{&out};
    packer p(w);
    encoder{p}(m);
}

void encode_task(std::string& out, std::string_view job, std::uint64_t id, std::uint32_t attempt,
                 std::string_view kind, std::string_view payload, std::uint32_t timeout_ms) {
    string_writer w{&out};
    packer p(w);
    pack_task(p, job, id, attempt, kind, payload, timeout_ms);
}

void encode_append(const result& m, std::string& out) {
    string_writer w{&out};
    packer p(w);
    encoder{p}(m);
}

std::string encode(const message& m) {
    std::string out;
    encode(m, out);
    return out;
}

namespace {

// A message's array checked (version, type) and its fields decoded. Never
// throws: a bad field is this message's error alone.
expected<message, decode_error> decode_object(const msgpack::object& o) noexcept {
    try {
        if (o.type != msgpack::type::ARRAY)
            return unexpected{fail(decode_errc::not_an_array, "message is not an array")};
        const auto& a = o.via.array;
        if (a.size < 2 || a.ptr[0].type != msgpack::type::POSITIVE_INTEGER)
            return unexpected{fail(decode_errc::bad_version, "no version field")};
        if (a.ptr[0].via.u64 != k_protocol_version)
            return unexpected{fail(decode_errc::bad_version,
                                   "version " + std::to_string(a.ptr[0].via.u64) + ", expected " +
                                       std::to_string(k_protocol_version))};
        if (a.ptr[1].type != msgpack::type::POSITIVE_INTEGER || a.ptr[1].via.u64 == 0 ||
            a.ptr[1].via.u64 > static_cast<std::uint64_t>(msg_type::batch))
            return unexpected{fail(decode_errc::unknown_type, "unknown message type")};
        if (a.ptr[1].via.u64 == static_cast<std::uint64_t>(msg_type::batch))
            return unexpected{
                fail(decode_errc::unknown_type, "BATCH where one message is expected")};
        field_reader r(a, 2);
        return decode_fields(static_cast<msg_type>(a.ptr[1].via.u64), r);
    } catch (const field_error& e) {
        return unexpected{fail(decode_errc::bad_field, e.what)};
    } catch (const std::bad_alloc&) {
        return unexpected{fail(decode_errc::limit_exceeded, "allocation failed")};
    } catch (const std::exception& e) {
        return unexpected{fail(decode_errc::malformed, e.what())};
    }
}

// Reads an unsigned msgpack integer at `p`; advances it. False when there is
// none.
bool peek_uint(const unsigned char*& p, const unsigned char* end, std::uint64_t& v) {
    if (p >= end) return false;
    const unsigned c = *p++;
    if (c < 0x80) {
        v = c;
        return true;
    }
    const int n = c == 0xcc ? 1 : c == 0xcd ? 2 : c == 0xce ? 4 : c == 0xcf ? 8 : 0;
    if (n == 0 || end - p < n) return false;
    v = 0;
    for (int i = 0; i < n; ++i)
        v = (v << 8) | *p++;
    return true;
}

// Whether the frame starts like a BATCH: an array whose element 1 is 15. Its
// messages sit two levels deeper (the BATCH, its list), so it is unpacked
// with two more levels.
bool looks_like_batch(const char* data, std::size_t size) {
    const auto* p = reinterpret_cast<const unsigned char*>(data);
    const auto* end = p + size;
    const unsigned c = *p;
    if (c >= 0x90 && c <= 0x9f) {
        p += 1;
    } else if (c == 0xdc && size >= 3) {
        p += 3;
    } else if (c == 0xdd && size >= 5) {
        p += 5;
    } else {
        return false;
    }
    std::uint64_t version = 0, type = 0;
    return peek_uint(p, end, version) && peek_uint(p, end, type) &&
           type == static_cast<std::uint64_t>(msg_type::batch);
}

// Unpacks one frame within the limits of 3.4; `depth` is the nesting allowed.
msgpack::object_handle unpack_frame(const char* data, std::size_t size, std::size_t depth,
                                    std::size_t& offset) {
    // Every element takes at least one byte, so no honest container declares
    // more elements than the frame has bytes: a 5-byte frame can never make
    // the unpacker reserve room for four billion objects.
    const std::size_t max_elems = std::min(size, k_max_ids_per_message * 4);
    const msgpack::unpack_limit limits(max_elems, max_elems / 2, size, size, 0, depth);
    offset = 0;
    return msgpack::unpack(data, size, offset, nullptr, nullptr, limits);
}

}  // namespace

expected<message, decode_error> decode(std::span<const std::byte> frame) noexcept {
    if (frame.empty()) return unexpected{fail(decode_errc::empty, "empty frame")};
    const auto* data = reinterpret_cast<const char*>(frame.data());
    const std::size_t size = frame.size();
    try {
        std::size_t offset = 0;
        msgpack::object_handle oh = unpack_frame(data, size, k_max_depth, offset);
        if (offset != size)
            return unexpected{fail(decode_errc::trailing_bytes,
                                   std::to_string(size - offset) + " bytes after the message")};
        if (oh.get().type != msgpack::type::ARRAY)
            return unexpected{fail(decode_errc::not_an_array, "top-level object is not an array")};
        return decode_object(oh.get());
    } catch (const msgpack::size_overflow& e) {
        return unexpected{fail(decode_errc::limit_exceeded, e.what())};
    } catch (const std::bad_alloc&) {
        return unexpected{fail(decode_errc::limit_exceeded, "allocation failed")};
    } catch (const std::exception& e) {
        return unexpected{fail(decode_errc::malformed, e.what())};
    }
}

void decode_frame(std::span<const std::byte> frame, decoded_frame& out) noexcept {
    out.clear();
    auto whole_frame_fails = [&](decode_errc c, std::string detail) {
        out.clear();
        out.emplace_back(unexpected{fail(c, std::move(detail))});
    };
    if (frame.empty()) return whole_frame_fails(decode_errc::empty, "empty frame");
    const auto* data = reinterpret_cast<const char*>(frame.data());
    const std::size_t size = frame.size();
    try {
        const bool batch = looks_like_batch(data, size);
        std::size_t offset = 0;
        msgpack::object_handle oh =
            unpack_frame(data, size, batch ? k_max_depth + 2 : k_max_depth, offset);
        if (offset != size)
            return whole_frame_fails(decode_errc::trailing_bytes,
                                     std::to_string(size - offset) + " bytes after the message");
        const msgpack::object& o = oh.get();
        if (o.type != msgpack::type::ARRAY)
            return whole_frame_fails(decode_errc::not_an_array, "top-level object is not an array");
        if (!batch) {
            out.push_back(decode_object(o));
            return;
        }
        const auto& a = o.via.array;
        if (a.ptr[0].via.u64 != k_protocol_version)
            return whole_frame_fails(decode_errc::bad_version,
                                     "BATCH of version " + std::to_string(a.ptr[0].via.u64));
        if (a.size < 3 || a.ptr[2].type != msgpack::type::ARRAY || a.ptr[2].via.array.size == 0)
            return whole_frame_fails(decode_errc::bad_field,
                                     "BATCH messages is not a non-empty array");
        const auto& messages = a.ptr[2].via.array;
        out.reserve(messages.size);
        for (std::uint32_t i = 0; i < messages.size; ++i)
            out.push_back(decode_object(messages.ptr[i]));
    } catch (const msgpack::size_overflow& e) {
        whole_frame_fails(decode_errc::limit_exceeded, e.what());
    } catch (const std::bad_alloc&) {
        whole_frame_fails(decode_errc::limit_exceeded, "allocation failed");
    } catch (const std::exception& e) {
        whole_frame_fails(decode_errc::malformed, e.what());
    }
}

void batch_encoder::clear() {
    buf_.assign(k_prefix, '\0');
    count_ = 0;
}

std::string_view batch_encoder::frame() {
    if (count_ == 0) return {};
    if (count_ == 1) return std::string_view(buf_).substr(k_prefix);
    // The shortest header for count_ messages, right-aligned in the prefix.
    unsigned char h[k_prefix];
    std::size_t n = 0;
    h[n++] = 0x93;  // fixarray of 3: version, type, messages
    h[n++] = static_cast<unsigned char>(k_protocol_version);
    h[n++] = static_cast<unsigned char>(msg_type::batch);
    const auto c = static_cast<std::uint32_t>(count_);
    if (c < 16) {
        h[n++] = static_cast<unsigned char>(0x90 | c);
    } else if (c <= 0xffff) {
        h[n++] = 0xdc;
        h[n++] = static_cast<unsigned char>(c >> 8);
        h[n++] = static_cast<unsigned char>(c);
    } else {
        h[n++] = 0xdd;
        for (int shift = 24; shift >= 0; shift -= 8)
            h[n++] = static_cast<unsigned char>(c >> shift);
    }
    std::memcpy(buf_.data() + (k_prefix - n), h, n);
    return std::string_view(buf_).substr(k_prefix - n);
}

}  // namespace zfarm::proto
