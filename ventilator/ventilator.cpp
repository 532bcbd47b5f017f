#include "ventilator.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "failure_halt.hpp"
#include "ledger.hpp"
#include "zfarm/codec.hpp"
#include "zfarm/logging.hpp"
#include "zfarm/receive.hpp"
#include "zfarm/signals.hpp"

namespace zfarm::ventilator {
namespace {

using clock = std::chrono::steady_clock;

// JOB_OPEN is repeated until the sink's ACK arrives: the first ACK is often
// published before our subscription reaches the sink (the slow joiner), so
// retry soon, then back off.
constexpr auto k_open_retry_first = std::chrono::milliseconds(10);
constexpr auto k_open_retry_max = std::chrono::milliseconds(500);
constexpr auto k_close_retry = std::chrono::milliseconds(1000);
constexpr auto k_waiting_log = std::chrono::seconds(5);
constexpr auto k_lease_check = std::chrono::milliseconds(250);
// Workers report what they hold every second and the sink relays it every
// second: a relay this long after a loss reflects every live worker.
constexpr auto k_sweep_delay = std::chrono::milliseconds(2100);
constexpr auto k_poll_interval = std::chrono::milliseconds(100);
// Push dispatch waits for this long without a new worker (but no longer than
// k_settle_max after the first) before sending: workers started together
// reconnect within one reconnect interval (at most 110 ms, PROTOCOL.md 2.4)
// of each other.
constexpr auto k_settle_quiet = std::chrono::milliseconds(150);
constexpr auto k_settle_max = std::chrono::milliseconds(1000);
constexpr auto k_settle_poll = std::chrono::milliseconds(10);
constexpr auto k_push_ahead = std::chrono::milliseconds(100);
constexpr int k_push_min_per_peer = 8;
constexpr double k_stall_factor = 4.0;
constexpr int k_push_pipe_hwm = 1000;
constexpr auto k_stall_min = std::chrono::milliseconds(250);
constexpr int k_handshake_failed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

class dispatcher {
  public:
    dispatcher(const ventilator_options& opt, task_source& source, zmq::socket_t& tasks,
               zmq::socket_t& to_sink, zmq::socket_t& control, zmq::socket_t* monitor,
               zmq::socket_t& sink_monitor, progress_display* progress)
        : opt_(opt),
          progress_(progress),
          source_(source),
          tasks_(tasks),
          to_sink_(to_sink),
          control_(control),
          monitor_(monitor),
          sink_monitor_(sink_monitor),
          ledger_(opt.window),
          halt_(opt.halt_on_failure),
          asking_recorded_(opt.resume) {
        batch_.limit_bytes_for(opt.transport.max_message);
    }

    expected<job_outcome, std::string> run();

  private:
    bool credit_mode() const { return opt_.dispatch == dispatch_mode::credit; }
    // Never blocks: JOB_OPEN and JOB_CLOSE are repeated until answered, so
    // one that cannot be queued (no sink for a long time) is simply skipped.
    void send_to_sink(const proto::message& m) {
        proto::encode(m, scratch_);
        (void)to_sink_.send(zmq::buffer(scratch_), zmq::send_flags::dontwait);
    }
    // Reads control messages; returns true when this job's DONE arrived.
    bool on_control();
    // RECORDED, the sink's answer to a JOB_OPEN with resume (5.13).
    void on_recorded(const proto::recorded& r, clock::time_point now);
    // Workers connected now: to the tasks socket (push), or granting credit.
    std::size_t connected_workers() const {
        return credit_mode() ? rotation_.size() : static_cast<std::size_t>(std::max(peers_, 0));
    }
    // --expect-workers / --min-workers: an error once the deadline passed
    // with too few connected; logs who came (once) when enough did.
    std::optional<std::string> check_launch(clock::time_point started, clock::time_point now);
    bool launch_checked_ = false;
    // A new connection to the sink after one was lost: a restarted sink may
    // have lost results it had not written, so ask it what it recorded.
    void on_sink_monitor();
    // What every outcome says: the job, its dispatch, what was sent again
    // or skipped.
    job_outcome outcome() const;
    // The job given up: cancelled on the sink (7.7), with what was sent so far.
    job_outcome cancel(clock::time_point started);
    // Tasks the sink has recorded that we have not sent (resume): skipped.
    bool already_recorded(std::uint64_t id) const {
        return id < recorded_floor_ || recorded_ids_.contains(id);
    }
    void on_credit();
    // Sends as many tasks as window, credit and sockets allow. Returns an
    // error when the task source fails.
    expected<bool, std::string> dispatch(clock::time_point now);
    std::string* pick_worker();
    // Tasks to send go out in batches (PROTOCOL.md 5.15) of what is ready
    // now, up to `limit`: re-sends first, then new tasks while the window
    // allows. Nothing is taken for sent until commit_batch; unfill_batch
    // puts it all back. `who`: the worker it is for (credit dispatch).
    std::size_t fill_batch(std::size_t limit, const std::string* who);  // tasks in it
    void unfill_batch();
    void commit_batch(clock::time_point now, const std::string* who);
    proto::batch_encoder batch_;
    std::vector<std::uint64_t> batch_resends_;
    std::size_t batch_new_ = 0;               // the first of pending_ in batch_
    std::optional<std::string> input_error_;  // the source failed after what was sent
    // Queues `id` to be sent again with the next attempt number, or gives up
    // on it (records it failed through the sink) when attempts are exhausted.
    void resend(std::uint64_t id, std::string_view why);
    // Credit dispatch gives a worker one re-sent task at a time: a task is
    // sent again because its worker died or failed it, maybe because of that
    // very task, and two such tasks on one worker could take each other down,
    // an attempt each, again and again (a poison task would fail the tasks
    // sent again with it). Re-sent tasks held, by worker:
    std::unordered_map<std::string, std::uint32_t> suspects_;
    bool holds_suspect(const std::string& worker) const { return suspects_.contains(worker); }
    // `e` is no longer held as a re-sent task (acknowledged, or sent again).
    void drop_suspect(ledger_entry& e) {
        if (!e.suspect) return;
        e.suspect = false;
        if (auto it = suspects_.find(e.holder); it != suspects_.end() && --it->second == 0)
            suspects_.erase(it);
    }
    // Acknowledges `id` in the ledger; false when it was not in flight.
    bool acknowledge(std::uint64_t id) {
        if (!suspects_.empty())  // a lookup more per ACKed id only while some are held
            if (auto* e = ledger_.find(id)) drop_suspect(*e);
        return ledger_.acknowledge(id);
    }
    void on_lost(const proto::lost& l, clock::time_point now);
    void expire_leases(clock::time_point now);
    // Records `id` as failed through the sink, with the reasons of its attempts.
    void give_up(std::uint64_t id, ledger_entry& e, clock::time_point now);
    // Push dispatch after a loss at time T: once live workers have reported
    // what they hold (a relay k_sweep_delay after T), re-send what was sent
    // before T and nobody holds. Losses while a sweep is pending are swept
    // next, at their latest T: a pending sweep is never postponed, so
    // repeated losses cannot starve it.
    void schedule_sweep(clock::time_point now);
    void sweep();
    std::optional<clock::time_point> sweep_before_;
    std::optional<clock::time_point> sweep_next_;

    const ventilator_options& opt_;
    progress_display* progress_;
    std::uint64_t failed_seen_ = 0;  // acknowledged as failed
    progress_state progress_now(clock::time_point started, clock::time_point now) const;
    void show_progress(clock::time_point started, clock::time_point now, bool final) {
        if (!progress_) return;
        if (final) {
            progress_->finish(progress_now(started, now), now);
        } else {
            progress_->update(progress_now(started, now), now);
        }
    }
    task_source& source_;
    zmq::socket_t& tasks_;  // PUSH (push mode) or ROUTER (credit mode)
    zmq::socket_t& to_sink_;
    zmq::socket_t& control_;
    zmq::socket_t* monitor_;       // push mode: connection events of the tasks socket
    zmq::socket_t& sink_monitor_;  // connection events of the control socket
    ledger ledger_;
    failure_halt halt_;
    drop_counter drops_;
    std::string scratch_;

    bool opened_ = false;
    // Waiting for RECORDED: at the start with --resume, or after the
    // connection to the sink was lost and made again.
    bool asking_recorded_ = false;
    bool sink_disconnected_ = false;
    std::uint64_t recorded_floor_ = 0;
    std::unordered_set<std::uint64_t> recorded_ids_;
    std::uint64_t skipped_ = 0;
    bool exhausted_ = false;
    std::uint64_t next_id_ = 0;
    task_queue pending_;                // generated, not yet sent; the first is id next_id_
    std::deque<std::uint64_t> resend_;  // in the ledger, to be sent again
    std::optional<proto::done> done_;
    std::optional<proto::report> report_;
    // Ids of this job live workers reported holding, as of the latest relay.
    std::unordered_set<std::uint64_t> reported_;
    clock::time_point reported_at_{};
    std::uint64_t resent_ = 0;

    // Push dispatch starts once workers have stopped arriving for a moment:
    // PUSH cannot move a task queued to one worker to another, so sending to
    // the first worker to connect would hand it everything.
    bool settled(clock::time_point now) const;
    void on_monitor(clock::time_point now);
    int peers_ = 0;
    int failed_handshakes_ = 0;  // whose DISCONNECTED is still to come

    // Push dispatch also keeps in flight only about k_push_ahead of work at
    // the observed rate (at least k_push_min_per_peer per worker): enough to
    // keep every worker busy, little enough that tasks still wait here, where
    // a worker that joins later can be given them. Tasks in flight for much
    // longer than tasks take (stalled: their worker stopped, hung or died)
    // do not count, up to one more budget, so a stalled worker cannot use up
    // the budget and starve the others (PROTOCOL.md 8.1, rule 4).
    // `adding`: new tasks about to be sent, not yet in the ledger.
    bool window_full(std::size_t adding) const {
        const std::size_t in_flight = ledger_.size() + adding;
        if (in_flight >= ledger_.window()) return true;
        if (credit_mode()) return false;
        const double budget = push_budget();
        // Stalled tasks are let through up to one more budget: enough for
        // the others to keep working, not so many that their queues deepen.
        return static_cast<double>(in_flight) >=
               budget + std::min(static_cast<double>(stalled_), budget);
    }
    double push_budget() const {
        const double ahead = ack_rate_ * std::chrono::duration<double>(k_push_ahead).count();
        const auto floor = static_cast<double>(k_push_min_per_peer * std::max(peers_, 1));
        return std::max(ahead, floor);
    }
    // Push dispatch sends a batch to one worker (libzmq's round robin is per
    // frame): small enough that each worker gets several per budget (and per
    // window), so work stays spread; 1 when tasks are slow (the budget is
    // then its floor).
    std::size_t push_batch_limit() const {
        const double in_flight = std::min(push_budget(), static_cast<double>(ledger_.window()));
        const double per_batch =
            in_flight / static_cast<double>(k_push_min_per_peer * std::max(peers_, 1));
        return std::clamp<std::size_t>(static_cast<std::size_t>(per_batch), 1,
                                       proto::k_max_batch_messages);
    }
    void measure_rate(clock::time_point now);
    // Push dispatch: counts the tasks in flight for over k_stall_factor times
    // as long as acknowledged tasks spent in flight lately.
    void count_stalled(clock::time_point now);
    std::size_t stalled_ = 0;
    double ack_age_s_ = 0;  // time in flight of acknowledged tasks, smoothed (sampled)
    std::uint32_t age_sample_ = 0;
    double ack_rate_ = 0;  // tasks acknowledged per second, smoothed
    std::uint64_t rate_acked_ = 0;
    clock::time_point rate_at_{};
    bool dispatching_ = false;
    clock::time_point first_join_{};
    clock::time_point last_join_{};

    // Credit dispatch: credit per worker, and a rotation for fairness.
    std::unordered_map<std::string, std::uint64_t> credit_;
    std::deque<std::string> rotation_;
};

bool dispatcher::on_control() {
    for (int i = 0; i < 1024; ++i) {
        zmq::message_t topic;
        std::optional<proto::message> decoded;
        const auto got = receive_enveloped(control_, "control", drops_, topic, decoded);
        if (got == receive_status::nothing) break;
        if (got == receive_status::skipped) continue;
        if (auto* a = std::get_if<proto::ack>(&*decoded)) {
            if (a->job != opt_.job) continue;
            if (!opened_ && !asking_recorded_) {
                spdlog::debug("sink acknowledged job {}", opt_.job);
                opened_ = true;
            }
            // `failed` is some of `ids`, in no order the protocol promises.
            const std::unordered_set<std::uint64_t> failed(a->failed.begin(), a->failed.end());
            for (auto id : a->ids) {
                if (!credit_mode() && (++age_sample_ & 7) == 0) {
                    if (const auto* e = ledger_.find(id)) {
                        const double age =
                            std::chrono::duration<double>(clock::now() - e->sent_at).count();
                        ack_age_s_ = ack_age_s_ == 0 ? age : 0.95 * ack_age_s_ + 0.05 * age;
                    }
                }
                if (acknowledge(id) && failed.contains(id)) ++failed_seen_;
            }
            if (halt_.on_failed(a->failed))
                spdlog::warn(
                    "task {} failed: halting job {} (--halt-on-failure): no new tasks; "
                    "{} in flight finish first",
                    *halt_.first_failed(), opt_.job, ledger_.size());
            if (a->ids.empty()) {  // the sink's periodic relay of held tasks
                const auto now = clock::now();
                reported_.clear();
                for (auto id : a->running) {
                    reported_.insert(id);
                    if (auto* e = ledger_.find(id)) e->lease_until = now + opt_.lease;
                }
                reported_at_ = now;
                if (sweep_before_ && now >= *sweep_before_ + k_sweep_delay) sweep();
            }
        } else if (auto* d = std::get_if<proto::done>(&*decoded)) {
            // A DONE for a job we have not closed is stale (an earlier run of
            // the same name, re-published): ignore it.
            if (d->job == opt_.job && exhausted_ && d->total == next_id_) done_ = *d;
        } else if (auto* rep = std::get_if<proto::report>(&*decoded)) {
            // Published just before its DONE (5.16): kept on the same terms.
            if (rep->job == opt_.job && exhausted_ && rep->total == next_id_ && !done_)
                report_ = std::move(*rep);
        } else if (auto* l = std::get_if<proto::lost>(&*decoded)) {
            on_lost(*l, clock::now());
        } else if (auto* r = std::get_if<proto::recorded>(&*decoded)) {
            if (r->job == opt_.job && asking_recorded_) on_recorded(*r, clock::now());
        } else if (auto* t = std::get_if<proto::retry>(&*decoded)) {
            // A failure with attempts left (5.14): send that attempt again,
            // once, however many copies of it failed.
            const auto* e = t->job == opt_.job ? ledger_.find(t->id) : nullptr;
            if (e && e->attempt == t->attempt) resend(t->id, t->reason);
        }
    }
    return done_.has_value();
}

void dispatcher::on_recorded(const proto::recorded& r, clock::time_point now) {
    recorded_floor_ = std::max(recorded_floor_, r.floor);
    for (auto id : r.ids)
        if (id >= recorded_floor_) recorded_ids_.insert(id);
    if (r.more) return;
    asking_recorded_ = false;
    std::vector<std::uint64_t> recorded_in_flight;
    ledger_.for_each([&](std::uint64_t id, ledger_entry&) {
        if (already_recorded(id)) recorded_in_flight.push_back(id);
    });
    for (auto id : recorded_in_flight)
        acknowledge(id);
    std::erase_if(recorded_ids_, [&](std::uint64_t id) { return id < next_id_; });
    if (!opened_) {
        opened_ = true;
        spdlog::info(
            "job {} resumed: {} task(s) below id {} and {} above it already recorded; "
            "sending the rest",
            opt_.job, recorded_floor_, recorded_floor_, recorded_ids_.size());
        return;
    }
    // A sink that restarted (--resume) knows what it wrote, but results it
    // had received and not written died with it: once live workers have
    // reported what they hold, send again whatever nobody holds.
    spdlog::info(
        "sink reconnected: {} task(s) in flight were recorded; the rest are sent again "
        "unless a live worker holds them",
        recorded_in_flight.size());
    schedule_sweep(now);
}

void dispatcher::on_sink_monitor() {
    zmq::message_t ev;
    while (sink_monitor_.recv(ev, zmq::recv_flags::dontwait)) {
        discard_rest(sink_monitor_);
        std::uint16_t event = 0;
        if (ev.size() >= sizeof event) std::memcpy(&event, ev.data(), sizeof event);
        if (event == ZMQ_EVENT_DISCONNECTED) {
            if (!sink_disconnected_) spdlog::warn("lost the connection to the sink");
            sink_disconnected_ = true;
        } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && sink_disconnected_) {
            sink_disconnected_ = false;
            if (opened_ && !done_) asking_recorded_ = true;
        }
    }
}

void dispatcher::on_credit() {
    for (int i = 0; i < 1024; ++i) {
        zmq::message_t identity;
        std::optional<proto::message> decoded;
        const auto got = receive_enveloped(tasks_, "credit", drops_, identity, decoded);
        if (got == receive_status::nothing) break;
        if (got == receive_status::skipped) continue;
        auto* c = std::get_if<proto::credit>(&*decoded);
        if (!c) {
            drops_.drop("credit", peer_address(identity), "not a CREDIT");
            continue;
        }
        std::string who = identity.to_string();
        auto [it, fresh] = credit_.try_emplace(who, 0);
        if (fresh) {
            rotation_.push_back(who);
            spdlog::info("worker {} is taking tasks", c->worker);
        }
        it->second = c->reset ? c->amount : it->second + c->amount;
    }
}

void dispatcher::measure_rate(clock::time_point now) {
    if (rate_at_ == clock::time_point{}) {
        rate_at_ = now;
        return;
    }
    const double dt = std::chrono::duration<double>(now - rate_at_).count();
    if (dt < 0.05) return;
    const double rate = static_cast<double>(ledger_.acknowledged() - rate_acked_) / dt;
    // Rise at once (like a slow start), fall gently.
    ack_rate_ = rate > ack_rate_ ? rate : 0.8 * ack_rate_ + 0.2 * rate;
    rate_acked_ = ledger_.acknowledged();
    rate_at_ = now;
    if (!credit_mode()) count_stalled(now);
}

void dispatcher::count_stalled(clock::time_point now) {
    stalled_ = 0;
    if (ack_age_s_ <= 0) return;
    const auto stall_after = std::max<clock::duration>(
        k_stall_min, std::chrono::duration_cast<clock::duration>(
                         std::chrono::duration<double>(k_stall_factor * ack_age_s_)));
    ledger_.for_each([&](std::uint64_t, ledger_entry& e) {
        if (now - e.sent_at > stall_after) ++stalled_;
    });
}

bool dispatcher::settled(clock::time_point now) const {
    if (credit_mode() || dispatching_) return true;
    return peers_ > 0 && (now - last_join_ >= k_settle_quiet || now - first_join_ >= k_settle_max);
}

void dispatcher::on_monitor(clock::time_point now) {
    zmq::message_t ev;
    while (monitor_->recv(ev, zmq::recv_flags::dontwait)) {
        discard_rest(*monitor_);
        std::uint16_t event = 0;
        if (ev.size() >= sizeof event) std::memcpy(&event, ev.data(), sizeof event);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            if (peers_++ == 0) first_join_ = now;
            last_join_ = now;
        } else if (event & k_handshake_failed) {
            // libzmq reports a DISCONNECTED after each failed handshake (a
            // port scan, garbage, a refused key): not a worker leaving.
            ++failed_handshakes_;
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            if (failed_handshakes_ > 0) {
                --failed_handshakes_;
            } else if (peers_ > 0) {
                --peers_;
                schedule_sweep(now);  // a worker's connection is gone, and what it held
            }
        }
    }
}

void dispatcher::resend(std::uint64_t id, std::string_view why) {
    ledger_entry* e = ledger_.find(id);
    if (!e || e->queued_for_resend || e->given_up) return;
    drop_suspect(*e);
    if (!e->reasons.empty()) e->reasons += "; ";
    e->reasons += "attempt " + std::to_string(e->attempt) + ": " + std::string(why);
    if (e->attempt > opt_.retries) {
        e->given_up = true;
        spdlog::warn("task {} failed after {} attempt(s): {}", id, e->attempt, e->reasons);
        give_up(id, *e, clock::now());
        return;
    }
    ++e->attempt;
    e->queued_for_resend = true;
    resend_.push_back(id);
    ++resent_;
}

void dispatcher::on_lost(const proto::lost& l, clock::time_point now) {
    std::size_t n = 0;
    auto resend_counted = [&](std::uint64_t id, std::string_view why) {
        const auto* e = ledger_.find(id);
        if (e && !e->queued_for_resend && !e->given_up) ++n;
        resend(id, why);
    };
    const std::string why = "worker " + l.worker + " was lost";
    for (const auto& r : l.tasks) {
        if (r.job != opt_.job) continue;
        const auto* e = ledger_.find(r.id);
        if (e && e->attempt == r.attempt) resend_counted(r.id, why);
    }
    if (credit_mode()) {
        // We know exactly what it held, queued or running.
        for (auto id : ledger_.held_by(l.worker))
            resend_counted(id, why);
        credit_.erase(l.worker);
        std::erase(rotation_, l.worker);
    } else {
        schedule_sweep(now);
    }
    spdlog::warn("worker {} gone: {} task(s) of job {} sent again{}", l.worker, n, opt_.job,
                 credit_mode() ? "" : " (more once live workers report what they hold)");
}

void dispatcher::schedule_sweep(clock::time_point now) {
    if (!sweep_before_) {
        sweep_before_ = now;
    } else {
        sweep_next_ = sweep_next_ ? std::max(*sweep_next_, now) : now;
    }
}

void dispatcher::sweep() {
    // PUSH cannot say where a task went. Whatever was sent before the loss
    // and is still not held by any live worker, well after the loss, may have
    // been in the lost worker's socket buffers: send it again (a live worker
    // may still hold a copy unread in its buffers; the sink records one).
    const auto before = *sweep_before_;
    sweep_before_ = sweep_next_;
    sweep_next_.reset();
    std::vector<std::uint64_t> suspects;
    ledger_.for_each([&](std::uint64_t id, ledger_entry& e) {
        if (e.sent_at < before && !reported_.contains(id)) suspects.push_back(id);
    });
    std::sort(suspects.begin(), suspects.end());
    for (auto id : suspects)
        resend(id, "its worker was lost");
    if (!suspects.empty())
        spdlog::warn("{} task(s) not held by any live worker sent again", suspects.size());
}

void dispatcher::give_up(std::uint64_t id, ledger_entry& e, clock::time_point now) {
    proto::result r;
    r.job = opt_.job;
    r.id = id;
    r.attempt = e.attempt;
    r.worker = "";  // nobody ran it to the end; the reasons name the workers
    r.status = proto::task_status::failed;
    r.error = e.reasons;
    r.kind = e.kind;
    send_to_sink(r);
    e.lease_until = now + opt_.lease;  // until its ACK arrives; then sent again
}

void dispatcher::expire_leases(clock::time_point now) {
    for (auto id : ledger_.expired(now)) {
        ledger_entry* e = ledger_.find(id);
        if (e->given_up) {
            give_up(id, *e, now);  // the failure was not acknowledged: record it again
        } else {
            resend(id, "lease expired");
        }
    }
}

std::string* dispatcher::pick_worker() {
    for (std::size_t i = 0; i < rotation_.size(); ++i) {
        std::string who = std::move(rotation_.front());
        rotation_.pop_front();
        rotation_.push_back(std::move(who));
        auto it = credit_.find(rotation_.back());
        if (it != credit_.end() && it->second > 0) return &rotation_.back();
    }
    return nullptr;
}

expected<bool, std::string> dispatcher::dispatch(clock::time_point now) {
    bool progressed = false;
    for (;;) {
        // Resumed: new tasks the sink has already recorded are skipped
        // whether or not any worker is there.
        for (;;) {
            if (!pending_.empty() && !already_recorded(next_id_)) break;
            if (pending_.empty()) {
                if (exhausted_ || !halt_.may_send_new() || window_full(0)) break;
                auto next = source_.next_into(pending_.next_slot());
                if (!next) return unexpected{next.error()};
                if (!*next) {
                    exhausted_ = true;
                    break;
                }
                pending_.push_back();
                continue;
            }
            pending_.pop_front();
            ++next_id_;
            ++skipped_;
        }
        if (!settled(now)) break;
        std::string* who = nullptr;
        std::size_t filled = 0;
        if (credit_mode()) {
            // The first worker in turn with credit that can take something:
            // one that holds a re-sent task takes only new ones.
            for (std::size_t tries = rotation_.size(); tries > 0 && filled == 0; --tries) {
                who = pick_worker();
                if (!who) break;
                filled = fill_batch(
                    std::min<std::size_t>(credit_[*who], proto::k_max_batch_messages), who);
            }
        } else {
            filled = fill_batch(push_batch_limit(), nullptr);
        }
        if (filled == 0) break;

        bool sent = false;
        const auto frame = batch_.frame();
        if (credit_mode()) {
            try {
                sent = tasks_
                           .send(zmq::buffer(*who),
                                 zmq::send_flags::sndmore | zmq::send_flags::dontwait)
                           .has_value();
                if (sent) tasks_.send(zmq::buffer(frame), zmq::send_flags::none);
            } catch (const zmq::error_t& err) {
                if (err.num() != EHOSTUNREACH) throw;
                spdlog::info("worker {} is gone; its credit is forgotten", *who);
                credit_.erase(*who);
                std::erase(rotation_, *who);
                unfill_batch();
                continue;
            }
        } else {
            sent = tasks_.send(zmq::buffer(frame), zmq::send_flags::dontwait).has_value();
        }
        if (!sent) {  // no worker connected yet, or its pipe (all pipes) full
            unfill_batch();
            break;
        }
        if (who) credit_[*who] -= batch_.count();
        commit_batch(now, who);
        progressed = true;
        dispatching_ = true;
    }
    if (input_error_) return unexpected{*input_error_};
    return progressed;
}

std::size_t dispatcher::fill_batch(std::size_t limit, const std::string* who) {
    batch_.clear();
    batch_resends_.clear();
    batch_new_ = 0;
    const bool may_resend = !who || !holds_suspect(*who);
    while (batch_.count() < limit) {
        if (!resend_.empty() && may_resend) {
            // A task sent again goes alone: it was on a worker that died or
            // hung, maybe because of it, and a batch would give all its
            // companions the same fate, and an attempt each, every time.
            const std::uint64_t id = resend_.front();
            const ledger_entry* e = ledger_.find(id);
            if (!e) {  // acknowledged meanwhile
                resend_.pop_front();
                continue;
            }
            if (!batch_.empty()) break;
            resend_.pop_front();
            batch_.add_task(opt_.job, id, e->attempt, e->kind, e->payload, opt_.task_timeout_ms);
            batch_resends_.push_back(id);
            break;
        }
        if (!halt_.may_send_new() || window_full(batch_new_)) break;
        if (batch_new_ == pending_.size()) {
            if (exhausted_) break;
            auto next = source_.next_into(pending_.next_slot());
            if (!next) {  // bad input: what is batched goes first, then the error
                input_error_ = next.error();
                exhausted_ = true;
                break;
            }
            if (!*next) {
                exhausted_ = true;
                break;
            }
            pending_.push_back();
        }
        const std::uint64_t id = next_id_ + batch_new_;
        // A recorded id (resumed) ends the batch: the next one skips it.
        if (already_recorded(id)) break;
        const task_spec& spec = pending_[batch_new_];
        if (batch_.full_for(spec.payload.size())) break;
        batch_.add_task(opt_.job, id, 1, spec.kind, spec.payload, opt_.task_timeout_ms);
        ++batch_new_;
    }
    return batch_.count();
}

void dispatcher::unfill_batch() {
    // The new tasks are still in pending_; the re-sends go back in order.
    for (auto it = batch_resends_.rbegin(); it != batch_resends_.rend(); ++it)
        resend_.push_front(*it);
    batch_resends_.clear();
    batch_new_ = 0;
    batch_.clear();
}

void dispatcher::commit_batch(clock::time_point now, const std::string* who) {
    for (auto id : batch_resends_) {
        auto* le = ledger_.find(id);
        le->sent_at = now;
        le->lease_until = now + opt_.lease;
        le->queued_for_resend = false;
        le->holder = who ? *who : std::string();
        if (who) {
            le->suspect = true;
            ++suspects_[*who];
        }
    }
    for (std::size_t i = 0; i < batch_new_; ++i) {
        const task_spec& spec = pending_.front();
        // Copied, not moved: the entry's strings have room already (reused).
        ledger_entry& entry = ledger_.add(next_id_);
        entry.kind = spec.kind;
        entry.payload = spec.payload;
        entry.sent_at = now;
        entry.lease_until = now + opt_.lease;
        if (who) entry.holder = *who;
        pending_.pop_front();
        ++next_id_;
    }
    batch_resends_.clear();
    batch_new_ = 0;
}

progress_state dispatcher::progress_now(clock::time_point started, clock::time_point now) const {
    progress_state s;
    s.job = opt_.job;
    s.resumed = skipped_;
    s.done = ledger_.acknowledged() + skipped_;
    if (exhausted_ && pending_.empty()) {
        s.total = next_id_;
    } else {
        s.total = source_.size();
    }
    s.failed = failed_seen_;
    s.retried = resent_;
    s.workers = connected_workers();
    s.elapsed_s = std::chrono::duration<double>(now - started).count();
    return s;
}

std::optional<std::string> dispatcher::check_launch(clock::time_point started,
                                                    clock::time_point now) {
    const std::size_t required = opt_.min_workers > 0 ? opt_.min_workers : opt_.expect_workers;
    if (launch_checked_ || required == 0) return std::nullopt;
    const std::size_t expected = std::max(opt_.expect_workers, required);
    const std::size_t n = connected_workers();
    const bool deadline = now - started >= opt_.connect_deadline;
    if (n < expected && !deadline) return std::nullopt;
    launch_checked_ = true;
    std::string who;
    if (credit_mode()) {  // worker names: HOST-PID-SUFFIX unless set with --identity
        for (const auto& w : rotation_)
            who += (who.empty() ? "" : ", ") + w;
    }
    const std::string seconds =
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - started).count());
    const std::string came = std::to_string(n) + " of " + std::to_string(expected) +
                             " expected worker(s) connected within " + seconds + " s" +
                             (who.empty() ? "" : " (" + who + ")");
    if (n >= required) {
        if (n < expected)
            spdlog::warn("{}; going on with them (--min-workers {})", came, required);
        else
            spdlog::info("{}", came);
        return std::nullopt;
    }
    return came + ", fewer than the " + std::to_string(required) +
           " required: check that the missing workers started and point at " +
           (credit_mode() ? opt_.credit_endpoint : opt_.tasks_endpoint) +
           " (their logs say which address they use)";
}

job_outcome dispatcher::outcome() const {
    job_outcome out;
    out.job = opt_.job;
    out.dispatch = opt_.dispatch;
    out.retried = resent_;
    out.skipped = skipped_;
    return out;
}

job_outcome dispatcher::cancel(clock::time_point started) {
    show_progress(started, clock::now(), true);
    if (opened_) send_to_sink(proto::job_close{opt_.job, next_id_, true});
    job_outcome out = outcome();
    out.total = next_id_;
    out.seconds = std::chrono::duration<double>(clock::now() - started).count();
    return out;
}

expected<job_outcome, std::string> dispatcher::run() {
    const auto started = clock::now();
    auto next_open = started;
    auto open_retry = std::chrono::duration_cast<clock::duration>(k_open_retry_first);
    auto next_close = started;
    auto next_waiting_log = started + k_waiting_log;
    auto next_lease_check = started + k_lease_check;
    bool closed = false;
    while (!done_) {
        if (stop_requests() > 0) {
            spdlog::warn("interrupted: {} of {} sent task(s) recorded; cancelling job {}",
                         ledger_.acknowledged(), next_id_, opt_.job);
            auto out = cancel(started);
            out.interrupted = true;
            return out;
        }
        if (halt_.should_cancel(ledger_.size(), closed)) {
            auto out = cancel(started);
            out.halted_by = halt_.first_failed();
            out.failed = halt_.failures();
            return out;
        }
        auto now = clock::now();
        if (auto failed = check_launch(started, now)) {
            spdlog::error("{}; cancelling job {}", *failed, opt_.job);
            auto out = cancel(started);
            out.launch_error = *failed;
            return out;
        }
        if ((!opened_ || asking_recorded_) && now >= next_open) {
            send_to_sink(proto::job_open{opt_.job, asking_recorded_, opt_.retries});
            next_open = now + open_retry;
            open_retry = std::min<clock::duration>(2 * open_retry, k_open_retry_max);
        }
        if (opened_) {
            auto d = dispatch(now);
            if (!d) {
                // Bad input mid-stream: what was sent must not run on for
                // nothing, nor the sink wait for the rest.
                spdlog::error("{}; cancelling job {} after {} task(s) sent", d.error(), opt_.job,
                              next_id_);
                auto out = cancel(started);
                out.input_error = d.error();
                return out;
            }
            if (exhausted_ && pending_.empty() && (!closed || now >= next_close)) {
                if (!closed) spdlog::info("all {} task(s) of job {} sent", next_id_, opt_.job);
                send_to_sink(proto::job_close{opt_.job, next_id_});
                closed = true;
                next_close = now + k_close_retry;
            }
        }
        if (dispatching_) measure_rate(now);
        if (opened_ && now >= next_lease_check) {
            expire_leases(now);
            next_lease_check = now + k_lease_check;
        }
        if (now >= next_waiting_log) {
            next_waiting_log = now + k_waiting_log;
            if (!opened_) {
                spdlog::info("waiting for the sink at {} / {}", opt_.results_endpoint,
                             opt_.control_endpoint);
            } else if (ledger_.size() > 0 && ledger_.acknowledged() == 0) {
                spdlog::info("waiting for workers: {} task(s) sent, none recorded yet", next_id_);
            }
        }

        const bool want_out =
            !credit_mode() && opened_ &&
            (!resend_.empty() ||
             (halt_.may_send_new() && (!pending_.empty() || !exhausted_) && !window_full(0)));
        zmq::pollitem_t items[] = {
            {control_.handle(), 0, ZMQ_POLLIN, 0},
            {tasks_.handle(), 0,
             static_cast<short>(credit_mode() ? ZMQ_POLLIN
                                              : (want_out && dispatching_ ? ZMQ_POLLOUT : 0)),
             0},
            {monitor_ ? monitor_->handle() : nullptr, 0,
             static_cast<short>(monitor_ ? ZMQ_POLLIN : 0), 0},
            {sink_monitor_.handle(), 0, ZMQ_POLLIN, 0},
        };
        const auto timeout = dispatching_ || !opened_ ? k_poll_interval : k_settle_poll;
        try {
            zmq::poll(items, std::size(items), timeout);
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
            continue;
        }
        if (items[2].revents & ZMQ_POLLIN) on_monitor(clock::now());
        if (items[3].revents & ZMQ_POLLIN) on_sink_monitor();
        if (items[0].revents & ZMQ_POLLIN) on_control();
        if (credit_mode() && (items[1].revents & ZMQ_POLLIN)) on_credit();
        if (opened_) show_progress(started, clock::now(), false);
    }
    show_progress(started, clock::now(), true);
    job_outcome out = outcome();
    out.report = std::move(report_);
    out.total = done_->total;
    out.ok = done_->ok;
    out.failed = done_->failed;
    out.workers = done_->workers;
    if (resent_ > 0)
        spdlog::info("{} task(s) were sent again after a loss or lease expiry", resent_);
    if (skipped_ > 0) spdlog::info("{} task(s) recorded by an earlier run were skipped", skipped_);
    out.seconds = std::chrono::duration<double>(clock::now() - started).count();
    return out;
}

}  // namespace

expected<job_outcome, std::string> run_ventilator(const ventilator_options& opt,
                                                  task_source& source, progress_display* progress) {
    try {
        zmq::context_t ctx(1);
        // Before any socket binds, and destroyed after them (declared after ctx).
        auto zap = curve::start_authentication(ctx, opt.curve);
        if (!zap) return unexpected{zap.error()};
        const bool credit = opt.dispatch == dispatch_mode::credit;
        zmq::socket_t tasks(ctx, credit ? zmq::socket_type::router : zmq::socket_type::push);
        zmq::socket_t to_sink(ctx, zmq::socket_type::push);
        zmq::socket_t control(ctx, zmq::socket_type::sub);

        configure_socket(tasks, opt.transport, credit);
        if (credit) {
            tasks.set(zmq::sockopt::router_mandatory, 1);
            tasks.set(zmq::sockopt::router_handover, 1);
        } else {
            // What a stalled worker can hoard is at most what its pipe holds:
            // this many tasks, plus the kernel's socket buffers (8.1).
            tasks.set(zmq::sockopt::sndhwm, k_push_pipe_hwm);
        }
        configure_socket(to_sink, opt.transport, false);
        configure_socket(control, opt.transport, true);
        control.set(zmq::sockopt::rcvhwm, 0);  // never drop an ACK: the ledger waits for each
        control.set(zmq::sockopt::subscribe, proto::k_topic_ack);
        control.set(zmq::sockopt::subscribe, proto::k_topic_done);
        control.set(zmq::sockopt::subscribe, proto::k_topic_lost);
        control.set(zmq::sockopt::subscribe, proto::k_topic_recorded);
        control.set(zmq::sockopt::subscribe, proto::k_topic_retry);
        control.set(zmq::sockopt::subscribe, proto::k_topic_report);

        secure_socket(tasks, opt.transport, opt.curve, socket_side::binds);
        secure_socket(to_sink, opt.transport, opt.curve, socket_side::connects_to_sink);
        secure_socket(control, opt.transport, opt.curve, socket_side::connects_to_sink);
        const std::string& bind_ep = credit ? opt.credit_endpoint : opt.tasks_endpoint;
        warn_if_exposed({bind_ep}, opt.curve,
                        "take this job's tasks (their commands, inputs and environment)");
        // Monitors first: workers may be waiting to connect, and a handshake
        // done before its monitor listens is never counted (push dispatch
        // would then wait for workers forever).
        zmq::socket_t monitor(ctx, zmq::socket_type::pair);
        if (!credit) {
            const std::string monitor_ep = "inproc://zfarm-ventilator-monitor";
            if (zmq_socket_monitor(tasks.handle(), monitor_ep.c_str(),
                                   ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                       k_handshake_failed) != 0)
                return unexpected{std::string("cannot monitor the tasks socket")};
            monitor.connect(monitor_ep);
        }
        zmq::socket_t sink_monitor(ctx, zmq::socket_type::pair);
        const std::string sink_monitor_ep = "inproc://zfarm-ventilator-sink-monitor";
        if (zmq_socket_monitor(control.handle(), sink_monitor_ep.c_str(),
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) != 0)
            return unexpected{std::string("cannot monitor the control socket")};
        sink_monitor.connect(sink_monitor_ep);
        auto bound = bind_socket(tasks, bind_ep);
        if (!bound) return unexpected{bound.error()};
        for (auto [sock, ep] : {std::pair{&to_sink, opt.results_endpoint},
                                std::pair{&control, opt.control_endpoint}}) {
            auto ok = connect_socket(*sock, ep);
            if (!ok) return unexpected{ok.error()};
        }
        spdlog::info("ventilator up: job {}, {} dispatch on {}, sink {} / {}, window {}", opt.job,
                     credit ? "credit" : "push", *bound, opt.results_endpoint, opt.control_endpoint,
                     opt.window);
        dispatcher d(opt, source, tasks, to_sink, control, credit ? nullptr : &monitor,
                     sink_monitor, progress);
        return d.run();
    } catch (const std::exception& e) {
        return unexpected{std::string(e.what())};
    }
}

}  // namespace zfarm::ventilator
