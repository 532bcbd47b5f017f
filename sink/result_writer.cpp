#include "result_writer.hpp"

#include <cerrno>
#include <cstring>

namespace zfarm::sink {
namespace {

constexpr std::size_t k_flush_at = 1u << 20;  // bytes buffered before an early flush

}  // namespace

expected<result_writer, std::string> result_writer::open(const std::string& path,
                                                         output_format format, std::FILE* err) {
    if (path.empty() || path == "-") return result_writer(stdout, false, format, err);
    std::FILE* f = std::fopen(path.c_str(), "a");
    if (!f) return unexpected{"cannot open " + path + " for appending: " + std::strerror(errno)};
    return result_writer(f, true, format, err);
}

result_writer::result_writer(result_writer&& o) noexcept
    : file_(o.file_),
      err_(o.err_),
      owned_(o.owned_),
      format_(o.format_),
      buffer_(std::move(o.buffer_)),
      err_buffer_(std::move(o.err_buffer_)) {
    o.file_ = nullptr;
    o.owned_ = false;
}

result_writer::~result_writer() {
    if (!file_) return;
    flush();
    if (owned_) std::fclose(file_);
}

void result_writer::write(const proto::result& r) {
    if (r.kind == exec::k_kind) {
        const auto o = exec_outcome_of(r);
        write(r, o ? &*o : nullptr);
    } else {
        write(r, nullptr);
    }
}

void result_writer::write(const proto::result& r, const exec::outcome* o) {
    if (format_ == output_format::jsonl) {
        append_json_line(buffer_, r, o);
        buffer_ += '\n';
    } else {
        // GNU parallel's grouping: a task's output whole, never interleaved.
        buffer_ += o ? o->out : r.output;
        if (o && err_) err_buffer_ += o->err;
        if (err_ && r.status == proto::task_status::failed) {
            if (!err_buffer_.empty() && err_buffer_.back() != '\n') err_buffer_ += '\n';
            err_buffer_ += "zfarm-sink: task " + r.job + "/" + std::to_string(r.id) +
                           " failed: " + r.error + '\n';
        }
    }
    if (buffer_.size() + err_buffer_.size() >= k_flush_at) flush();
}

bool result_writer::flush() {
    if (!file_) return false;
    // Standard error is the sink's own, shared with its log: written from
    // this thread between log lines, so no task's text is cut by one.
    // A standard error that cannot be written (closed: EPIPE) loses the
    // tasks' stderr text, not the results, and never grows the buffer.
    if (err_ && !err_buffer_.empty()) {
        if (write_all(err_, err_buffer_))
            std::fflush(err_);
        else
            err_buffer_.clear();
    }
    if (!write_all(file_, buffer_)) return false;
    return std::fflush(file_) == 0;
}

}  // namespace zfarm::sink
