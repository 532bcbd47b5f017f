// Writes recorded results to the sink's output (PROTOCOL.md section 10): as
// JSON Lines (one object per task) or, in text format, each task's output
// whole, one task after another, with what the task wrote on standard error
// going to the sink's standard error, grouped per task. Appended to a file
// (or stdout) and flushed after every batch, so a crash loses at most the
// batch being written and never tears earlier lines.
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <cstdio>
#include <string>

#include "output_format.hpp"
#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::sink {

class result_writer {
  public:
    // path "-" or empty: stdout. Otherwise the file is opened for appending.
    // `err`: where text format writes the tasks' standard error (not owned).
    static expected<result_writer, std::string> open(const std::string& path,
                                                     output_format format = output_format::jsonl,
                                                     std::FILE* err = stderr);
    result_writer(result_writer&& o) noexcept;
    result_writer& operator=(result_writer&&) = delete;
    ~result_writer();

    // Decodes an exec result's outcome itself.
    void write(const proto::result& r);
    // `o`: the decoded outcome of an exec result (exec_outcome_of), or
    // nullptr: the output is written as it is.
    void write(const proto::result& r, const exec::outcome* o);
    // Pushes buffered output to the OS (and, in text format, the buffered
    // standard error of the tasks to `err`). Returns false (with errno set)
    // on a write error such as a full disk.
    bool flush();

    output_format format() const noexcept { return format_; }

  private:
    result_writer(std::FILE* f, bool owned, output_format format, std::FILE* err)
        : file_(f), err_(err), owned_(owned), format_(format) {}
    std::FILE* file_;
    std::FILE* err_;
    bool owned_;
    output_format format_;
    std::string buffer_;
    std::string err_buffer_;
};

}  // namespace zfarm::sink
