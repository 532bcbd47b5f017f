#include "executor_pool.hpp"

#include <chrono>
#include <exception>

#include <spdlog/spdlog.h>

#include "zfarm/codec.hpp"

namespace zfarm::detail {

proto::result execute(const handler_table& handlers, const proto::task& t,
                      const std::string& worker_id, const std::atomic<bool>* cancel) {
    using clock = std::chrono::steady_clock;
    proto::result r;
    r.job = t.job;
    r.id = t.id;
    r.attempt = t.attempt;
    r.worker = worker_id;
    const auto start = clock::now();
    r.started_us =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    const auto deadline =
        t.timeout_ms ? start + std::chrono::milliseconds(t.timeout_ms) : clock::time_point::max();
    handler_result out = unexpected{std::string()};
    auto it = handlers.find(t.kind);
    if (it == handlers.end()) {
        out = unexpected{"unknown task kind '" + t.kind + "'"};
    } else {
        try {
            out = it->second.fn(
                task_view(t.job, t.id, t.attempt, t.kind, t.payload, cancel, deadline));
        } catch (const std::exception& e) {
            out = unexpected{std::string("handler threw: ") + e.what()};
        } catch (...) {
            out = unexpected{std::string("handler threw a non-standard exception")};
        }
    }
    r.elapsed_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start).count());
    if (out) {
        r.status = proto::task_status::ok;
        r.output = std::move(*out);
    } else {
        r.status = proto::task_status::failed;
        r.error = out.error().empty() ? "failed" : out.error();
        // A handler that gave up because its deadline passed failed by timing
        // out, whatever it says (the built-in kinds say "cancelled").
        if (t.timeout_ms && clock::now() >= deadline)
            r.error = "timed out after " + std::to_string(t.timeout_ms) + " ms";
    }
    return r;
}

executor_pool::executor_pool(zmq::context_t& ctx, std::string done_endpoint, unsigned threads,
                             const handler_table& handlers, std::string worker_id)
    : ctx_(ctx),
      done_endpoint_(std::move(done_endpoint)),
      handlers_(handlers),
      worker_id_(std::move(worker_id)) {
    for (unsigned i = 0; i < threads; ++i)
        slots_.push_back(std::make_unique<slot>());
    for (unsigned i = 0; i < threads; ++i)
        threads_.emplace_back([this, i] { run_thread(i); });
}

executor_pool::~executor_pool() {
    shutdown();
    for (auto& t : threads_)
        t.join();
}

void executor_pool::submit(proto::task t, origin o) {
    {
        std::lock_guard lock(mu_);
        queue_.emplace_back(std::move(t), o);
    }
    cv_.notify_one();
}

std::vector<std::pair<proto::task, origin>> executor_pool::remove_queued(const std::string& job) {
    std::vector<std::pair<proto::task, origin>> out;
    std::lock_guard lock(mu_);
    std::deque<std::pair<proto::task, origin>> keep;
    for (auto& item : queue_) {
        if (item.first.job == job) {
            out.push_back(std::move(item));
        } else {
            keep.push_back(std::move(item));
        }
    }
    queue_.swap(keep);
    return out;
}

std::vector<std::pair<proto::task, origin>> executor_pool::remove_all_queued() {
    std::lock_guard lock(mu_);
    std::vector<std::pair<proto::task, origin>> out(std::make_move_iterator(queue_.begin()),
                                                    std::make_move_iterator(queue_.end()));
    queue_.clear();
    return out;
}

void executor_pool::cancel_running(const std::string& job) {
    std::lock_guard lock(mu_);
    for (auto& s : slots_)
        if (s->busy && (job.empty() || s->current.job == job)) s->cancel.store(true);
}

std::vector<proto::task_ref> executor_pool::holding() const {
    std::vector<proto::task_ref> out;
    std::lock_guard lock(mu_);
    for (const auto& [t, o] : queue_)
        out.push_back(proto::task_ref{t.job, t.id, t.attempt});
    for (const auto& s : slots_)
        if (s->busy) out.push_back(s->current);
    return out;
}

void executor_pool::shutdown() {
    {
        std::lock_guard lock(mu_);
        shutting_down_ = true;
    }
    cv_.notify_all();
}

void executor_pool::run_thread(std::size_t index) {
    slot& me = *slots_[index];
    zmq::socket_t out(ctx_, zmq::socket_type::push);
    out.set(zmq::sockopt::linger, -1);  // inproc: never drop a finished result
    out.connect(done_endpoint_);
    std::string header;
    std::string body;
    for (;;) {
        std::pair<proto::task, origin> item;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return shutting_down_ || !queue_.empty(); });
            if (queue_.empty()) return;  // shutting down with nothing left
            item = std::move(queue_.front());
            queue_.pop_front();
            me.busy = true;
            me.cancel.store(false);
            me.current = proto::task_ref{item.first.job, item.first.id, item.first.attempt};
        }
        proto::result r = execute(handlers_, item.first, worker_id_, &me.cancel);
        {
            std::lock_guard lock(mu_);
            me.busy = false;
        }
        header.assign(1, static_cast<char>(item.second));
        header += r.job;
        proto::encode(r, body);
        try {
            out.send(zmq::buffer(header), zmq::send_flags::sndmore);
            out.send(zmq::buffer(body), zmq::send_flags::none);
        } catch (const zmq::error_t& e) {
            if (e.num() == ETERM) return;
            spdlog::error("executor {}: cannot hand back a result: {}", index, e.what());
        }
    }
}

}  // namespace zfarm::detail
