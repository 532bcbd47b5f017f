#include "job_log.hpp"

#include "output_format.hpp"

#include <cerrno>
#include <cstring>

#include <spdlog/fmt/fmt.h>

namespace zfarm::sink {
namespace {

// One column: no tab or line break may split the line.
std::string column(std::string_view s, std::string_view if_empty) {
    if (s.empty()) return std::string(if_empty);
    std::string out(s);
    for (auto& c : out)
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return out;
}

}  // namespace

std::string job_log_line(const proto::result& r, const exec::outcome* o) {
    const bool failed = r.status == proto::task_status::failed;
    int exitval = failed ? 1 : 0;
    int signal = 0;
    if (o) {
        signal = o->signal;
        exitval = o->exit_code ? *o->exit_code : (o->signal != 0 ? 0 : 127);
    }
    return fmt::format("{}\t{}\t{:.3f}\t{:10.3f}\t0\t0\t{}\t{}\t{}\n", r.id + 1,
                       column(o ? std::string_view(o->host) : std::string_view(r.worker), "-"),
                       static_cast<double>(r.started_us) / 1e6,
                       static_cast<double>(r.elapsed_us) / 1e6, exitval, signal,
                       column(o ? std::string_view(o->cmd) : std::string_view(r.kind), "-"));
}

expected<job_log, std::string> job_log::open(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "a");
    if (!f) return unexpected{"cannot open " + path + " for appending: " + std::strerror(errno)};
    job_log log(f);
    if (std::fseek(f, 0, SEEK_END) == 0 && std::ftell(f) == 0) log.buffer_ = k_header;
    if (!log.flush()) return unexpected{"cannot write " + path + ": " + std::strerror(errno)};
    return log;
}

job_log::job_log(job_log&& o) noexcept : file_(o.file_), buffer_(std::move(o.buffer_)) {
    o.file_ = nullptr;
}

job_log::~job_log() {
    if (!file_) return;
    flush();
    std::fclose(file_);
}

void job_log::write(const proto::result& r, const exec::outcome* o) {
    buffer_ += job_log_line(r, o);
}

bool job_log::flush() {
    if (!file_ || !write_all(file_, buffer_)) return false;
    return std::fflush(file_) == 0;
}

}  // namespace zfarm::sink
