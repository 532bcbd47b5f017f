// libFuzzer target: the sink's handling of what arrives on its results
// socket. The input is a sequence of frames, each a 2-byte big-endian length
// and that many bytes. Every frame is decoded (a BATCH into its messages); RESULTs are recorded in
// a job table (dedupe, retries, implicit opening) and the recorded ones rendered as JSON lines,
// which must parse back as JSON objects naming their job and id.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "job_table.hpp"
#include "result_writer.hpp"
#include "zfarm/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace zfarm;
    sink::job_table jobs;
    const auto now = std::chrono::steady_clock::now();
    std::size_t at = 0;
    proto::decoded_frame decoded;
    while (at + 2 <= size) {
        const std::size_t n = (std::size_t{data[at]} << 8) | data[at + 1];
        at += 2;
        const std::size_t len = std::min(n, size - at);
        const std::string_view frame(reinterpret_cast<const char*>(data + at), len);
        at += len;
        proto::decode_frame(frame, decoded);  // one message or a BATCH (5.15)
        for (auto& m : decoded) {
            if (!m) continue;
            if (auto* open = std::get_if<proto::job_open>(&*m)) {
                jobs.open(open->job, now);
            } else if (auto* r = std::get_if<proto::result>(&*m)) {
                std::string history;
                if (jobs.record(*r, now, &history) == sink::job_table::record_outcome::added) {
                    const auto line = sink::to_json_line(*r);
                    const auto j = nlohmann::json::parse(line, nullptr, false);
                    if (j.is_discarded() || !j.is_object() || !j.contains("job") ||
                        !j.contains("id"))
                        std::abort();
                }
            }
        }
    }
    return 0;
}
