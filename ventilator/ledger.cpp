#include "ledger.hpp"

#include <algorithm>

namespace zfarm::ventilator {

ledger::ledger(std::size_t window) : window_(std::max<std::size_t>(window, 1)) {
    entries_.reserve(std::min<std::size_t>(window_, 1u << 20));
}

void ledger::add(std::uint64_t id, ledger_entry e) {
    entries_.insert_or_assign(id, std::move(e));
}

bool ledger::acknowledge(std::uint64_t id) {
    if (entries_.erase(id) == 0) return false;
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
