// Writes recorded results as JSON Lines (DESIGN.md, "output"): one object per
// task, appended to a file (or stdout) and flushed after every batch, so a
// crash loses at most the batch being written and never tears earlier lines.
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <cstdio>
#include <string>

#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::sink {

class result_writer {
  public:
    // path "-" or empty: stdout. Otherwise the file is opened for appending.
    static expected<result_writer, std::string> open(const std::string& path);
    result_writer(result_writer&& o) noexcept;
    result_writer& operator=(result_writer&&) = delete;
    ~result_writer();

    void write(const proto::result& r);
    // Pushes buffered lines to the OS. Returns false (with errno set) on a
    // write error such as a full disk.
    bool flush();

  private:
    result_writer(std::FILE* f, bool owned) : file_(f), owned_(owned) {}
    std::FILE* file_;
    bool owned_;
    std::string buffer_;
};

// The JSON line for one result, without the trailing newline.
std::string to_json_line(const proto::result& r);

}  // namespace zfarm::sink
