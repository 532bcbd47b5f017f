// libFuzzer target: the sink's handling of what arrives on its results
// socket. The input is a sequence of frames, each a 2-byte big-endian length
// and that many bytes. Every frame is decoded (a BATCH into its messages).
// Twice over:
// - RESULTs are recorded in a job table (dedupe, retries, implicit opening)
//   and the recorded ones rendered as JSON lines, which must parse back as
//   JSON objects naming their job and id;
// - everything goes through the sink's result_recorder, as the sink's loop
//   drives it (JOB_OPEN, JOB_CLOSE with or without cancel, RESULTs; flush
//   and ACKs after each frame), keeping order when the input's first byte is
//   odd: every ACK must hold at most the protocol's list limit, its failed
//   ids must be some of its ids in the same order, and held ids must be
//   ascending and never acknowledged while held.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "job_table.hpp"
#include "result_recorder.hpp"
#include "result_writer.hpp"
#include "zfarm/codec.hpp"

namespace {

using namespace zfarm;

void check_json_line(const proto::result& r) {
    const auto line = sink::to_json_line(r);
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("job") || !j.contains("id")) std::abort();
}

void check_acks(sink::result_recorder& recorder, const std::vector<proto::ack>& acks) {
    for (const auto& a : acks) {
        if (a.ids.size() > proto::k_max_ids_per_message) std::abort();
        std::size_t f = 0;  // failed is a subsequence of ids
        for (auto id : a.ids) {
            if (f < a.failed.size() && a.failed[f] == id) ++f;
            if (recorder.holds(a.job, id)) std::abort();  // acknowledged while held
        }
        if (f != a.failed.size()) std::abort();
        const auto held = recorder.held(a.job);
        if (!std::is_sorted(held.begin(), held.end())) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static auto out = sink::result_writer::open("/dev/null", sink::output_format::jsonl);
    if (!out) std::abort();
    const auto now = std::chrono::steady_clock::now();
    sink::job_table jobs;
    sink::job_table recorded_jobs;
    sink::recorder_options options;
    options.keep_order = size > 0 && (data[0] & 1);
    options.keep_order_memory = 1u << 16;  // small, so the out-of-order path runs too
    sink::result_recorder recorder(recorded_jobs, *out, nullptr, options);

    std::size_t at = 0;
    proto::decoded_frame decoded;
    while (at + 2 <= size) {
        const std::size_t n = (std::size_t{data[at]} << 8) | data[at + 1];
        at += 2;
        const std::size_t len = std::min(n, size - at);
        const std::string_view frame(reinterpret_cast<const char*>(data + at), len);
        at += len;
        proto::decode_frame(frame, decoded);
        for (auto& m : decoded) {
            if (!m) continue;
            if (auto* open = std::get_if<proto::job_open>(&*m)) {
                jobs.open(open->job, now);
                if (auto* j = recorded_jobs.open(open->job, now)) j->retries = open->retries;
                recorder.answer_open(open->job);
            } else if (auto* close = std::get_if<proto::job_close>(&*m)) {
                if (close->cancel) {
                    if (recorded_jobs.cancel(close->job)) recorder.cancel(close->job);
                } else if (auto* j = recorded_jobs.open(close->job, now)) {
                    j->total = close->total;
                }
            } else if (auto* r = std::get_if<proto::result>(&*m)) {
                std::string history;
                if (jobs.record(*r, now, &history) == sink::job_table::record_outcome::added)
                    check_json_line(*r);
                proto::result copy = *r;
                (void)recorder.add(copy, now);
            }
        }
        if (!recorder.flush()) std::abort();
        check_acks(recorder, recorder.take_acks());
        (void)recorded_jobs.collect_finished(now);
    }
    return 0;
}
