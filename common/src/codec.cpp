#include "zfarm/codec.hpp"

#include "msgpack_reader.hpp"
#include "msgpack_writer.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

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
        header(p, msg_type::heartbeat, 7);
        pack_str(p, m.worker);
        p.pack(m.tasks_done);
        p.pack_array(static_cast<std::uint32_t>(m.running.size()));
        for (const auto& r : m.running)
            pack_ref(p, r);
        pack_str(p, m.host);
        p.pack(m.pid);
        p.pack(m.threads);
        pack_str(p, m.version);
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
    void operator()(const report& m) {
        header(p, msg_type::report, 10);
        pack_str(p, m.job);
        p.pack(m.total);
        p.pack(m.elapsed_ms);
        p.pack(m.timed);
        p.pack(m.busy_us);
        p.pack(m.p50_us);
        p.pack(m.p95_us);
        p.pack(m.p99_us);
        p.pack(m.max_us);
        p.pack_array(static_cast<std::uint32_t>(m.workers.size()));
        for (const auto& w : m.workers) {
            p.pack_array(10);
            pack_str(p, w.worker);
            pack_str(p, w.host);
            p.pack(w.threads);
            p.pack(w.tasks);
            p.pack(w.failed);
            p.pack(w.timed);
            p.pack(w.busy_us);
            p.pack(w.idle_us);
            p.pack(w.lost);
            p.pack(w.rejoined);
        }
    }
};

using detail::mp_type;
using detail::mp_value;
using detail::msgpack_reader;

bool is_frame_error(decode_errc c) noexcept {
    return c == decode_errc::malformed || c == decode_errc::limit_exceeded;
}

// The alternative M of `m`, kept (with its strings' and vectors' capacity)
// when `m` already holds one.
template <class M>
M& reuse_as(message& m) {
    if (auto* held = std::get_if<M>(&m)) return *held;
    M fresh;  // default-initialized: emplace<M>() and M{} zero all of M first
    return m.emplace<M>(std::move(fresh));
}

// `out` = the bytes of a str or bin. Cheaper than std::string::assign for
// what decoding mostly does: fill an empty string (clear, then append), or
// overwrite one of the same size (names and payload sizes often repeat from
// one frame to the next when decode_frame() reuses its messages).
void copy_bytes(const mp_value& v, std::string& out) {
    if (out.size() == v.n) {
        if (v.n > 0) std::memcpy(out.data(), v.data, v.n);
        return;
    }
    out.clear();
    out.append(v.data, v.n);
}

// Reads the fields of one message's array in order, checking type and range
// (3.3, 3.4), straight into the message. Every read returns false on
// failure, with why in the reader's error(): malformed or limit_exceeded
// when the bytes are not msgpack within the limits, bad_field otherwise.
class field_reader {
  public:
    // `count`: the fields on the wire; `level`: the message array's nesting.
    field_reader(msgpack_reader& r, std::uint64_t count, std::size_t level)
        : r_(r), left_(count), level_(level + 1) {}

    // False when the sender left out the remaining fields: fields added to a
    // message after version 1 was first published are optional (3.2).
    bool has_more() const noexcept { return left_ > 0; }

    template <class U>
    [[gnu::always_inline]] bool uint(U& out, const char* field) {
        mp_value v;
        return next(v, field) && as_uint(v, out, field);
    }
    bool boolean(bool& out, const char* field) {
        mp_value v;
        if (!next(v, field)) return false;
        if (v.type != mp_type::boolean) return fail(field, " is not bool");
        out = v.n != 0;
        return true;
    }
    [[gnu::always_inline]] bool name(std::string& out, const char* field) {
        mp_value v;
        return next(v, field) && as_name(v, out, field);
    }
    // A bin field; str is accepted too (3.3).
    [[gnu::always_inline]] bool bytes(std::string& out, const char* field) {
        mp_value v;
        if (!next(v, field)) return false;
        if (v.type != mp_type::bin && v.type != mp_type::str) return fail(field, " is not bin");
        copy_bytes(v, out);
        return true;
    }
    [[gnu::always_inline]] bool text(std::string& out, const char* field) {
        mp_value v;
        if (!next(v, field)) return false;
        if (v.type != mp_type::str) return fail(field, " is not str");
        copy_bytes(v, out);
        return true;
    }
    bool ids(std::vector<std::uint64_t>& out, const char* field) {
        std::uint64_t n = 0;
        if (!list(n, out, field)) return false;
        mp_value v;
        for (; n > 0; --n) {
            std::uint64_t id = 0;
            if (!r_.read(v, level_ + 1) || !as_uint(v, id, field)) return false;
            out.push_back(id);
        }
        return true;
    }
    bool refs(std::vector<task_ref>& out, const char* field) {
        std::uint64_t n = 0;
        if (!list(n, out, field)) return false;
        for (; n > 0; --n)
            if (!ref(out.emplace_back())) return false;
        return true;
    }
    bool report_rows(std::vector<report_worker>& out, const char* field) {
        std::uint64_t n = 0;
        if (!list(n, out, field)) return false;
        for (; n > 0; --n)
            if (!report_row(out.emplace_back())) return false;
        return true;
    }
    // Sets the reader's error to "field FIELD WHY" (bad_field); false.
    [[gnu::cold, gnu::noinline]] bool fail(const char* field, const char* why) {
        return r_.fail(decode_errc::bad_field, std::string("field ") + field + why);
    }
    // Reads past the elements after the last field this decoder knows,
    // which must still be valid msgpack within the limits (3.2, 3.4).
    bool skip_rest() {
        for (; left_ > 0; --left_)
            if (!r_.skip(level_)) return false;
        return true;
    }

  private:
    [[gnu::always_inline]] bool next(mp_value& v, const char* field) {
        if (left_ == 0) return missing(field);
        --left_;
        return r_.read(v, level_);
    }
    [[gnu::cold, gnu::noinline]] bool missing(const char* field) {
        return r_.fail(decode_errc::bad_field, std::string("missing field ") + field);
    }
    template <class U>
    [[gnu::always_inline]] bool as_uint(const mp_value& v, U& out, const char* field) {
        if (v.type != mp_type::uint) return fail(field, " is not an unsigned integer");
        if (v.n > std::numeric_limits<U>::max()) return fail(field, " is out of range");
        out = static_cast<U>(v.n);
        return true;
    }
    [[gnu::always_inline]] bool as_name(const mp_value& v, std::string& out, const char* field) {
        if (v.type != mp_type::str) return fail(field, " is not str");
        if (v.n > k_max_name) return fail(field, " is too long");
        copy_bytes(v, out);
        return true;
    }
    // A list field's header; `out` is emptied and made room in for as many
    // elements as the bytes left could hold, no more.
    template <class T>
    bool list(std::uint64_t& n, std::vector<T>& out, const char* field) {
        mp_value v;
        if (!next(v, field)) return false;
        if (v.type != mp_type::array) return fail(field, " is not an array");
        if (v.n > k_max_ids_per_message) return fail(field, " has too many elements");
        n = v.n;
        out.clear();
        out.reserve(std::min<std::uint64_t>(n, r_.left()));
        return true;
    }
    // [job, id, attempt, ignored...], one level below the list.
    bool ref(task_ref& out) {
        const std::size_t level = level_ + 1;
        mp_value v;
        if (!r_.read(v, level)) return false;
        if (v.type != mp_type::array || v.n < 3)
            return r_.fail(decode_errc::bad_field, "task reference is not [job, id, attempt]");
        std::uint64_t extra = v.n - 3;
        if (!r_.read(v, level + 1) || !as_name(v, out.job, "job")) return false;
        if (!r_.read(v, level + 1) || !as_uint(v, out.id, "id")) return false;
        if (!r_.read(v, level + 1) || !as_uint(v, out.attempt, "attempt")) return false;
        for (; extra > 0; --extra)
            if (!r_.skip(level + 1)) return false;
        return true;
    }

    // [worker, host, threads, tasks, failed, timed, busy_us, idle_us, lost,
    // rejoined, ignored...], one level below the list.
    bool report_row(report_worker& out) {
        const std::size_t level = level_ + 1;
        mp_value v;
        if (!r_.read(v, level)) return false;
        if (v.type != mp_type::array || v.n < 10)
            return r_.fail(decode_errc::bad_field,
                           "field workers: a row is not an array of at least 10 elements");
        std::uint64_t extra = v.n - 10;
        const std::size_t in = level + 1;
        if (!r_.read(v, in) || !as_name(v, out.worker, "worker")) return false;
        if (!r_.read(v, in) || !as_name(v, out.host, "host")) return false;
        if (!r_.read(v, in) || !as_uint(v, out.threads, "threads")) return false;
        if (!r_.read(v, in) || !as_uint(v, out.tasks, "tasks")) return false;
        if (!r_.read(v, in) || !as_uint(v, out.failed, "failed")) return false;
        if (!r_.read(v, in) || !as_uint(v, out.timed, "timed")) return false;
        if (!r_.read(v, in) || !as_uint(v, out.busy_us, "busy_us")) return false;
        if (!r_.read(v, in) || !as_uint(v, out.idle_us, "idle_us")) return false;
        if (!r_.read(v, in) || !as_uint(v, out.lost, "lost")) return false;
        if (!r_.read(v, in) || !as_uint(v, out.rejoined, "rejoined")) return false;
        for (; extra > 0; --extra)
            if (!r_.skip(in)) return false;
        return true;
    }

    msgpack_reader& r_;
    std::uint64_t left_;
    std::size_t level_;
};

// The fields of a message of type `t` into `m`. Every field is written,
// optional ones absent from the wire with their defaults, so that `m` may
// hold a message of an earlier frame.
bool decode_fields(msg_type t, field_reader& r, message& msg) {
    switch (t) {
        case msg_type::job_open: {
            auto& m = reuse_as<job_open>(msg);
            m.resume = false;
            m.retries = 0;
            return r.name(m.job, "job") && (!r.has_more() || r.boolean(m.resume, "resume")) &&
                   (!r.has_more() || r.uint(m.retries, "retries"));
        }
        case msg_type::job_close: {
            auto& m = reuse_as<job_close>(msg);
            return r.name(m.job, "job") && r.uint(m.total, "total") &&
                   r.boolean(m.cancel, "cancel");
        }
        case msg_type::task: {
            auto& m = reuse_as<task>(msg);
            return r.name(m.job, "job") && r.uint(m.id, "id") && r.uint(m.attempt, "attempt") &&
                   r.name(m.kind, "kind") && r.bytes(m.payload, "payload") &&
                   r.uint(m.timeout_ms, "timeout_ms");
        }
        case msg_type::result: {
            auto& m = reuse_as<result>(msg);
            std::uint8_t status = 0;
            if (!r.name(m.job, "job") || !r.uint(m.id, "id") || !r.uint(m.attempt, "attempt") ||
                !r.name(m.worker, "worker") || !r.uint(status, "status"))
                return false;
            if (status > 1) return r.fail("status", " is out of range");
            m.status = static_cast<task_status>(status);
            m.kind.clear();
            return r.uint(m.elapsed_us, "elapsed_us") && r.bytes(m.output, "output") &&
                   r.text(m.error, "error") && r.uint(m.started_us, "started_us") &&
                   (!r.has_more() || r.name(m.kind, "kind"));
        }
        case msg_type::hello: {
            auto& m = reuse_as<hello>(msg);
            return r.name(m.worker, "worker") && r.name(m.host, "host") && r.uint(m.pid, "pid") &&
                   r.uint(m.threads, "threads") && r.name(m.version, "version");
        }
        case msg_type::heartbeat: {
            auto& m = reuse_as<heartbeat>(msg);
            m.host.clear();
            m.pid = 0;
            m.threads = 0;
            m.version.clear();
            return r.name(m.worker, "worker") && r.uint(m.tasks_done, "tasks_done") &&
                   r.refs(m.running, "running") && (!r.has_more() || r.name(m.host, "host")) &&
                   (!r.has_more() || r.uint(m.pid, "pid")) &&
                   (!r.has_more() || r.uint(m.threads, "threads")) &&
                   (!r.has_more() || r.name(m.version, "version"));
        }
        case msg_type::bye: {
            auto& m = reuse_as<bye>(msg);
            m.returned.clear();
            return r.name(m.worker, "worker") && (!r.has_more() || r.refs(m.returned, "returned"));
        }
        case msg_type::ack: {
            auto& m = reuse_as<ack>(msg);
            m.failed.clear();
            return r.name(m.job, "job") && r.ids(m.ids, "ids") && r.ids(m.running, "running") &&
                   (!r.has_more() || r.ids(m.failed, "failed"));
        }
        case msg_type::lost: {
            auto& m = reuse_as<lost>(msg);
            return r.name(m.worker, "worker") && r.refs(m.tasks, "tasks");
        }
        case msg_type::done: {
            auto& m = reuse_as<done>(msg);
            return r.name(m.job, "job") && r.uint(m.total, "total") && r.uint(m.ok, "ok") &&
                   r.uint(m.failed, "failed") && r.uint(m.workers, "workers") &&
                   r.uint(m.elapsed_ms, "elapsed_ms") && r.uint(m.open_jobs, "open_jobs");
        }
        case msg_type::stop: {
            auto& m = reuse_as<stop>(msg);
            return r.name(m.job, "job") && r.text(m.reason, "reason");
        }
        case msg_type::credit: {
            auto& m = reuse_as<credit>(msg);
            return r.name(m.worker, "worker") && r.uint(m.amount, "amount") &&
                   r.boolean(m.reset, "reset");
        }
        case msg_type::recorded: {
            auto& m = reuse_as<recorded>(msg);
            return r.name(m.job, "job") && r.uint(m.floor, "floor") && r.ids(m.ids, "ids") &&
                   r.boolean(m.more, "more");
        }
        case msg_type::retry: {
            auto& m = reuse_as<retry>(msg);
            return r.name(m.job, "job") && r.uint(m.id, "id") && r.uint(m.attempt, "attempt") &&
                   r.text(m.reason, "reason");
        }
        case msg_type::report: {
            auto& m = reuse_as<report>(msg);
            return r.name(m.job, "job") && r.uint(m.total, "total") &&
                   r.uint(m.elapsed_ms, "elapsed_ms") && r.uint(m.timed, "timed") &&
                   r.uint(m.busy_us, "busy_us") && r.uint(m.p50_us, "p50_us") &&
                   r.uint(m.p95_us, "p95_us") && r.uint(m.p99_us, "p99_us") &&
                   r.uint(m.max_us, "max_us") && r.report_rows(m.workers, "workers");
        }
        case msg_type::batch:
            break;
    }
    return false;  // unreachable: read_message() checks the type first
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
        case msg_type::report:
            return "REPORT";
    }
    return "?";
}

msg_type type_of(const message& m) noexcept {
    // The alternatives are in type order, with BATCH (15), not a message of
    // its own, left out.
    const auto type = m.index() + 1;
    return static_cast<msg_type>(type < static_cast<std::size_t>(msg_type::batch) ? type
                                                                                  : type + 1);
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

decode_error fail(decode_errc c, std::string detail) {
    return decode_error{c, std::move(detail)};
}

// Reads the message at the cursor, the array at nesting `level`, into `m`.
// False with the reader's error() set: malformed or limit_exceeded is the
// frame's error (the bytes before it were read and are sound); any other is
// this message's own, found before all of its bytes were read.
bool read_message(msgpack_reader& r, std::size_t level, message& m) {
    mp_value v;
    if (!r.read(v, level)) return false;
    if (v.type != mp_type::array)
        return r.fail(decode_errc::not_an_array, "message is not an array");
    const std::uint64_t count = v.n;
    if (count < 2) return r.fail(decode_errc::bad_version, "no version field");
    if (!r.read(v, level + 1)) return false;
    if (v.type != mp_type::uint) return r.fail(decode_errc::bad_version, "no version field");
    if (v.n != k_protocol_version)
        return r.fail(decode_errc::bad_version, "version " + std::to_string(v.n) + ", expected " +
                                                    std::to_string(k_protocol_version));
    if (!r.read(v, level + 1)) return false;
    if (v.type != mp_type::uint || v.n == 0 || v.n > static_cast<std::uint64_t>(msg_type::report))
        return r.fail(decode_errc::unknown_type, "unknown message type");
    if (v.n == static_cast<std::uint64_t>(msg_type::batch))
        return r.fail(decode_errc::unknown_type, "BATCH where one message is expected");
    field_reader fields(r, count - 2, level);
    return decode_fields(static_cast<msg_type>(v.n), fields, m) && fields.skip_rest();
}

// After read_message() failed with an error of the message's own on the
// value at `start`: reads past that value again, checking only its msgpack.
// True when the frame is at fault anyway, with that error in r.error()
// (msgpack-c found such faults before it looked at a message); else the
// cursor is past the value and r.error() is the message's error again.
bool frame_at_fault(msgpack_reader& r, std::size_t start, std::size_t level) {
    decode_error why = std::move(r.error());
    r.seek(start);
    if (!r.skip(level)) return true;
    r.error() = std::move(why);
    return false;
}

bool trailing_bytes(msgpack_reader& r) {
    return r.fail(decode_errc::trailing_bytes,
                  std::to_string(r.left()) + " bytes after the message");
}

// A frame holding one message, into `m`; false with r.error() set. Errors
// come in the order msgpack-c's unpack-then-inspect found them: the frame's
// msgpack, then bytes after the message, then the message's content.
bool read_lone_message(msgpack_reader& r, message& m) {
    const bool ok = read_message(r, 1, m);
    if (!ok && (is_frame_error(r.error().code) || frame_at_fault(r, 0, 1))) return false;
    if (!r.at_end()) return trailing_bytes(r);
    if (!ok && r.error().code == decode_errc::not_an_array)
        r.error().detail = "top-level object is not an array";
    return ok;
}

// Reads the array header of a BATCH (5.15) and its elements up to its
// messages: `count` messages follow, then `extra` elements to ignore.
bool read_batch_head(msgpack_reader& r, std::uint64_t& count, std::uint64_t& extra) {
    constexpr std::string_view k_no_messages = "BATCH messages is not a non-empty array";
    mp_value v;
    if (!r.read(v, 1)) return false;
    const std::uint64_t n = v.n;
    // With n < 2, looks_like_batch() read bytes after the array: trailing.
    if (n < 2) return r.fail(decode_errc::bad_field, std::string(k_no_messages));
    if (!r.read(v, 2)) return false;
    if (v.n != k_protocol_version)
        return r.fail(decode_errc::bad_version, "BATCH of version " + std::to_string(v.n));
    if (!r.read(v, 2)) return false;  // the type, 15
    if (n < 3) return r.fail(decode_errc::bad_field, std::string(k_no_messages));
    if (!r.read(v, 2)) return false;
    if (v.type != mp_type::array || v.n == 0)
        return r.fail(decode_errc::bad_field, std::string(k_no_messages));
    // More would make a small frame of tiny bad messages cost a receiver
    // hundreds of bytes of decoded slots each.
    if (v.n > k_max_batch_messages)
        return r.fail(decode_errc::limit_exceeded, "BATCH of " + std::to_string(v.n) +
                                                       " messages, more than " +
                                                       std::to_string(k_max_batch_messages));
    count = v.n;
    extra = n - 3;
    return true;
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
    // uint 8-64, or int 8-64 holding a value that is not negative (3.3).
    const bool is_signed = c >= 0xd0 && c <= 0xd3;
    const int n = c == 0xcc || c == 0xd0   ? 1
                  : c == 0xcd || c == 0xd1 ? 2
                  : c == 0xce || c == 0xd2 ? 4
                  : c == 0xcf || c == 0xd3 ? 8
                                           : 0;
    if (n == 0 || end - p < n || (is_signed && (*p & 0x80))) return false;
    v = 0;
    for (int i = 0; i < n; ++i)
        v = (v << 8) | *p++;
    return true;
}

// Whether the frame starts like a BATCH: an array whose element 1 is 15. Its
// messages sit two levels deeper (the BATCH, its list), so it is read with
// two more levels.
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

}  // namespace

// Fills a decoded_frame element by element, reusing the messages earlier
// frames left in its slots, and so the capacity of their strings and lists.
class decoded_frame::filler {
  public:
    // Starts a frame; drops the slots first when they retain too much.
    explicit filler(decoded_frame& out) noexcept : out_(out) {
        out_.size_ = 0;
        if (out_.retained_ > decoded_frame::k_max_retained_bytes) {
            out_.slots_.clear();
            out_.slot_bytes_.clear();
            out_.retained_ = 0;
        }
    }
    // The message of the next element.
    message& next() {
        auto& slot = next_slot();
        if (!slot) slot = message{};
        return *slot;
    }
    // The message next() gave last took `bytes` of the frame.
    void note_bytes(std::size_t bytes) noexcept {
        std::size_t& most = out_.slot_bytes_[out_.size_ - 1];
        if (bytes <= most) return;
        out_.retained_ += bytes - most;
        most = bytes;
    }
    // The element next() gave last is this error instead.
    void fail_last(decode_error e) { out_.slots_[out_.size_ - 1] = unexpected{std::move(e)}; }
    void whole_frame_fails(decode_error e) {
        out_.size_ = 0;
        next_slot() = unexpected{std::move(e)};
    }

  private:
    decoded_frame::element& next_slot() {
        if (out_.size_ == out_.slots_.size()) {
            if (out_.slot_bytes_.size() == out_.slots_.size()) out_.slot_bytes_.push_back(0);
            out_.slots_.emplace_back(message{});
        }
        return out_.slots_[out_.size_++];
    }
    decoded_frame& out_;
};

expected<message, decode_error> decode(std::span<const std::byte> frame) noexcept {
    // Decoded in place and returned as it is: one object on every path, so
    // that it is never moved.
    expected<message, decode_error> out = message{};
    if (frame.empty()) {
        out = unexpected{fail(decode_errc::empty, "empty frame")};
        return out;
    }
    try {
        msgpack_reader r(reinterpret_cast<const char*>(frame.data()), frame.size(), k_max_depth);
        if (!read_lone_message(r, *out)) out = unexpected{std::move(r.error())};
    } catch (const std::bad_alloc&) {
        out = unexpected{fail(decode_errc::limit_exceeded, "allocation failed")};
    }
    return out;
}

void decode_frame(std::span<const std::byte> frame, decoded_frame& out) noexcept {
    decoded_frame::filler slots(out);
    if (frame.empty()) return slots.whole_frame_fails(fail(decode_errc::empty, "empty frame"));
    const auto* data = reinterpret_cast<const char*>(frame.data());
    const std::size_t size = frame.size();
    try {
        const bool batch = looks_like_batch(data, size);
        msgpack_reader r(data, size, batch ? k_max_depth + 2 : k_max_depth);
        if (!batch) {
            if (read_lone_message(r, slots.next()))
                slots.note_bytes(size);
            else
                slots.fail_last(std::move(r.error()));
            return;
        }
        auto whole_frame_fails = [&] { slots.whole_frame_fails(std::move(r.error())); };
        std::uint64_t count = 0, extra = 0;
        if (!read_batch_head(r, count, extra)) {
            if (!is_frame_error(r.error().code) && !frame_at_fault(r, 0, 1) && !r.at_end())
                trailing_bytes(r);
            return whole_frame_fails();
        }
        for (; count > 0; --count) {
            const std::size_t start = r.offset();
            if (read_message(r, 3, slots.next())) {
                slots.note_bytes(r.offset() - start);
                continue;
            }
            if (is_frame_error(r.error().code) || frame_at_fault(r, start, 3))
                return whole_frame_fails();
            slots.fail_last(std::move(r.error()));
        }
        for (; extra > 0; --extra)
            if (!r.skip(2)) return whole_frame_fails();
        if (!r.at_end()) {
            trailing_bytes(r);
            return whole_frame_fails();
        }
    } catch (const std::bad_alloc&) {
        slots.whole_frame_fails(fail(decode_errc::limit_exceeded, "allocation failed"));
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
