// What the sink does with each RESULT (PROTOCOL.md 5.4, 5.14, 7.3, 10):
// records it once (job_table), writes it (result_writer, and the job log
// when there is one), and queues the ACKs of the batch, with the ids whose
// recorded result is failed (5.8 rule 7).
//
// With keep_order (`zfarm-sink --keep-order`), each job's results are
// written in id order: a result whose id is above the lowest id of its job
// not yet recorded is held (reorder_buffer) until every lower id is written.
// A held result is recorded (it counts, and its duplicates are dropped) but
// not acknowledged until it is written, so it stays in the ventilator's
// window, which therefore bounds what is held; held ids are listed in the
// job's relay so that their leases are renewed (7.3 rule 4).
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "job_log.hpp"
#include "job_table.hpp"
#include "reorder_buffer.hpp"
#include "result_writer.hpp"

namespace zfarm::sink {

struct recorder_options {
    bool keep_order = false;
    // Held results of one job beyond this many bytes are written out of
    // order, lowest id first, with a warning: a safety net for a ventilator
    // with a huge window, which otherwise bounds what is held.
    std::size_t keep_order_memory = std::size_t{1} << 30;
};

class result_recorder {
  public:
    // `log` may be null (no job log). All three must outlive the recorder.
    result_recorder(job_table& jobs, result_writer& out, job_log* log, recorder_options opt = {})
        : jobs_(jobs), out_(out), log_(log), opt_(opt) {}

    // Records `r` (which may be moved from: do not use it after `added`).
    // added: written, or held (keep_order), its ACK queued once written;
    // duplicate: its ACK queued, unless its recorded result is still held
    // (the ACK of the written one will answer it); rejected and retry: nothing
    // is queued, that is for the caller (bad input; RETRY).
    job_table::record_outcome add(proto::result& r, std::chrono::steady_clock::time_point now);
    // An ACK with no ids for `job`, answering its JOB_OPEN.
    void answer_open(const std::string& job) { acks_[job]; }
    // Drops what is held of a cancelled job: never written nor acknowledged.
    void cancel(const std::string& job) { held_.erase(job); }

    // Writes what is held of jobs that are complete (ids at or beyond the
    // total, recorded before JOB_CLOSE), then flushes the output and the job
    // log. False (errno set) on a write error.
    bool flush();
    // The ACKs queued since the last call, each with at most
    // proto::k_max_ids_per_message ids; call after flush().
    std::vector<proto::ack> take_acks();

    // `id` of `job` is held, recorded and not yet written.
    bool holds(const std::string& job, std::uint64_t id) const;
    // The held ids of `job`, ascending, for its relay.
    std::vector<std::uint64_t> held(const std::string& job) const;
    std::uint64_t duplicates() const noexcept { return duplicates_; }
    std::uint64_t written_out_of_order() const noexcept { return out_of_order_; }

  private:
    struct pending_ack {
        std::vector<std::uint64_t> ids;
        std::vector<std::uint64_t> failed;  // a subset of ids
    };
    struct held_job {
        reorder_buffer buffer;
        bool warned = false;  // about keep_order_memory
    };
    // Writes `r` and queues its ACK.
    void emit(const proto::result& r);
    void hold(proto::result&& r, std::uint64_t floor);

    job_table& jobs_;
    result_writer& out_;
    job_log* log_;
    recorder_options opt_;
    std::map<std::string, pending_ack> acks_;
    std::unordered_map<std::string, held_job> held_;
    std::uint64_t duplicates_ = 0;
    std::uint64_t out_of_order_ = 0;
    bool wrote_ = false;
};

}  // namespace zfarm::sink
