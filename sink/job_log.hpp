// The job log (`zfarm-sink --joblog FILE`): one tab-separated line per
// recorded result, in the columns of GNU parallel's --joblog, so the tools
// that read those read this:
//
//   Seq Host Starttime JobRuntime Send Receive Exitval Signal Command
//
// Seq is the task id + 1 (ids are per job: a sink serving several jobs
// writes the lines of each); Host the exec outcome's host, else the worker's
// name ("-" for a result the ventilator recorded itself); Starttime the
// attempt's start as Unix seconds with 3 decimals; JobRuntime its run time
// in seconds, "%10.3f" as GNU parallel; Send and Receive 0 (GNU parallel
// counts bytes of files transferred to and from remote hosts, which zfarm
// does not do); Exitval and Signal the command's (an exec outcome: its exit
// status, 0 when a signal ended it, 127 when it could not start; other kinds
// and exec results without an outcome: 0 when ok, 1 when failed, signal 0);
// Command the exec outcome's command line, else the task's kind ("-" when
// unknown). Tabs, newlines and carriage returns in Host and Command become
// spaces, so each result is one line.
//
// Appended to FILE; the header is written when FILE is empty. Lines are
// buffered and flushed with the results, after every batch.
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <cstdio>
#include <string>

#include "zfarm/exec_format.hpp"
#include "zfarm/expected.hpp"
#include "zfarm/protocol.hpp"

namespace zfarm::sink {

class job_log {
  public:
    static constexpr std::string_view k_header =
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

    // Opens `path` for appending; a one-line reason when it cannot.
    static expected<job_log, std::string> open(const std::string& path);
    job_log(job_log&& o) noexcept;
    job_log& operator=(job_log&&) = delete;
    ~job_log();

    // `o`: the decoded outcome of an exec result, or nullptr.
    void write(const proto::result& r, const exec::outcome* o);
    // False (errno set) on a write error.
    bool flush();

  private:
    explicit job_log(std::FILE* f) : file_(f) {}
    std::FILE* file_;
    std::string buffer_;
};

// The log line of one result, with its newline.
std::string job_log_line(const proto::result& r, const exec::outcome* o);

}  // namespace zfarm::sink
