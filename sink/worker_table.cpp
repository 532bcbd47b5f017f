#include "worker_table.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace zfarm::sink {

worker_table::entry* worker_table::touch(const std::string& worker, clock::time_point now) {
    auto it = workers_.find(worker);
    if (it == workers_.end()) {
        if (workers_.size() >= k_max_workers) return nullptr;
        it = workers_.emplace(worker, entry{}).first;
        if (ever_lost_.erase(worker)) {
            spdlog::info("worker {} rejoined", worker);
            rejoined_.push_back(worker);
        }
    }
    it->second.last_seen = now;
    // A pause before the first check counts from the first worker heard.
    if (!last_check_) last_check_ = now;
    return &it->second;
}

void worker_table::hello(const proto::hello& h, clock::time_point now) {
    touch(h.worker, now);
}

void worker_table::heartbeat(const proto::heartbeat& hb, clock::time_point now) {
    if (entry* e = touch(hb.worker, now)) e->holding = hb.running;
}

void worker_table::seen(const std::string& worker, clock::time_point now) {
    touch(worker, now);
}

void worker_table::bye(const std::string& worker) {
    workers_.erase(worker);
}

std::vector<proto::lost> worker_table::expire(clock::time_point now, clock::duration* paused) {
    std::vector<proto::lost> out;
    const clock::duration gap = last_check_ ? now - *last_check_ : clock::duration::zero();
    last_check_ = now;
    const clock::duration excused =
        gap > 4 * check_interval_ ? gap - check_interval_ : clock::duration::zero();
    if (paused) *paused = excused;
    if (excused > clock::duration::zero())
        for (auto& [name, e] : workers_)
            e.last_seen = std::min(now, e.last_seen + excused);
    for (auto it = workers_.begin(); it != workers_.end();) {
        if (now - it->second.last_seen <= timeout_) {
            ++it;
            continue;
        }
        out.push_back(proto::lost{it->first, std::move(it->second.holding)});
        if (ever_lost_.size() < k_max_workers) ever_lost_[it->first] = true;
        ++lost_count_;
        it = workers_.erase(it);
    }
    return out;
}

std::vector<std::uint64_t> worker_table::held(const std::string& job) const {
    std::vector<std::uint64_t> out;
    for (const auto& [id, e] : workers_)
        for (const auto& r : e.holding)
            if (r.job == job) out.push_back(r.id);
    return out;
}

}  // namespace zfarm::sink
