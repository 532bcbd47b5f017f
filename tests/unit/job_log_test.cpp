// Unit tests for sink/job_log.hpp: GNU parallel's --joblog columns for each
// recorded result, and the append-only file with its header.
#include "job_log.hpp"

#include <gtest/gtest.h>

#include <string>

#include "temp_dir.hpp"

namespace {

using zfarm::exec::outcome;
using zfarm::proto::result;
using zfarm::proto::task_status;
using zfarm::sink::job_log;
using zfarm::sink::job_log_line;
using zfarm::unit::temp_dir;

result echo_result() {
    result r;
    r.job = "j";
    r.id = 41;
    r.worker = "node7-1-beef";
    r.kind = "echo";
    r.elapsed_us = 1'234'567;
    r.started_us = 1'795'788'764'799'600;
    return r;
}

TEST(JobLog, HeaderIsGnuParallels) {
    EXPECT_EQ(job_log::k_header,
              "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n");
}

TEST(JobLog, OtherKindsUseTheWorkerAndTheKind) {
    EXPECT_EQ(job_log_line(echo_result(), nullptr),
              "42\tnode7-1-beef\t1795788764.800\t     1.235\t0\t0\t0\t0\techo\n");
    result failed = echo_result();
    failed.status = task_status::failed;
    failed.worker = "";  // recorded by the ventilator (push dispatch)
    failed.kind = "";
    EXPECT_EQ(job_log_line(failed, nullptr), "42\t-\t1795788764.800\t     1.235\t0\t0\t1\t0\t-\n");
}

TEST(JobLog, ExecUsesTheOutcome) {
    outcome o;
    o.exit_code = 3;
    o.host = "node7";
    o.cmd = "grep -c 'a b' file";
    result r = echo_result();
    r.kind = "exec";
    r.status = task_status::failed;
    EXPECT_EQ(job_log_line(r, &o),
              "42\tnode7\t1795788764.800\t     1.235\t0\t0\t3\t0\tgrep -c 'a b' file\n");
    o.exit_code.reset();
    o.signal = 9;
    EXPECT_EQ(job_log_line(r, &o),
              "42\tnode7\t1795788764.800\t     1.235\t0\t0\t0\t9\tgrep -c 'a b' file\n")
        << "killed: Exitval 0, as GNU parallel";
    o.signal = 0;
    EXPECT_EQ(job_log_line(r, &o),
              "42\tnode7\t1795788764.800\t     1.235\t0\t0\t127\t0\tgrep -c 'a b' file\n")
        << "could not start: 127, as a shell";
}

TEST(JobLog, TabsAndNewlinesCannotSplitALine) {
    outcome o;
    o.exit_code = 0;
    o.host = "h\tx";
    o.cmd = "printf 'a\tb\nc'";
    result r = echo_result();
    r.kind = "exec";
    EXPECT_EQ(job_log_line(r, &o),
              "42\th x\t1795788764.800\t     1.235\t0\t0\t0\t0\tprintf 'a b c'\n");
}

TEST(JobLog, HeaderOnlyInAnEmptyFileAndLinesAppended) {
    temp_dir dir;
    const std::string path = dir.file("joblog");
    {
        auto log = job_log::open(path);
        ASSERT_TRUE(log) << log.error();
        EXPECT_EQ(dir.read("joblog"), std::string(job_log::k_header)) << "written at once";
        log->write(echo_result(), nullptr);
        EXPECT_TRUE(log->flush());
    }
    {
        auto log = job_log::open(path);
        ASSERT_TRUE(log) << log.error();
        log->write(echo_result(), nullptr);
    }
    const std::string line = job_log_line(echo_result(), nullptr);
    EXPECT_EQ(dir.read("joblog"), std::string(job_log::k_header) + line + line);
}

TEST(JobLog, UnwritablePathIsAOneLineReason) {
    temp_dir dir;
    const std::string path = dir.file("no-such-dir/joblog");
    auto log = job_log::open(path);
    ASSERT_FALSE(log);
    EXPECT_EQ(log.error(), "cannot open " + path + " for appending: No such file or directory");
}

}  // namespace
