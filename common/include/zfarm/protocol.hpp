// zfarm wire protocol, version 1: the message types and their fields.
//
// This header is the code side of PROTOCOL.md; the two change together. Every
// message is one msgpack array [version, type, fields...] in one ZeroMQ frame
// (control messages on the sink's PUB socket are preceded by a topic frame).
// Field order here is the order on the wire. Receivers ignore trailing array
// elements they do not know (a later minor revision may append fields), and
// drop messages whose version is not k_protocol_version.
//
// Plain value types, no sockets: safe to use from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace zfarm::proto {

inline constexpr std::uint32_t k_protocol_version = 1;

// Hard limits every decoder enforces (PROTOCOL.md, "Limits").
inline constexpr std::size_t k_max_name = 256;               // job names, worker ids, kinds, hosts
inline constexpr std::size_t k_max_ids_per_message = 65536;  // ACK / LOST / HEARTBEAT lists
inline constexpr std::size_t k_default_max_message = 16u << 20;  // ZMQ_MAXMSGSIZE default
// What a zfarm sender puts in one BATCH (5.15): at most this many messages,
// and no more bytes than this unless one message alone is bigger.
inline constexpr std::size_t k_max_batch_messages = 4096;
inline constexpr std::size_t k_max_batch_bytes = 256u << 10;

enum class msg_type : std::uint8_t {
    job_open = 1,
    job_close = 2,
    task = 3,
    result = 4,
    hello = 5,
    heartbeat = 6,
    bye = 7,
    ack = 8,
    lost = 9,
    done = 10,
    stop = 11,
    credit = 12,
    recorded = 13,
    retry = 14,
    // Not a message of its own: a frame carrying several (PROTOCOL.md 5.15).
    batch = 15,
    report = 16,
};

std::string_view to_string(msg_type t) noexcept;

// Topic frames on the control PUB socket, one per control message type.
inline constexpr std::string_view k_topic_ack = "ACK";
inline constexpr std::string_view k_topic_lost = "LOST";
inline constexpr std::string_view k_topic_done = "DONE";
inline constexpr std::string_view k_topic_stop = "STOP";
inline constexpr std::string_view k_topic_recorded = "RECORDED";
inline constexpr std::string_view k_topic_retry = "RETRY";
inline constexpr std::string_view k_topic_report = "REPORT";

enum class task_status : std::uint8_t { ok = 0, failed = 1 };

// A (job, id) pair with the attempt that carried it.
struct task_ref {
    std::string job;
    std::uint64_t id = 0;
    std::uint32_t attempt = 0;
    bool operator==(const task_ref&) const = default;
};

// ventilator -> sink (results socket). Opens a job; idempotent. The sink
// answers every JOB_OPEN with an ACK carrying no ids; with resume set, with
// RECORDED instead: what it has recorded of the job, so the ventilator sends
// only the rest. A failed RESULT of an attempt up to `retries` is not
// recorded but answered with RETRY. Both are optional on the wire (absent:
// false and 0).
struct job_open {
    std::string job;
    bool resume = false;
    std::uint32_t retries = 0;
    bool operator==(const job_open&) const = default;
};

// ventilator -> sink. The job has exactly `total` tasks, ids 0..total-1; or,
// with cancel set, the job is abandoned: the sink forgets it and publishes STOP.
struct job_close {
    std::string job;
    std::uint64_t total = 0;
    bool cancel = false;
    bool operator==(const job_close&) const = default;
};

// ventilator -> worker (tasks PUSH, or credit ROUTER).
struct task {
    std::string job;
    std::uint64_t id = 0;
    std::uint32_t attempt = 1;  // 1 for the first dispatch
    std::string kind;
    std::string payload;           // msgpack bin: opaque bytes, meaning given by kind
    std::uint32_t timeout_ms = 0;  // 0: no per-attempt limit
    bool operator==(const task&) const = default;
};

// worker -> sink (results socket).
struct result {
    std::string job;
    std::uint64_t id = 0;
    std::uint32_t attempt = 1;
    std::string worker;
    task_status status = task_status::ok;
    std::uint64_t elapsed_us = 0;
    std::string output;            // msgpack bin
    std::string error;             // empty when status is ok
    std::uint64_t started_us = 0;  // when the attempt started: Unix time, microseconds
    // The task's kind, so the sink can render outputs it knows the shape of
    // (exec). Optional on the wire: absent, empty (unknown).
    std::string kind{};
    bool operator==(const result&) const = default;
};

// worker -> sink. Sent once when the worker starts.
struct hello {
    std::string worker;
    std::string host;
    std::uint32_t pid = 0;
    std::uint32_t threads = 1;
    std::string version;
    bool operator==(const hello&) const = default;
};

// worker -> sink, about once a second: what the worker is running now.
struct heartbeat {
    std::string worker;
    std::uint64_t tasks_done = 0;
    std::vector<task_ref> running;
    // What HELLO says, again, for a sink that missed the HELLO (one started
    // or restarted after the worker). Optional on the wire: absent, empty / 0.
    std::string host{};
    std::uint32_t pid = 0;
    std::uint32_t threads = 0;
    std::string version{};
    bool operator==(const heartbeat&) const = default;
};

// worker -> sink, on graceful exit. `returned`: tasks it held and did not
// run, handed back to be sent again at once (optional on the wire: absent,
// none).
struct bye {
    std::string worker;
    std::vector<task_ref> returned{};
    bool operator==(const bye&) const = default;
};

// sink -> ventilator (control PUB, topic ACK): the ids of `job` in `ids` are
// recorded (those also in `failed` as failed); those in `running` are held
// by live workers (their leases are renewed). The sink sends `running` about
// once a second, with no ids.
struct ack {
    std::string job;
    std::vector<std::uint64_t> ids;
    std::vector<std::uint64_t> running;
    // Those of `ids` recorded as failed. Optional on the wire: absent, none.
    std::vector<std::uint64_t> failed{};
    bool operator==(const ack&) const = default;
};

// sink -> ventilator (control PUB, topic LOST): a worker stopped answering;
// these tasks were running on it.
struct lost {
    std::string worker;
    std::vector<task_ref> tasks;
    bool operator==(const lost&) const = default;
};

// sink -> everyone (control PUB, topic DONE): every id of `job` is recorded.
// Re-published about once a second so late subscribers learn of it.
struct done {
    std::string job;
    std::uint64_t total = 0;
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::uint32_t workers = 0;  // distinct workers that delivered a result
    std::uint64_t elapsed_ms =
        0;  // the job's opening (JOB_OPEN, or its first message) to completion
    std::uint32_t open_jobs = 0;  // jobs still open on this sink
    bool operator==(const done&) const = default;
};

// sink -> workers (control PUB, topic STOP): `job` was cancelled; drop its
// queued tasks and do not report results for it.
struct stop {
    std::string job;
    std::string reason;
    bool operator==(const stop&) const = default;
};

// worker -> ventilator (DEALER to the credit ROUTER): the worker will take
// `amount` more tasks. The first CREDIT on a new connection has reset set: the
// ventilator forgets any credit it held for this worker and starts from it.
struct credit {
    std::string worker;
    std::uint32_t amount = 0;
    bool reset = false;
    bool operator==(const credit&) const = default;
};

// sink -> ventilator (control PUB, topic RECORDED), answering JOB_OPEN with
// resume set: every id of `job` below `floor` is recorded, and so are `ids`
// (each at or above the floor). When they do not fit in one message, `more`
// is set on all but the last.
struct recorded {
    std::string job;
    std::uint64_t floor = 0;
    std::vector<std::uint64_t> ids;
    bool more = false;
    bool operator==(const recorded&) const = default;
};

// sink -> ventilator (control PUB, topic RETRY): attempt `attempt` of task
// `id` failed with `reason` and attempts remain (JOB_OPEN `retries`): it was
// not recorded; send it again.
struct retry {
    std::string job;
    std::uint64_t id = 0;
    std::uint32_t attempt = 0;
    std::string reason;
    bool operator==(const retry&) const = default;
};

// One worker's share of a finished job, in its REPORT.
struct report_worker {
    std::string worker;
    std::string host;  // empty when the sink never heard it (no HELLO or HEARTBEAT)
    std::uint32_t threads = 0;
    std::uint64_t tasks = 0;  // results of the job recorded from it
    std::uint64_t failed = 0;
    std::uint64_t timed = 0;    // of those, recorded by this run of the sink (not restored)
    std::uint64_t busy_us = 0;  // the sum of the timed ones' elapsed_us
    // From the end of its last task of the job (or the job's close, when
    // later) to the latest start of one on another worker, when it was
    // still there at the end (5.16 rule 3).
    std::uint64_t idle_us = 0;
    std::uint32_t lost = 0;      // times declared lost while the job was open
    std::uint32_t rejoined = 0;  // times heard from again after that
    bool operator==(const report_worker&) const = default;
};

// sink -> ventilator (control PUB, topic REPORT), just before the job's DONE
// and with its re-publications for a few seconds: how the job went, for the
// end-of-job report. Task times are those of the results of workers this run
// of the sink recorded (`timed`); percentiles are within 2 %.
struct report {
    std::string job;
    std::uint64_t total = 0;
    std::uint64_t elapsed_ms = 0;  // as in DONE
    std::uint64_t timed = 0;
    std::uint64_t busy_us = 0;  // the sum of their elapsed_us
    std::uint64_t p50_us = 0;
    std::uint64_t p95_us = 0;
    std::uint64_t p99_us = 0;
    std::uint64_t max_us = 0;
    std::vector<report_worker> workers;
    bool operator==(const report&) const = default;
};

using message = std::variant<job_open, job_close, task, result, hello, heartbeat, bye, ack, lost,
                             done, stop, credit, recorded, retry, report>;

msg_type type_of(const message& m) noexcept;

}  // namespace zfarm::proto
