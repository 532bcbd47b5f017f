#include "zfarm/worker.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "exec_kind.hpp"
#include "executor_pool.hpp"
#include "zfarm/codec.hpp"
#include "zfarm/logging.hpp"
#include "zfarm/receive.hpp"
#include "zfarm/signals.hpp"
#include "zfarm/system.hpp"
#include "zfarm/version.hpp"

namespace zfarm {
namespace {

using clock = std::chrono::steady_clock;
using detail::origin;

constexpr auto k_heartbeat_interval = std::chrono::milliseconds(1000);
constexpr auto k_poll_interval = std::chrono::milliseconds(100);
// Prefetch is sized so that the tasks queued behind each running one last
// about one round trip to the ventilator (a grant, then its task): measured
// in credit dispatch as the shortest grant-to-task time of the last
// k_rtt_window, never taken below k_min_rtt_us.
constexpr double k_min_rtt_us = 1000.0;
constexpr auto k_rtt_window = std::chrono::seconds(10);
constexpr unsigned k_max_prefetch_per_thread = 1000;
// Push dispatch: every task that arrives is read at once (up to this many
// held), not only up to capacity. A task read is held and listed in
// HEARTBEAT; one left unread in the socket is in nobody's report, and a
// ventilator's sweep after another worker's loss would send it again and
// count an attempt against it (PROTOCOL.md 7.11, rule 6). What reaches a
// worker is bounded by the ventilator's in-flight budget anyway (7.2).
constexpr unsigned k_max_push_held = 10000;
constexpr std::size_t k_max_cancelled_jobs = 64;
// A handler still running this long past its task's deadline is abandoned
// (PROTOCOL.md 6.6).
constexpr auto k_hung_grace = std::chrono::milliseconds(1000);
// Abandoned threads a worker tolerates: max(this, threads).
constexpr unsigned k_min_hung_cap = 4;

std::string make_identity() {
    std::random_device rd;
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "%04x", static_cast<unsigned>(rd() & 0xffff));
    return host_name() + "-" + std::to_string(getpid()) + "-" + suffix;
}

}  // namespace

class worker::impl {
  public:
    explicit impl(worker_options o) : opt_(std::move(o)) {
        id_ = opt_.identity.empty() ? make_identity() : opt_.identity;
        out_.limit_bytes_for(opt_.transport.max_message);
    }

    expected<worker_summary, worker_error> run();
    void stop() noexcept { stop_.fetch_add(1, std::memory_order_relaxed); }

    worker_options opt_;
    std::string id_;
    detail::handler_table handlers_;
    std::atomic<int> stop_{0};
    std::shared_ptr<detail::exec_kind> exec_;  // with allow_exec

  private:
    int stop_level() const noexcept {
        return std::max(stop_.load(std::memory_order_relaxed),
                        opt_.observe_stop_signals ? stop_requests() : 0);
    }
    // What leave_at asks for now: 0 nothing yet, 1 drain, 2 abandon.
    int leave_level() const;
    unsigned capacity() const;
    // HELLO, HEARTBEAT, BYE: after the results batched before them.
    void send(zmq::socket_t& results, const proto::message& m);
    // Sends a frame on results, waiting while its queue is full (the sink is
    // slow or away), but not forever once a peer refused our handshake:
    // that throws refused_error.
    void send_results(zmq::socket_t& results, std::string_view frame);
    struct refused_error {};
    // Handshake failures seen by a socket monitor: a refusal ends the worker
    // with a reason naming what to check, instead of waiting silently.
    struct watched {
        zmq::socket_t* monitor;
        const char* peer;
        const std::string* endpoint;
        bool succeeded = false;  // a handshake on this socket ever did
        int closed_in_handshake = 0;
    };
    void watch_handshakes(watched& w);
    // Notes a monitor event; true when it was a failed handshake that ends
    // the worker (refused_ set).
    bool note_handshake(const zmq::message_t& ev, watched& w);
    std::vector<watched> watches_;
    watched credit_watch_{nullptr, "ventilator", nullptr};
    std::optional<std::string> refused_;
    // Results leave in batches (PROTOCOL.md 5.15) of what is done now:
    // queued here, sent by flush() before the worker next waits.
    void queue_result(zmq::socket_t& results, const proto::result& r);
    void flush(zmq::socket_t& results);
    // Reads one frame of tasks (a TASK or a BATCH of them) from `socket`.
    void take_tasks(const zmq::message_t& m, origin o, const char* socket, zmq::socket_t& results);
    // Runs an inline kind at once, straight from `t` (the decoded frame's);
    // hands any other kind to the pool, moving from `t`.
    void accept_task(proto::task& t, origin o, zmq::socket_t& results,
                     const detail::wall_clock_anchor& clocks);
    void on_control(zmq::socket_t& sub);
    void on_completion(zmq::socket_t& done, zmq::socket_t& results);
    void release(origin o, unsigned n);
    void observe_service_time(std::uint64_t elapsed_us);
    bool is_cancelled(const std::string& job) const;
    // Reports handlers hung past their deadline as failed and replaces their
    // threads. Returns false when too many are hung for the worker to go on.
    bool watch_hung_handlers(zmq::socket_t& results);
    // Drops queued tasks and abandons running ones (no RESULT for either).
    void abandon_all();
    // Tasks held and not run, listed in BYE to be sent again at once.
    void hand_back(proto::task_ref ref);
    void hand_back_queued();
    std::vector<proto::task_ref> returned_;
    bool draining_ = false;

    std::unique_ptr<detail::executor_pool> pool_;
    std::string scratch_;
    proto::result inline_result_;  // reused task after task: its strings keep their capacity
    proto::batch_encoder out_;
    proto::decoded_frame frame_;
    drop_counter drops_;
    worker_summary summary_;

    unsigned held_[2] = {0, 0};  // tasks queued or running, by origin
    unsigned credit_outstanding_ = 0;
    bool credit_connected_ = false;
    bool credit_reset_pending_ = false;
    double service_ewma_us_ = -1.0;
    // Round trip to the ventilator: a grant sent while idle, to the task it
    // brought (the shortest of the window; the ventilator may have had no
    // task ready, which only makes a sample longer).
    void observe_round_trip(clock::time_point now);
    std::optional<clock::time_point> idle_grant_at_;
    double rtt_us_ = k_min_rtt_us;
    clock::time_point rtt_at_{};
    bool done_seen_ = false;
    // Leaving now (a second stop, or too many hung handlers): tasks that still
    // arrive are dropped unanswered, like those queued (PROTOCOL.md 9.3).
    bool abandoning_ = false;
    std::deque<std::string> cancelled_jobs_;
};

int worker::impl::leave_level() const {
    if (!opt_.leave_at) return 0;
    const auto now = std::chrono::system_clock::now();
    return now >= *opt_.leave_at + opt_.leave_grace ? 2 : now >= *opt_.leave_at ? 1 : 0;
}

unsigned worker::impl::capacity() const {
    const unsigned threads = std::max(1u, opt_.threads);
    if (opt_.prefetch >= 0) return threads + static_cast<unsigned>(opt_.prefetch);
    if (service_ewma_us_ < 0) return 2 * threads;  // nothing observed yet
    const double per_thread = std::round(rtt_us_ / std::max(service_ewma_us_, 1.0));
    return threads +
           threads * static_cast<unsigned>(std::min<double>(per_thread, k_max_prefetch_per_thread));
}

void worker::impl::observe_service_time(std::uint64_t elapsed_us) {
    const double x = static_cast<double>(elapsed_us);
    service_ewma_us_ = service_ewma_us_ < 0 ? x : 0.9 * service_ewma_us_ + 0.1 * x;
}

void worker::impl::observe_round_trip(clock::time_point now) {
    if (!idle_grant_at_) return;
    const double sample = std::chrono::duration<double, std::micro>(now - *idle_grant_at_).count();
    idle_grant_at_.reset();
    if (now - rtt_at_ > k_rtt_window || sample <= rtt_us_) {
        rtt_us_ = std::max(sample, k_min_rtt_us);
        rtt_at_ = now;
    }
}

void worker::impl::send(zmq::socket_t& results, const proto::message& m) {
    flush(results);
    proto::encode(m, scratch_);
    send_results(results, scratch_);
}

void worker::impl::send_results(zmq::socket_t& results, std::string_view frame) {
    while (!results.send(zmq::buffer(frame), zmq::send_flags::none)) {  // ZMQ_SNDTIMEO passed
        for (auto& w : watches_)
            watch_handshakes(w);
        if (refused_) throw refused_error{};
        // Leaving now: what is unsent is sent again elsewhere.
        if (std::max(stop_level(), leave_level()) >= 2) return;
    }
}

void worker::impl::watch_handshakes(watched& w) {
    zmq::message_t ev, addr;
    while (w.monitor->recv(ev, zmq::recv_flags::dontwait)) {
        if (ev.more()) (void)w.monitor->recv(addr, zmq::recv_flags::none);
        note_handshake(ev, w);
    }
}

bool worker::impl::note_handshake(const zmq::message_t& ev, watched& w) {
    if (ev.size() < 6) return false;
    std::uint16_t event = 0;
    std::uint32_t value = 0;
    std::memcpy(&event, ev.data(), 2);
    std::memcpy(&value, static_cast<const char*>(ev.data()) + 2, 4);
    const std::string at = std::string("the ") + w.peer + " at " + *w.endpoint;
    const std::string check_key =
        std::string("is the server key this worker was given the ") + w.peer + "'s public key?";
    std::string why;
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        w.succeeded = true;
        return false;
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
        // A CURVE server that cannot read our HELLO (we encrypted it to the
        // wrong key) just closes: no failure event reaches this side. Nor is
        // it proof: an impostor on the port closes the same way, and the
        // right server may come. Said once; libzmq goes on retrying.
        if (opt_.curve.on() && !w.succeeded && ++w.closed_in_handshake == 3)
            spdlog::warn("{} closed the connection during the handshake 3 times: {}", at,
                         check_key);
        return false;
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        why = at + " refused this worker's key (ZAP status " + std::to_string(value) +
              "): is its public key on the " + w.peer + "'s --allow list?";
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
               (opt_.curve.on() || value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)) {
        // Other failures (a peer gone mid-handshake, garbage) are retried
        // by libzmq like any broken connection.
        char code[16];
        std::snprintf(code, sizeof code, "0x%08x", value);
        why = "the handshake with " + at.substr(4) + " failed (ZeroMQ protocol error " + code +
              (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                   ? ", mechanism mismatch): do both ends use CURVE?"
                   : "): " + check_key);
    } else {
        return false;
    }
    if (!refused_) refused_ = std::move(why);
    return true;
}

void worker::impl::queue_result(zmq::socket_t& results, const proto::result& r) {
    constexpr std::size_t k_fixed_fields = 64;  // header, integers, string headers
    if (out_.full_for(r.job.size() + r.worker.size() + r.output.size() + r.error.size() +
                      r.kind.size() + k_fixed_fields))
        flush(results);
    out_.add(r);
}

void worker::impl::flush(zmq::socket_t& results) {
    if (out_.empty()) return;
    send_results(results, out_.frame());
    out_.clear();
}

void worker::impl::take_tasks(const zmq::message_t& m, origin o, const char* socket,
                              zmq::socket_t& results) {
    proto::decode_frame(m.to_string_view(), frame_);
    const auto clocks = detail::wall_clock_anchor::now();  // for the inline kinds among them
    for (auto& decoded : frame_) {
        proto::task* t = decoded ? std::get_if<proto::task>(&*decoded) : nullptr;
        if (!t) {
            drops_.drop(socket, peer_address(m),
                        decoded ? "not a TASK" : proto::to_string(decoded.error().code));
            continue;
        }
        if (o == origin::credit && credit_outstanding_ > 0) --credit_outstanding_;
        accept_task(*t, o, results, clocks);
    }
}

void worker::impl::release(origin o, unsigned n) {
    held_[static_cast<int>(o)] -= std::min(n, held_[static_cast<int>(o)]);
}

bool worker::impl::is_cancelled(const std::string& job) const {
    return std::find(cancelled_jobs_.begin(), cancelled_jobs_.end(), job) != cancelled_jobs_.end();
}

bool worker::impl::watch_hung_handlers(zmq::socket_t& results) {
    for (const auto& a : pool_->abandon_overdue(clock::now(), k_hung_grace)) {
        release(a.from, 1);
        spdlog::warn(
            "task {}/{} attempt {}: no return {} ms past its {} ms timeout; abandoned", a.ref.job,
            a.ref.id, a.ref.attempt,
            a.elapsed_us / 1000 - std::min<std::uint64_t>(a.elapsed_us / 1000, a.timeout_ms),
            a.timeout_ms);
        if (is_cancelled(a.ref.job)) continue;
        proto::result r;
        r.job = a.ref.job;
        r.id = a.ref.id;
        r.attempt = a.ref.attempt;
        r.worker = id_;
        r.status = proto::task_status::failed;
        r.elapsed_us = a.elapsed_us;
        r.started_us = a.started_us;
        r.error = "timed out after " + std::to_string(a.timeout_ms) +
                  " ms; the handler did not return and was abandoned";
        r.kind = a.kind;
        ++summary_.tasks_failed;
        queue_result(results, r);
    }
    const std::size_t cap = std::max(k_min_hung_cap, opt_.threads);
    return pool_->abandoned_alive() <= cap;
}

void worker::impl::abandon_all() {
    hand_back_queued();
    for (const auto& a : pool_->abandon_running()) {
        release(a.from, 1);
        hand_back(a.ref);
    }
    // The abandoned exec handlers were asked to give up, but the process may
    // end before they kill their commands: signal those now (PROTOCOL.md 6.4).
    if (exec_) exec_->terminate_all();
}

void worker::impl::hand_back(proto::task_ref ref) {
    if (returned_.size() < proto::k_max_ids_per_message) returned_.push_back(std::move(ref));
}

void worker::impl::hand_back_queued() {
    for (auto& [t, o] : pool_->remove_all_queued()) {
        release(o, 1);
        hand_back(proto::task_ref{t.job, t.id, t.attempt});
    }
}

void worker::impl::accept_task(proto::task& t, origin o, zmq::socket_t& results,
                               const detail::wall_clock_anchor& clocks) {
    if (is_cancelled(t.job)) return;  // the job was stopped: its stragglers are not run
    if (abandoning_ || draining_) {   // handed back in our BYE, to be sent again at once
        hand_back(proto::task_ref{t.job, t.id, t.attempt});
        return;
    }
    auto it = handlers_.find(t.kind);
    if (it != handlers_.end() && it->second.inline_handler) {
        // Held only while it runs, here: nothing to count in held_.
        proto::result& r = inline_result_;
        detail::execute_into(&it->second, t, id_, nullptr, r, &clocks);
        (r.status == proto::task_status::ok ? summary_.tasks_ok : summary_.tasks_failed)++;
        observe_service_time(r.elapsed_us);
        queue_result(results, r);
        return;
    }
    ++held_[static_cast<int>(o)];
    pool_->submit(std::move(t), o);
}

void worker::impl::on_completion(zmq::socket_t& done, zmq::socket_t& results) {
    for (int i = 0; i < 256; ++i) {
        zmq::message_t header;
        if (!done.recv(header, zmq::recv_flags::dontwait)) return;
        zmq::message_t body;
        (void)done.recv(body, zmq::recv_flags::none);
        const auto o = static_cast<origin>(header.data<char>()[0]);
        const std::string job(header.data<char>() + 1, header.size() - 1);
        release(o, 1);
        if (is_cancelled(job)) continue;
        auto decoded = proto::decode(body.to_string_view());
        if (decoded) {
            const auto& r = std::get<proto::result>(*decoded);
            (r.status == proto::task_status::ok ? summary_.tasks_ok : summary_.tasks_failed)++;
            observe_service_time(r.elapsed_us);
        }
        if (out_.full_for(body.size())) flush(results);
        out_.add_encoded(body.to_string_view());
    }
}

void worker::impl::on_control(zmq::socket_t& sub) {
    for (int i = 0; i < 64; ++i) {
        zmq::message_t topic;
        std::optional<proto::message> decoded;
        const auto got = receive_enveloped(sub, "control", drops_, topic, decoded);
        if (got == receive_status::nothing) return;
        if (got == receive_status::skipped) continue;
        if (auto* d = std::get_if<proto::done>(&*decoded)) {
            spdlog::debug("job {} is done ({} open on the sink)", d->job, d->open_jobs);
            if (d->open_jobs == 0 && opt_.exit_when_done) done_seen_ = true;
        } else if (auto* s = std::get_if<proto::stop>(&*decoded)) {
            spdlog::info("job {} stopped: {}", s->job, s->reason);
            if (std::find(cancelled_jobs_.begin(), cancelled_jobs_.end(), s->job) ==
                cancelled_jobs_.end()) {
                cancelled_jobs_.push_back(s->job);
                if (cancelled_jobs_.size() > k_max_cancelled_jobs) cancelled_jobs_.pop_front();
            }
            for (auto& [t, o] : pool_->remove_queued(s->job))
                release(o, 1);
            pool_->cancel_running(s->job);
        }
    }
}

expected<worker_summary, worker_error> worker::impl::run() {
    auto fail = [](worker_errc c, std::string m) {
        return unexpected{worker_error{c, std::move(m)}};
    };
    if (opt_.results_endpoint.empty() || opt_.control_endpoint.empty())
        return fail(worker_errc::bad_options, "the results and control endpoints are required");
    if (opt_.tasks_endpoint.empty() && opt_.credit_endpoint.empty())
        return fail(worker_errc::bad_options, "a tasks or a credit endpoint is required");
    if (opt_.threads == 0 || opt_.threads > 4096)
        return fail(worker_errc::bad_options, "threads must be 1-4096");
    if (opt_.curve.on() && !curve::available())
        return fail(worker_errc::bad_options, "CURVE keys are set but this libzmq has no CURVE");
    if (opt_.curve.on() && !opt_.curve.server_key)
        return fail(worker_errc::bad_options, "CURVE keys are set but not the sink's public key");

    std::unique_ptr<zmq::context_t> own_ctx;
    if (!opt_.context) own_ctx = std::make_unique<zmq::context_t>(1);
    zmq::context_t& ctx = opt_.context ? *opt_.context : *own_ctx;

    try {
        zmq::socket_t pull(ctx, zmq::socket_type::pull);
        zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
        zmq::socket_t results(ctx, zmq::socket_type::push);
        zmq::socket_t sub(ctx, zmq::socket_type::sub);
        zmq::socket_t done(ctx, zmq::socket_type::pull);
        zmq::socket_t monitor(ctx, zmq::socket_type::pair);
        zmq::socket_t sink_watch(ctx, zmq::socket_type::pair);
        zmq::socket_t tasks_watch(ctx, zmq::socket_type::pair);

        configure_socket(pull, opt_.transport, true);
        pull.set(zmq::sockopt::rcvhwm, 64);
        configure_socket(dealer, opt_.transport, true);
        dealer.set(zmq::sockopt::routing_id, id_);
        dealer.set(zmq::sockopt::immediate, 1);  // never queue credit for a peer not yet there
        configure_socket(results, opt_.transport, false);
        results.set(zmq::sockopt::sndhwm, 100000);
        // A full queue is waited for a second at a time, to notice a refusal.
        results.set(zmq::sockopt::sndtimeo, 1000);
        configure_socket(sub, opt_.transport, true);
        sub.set(zmq::sockopt::subscribe, proto::k_topic_done);
        sub.set(zmq::sockopt::subscribe, proto::k_topic_stop);
        secure_socket(pull, opt_.transport, opt_.curve, socket_side::connects_to_ventilator);
        secure_socket(dealer, opt_.transport, opt_.curve, socket_side::connects_to_ventilator);
        secure_socket(results, opt_.transport, opt_.curve, socket_side::connects_to_sink);
        secure_socket(sub, opt_.transport, opt_.curve, socket_side::connects_to_sink);

        const std::string tag = std::to_string(reinterpret_cast<std::uintptr_t>(this));
        const std::string done_ep = "inproc://zfarm-worker-done-" + tag;
        const std::string monitor_ep = "inproc://zfarm-worker-monitor-" + tag;
        done.bind(done_ep);
        constexpr int k_handshake_failed =
            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
        if (!opt_.credit_endpoint.empty()) {
            if (zmq_socket_monitor(dealer.handle(), monitor_ep.c_str(),
                                   ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                       k_handshake_failed) != 0)
                return fail(worker_errc::socket_error, "cannot monitor the credit socket");
            monitor.connect(monitor_ep);
            credit_watch_.endpoint = &opt_.credit_endpoint;
        }
        for (auto [sock, watch, name, peer, ep] :
             {std::tuple{&results, &sink_watch, "sink", "sink", &opt_.results_endpoint},
              std::tuple{&pull, &tasks_watch, "tasks", "ventilator", &opt_.tasks_endpoint}}) {
            if (ep->empty()) continue;
            const std::string watch_ep = "inproc://zfarm-worker-" + std::string(name) + "-" + tag;
            if (zmq_socket_monitor(sock->handle(), watch_ep.c_str(),
                                   k_handshake_failed | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                       ZMQ_EVENT_DISCONNECTED) != 0)
                return fail(worker_errc::socket_error, "cannot monitor a socket");
            watch->connect(watch_ep);
            watches_.push_back(watched{watch, peer, ep});
        }

        for (auto [sock, ep] :
             {std::pair{&pull, opt_.tasks_endpoint}, std::pair{&dealer, opt_.credit_endpoint},
              std::pair{&results, opt_.results_endpoint}, std::pair{&sub, opt_.control_endpoint}}) {
            if (ep.empty()) continue;
            auto ok = connect_socket(*sock, ep);
            if (!ok) return fail(worker_errc::socket_error, ok.error());
        }

        pool_ = std::make_unique<detail::executor_pool>(ctx, done_ep, std::max(1u, opt_.threads),
                                                        handlers_, id_);
        struct pool_guard {
            std::unique_ptr<detail::executor_pool>& p;
            ~pool_guard() {
                if (p) {
                    p->remove_all_queued();
                    p->abandon_running();  // never wait for a handler here
                    p->shutdown();
                    p.reset();
                }
            }
        } guard{pool_};

        send(results, proto::hello{id_, host_name(), static_cast<std::uint32_t>(getpid()),
                                   opt_.threads, std::string(k_version)});
        spdlog::info("worker {} up: {} thread(s), tasks {}, credit {}, results {}", id_,
                     opt_.threads, opt_.tasks_endpoint.empty() ? "-" : opt_.tasks_endpoint,
                     opt_.credit_endpoint.empty() ? "-" : opt_.credit_endpoint,
                     opt_.results_endpoint);

        auto next_heartbeat = clock::now() + k_heartbeat_interval;
        bool untrusted = false;
        std::size_t hung = 0;  // abandoned handlers still running when it left
        for (;;) {
            const int level = std::max(stop_level(), leave_level());
            const bool draining = level >= 1 || done_seen_ || untrusted;
            if (draining && !draining_) {
                // Run only what has started; hand the queued tasks back
                // (BYE, PROTOCOL.md 5.7) so they are sent again at once.
                draining_ = true;
                hand_back_queued();
                if (!returned_.empty())
                    spdlog::info("leaving: {} queued task(s) handed back", returned_.size());
            }
            if ((level >= 2 || untrusted) && !abandoning_) {
                // Leave now: what is queued or running gets no RESULT and is
                // sent again after our BYE (PROTOCOL.md 9.3).
                abandoning_ = true;
                abandon_all();
            }
            if (draining && held_[0] + held_[1] == 0) break;

            // Grant credit for free capacity, on a live credit connection only.
            // Grants are batched (an eighth of capacity at a time) so tiny
            // tasks do not cost one CREDIT each, but an idle worker always asks.
            bool grant_blocked = false;
            if (!draining && credit_connected_) {
                const unsigned cap = capacity();
                const unsigned used = held_[1] + credit_outstanding_;
                const unsigned free = used < cap ? cap - used : 0;
                if (credit_reset_pending_ ||
                    (free > 0 && (free >= std::max(1u, cap / 8) || held_[1] == 0))) {
                    proto::credit c{id_, free, credit_reset_pending_};
                    proto::encode(c, scratch_);
                    if (dealer.send(zmq::buffer(scratch_), zmq::send_flags::dontwait)) {
                        if (held_[1] == 0 && credit_outstanding_ == 0)
                            idle_grant_at_ = clock::now();
                        credit_outstanding_ += free;
                        credit_reset_pending_ = false;
                    } else {
                        grant_blocked = true;  // handshake not attached yet: retry on POLLOUT
                    }
                }
            }

            const bool want_push =
                !draining && !opt_.tasks_endpoint.empty() && held_[0] < k_max_push_held;
            zmq::pollitem_t items[] = {
                {done.handle(), 0, ZMQ_POLLIN, 0},
                {sub.handle(), 0, ZMQ_POLLIN, 0},
                {dealer.handle(), 0,
                 static_cast<short>(ZMQ_POLLIN | (grant_blocked ? ZMQ_POLLOUT : 0)), 0},
                {monitor.handle(), 0, ZMQ_POLLIN, 0},
                {pull.handle(), 0, static_cast<short>(want_push ? ZMQ_POLLIN : 0), 0},
                {sink_watch.handle(), 0, ZMQ_POLLIN, 0},
                {tasks_watch.handle(), 0, ZMQ_POLLIN, 0},
            };
            flush(results);  // nothing done waits while we do
            const auto now = clock::now();
            auto wait = std::min<clock::duration>(k_poll_interval, next_heartbeat - now);
            if (wait < clock::duration::zero()) wait = clock::duration::zero();
            try {
                zmq::poll(items, std::size(items),
                          std::chrono::duration_cast<std::chrono::milliseconds>(wait));
            } catch (const zmq::error_t& e) {
                if (e.num() != EINTR) throw;
                continue;
            }

            if (items[0].revents & ZMQ_POLLIN) on_completion(done, results);
            if (items[1].revents & ZMQ_POLLIN) on_control(sub);
            if (items[3].revents & ZMQ_POLLIN) {
                zmq::message_t ev, addr;
                while (monitor.recv(ev, zmq::recv_flags::dontwait)) {
                    if (ev.more()) (void)monitor.recv(addr, zmq::recv_flags::none);
                    if (note_handshake(ev, credit_watch_)) continue;
                    std::uint16_t event = 0;
                    if (ev.size() >= 2) std::memcpy(&event, ev.data(), 2);
                    credit_outstanding_ = 0;
                    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                        credit_connected_ = true;
                        credit_reset_pending_ = true;
                        spdlog::debug("credit connection up");
                    } else {
                        credit_connected_ = false;
                        spdlog::debug("credit connection down");
                    }
                }
            }
            if (items[2].revents & ZMQ_POLLIN) {
                for (int i = 0; i < 1024; ++i) {
                    zmq::message_t m;
                    if (!dealer.recv(m, zmq::recv_flags::dontwait)) break;
                    observe_round_trip(clock::now());
                    take_tasks(m, origin::credit, "credit", results);
                }
            }
            if (items[4].revents & ZMQ_POLLIN) {
                while (held_[0] < k_max_push_held) {
                    zmq::message_t m;
                    if (!pull.recv(m, zmq::recv_flags::dontwait)) break;
                    take_tasks(m, origin::push, "tasks", results);
                }
            }
            if ((items[5].revents | items[6].revents) & ZMQ_POLLIN)
                for (auto& w : watches_)
                    watch_handshakes(w);
            if (refused_) throw refused_error{};
            if (!untrusted && !watch_hung_handlers(results)) {
                untrusted = true;
                hung = pool_->abandoned_alive();
                continue;
            }
            if (clock::now() >= next_heartbeat) {
                next_heartbeat = clock::now() + k_heartbeat_interval;
                send(results, proto::heartbeat{id_, summary_.tasks_ok + summary_.tasks_failed,
                                               pool_->holding(), host_name(),
                                               static_cast<std::uint32_t>(getpid()), opt_.threads,
                                               std::string(k_version)});
            }
        }
        send(results, proto::bye{id_, returned_});
        summary_.frames_dropped = drops_.count();
        if (untrusted)
            return fail(worker_errc::hung_handlers,
                        std::to_string(hung) +
                            " handlers did not return past their deadline; the worker left");
        spdlog::info("worker {} leaving: {} ok, {} failed, {} bad frames dropped", id_,
                     summary_.tasks_ok, summary_.tasks_failed, summary_.frames_dropped);
        return summary_;
    } catch (const refused_error&) {
        return fail(worker_errc::refused, *refused_);
    } catch (const zmq::error_t& e) {
        return fail(worker_errc::socket_error, e.what());
    } catch (const std::exception& e) {
        return fail(worker_errc::internal, e.what());
    }
}

worker::worker(worker_options options) : impl_(std::make_unique<impl>(std::move(options))) {
    if (impl_->opt_.builtin_kinds) register_builtin_kinds(*this);
    // exec is registered either way, so that a worker that may not run
    // commands says so (PROTOCOL.md 6.4, rule 1) rather than not knowing it.
    if (impl_->opt_.allow_exec) {
        auto kind = std::make_shared<detail::exec_kind>(impl_->opt_.max_output);
        impl_->exec_ = kind;
        handle(std::string(exec::k_kind),
               [kind](const task_view& t) -> handler_result { return (*kind)(t); });
    } else {
        handle(std::string(exec::k_kind), detail::refuse_exec);
    }
}
worker::~worker() = default;

void worker::handle(std::string kind, handler_fn fn, bool inline_handler) {
    impl_->handlers_[std::move(kind)] = detail::handler_entry{std::move(fn), inline_handler};
}

expected<worker_summary, worker_error> worker::run() {
    return impl_->run();
}
void worker::stop() noexcept {
    impl_->stop();
}
const std::string& worker::identity() const noexcept {
    return impl_->id_;
}

}  // namespace zfarm
