#include "sink.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "http_server.hpp"
#include "job_log.hpp"
#include "job_report.hpp"
#include "job_table.hpp"
#include "recovery.hpp"
#include "result_recorder.hpp"
#include "result_writer.hpp"
#include "sink_stats.hpp"
#include "worker_table.hpp"
#include "zfarm/codec.hpp"
#include "zfarm/logging.hpp"
#include "zfarm/signals.hpp"

namespace zfarm::sink {
namespace {

using clock = std::chrono::steady_clock;

constexpr int k_batch = 4096;  // messages handled between ACK flushes
constexpr auto k_done_republish = std::chrono::milliseconds(1000);
// A job's REPORT goes with its DONE's re-publications for this long only: it
// may be large (a row per worker), every ventilator subscribes to it, and a
// ventilator that missed both learns of the DONE within a second or two.
constexpr auto k_report_republish = std::chrono::seconds(10);
constexpr auto k_once_grace = std::chrono::milliseconds(300);
constexpr auto k_poll_interval = std::chrono::milliseconds(100);
// A worker is declared lost within this of its liveness timeout; relays,
// which carry every held id, stay at k_done_republish.
constexpr auto k_liveness_check = std::chrono::milliseconds(250);
// How often the status endpoint's snapshot is refreshed (with --http).
constexpr auto k_status_refresh = std::chrono::milliseconds(250);

class sink_loop {
  public:
    sink_loop(zmq::socket_t& results, zmq::socket_t& control, result_writer& out, job_log* log,
              const sink_options& opt, job_table jobs)
        : results_(results),
          control_(control),
          jobs_(std::move(jobs)),
          recorder_(jobs_, out, log, recorder_options{opt.keep_order, opt.keep_order_memory}),
          workers_(opt.liveness_timeout, k_liveness_check) {}

    // Handles the messages waiting on the results socket, up to about
    // k_batch (a BATCH frame is handled whole).
    void drain(clock::time_point now) {
        for (int handled = 0; handled < k_batch;) {
            zmq::message_t m;
            if (!results_.recv(m, zmq::recv_flags::dontwait)) break;
            if (m.more()) {  // our messages are single frames
                std::string peer = peer_address(m);
                while (m.more())
                    (void)results_.recv(m, zmq::recv_flags::none);
                drops_.drop("results", peer, "multipart message");
                ++handled;
                continue;
            }
            proto::decode_frame(m.to_string_view(), frame_);
            for (auto& decoded : frame_) {
                ++handled;
                if (!decoded) {
                    drops_.drop("results", peer_address(m),
                                std::string(proto::to_string(decoded.error().code)) + ": " +
                                    decoded.error().detail);
                    continue;
                }
                handle(*decoded, m, now);
            }
        }
        note_rejoined();
    }

    void handle(proto::message& msg, const zmq::message_t& raw, clock::time_point now) {
        if (auto* r = std::get_if<proto::result>(&msg)) {
            if (!r->worker.empty()) workers_.seen(r->worker, now);  // empty: from the ventilator
            // Taken before add(), which may move the result.
            const std::uint64_t elapsed_us = r->elapsed_us;
            std::optional<failure_row> failure;
            if (r->status == proto::task_status::failed) failure = sink_stats::failure_of(*r);
            switch (recorder_.add(*r, now)) {  // written (or held) and acknowledged
                case job_table::record_outcome::added:
                    stats_.recorded(elapsed_us, std::move(failure));
                    break;
                case job_table::record_outcome::duplicate:
                    break;
                case job_table::record_outcome::rejected:
                    drops_.drop("results", peer_address(raw),
                                "task id out of range for job " + r->job);
                    break;
                case job_table::record_outcome::retry:
                    if (failure) stats_.retried(std::move(*failure));
                    retries_.push_back(proto::retry{r->job, r->id, r->attempt, r->error});
                    break;
            }
        } else if (auto* o = std::get_if<proto::job_open>(&msg)) {
            if (o->resume && jobs_.finished(o->job)) {
                recorded_wanted_.insert(o->job);  // all of it: nothing left to send
                return;
            }
            if (!jobs_.find(o->job)) spdlog::info("job {} opened", o->job);
            job_state* j = jobs_.open(o->job, now);
            if (!j) {
                drops_.drop("results", peer_address(raw), "too many open jobs");
                return;
            }
            j->retries = o->retries;
            if (o->resume) {
                recorded_wanted_.insert(o->job);
            } else {
                recorder_.answer_open(o->job);  // an ACK with no ids answers JOB_OPEN
            }
        } else if (auto* c = std::get_if<proto::job_close>(&msg)) {
            if (c->cancel) {
                if (jobs_.cancel(c->job)) {
                    recorder_.cancel(c->job);
                    ++cancelled_;
                    spdlog::warn("job {} cancelled by its ventilator", c->job);
                    proto::encode(proto::stop{c->job, "cancelled by the ventilator"}, scratch_);
                    publish(control_, proto::k_topic_stop, scratch_);
                }
                return;
            }
            job_state* j = jobs_.find(c->job);
            if (!j && jobs_.finished(c->job)) return;  // a repeated close of a finished job
            if (!j) j = jobs_.open(c->job, now);
            if (!j) return;
            if (!j->total) {
                spdlog::info("job {} closed with {} tasks", c->job, c->total);
                j->closed = now;
            }
            j->total = c->total;
        } else if (auto* h = std::get_if<proto::hello>(&msg)) {
            spdlog::info("worker {} joined (host {}, pid {}, {} threads, v{})", h->worker, h->host,
                         h->pid, h->threads, h->version);
            workers_.hello(*h, now);
            stats_.hello(*h, now);
        } else if (auto* b = std::get_if<proto::bye>(&msg)) {
            spdlog::info("worker {} left", b->worker);
            workers_.bye(b->worker);
            stats_.left(b->worker, now);
            // Whatever was still queued to it (push dispatch: in its socket
            // buffers) is sent again at once, not after a lease. Published
            // after this batch's ACKs, so its last results are not re-sent.
            departed_.push_back(proto::lost{b->worker, b->returned});
        } else if (auto* hb = std::get_if<proto::heartbeat>(&msg)) {
            workers_.heartbeat(*hb, now);
            stats_.heartbeat(*hb, now);
        } else {
            drops_.drop(
                "results", peer_address(raw),
                std::string(proto::to_string(proto::type_of(msg))) + " is not sent to a sink");
        }
    }

    // Publishes pending ACKs, flushes output, and announces finished jobs.
    // Returns the number of jobs that finished now.
    std::size_t settle(clock::time_point now, sink_summary& summary) {
        if (!recorder_.flush())
            throw std::runtime_error(std::string("cannot write results or the job log: ") +
                                     std::strerror(errno));
        for (const auto& a : recorder_.take_acks()) {
            proto::encode(a, scratch_);
            publish(control_, proto::k_topic_ack, scratch_);
        }
        for (const auto& job : recorded_wanted_)
            publish_recorded(job);
        recorded_wanted_.clear();
        for (const auto& r : retries_) {
            proto::encode(r, scratch_);
            publish(control_, proto::k_topic_retry, scratch_);
        }
        retries_.clear();
        for (const auto& l : departed_) {
            proto::encode(l, scratch_);
            publish(control_, proto::k_topic_lost, scratch_);
        }
        departed_.clear();
        auto finished = jobs_.collect_finished(
            now, [&](const job_state& j, const proto::done& d) { keep_report(j, d, now); });
        for (const auto& d : finished) {
            ++summary.jobs_done;
            if (d.failed) ++summary.jobs_failed;
            const double secs = static_cast<double>(d.elapsed_ms) / 1000.0;
            spdlog::info(
                "job {} done: {} tasks, {} ok, {} failed, {} workers, {:.3f} s ({:.0f} tasks/s)",
                d.job, d.total, d.ok, d.failed, d.workers, secs,
                secs > 0 ? static_cast<double>(d.total) / secs : 0.0);
            publish_report(d, now);
            publish_done(d);
        }
        return finished.size();
    }

    // Every k_liveness_check: declares silent workers lost (LOST, so their
    // tasks are re-sent at once).
    void check_liveness(clock::time_point now) {
        clock::duration paused{};
        auto lost = workers_.expire(now, &paused);
        if (paused > clock::duration::zero())
            spdlog::warn(
                "sink was paused for {} ms: its workers' silence meanwhile is not held "
                "against them",
                std::chrono::duration_cast<std::chrono::milliseconds>(paused).count());
        for (auto& l : lost) {
            // A task whose result is held for --keep-order is done: not sent again.
            std::erase_if(l.tasks,
                          [&](const proto::task_ref& t) { return recorder_.holds(t.job, t.id); });
            spdlog::warn("worker {} lost: silent for too long, holding {} task(s)", l.worker,
                         l.tasks.size());
            stats_.lost(l.worker, now);
            jobs_.worker_lost(l.worker, l.tasks);
            proto::encode(l, scratch_);
            publish(control_, proto::k_topic_lost, scratch_);
        }
    }

    // About once a second: tells each job's ventilator which of its tasks
    // live workers hold (an ACK with `running`, renewing their leases).
    void relay(clock::time_point now) {
        check_liveness(now);
        for (const auto& job : jobs_.open_names()) {
            // Results held for --keep-order first: no worker reports those
            // (PROTOCOL.md 7.3, rule 4).
            proto::ack a{job, {}, recorder_.held(job)};
            const auto held = workers_.held(job);
            a.running.insert(a.running.end(), held.begin(), held.end());
            if (a.running.size() > proto::k_max_ids_per_message)
                a.running.resize(proto::k_max_ids_per_message);
            proto::encode(a, scratch_);
            publish(control_, proto::k_topic_ack, scratch_);
        }
    }

    void republish_done(clock::time_point now) {
        for (auto d : jobs_.finished_jobs()) {
            d.open_jobs = static_cast<std::uint32_t>(jobs_.open_count());
            publish_report(d, now);
            publish_done(d);
        }
    }

    // What the status endpoint shows now.
    std::shared_ptr<const status_snapshot> status(clock::time_point now) {
        return stats_.snapshot(
            now, jobs_,
            sink_counters{0, recorder_.duplicates(), drops_.count(), workers_.lost_count(),
                          workers_.alive(), jobs_.open_count()});
    }

    std::uint64_t dropped() const { return drops_.count(); }
    std::uint64_t cancelled() const { return cancelled_; }
    std::uint64_t duplicates() const { return recorder_.duplicates(); }

  private:
    // RECORDED for `job`, after this batch's results are flushed: what a
    // resuming ventilator need not send (PROTOCOL.md 5.13).
    void publish_recorded(const std::string& job) {
        proto::recorded msg{job, 0, {}, false};
        std::vector<std::uint64_t> ids;
        if (const auto* d = jobs_.finished(job)) {
            msg.floor = d->total;
        } else if (const job_state* j = jobs_.find(job)) {
            msg.floor = j->recorded.floor();
            ids = j->recorded.above_floor();
            // Held for --keep-order, not written yet: not recorded as far as
            // the ventilator can tell (5.1, rule 6).
            std::erase_if(ids, [&](std::uint64_t id) { return recorder_.holds(job, id); });
        }
        std::size_t i = 0;
        do {
            const std::size_t n = std::min(ids.size() - i, proto::k_max_ids_per_message);
            msg.ids.assign(ids.begin() + static_cast<long>(i),
                           ids.begin() + static_cast<long>(i + n));
            i += n;
            msg.more = i < ids.size();
            proto::encode(msg, scratch_);
            publish(control_, proto::k_topic_recorded, scratch_);
        } while (i < ids.size());
    }

    // Workers lost earlier that spoke again: counted in the jobs they were
    // lost in. Once per drain, before settle() can finish a job.
    void note_rejoined() {
        for (const auto& w : workers_.take_rejoined())
            jobs_.worker_rejoined(w);
    }

    // The REPORT of a job finishing now, encoded once, to be published
    // before its DONE and its re-publications for k_report_republish (5.16).
    void keep_report(const job_state& j, const proto::done& d, clock::time_point now) {
        const proto::report r = make_report(j, d, [&](const std::string& name) {
            worker_facts f;
            if (const worker_row* row = stats_.worker(name)) {
                f.host = row->host;
                f.threads = row->threads;
            }
            f.present = workers_.present(name);
            return f;
        });
        reports_.push_back(kept_report{r.job, r.total, proto::encode(r), now});
        if (reports_.size() > job_table::k_finished_kept) reports_.pop_front();
    }

    void publish_report(const proto::done& d, clock::time_point now) {
        const auto it = std::find_if(reports_.rbegin(), reports_.rend(), [&](const auto& r) {
            return r.job == d.job && r.total == d.total;
        });
        if (it == reports_.rend() || now - it->finished > k_report_republish) return;
        publish(control_, proto::k_topic_report, it->frame);
    }

    void publish_done(const proto::done& d) {
        proto::encode(d, scratch_);
        publish(control_, proto::k_topic_done, scratch_);
    }

    zmq::socket_t& results_;
    zmq::socket_t& control_;
    job_table jobs_;
    result_recorder recorder_;
    worker_table workers_;
    sink_stats stats_;
    drop_counter drops_;
    std::string scratch_;
    proto::decoded_frame frame_;
    std::uint64_t cancelled_ = 0;
    std::vector<proto::lost> departed_;      // said BYE in this batch, with what they handed back
    std::set<std::string> recorded_wanted_;  // JOB_OPEN with resume in this batch
    std::vector<proto::retry> retries_;      // failures of this batch to send again
    struct kept_report {
        std::string job;
        std::uint64_t total;
        std::string frame;  // the REPORT, encoded
        clock::time_point finished;
    };
    std::deque<kept_report> reports_;  // of the latest finished jobs, oldest first
};

}  // namespace

expected<sink_summary, std::string> run_sink(const sink_options& opt) {
    job_table jobs;
    if (opt.resume) {
        auto r = recover(opt.output, jobs);
        if (!r) return unexpected{r.error()};
        if (r->file_missing)
            spdlog::info("nothing to resume: {} does not exist yet", opt.output);
        else
            spdlog::info("resumed {} result(s) of {} job(s) from {}", r->results, r->jobs,
                         opt.output);
        if (r->torn_bytes > 0)
            spdlog::warn(
                "{}: cut a torn last line of {} byte(s) left by a crash; its task "
                "is recorded again when it arrives",
                opt.output, r->torn_bytes);
        if (r->duplicates > 0)
            spdlog::warn("{}: {} line(s) repeat a task recorded earlier in the file", opt.output,
                         r->duplicates);
    }
    auto writer = result_writer::open(opt.output, opt.format);
    if (!writer) return unexpected{writer.error()};
    std::optional<job_log> log;
    if (!opt.joblog.empty()) {
        auto l = job_log::open(opt.joblog);
        if (!l) return unexpected{l.error()};
        log.emplace(std::move(*l));
    }
    try {
        zmq::context_t ctx(1);
        // Before any socket binds, and destroyed after them (declared after ctx).
        auto zap = curve::start_authentication(ctx, opt.curve);
        if (!zap) return unexpected{zap.error()};
        zmq::socket_t results(ctx, zmq::socket_type::pull);
        zmq::socket_t control(ctx, zmq::socket_type::pub);
        configure_socket(results, opt.transport, true);
        results.set(zmq::sockopt::rcvhwm, 100000);
        configure_socket(control, opt.transport, false);
        control.set(zmq::sockopt::sndhwm,
                    1000000);  // ACKs are batched: this is many seconds of them
        secure_socket(results, opt.transport, opt.curve, socket_side::binds);
        secure_socket(control, opt.transport, opt.curve, socket_side::binds);
        warn_if_exposed({opt.results_endpoint, opt.control_endpoint}, opt.curve,
                        "forge results, open and cancel jobs, and follow every job's progress");
        auto r = bind_socket(results, opt.results_endpoint);
        if (!r) return unexpected{r.error()};
        auto c = bind_socket(control, opt.control_endpoint);
        if (!c) return unexpected{c.error()};
        spdlog::info("sink up: results {}, control {}, output {}", *r, *c,
                     opt.output.empty() || opt.output == "-" ? "stdout" : opt.output);

        sink_loop loop(results, control, *writer, log ? &*log : nullptr, opt, std::move(jobs));
        // The status endpoint reads snapshots the loop publishes a few times
        // a second, never the loop's own state.
        snapshot_board board;
        std::unique_ptr<status_server> http;
        if (opt.http) {
            board.publish(loop.status(clock::now()));
            auto s = status_server::start(*opt.http, board);
            if (!s) return unexpected{s.error()};
            http = std::move(*s);
            const bool v6 = opt.http->host.find(':') != std::string::npos;
            spdlog::info("http: listening on http://{}{}{}:{}/", v6 ? "[" : "", opt.http->host,
                         v6 ? "]" : "", http->port());
        }
        auto next_status = clock::now() + k_status_refresh;
        sink_summary summary;
        auto next_republish = clock::now() + k_done_republish;
        auto next_liveness_check = clock::now() + k_liveness_check;
        std::optional<clock::time_point> leave_at;
        while (stop_requests() == 0) {
            zmq::pollitem_t items[] = {{results.handle(), 0, ZMQ_POLLIN, 0}};
            try {
                zmq::poll(items, 1, k_poll_interval);
            } catch (const zmq::error_t& e) {
                if (e.num() != EINTR) throw;
                continue;
            }
            const auto now = clock::now();
            if (items[0].revents & ZMQ_POLLIN) loop.drain(now);
            const bool ended = loop.settle(now, summary) > 0 || loop.cancelled() > 0;
            if (ended && opt.once && !leave_at) leave_at = now + k_once_grace;
            if (now >= next_liveness_check) {
                loop.check_liveness(now);
                next_liveness_check = now + k_liveness_check;
            }
            if (now >= next_republish || leave_at) {
                loop.relay(now);
                loop.republish_done(now);
                next_republish = now + (leave_at ? k_poll_interval : k_done_republish);
            }
            if (http && now >= next_status) {
                board.publish(loop.status(now));
                next_status = now + k_status_refresh;
            }
            if (leave_at && now >= *leave_at) break;
        }
        summary.frames_dropped = loop.dropped();
        summary.jobs_cancelled = loop.cancelled();
        spdlog::info(
            "sink leaving: {} job(s) done, {} duplicate result(s) dropped, {} bad frame(s) dropped",
            summary.jobs_done, loop.duplicates(), summary.frames_dropped);
        return summary;
    } catch (const std::exception& e) {
        return unexpected{std::string(e.what())};
    }
}

}  // namespace zfarm::sink
