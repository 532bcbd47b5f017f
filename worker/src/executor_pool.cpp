#include "executor_pool.hpp"

#include <chrono>
#include <exception>

#include <spdlog/spdlog.h>

#include "zfarm/codec.hpp"

namespace zfarm::detail {

namespace {

std::uint64_t unix_us_now() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

}  // namespace

wall_clock_anchor wall_clock_anchor::now() {
    return wall_clock_anchor{std::chrono::steady_clock::now(), unix_us_now()};
}

std::uint64_t wall_clock_anchor::unix_us_at(std::chrono::steady_clock::time_point t) const {
    return unix_us + static_cast<std::uint64_t>(
                         std::chrono::duration_cast<std::chrono::microseconds>(t - steady).count());
}

void execute_into(const handler_entry* handler, const proto::task& t, const std::string& worker_id,
                  const std::atomic<bool>* cancel, proto::result& r,
                  const wall_clock_anchor* anchor) {
    using clock = std::chrono::steady_clock;
    r.job = t.job;
    r.id = t.id;
    r.attempt = t.attempt;
    r.worker = worker_id;
    r.kind = t.kind;
    r.error.clear();
    const auto start = clock::now();
    r.started_us = anchor ? anchor->unix_us_at(start) : unix_us_now();
    const auto deadline =
        t.timeout_ms ? start + std::chrono::milliseconds(t.timeout_ms) : clock::time_point::max();
    handler_result out = unexpected{std::string()};
    if (!handler) {
        out = unexpected{"unknown task kind '" + t.kind + "'"};
    } else {
        try {
            out =
                handler->fn(task_view(t.job, t.id, t.attempt, t.kind, t.payload, cancel, deadline));
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
        task_error& e = out.error();
        r.error = e.reason.empty() ? "failed" : std::move(e.reason);
        r.output = std::move(e.output);
        // A handler that gave up because its deadline passed failed by timing
        // out, whatever it says (the built-in kinds say "cancelled").
        if (t.timeout_ms && clock::now() >= deadline)
            r.error = "timed out after " + std::to_string(t.timeout_ms) + " ms";
    }
}

proto::result execute(const handler_table& handlers, const proto::task& t,
                      const std::string& worker_id, const std::atomic<bool>* cancel) {
    proto::result r;
    const auto it = handlers.find(t.kind);
    execute_into(it == handlers.end() ? nullptr : &it->second, t, worker_id, cancel, r);
    return r;
}

struct executor_pool::executor {
    std::mutex mu;  // guards everything below but `cancel`
    std::atomic<bool> cancel{false};
    bool busy = false;
    bool abandoned = false;
    proto::task_ref current;
    origin from = origin::push;
    std::uint32_t timeout_ms = 0;
    std::string kind;  // of `current`
    clock::time_point started;
    std::uint64_t started_us = 0;
    // Made by the owner, used by the executor thread, closed by the owner when
    // it abandons the executor or once the thread is joined.
    std::optional<zmq::socket_t> out;
};

executor_pool::executor_pool(zmq::context_t& ctx, std::string done_endpoint, unsigned threads,
                             const handler_table& handlers, std::string worker_id)
    : ctx_(ctx),
      done_endpoint_(std::move(done_endpoint)),
      handlers_(std::make_shared<const handler_table>(handlers)),
      worker_id_(std::move(worker_id)),
      abandoned_alive_(std::make_shared<std::atomic<std::size_t>>(0)) {
    try {
        std::lock_guard lock(mu_);
        for (unsigned i = 0; i < threads; ++i)
            spawn();
    } catch (...) {
        // A socket could not be made: stop the threads already started.
        shutdown();
        for (auto& t : threads_)
            t.join();
        throw;
    }
}

executor_pool::~executor_pool() {
    shutdown();
    for (auto& t : threads_)
        t.join();
    for (auto& e : executors_)
        e->out.reset();
}

void executor_pool::spawn() {
    auto e = std::make_shared<executor>();
    e->out.emplace(ctx_, zmq::socket_type::push);
    e->out->set(zmq::sockopt::linger, -1);  // inproc: never drop a finished result
    e->out->connect(done_endpoint_);
    executors_.push_back(e);
    threads_.emplace_back(&executor_pool::run_thread, this, e, handlers_, worker_id_,
                          abandoned_alive_);
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
    for (auto& e : executors_) {
        std::lock_guard elock(e->mu);
        if (e->busy && (job.empty() || e->current.job == job)) e->cancel.store(true);
    }
}

std::vector<proto::task_ref> executor_pool::holding() const {
    std::vector<proto::task_ref> out;
    std::lock_guard lock(mu_);
    for (const auto& [t, o] : queue_)
        out.push_back(proto::task_ref{t.job, t.id, t.attempt});
    for (const auto& e : executors_) {
        std::lock_guard elock(e->mu);
        if (e->busy) out.push_back(e->current);
    }
    return out;
}

void executor_pool::shutdown() {
    {
        std::lock_guard lock(mu_);
        shutting_down_ = true;
    }
    cv_.notify_all();
}

abandoned_task executor_pool::abandon(executor& e, clock::time_point now) {
    e.abandoned = true;
    e.cancel.store(true);
    // The thread sends nothing once abandoned, so its socket can go now
    // (linger 0: nothing is pending; and this must not throw).
    const int zero = 0;
    (void)zmq_setsockopt(e.out->handle(), ZMQ_LINGER, &zero, sizeof zero);
    e.out.reset();
    abandoned_alive_->fetch_add(1);
    return abandoned_task{
        e.current,
        e.from,
        e.timeout_ms,
        e.started_us,
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - e.started).count()),
        e.kind};
}

std::vector<abandoned_task> executor_pool::abandon_overdue(clock::time_point now,
                                                           clock::duration grace) {
    std::vector<abandoned_task> out;
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < executors_.size();) {
        executor& e = *executors_[i];
        std::unique_lock elock(e.mu);
        if (!e.busy || e.timeout_ms == 0 ||
            now < e.started + std::chrono::milliseconds(e.timeout_ms) + grace) {
            ++i;
            continue;
        }
        out.push_back(abandon(e, now));
        elock.unlock();
        threads_[i].detach();
        threads_.erase(threads_.begin() + static_cast<std::ptrdiff_t>(i));
        executors_.erase(executors_.begin() + static_cast<std::ptrdiff_t>(i));
        if (!shutting_down_) spawn();  // appended: index i now names the next one
    }
    return out;
}

std::vector<abandoned_task> executor_pool::abandon_running() {
    std::vector<abandoned_task> out;
    const auto now = clock::now();
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < executors_.size();) {
        executor& e = *executors_[i];
        std::unique_lock elock(e.mu);
        if (!e.busy) {
            ++i;
            continue;
        }
        out.push_back(abandon(e, now));
        elock.unlock();
        threads_[i].detach();
        threads_.erase(threads_.begin() + static_cast<std::ptrdiff_t>(i));
        executors_.erase(executors_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    return out;
}

std::size_t executor_pool::abandoned_alive() const noexcept {
    return abandoned_alive_->load();
}

// Touches `pool` only while `me` is not abandoned: an abandoned executor may
// outlive the pool, and keeps only what it shares (`me`, `handlers`, the count).
void executor_pool::run_thread(executor_pool* pool, std::shared_ptr<executor> me,
                               std::shared_ptr<const handler_table> handlers, std::string worker_id,
                               std::shared_ptr<std::atomic<std::size_t>> abandoned_alive) {
    std::string header;
    std::string body;
    for (;;) {
        std::pair<proto::task, origin> item;
        {
            std::unique_lock lock(pool->mu_);
            pool->cv_.wait(lock, [&] { return pool->shutting_down_ || !pool->queue_.empty(); });
            if (pool->queue_.empty()) return;  // shutting down with nothing left
            item = std::move(pool->queue_.front());
            pool->queue_.pop_front();
            std::lock_guard elock(me->mu);
            me->busy = true;
            me->cancel.store(false);
            me->current = proto::task_ref{item.first.job, item.first.id, item.first.attempt};
            me->from = item.second;
            me->timeout_ms = item.first.timeout_ms;
            me->kind = item.first.kind;
            me->started = clock::now();
            me->started_us =
                static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
        }
        proto::result r = execute(*handlers, item.first, worker_id, &me->cancel);
        {
            std::lock_guard elock(me->mu);
            if (me->abandoned) {
                // Reported already; the pool may be gone. Drop the result.
                abandoned_alive->fetch_sub(1);
                return;
            }
            me->busy = false;
        }
        // Not busy, so never abandoned from here: the socket stays ours.
        header.assign(1, static_cast<char>(item.second));
        header += r.job;
        proto::encode(r, body);
        try {
            me->out->send(zmq::buffer(header), zmq::send_flags::sndmore);
            me->out->send(zmq::buffer(body), zmq::send_flags::none);
        } catch (const zmq::error_t& e) {
            if (e.num() == ETERM) return;
            spdlog::error("executor: cannot hand back a result: {}", e.what());
        }
    }
}

}  // namespace zfarm::detail
