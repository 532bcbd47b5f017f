#include "ledger.hpp"

#include <algorithm>

namespace zfarm::ventilator {

ledger::ledger(std::size_t window) : window_(std::max<std::size_t>(window, 1)) {
    entries_.reserve(std::min<std::size_t>(window_, 1u << 20));
}

namespace {

// `e` as a fresh ledger_entry, but for the capacity of its strings.
void reset(ledger_entry& e) {
    e.kind.clear();
    e.payload.clear();
    e.attempt = 1;
    e.sent_at = {};
    e.lease_until = {};
    e.holder.clear();
    e.reasons.clear();
    e.queued_for_resend = false;
    e.given_up = false;
    e.suspect = false;
}

}  // namespace

ledger_entry& ledger::add(std::uint64_t id) {
    if (spare_.empty()) {
        auto [it, added] = entries_.try_emplace(id);
        if (!added) reset(it->second);
        return it->second;
    }
    entries::node_type node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = id;
    reset(node.mapped());
    auto put = entries_.insert(std::move(node));
    if (!put.inserted) {  // id was present: its entry is reset, the node kept
        spare_.push_back(std::move(put.node));
        reset(put.position->second);
    }
    return put.position->second;
}

bool ledger::acknowledge(std::uint64_t id) {
    entries::node_type node = entries_.extract(id);
    if (!node) return false;
    spare_.push_back(std::move(node));
    ++acknowledged_;
    return true;
}

ledger_entry* ledger::find(std::uint64_t id) {
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
}

std::vector<std::uint64_t> ledger::held_by(const std::string& holder) const {
    std::vector<std::uint64_t> out;
    for (const auto& [id, e] : entries_)
        if (e.holder == holder) out.push_back(id);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::uint64_t> ledger::expired(std::chrono::steady_clock::time_point now) const {
    std::vector<std::uint64_t> out;
    for (const auto& [id, e] : entries_)
        if (!e.queued_for_resend && e.lease_until <= now) out.push_back(id);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace zfarm::ventilator
