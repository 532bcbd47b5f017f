// Unit tests for sink/job_table.hpp: which ids of each job the sink has
// recorded, when a job is complete, and what is kept of finished and
// cancelled jobs. Clause numbers ("5.4.4") are PROTOCOL.md's.
#include "job_table.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace {

using namespace std::chrono_literals;
using zfarm::dedupe_set;
using zfarm::proto::done;
using zfarm::proto::result;
using zfarm::proto::task_status;
using zfarm::sink::job_state;
using zfarm::sink::job_table;
using outcome = job_table::record_outcome;

const auto t0 = std::chrono::steady_clock::time_point{} + 1000h;

result res(const std::string& job, std::uint64_t id, task_status status = task_status::ok,
           const std::string& worker = "w1") {
    return result{job, id, 1, worker, status, 10, "", status == task_status::ok ? "" : "boom"};
}

// Opens `job` with `total` tasks and records ids 0..total-1.
void run_job(job_table& t, const std::string& job, std::uint64_t total) {
    job_state* j = t.open(job, t0);
    ASSERT_NE(j, nullptr);
    j->total = total;
    for (std::uint64_t id = 0; id < total; ++id)
        ASSERT_EQ(t.record(res(job, id), t0), outcome::added);
}

TEST(JobTable, OpensAJobOnce) {
    job_table t;
    job_state* a = t.open("render", t0);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->name, "render");
    EXPECT_EQ(a->opened, t0);
    EXPECT_FALSE(a->total);
    EXPECT_EQ(t.open("render", t0 + 5s), a) << "opening an open job is a no-op";
    EXPECT_EQ(a->opened, t0);
    EXPECT_EQ(t.open_count(), 1u);
    EXPECT_EQ(t.find("render"), a);
    EXPECT_EQ(t.find("other"), nullptr);
}

TEST(JobTable, RecordsAResultOnce) {
    // 5.4.3: record the first RESULT for a (job, id); 5.4.4: later ones are
    // duplicates.
    job_table t;
    t.open("j", t0);
    EXPECT_EQ(t.record(res("j", 4), t0), outcome::added);
    EXPECT_EQ(t.record(res("j", 4), t0), outcome::duplicate);
    const job_state* j = t.find("j");
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(j->recorded.size(), 1u);
    EXPECT_EQ(j->ok, 1u);
    EXPECT_EQ(j->duplicates, 1u);
}

TEST(JobTable, DuplicateOfAFailedResultDoesNotCountTwice) {
    job_table t;
    t.open("j", t0);
    EXPECT_EQ(t.record(res("j", 0, task_status::failed), t0), outcome::added);
    EXPECT_EQ(t.record(res("j", 0, task_status::ok), t0), outcome::duplicate);
    EXPECT_EQ(t.find("j")->failed, 1u);
    EXPECT_EQ(t.find("j")->ok, 0u);
}

TEST(JobTable, CountsOkFailedAndDistinctWorkers) {
    job_table t;
    t.open("j", t0);
    t.record(res("j", 0, task_status::ok, "w1"), t0);
    t.record(res("j", 1, task_status::failed, "w2"), t0);
    t.record(res("j", 2, task_status::ok, "w1"), t0);
    const job_state* j = t.find("j");
    EXPECT_EQ(j->ok, 2u);
    EXPECT_EQ(j->failed, 1u);
    EXPECT_EQ(j->workers.size(), 2u);
}

TEST(JobTable, RejectsIdsAtOrBeyondTheTotal) {
    // 5.4.6: "The sink MUST refuse a RESULT [...] when its id is not less than
    // the job's total (once JOB_CLOSE gave one)."
    job_table t;
    t.open("j", t0)->total = 3;
    EXPECT_EQ(t.record(res("j", 3), t0), outcome::rejected);
    EXPECT_EQ(t.record(res("j", 1000), t0), outcome::rejected);
    EXPECT_EQ(t.record(res("j", 2), t0), outcome::added);
    EXPECT_EQ(t.rejected(), 2u);
    EXPECT_EQ(t.find("j")->recorded.size(), 1u);
}

TEST(JobTable, RejectsIdsBeyondTheDedupeSpan) {
    // 5.4.6 (informative): "also refuses an id 2^28 or more above the lowest
    // id of the job not yet recorded".
    job_table t;
    t.open("j", t0);
    EXPECT_EQ(t.record(res("j", dedupe_set::k_max_span), t0), outcome::rejected);
    EXPECT_EQ(t.rejected(), 1u);
    EXPECT_EQ(t.find("j")->recorded.size(), 0u);
}

TEST(JobTable, JobWithoutTotalNeverCompletes) {
    job_table t;
    t.open("j", t0);
    for (std::uint64_t id = 0; id < 10; ++id)
        t.record(res("j", id), t0);
    EXPECT_TRUE(t.collect_finished(t0).empty());
    EXPECT_EQ(t.open_count(), 1u);
}

TEST(JobTable, JobWithMissingIdsStaysOpen) {
    job_table t;
    t.open("j", t0)->total = 3;
    t.record(res("j", 0), t0);
    t.record(res("j", 2), t0);
    EXPECT_FALSE(t.find("j")->complete());
    EXPECT_TRUE(t.collect_finished(t0).empty());
}

TEST(JobTable, CompletionProducesDoneWithTheRightCounts) {
    // 7.5.1: "A job is complete when it has a total and that many distinct
    // ids are recorded."
    job_table t;
    t.open("render", t0)->total = 3;
    t.record(res("render", 2, task_status::ok, "w1"), t0 + 100ms);
    t.record(res("render", 0, task_status::failed, "w2"), t0 + 200ms);
    t.record(res("render", 1, task_status::ok, "w1"), t0 + 300ms);
    const auto finished = t.collect_finished(t0 + 1500ms);
    ASSERT_EQ(finished.size(), 1u);
    const done& d = finished[0];
    EXPECT_EQ(d.job, "render");
    EXPECT_EQ(d.total, 3u);
    EXPECT_EQ(d.ok, 2u);
    EXPECT_EQ(d.failed, 1u);
    EXPECT_EQ(d.workers, 2u);
    EXPECT_EQ(d.elapsed_ms, 1500u);
    EXPECT_EQ(d.open_jobs, 0u);
}

TEST(JobTable, CompletedJobMovesToTheFinishedList) {
    job_table t;
    run_job(t, "j", 2);
    ASSERT_EQ(t.collect_finished(t0).size(), 1u);
    EXPECT_EQ(t.open_count(), 0u);
    EXPECT_EQ(t.find("j"), nullptr);
    const done* d = t.finished("j");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->total, 2u);
    ASSERT_EQ(t.finished_jobs().size(), 1u);
    EXPECT_EQ(t.finished_jobs().front().job, "j");
    EXPECT_TRUE(t.collect_finished(t0).empty()) << "each DONE is collected once";
}

TEST(JobTable, JobOfZeroTasksCompletesAtClose) {
    // 7.4: "A job of 0 tasks is closed with `total` 0 and completes at once."
    job_table t;
    t.open("empty", t0)->total = 0;
    const auto finished = t.collect_finished(t0);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].total, 0u);
    EXPECT_EQ(finished[0].workers, 0u);
}

TEST(JobTable, DoneCountsTheJobsStillOpen) {
    job_table t;
    t.open("a", t0);
    t.open("b", t0);
    run_job(t, "c", 1);
    const auto finished = t.collect_finished(t0);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].open_jobs, 2u);
}

TEST(JobTable, JobsFinishingTogetherReportTheSameOpenCount) {
    job_table t;
    t.open("still-open", t0);
    run_job(t, "a", 1);
    run_job(t, "b", 2);
    const auto finished = t.collect_finished(t0);
    ASSERT_EQ(finished.size(), 2u);
    for (const auto& d : finished)
        EXPECT_EQ(d.open_jobs, 1u) << d.job;
}

TEST(JobTable, ResultsForAFinishedJobAreDuplicates) {
    // 5.4.5: "A RESULT for a job the sink remembers as finished is a duplicate
    // when its id is less than that job's total".
    job_table t;
    run_job(t, "j", 3);
    t.collect_finished(t0);
    EXPECT_EQ(t.record(res("j", 0), t0), outcome::duplicate);
    EXPECT_EQ(t.record(res("j", 2), t0), outcome::duplicate);
    EXPECT_EQ(t.open_count(), 0u) << "a late result does not reopen the job";
    EXPECT_NE(t.finished("j"), nullptr);
}

TEST(JobTable, ResultBeyondAFinishedJobsTotalIsRejected) {
    // job_table.hpp: results of finished jobs are duplicates "(or rejected,
    // when the id is beyond a finished job's total)". PROTOCOL.md 5.4.5 still
    // says such a RESULT "starts a new job of that name".
    job_table t;
    run_job(t, "j", 3);
    t.collect_finished(t0);
    EXPECT_EQ(t.record(res("j", 3), t0), outcome::rejected);
    EXPECT_EQ(t.open_count(), 0u);
    EXPECT_NE(t.finished("j"), nullptr) << "the DONE is still re-published";
}

TEST(JobTable, ReopeningAFinishedNameStartsAfresh) {
    // 7.8.2: "JOB_OPEN for a name the sink remembers as finished starts a new
    // job of that name: nothing recorded, and the earlier DONE is no longer
    // re-published."
    job_table t;
    run_job(t, "nightly", 3);
    t.collect_finished(t0);
    job_state* j = t.open("nightly", t0 + 1h);
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(j->opened, t0 + 1h);
    EXPECT_FALSE(j->total);
    EXPECT_EQ(j->recorded.size(), 0u);
    EXPECT_EQ(j->ok, 0u);
    EXPECT_EQ(t.finished("nightly"), nullptr) << "the old summary is dropped";
    EXPECT_EQ(t.record(res("nightly", 0), t0 + 1h), outcome::added);
}

TEST(JobTable, OpensAnUnknownJobImplicitlyOnAResult) {
    // 5.4.5: "A RESULT for a job the sink does not know opens the job
    // implicitly (a sink restarted mid-job)."
    job_table t;
    EXPECT_EQ(t.record(res("resumed", 17), t0 + 3s), outcome::added);
    job_state* j = t.find("resumed");
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(j->opened, t0 + 3s);
    EXPECT_TRUE(j->recorded.contains(17));
    EXPECT_FALSE(j->total);
}

TEST(JobTable, RefusesToOpenMoreThanTheMaximumOfJobs) {
    // 5.1.5: "A sink that cannot open another job (1024 jobs open in the zfarm
    // sink) MUST drop the JOB_OPEN"; 5.4.6: and refuses "a RESULT that would
    // open a job when 1024 are open".
    job_table t;
    for (std::size_t i = 0; i < job_table::k_max_open_jobs; ++i)
        ASSERT_NE(t.open("job-" + std::to_string(i), t0), nullptr) << i;
    EXPECT_EQ(t.open("one-too-many", t0), nullptr);
    EXPECT_EQ(t.open_count(), job_table::k_max_open_jobs);
    // Jobs already open are still found, and results for them recorded.
    EXPECT_NE(t.open("job-0", t0), nullptr);
    EXPECT_EQ(t.record(res("job-0", 0), t0), outcome::added);
    // A result for yet another job cannot open it.
    EXPECT_EQ(t.record(res("one-too-many", 0), t0), outcome::rejected);
    EXPECT_EQ(t.rejected(), 1u);
    EXPECT_EQ(t.find("one-too-many"), nullptr);
}

TEST(JobTable, FinishingAJobMakesRoomForAnother) {
    job_table t;
    for (std::size_t i = 0; i < job_table::k_max_open_jobs; ++i)
        t.open("job-" + std::to_string(i), t0);
    t.find("job-0")->total = 0;
    ASSERT_EQ(t.collect_finished(t0).size(), 1u);
    EXPECT_NE(t.open("newcomer", t0), nullptr);
}

TEST(JobTable, KeepsOnlyTheLatestFinishedJobs) {
    // 7.5.2 (informative): "The zfarm sink remembers the 16 most recently
    // finished jobs."
    job_table t;
    const std::size_t n = job_table::k_finished_kept + 4;
    for (std::size_t i = 0; i < n; ++i) {
        run_job(t, "job-" + std::to_string(i), 1);
        ASSERT_EQ(t.collect_finished(t0).size(), 1u);
    }
    ASSERT_EQ(t.finished_jobs().size(), job_table::k_finished_kept);
    EXPECT_EQ(t.finished("job-0"), nullptr);
    EXPECT_EQ(t.finished("job-3"), nullptr);
    EXPECT_NE(t.finished("job-4"), nullptr);
    EXPECT_EQ(t.finished_jobs().back().job, "job-" + std::to_string(n - 1));
}

TEST(JobTable, CancelForgetsAnOpenJob) {
    // 5.2.4: "a sink that has the job open MUST forget it (its recorded ids
    // and counts; it publishes no DONE for it)".
    job_table t;
    t.open("j", t0)->total = 2;
    t.record(res("j", 0), t0);
    EXPECT_TRUE(t.cancel("j"));
    EXPECT_EQ(t.find("j"), nullptr);
    EXPECT_EQ(t.open_count(), 0u);
    EXPECT_EQ(t.record(res("j", 1), t0), outcome::duplicate);
    EXPECT_TRUE(t.collect_finished(t0).empty()) << "a cancelled job has no DONE";
    EXPECT_EQ(t.finished("j"), nullptr);
}

TEST(JobTable, CancelOfAJobThatIsNotOpenIsIgnored) {
    // 5.2.4: "If the job is not open, the sink ignores the message."
    job_table t;
    EXPECT_FALSE(t.cancel("never-opened"));
    run_job(t, "finished", 1);
    t.collect_finished(t0);
    EXPECT_FALSE(t.cancel("finished"));
    EXPECT_NE(t.finished("finished"), nullptr);
}

TEST(JobTable, StragglersOfACancelledJobDoNotReopenIt) {
    job_table t;
    t.open("j", t0);
    ASSERT_TRUE(t.cancel("j"));
    for (std::uint64_t id : {0u, 5u, 1000u})
        EXPECT_EQ(t.record(res("j", id), t0), outcome::duplicate) << id;
    EXPECT_EQ(t.open_count(), 0u);
}

TEST(JobTable, OpeningACancelledNameStartsItAgain) {
    job_table t;
    t.open("j", t0);
    t.record(res("j", 0), t0);
    ASSERT_TRUE(t.cancel("j"));
    job_state* j = t.open("j", t0 + 1s);
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(j->recorded.size(), 0u);
    EXPECT_EQ(t.record(res("j", 0), t0 + 1s), outcome::added);
}

TEST(JobTable, RemembersOnlyRecentCancellations) {
    job_table t;
    const std::size_t n = job_table::k_finished_kept + 1;
    for (std::size_t i = 0; i < n; ++i) {
        t.open("job-" + std::to_string(i), t0);
        ASSERT_TRUE(t.cancel("job-" + std::to_string(i)));
    }
    // The oldest cancellation is forgotten: its stragglers open it implicitly
    // again, like any unknown job's.
    EXPECT_EQ(t.record(res("job-0", 0), t0), outcome::added);
    EXPECT_EQ(t.record(res("job-1", 0), t0), outcome::duplicate);
}

// 5.10: DONE means every id below the total is recorded. Ids are only
// range-checked once the total is known, so an id beyond it may be recorded
// before JOB_CLOSE (a straggler of an earlier run, 7.8.2); it must not stand
// in for a missing one.
TEST(JobTable, CompletesOnlyWhenEveryIdBelowTheTotalIsRecorded) {
    job_table t;
    t.open("j", t0);
    for (std::uint64_t id : {0u, 1u, 2u, 7u})  // 7: beyond the total announced below
        ASSERT_EQ(t.record(res("j", id), t0), outcome::added);
    t.find("j")->total = 4;  // JOB_CLOSE: ids 0..3; id 3 has no result yet
    EXPECT_FALSE(t.find("j")->complete());
    EXPECT_TRUE(t.collect_finished(t0).empty()) << "DONE published while id 3 is missing";
}

// 10.1: results restored from an earlier run's output are dormant: not an
// open job (no relays, not in open_jobs) until the job is opened again, which
// continues it with what was restored.
TEST(JobTable, RestoredJobsAreDormantUntilOpened) {
    job_table t;
    EXPECT_EQ(t.restore("j", 0, true, "w1"), outcome::added);
    EXPECT_EQ(t.restore("j", 2, false, "w2"), outcome::added);
    EXPECT_EQ(t.restore("j", 2, true, "w2"), outcome::duplicate);
    EXPECT_EQ(t.dormant_count(), 1u);
    EXPECT_EQ(t.open_count(), 0u);
    EXPECT_EQ(t.find("j"), nullptr);
    EXPECT_TRUE(t.open_names().empty());

    job_state* j = t.open("j", t0);
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(t.dormant_count(), 0u);
    EXPECT_EQ(j->ok, 1u);
    EXPECT_EQ(j->failed, 1u);
    EXPECT_EQ(j->workers.size(), 2u);
    EXPECT_EQ(j->recorded.floor(), 1u);
    EXPECT_EQ(t.record(res("j", 2), t0), outcome::duplicate);
    EXPECT_EQ(t.record(res("j", 1), t0), outcome::added);
    j->total = 3;
    const auto finished = t.collect_finished(t0);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].ok, 2u);
    EXPECT_EQ(finished[0].failed, 1u);
}

// A result of a dormant job (its ventilator still running, the sink
// restarted) opens it with what was restored: no duplicate is recorded.
TEST(JobTable, AResultOpensADormantJobWithWhatWasRestored) {
    job_table t;
    ASSERT_EQ(t.restore("j", 5, true, "w1"), outcome::added);
    EXPECT_EQ(t.record(res("j", 5), t0), outcome::duplicate);
    EXPECT_EQ(t.record(res("j", 4), t0), outcome::added);
    EXPECT_EQ(t.open_count(), 1u);
    EXPECT_EQ(t.dormant_count(), 0u);
}

TEST(JobTable, RestoreRefusesIdsBeyondTheDedupeSpan) {
    job_table t;
    EXPECT_EQ(t.restore("j", dedupe_set::k_max_span, true, ""), outcome::rejected);
}

// 5.14: a failure of an attempt within the job's retries is not recorded;
// the failure finally recorded carries the reason of every attempt.
TEST(JobTable, FailuresWithinRetriesAreNotRecordedAndTheLastNamesEveryAttempt) {
    job_table t;
    job_state* j = t.open("j", t0);
    j->retries = 2;
    auto failure = [](std::uint32_t attempt, const std::string& why) {
        return result{"j", 7, attempt, "w1", task_status::failed, 10, "", why};
    };
    std::string error;
    EXPECT_EQ(t.record(failure(1, "exit code 3"), t0, &error), outcome::retry);
    EXPECT_EQ(t.record(failure(1, "exit code 3"), t0, &error), outcome::retry)
        << "a second copy of attempt 1";
    EXPECT_EQ(t.record(failure(2, "killed by signal 9"), t0, &error), outcome::retry);
    EXPECT_TRUE(error.empty());
    EXPECT_FALSE(j->recorded.contains(7));
    EXPECT_EQ(t.record(failure(3, "exit code 3"), t0, &error), outcome::added);
    EXPECT_EQ(error,
              "attempt 1: exit code 3; attempt 2: killed by signal 9; attempt 3: exit code 3");
    EXPECT_EQ(j->failed, 1u);
    EXPECT_TRUE(j->failures.empty());
}

TEST(JobTable, ASuccessAfterFailuresIsRecordedWithoutTheirReasons) {
    job_table t;
    t.open("j", t0)->retries = 1;
    std::string error;
    EXPECT_EQ(t.record(result{"j", 0, 1, "w", task_status::failed, 1, "", "boom"}, t0, &error),
              outcome::retry);
    EXPECT_EQ(t.record(result{"j", 0, 2, "w", task_status::ok, 1, "", ""}, t0, &error),
              outcome::added);
    EXPECT_TRUE(error.empty());
    EXPECT_TRUE(t.find("j")->failures.empty());
}

TEST(JobTable, WithoutRetriesAFailureIsRecordedAtOnce) {
    job_table t;
    t.open("j", t0);
    EXPECT_EQ(t.record(res("j", 0, task_status::failed), t0), outcome::added);
}

TEST(JobTable, TheVentilatorsOwnFailureIsWrittenAsItIs) {
    job_table t;
    t.open("j", t0)->retries = 1;
    std::string error;
    EXPECT_EQ(t.record(result{"j", 0, 1, "w", task_status::failed, 1, "", "boom"}, t0, &error),
              outcome::retry);
    EXPECT_EQ(t.record(result{"j", 0, 2, "", task_status::failed, 0, "",
                              "attempt 1: boom; attempt 2: worker w was lost"},
                       t0, &error),
              outcome::added);
    EXPECT_TRUE(error.empty()) << error;
}

}  // namespace
