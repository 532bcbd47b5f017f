#include "result_recorder.hpp"

#include <spdlog/spdlog.h>

namespace zfarm::sink {

job_table::record_outcome result_recorder::add(proto::result& r,
                                               std::chrono::steady_clock::time_point now) {
    std::string history;
    const auto outcome = jobs_.record(r, now, &history);
    switch (outcome) {
        case job_table::record_outcome::added: {
            if (!history.empty()) r.error = std::move(history);
            if (!opt_.keep_order) {
                emit(r);
                break;
            }
            // Every id below the floor is recorded: r's id was the floor
            // (written now) or is above it (held until the floor passes it).
            const job_state* j = jobs_.find(r.job);
            const std::uint64_t floor = j ? j->recorded.floor() : 0;
            if (r.id < floor) {
                emit(r);
                if (auto it = held_.find(r.job); it != held_.end())
                    it->second.buffer.release_below(floor,
                                                    [&](const proto::result& h) { emit(h); });
            } else {
                hold(std::move(r), floor);
            }
            break;
        }
        case job_table::record_outcome::duplicate:
            ++duplicates_;
            // A duplicate of a held result is answered by the ACK of its
            // writing: acknowledged once, when written.
            if (opt_.keep_order && holds(r.job, r.id)) break;
            {
                pending_ack& a = acks_[r.job];  // the ventilator may have missed the first ACK
                a.ids.push_back(r.id);
                if (jobs_.recorded_failed(r.job, r.id)) a.failed.push_back(r.id);
            }
            break;
        case job_table::record_outcome::rejected:
        case job_table::record_outcome::retry:
            break;
    }
    return outcome;
}

void result_recorder::emit(const proto::result& r) {
    if (r.kind == exec::k_kind || log_) {
        const auto o = exec_outcome_of(r);
        out_.write(r, o ? &*o : nullptr);
        if (log_) log_->write(r, o ? &*o : nullptr);
    } else {
        out_.write(r, nullptr);
    }
    wrote_ = true;
    pending_ack& a = acks_[r.job];
    a.ids.push_back(r.id);
    if (r.status == proto::task_status::failed) a.failed.push_back(r.id);
}

void result_recorder::hold(proto::result&& r, std::uint64_t floor) {
    const std::string job = r.job;
    held_job& h = held_[job];
    h.buffer.hold(std::move(r));
    if (h.buffer.bytes() <= opt_.keep_order_memory) return;
    std::uint64_t n = 0;
    while (h.buffer.bytes() > opt_.keep_order_memory && !h.buffer.empty()) {
        h.buffer.release_lowest([&](const proto::result& x) { emit(x); });
        ++n;
    }
    out_of_order_ += n;
    if (!h.warned)
        spdlog::warn(
            "job {}: results held for --keep-order passed {} bytes while id {} is awaited: "
            "writing {} of them out of order (raise --keep-order-memory, or lower the "
            "ventilator's --window)",
            job, opt_.keep_order_memory, floor, n);
    h.warned = true;
}

bool result_recorder::flush() {
    for (auto it = held_.begin(); it != held_.end();) {
        const job_state* j = jobs_.find(it->first);
        if (j && !j->complete()) {
            ++it;
            continue;
        }
        // Complete (or no longer open): what is held is beyond the total.
        it->second.buffer.release_all([&](const proto::result& h) { emit(h); });
        it = held_.erase(it);
    }
    if (!wrote_) return true;
    wrote_ = false;
    const bool out_ok = out_.flush();
    const bool log_ok = !log_ || log_->flush();
    return out_ok && log_ok;
}

std::vector<proto::ack> result_recorder::take_acks() {
    constexpr std::size_t k_max = proto::k_max_ids_per_message;
    std::vector<proto::ack> out;
    for (auto& [job, p] : acks_) {
        if (p.ids.size() <= k_max) {
            out.push_back(proto::ack{job, std::move(p.ids), {}, std::move(p.failed)});
            continue;
        }
        // failed is a subsequence of ids: hand each chunk its own.
        std::size_t f = 0;
        for (std::size_t i = 0; i < p.ids.size(); i += k_max) {
            proto::ack a{job, {}, {}, {}};
            const std::size_t end = std::min(p.ids.size(), i + k_max);
            a.ids.assign(p.ids.begin() + static_cast<long>(i),
                         p.ids.begin() + static_cast<long>(end));
            for (std::size_t k = i; k < end && f < p.failed.size(); ++k)
                if (p.ids[k] == p.failed[f]) a.failed.push_back(p.failed[f++]);
            out.push_back(std::move(a));
        }
    }
    acks_.clear();
    return out;
}

bool result_recorder::holds(const std::string& job, std::uint64_t id) const {
    if (held_.empty()) return false;
    const auto it = held_.find(job);
    return it != held_.end() && it->second.buffer.contains(id);
}

std::vector<std::uint64_t> result_recorder::held(const std::string& job) const {
    const auto it = held_.find(job);
    return it == held_.end() ? std::vector<std::uint64_t>{} : it->second.buffer.ids();
}

}  // namespace zfarm::sink
