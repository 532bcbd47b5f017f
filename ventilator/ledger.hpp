// The ventilator's ledger: every task sent and not yet acknowledged by the
// sink, with its attempt, when it was sent, and (credit dispatch) which
// worker holds it. Its size is bounded by the dispatch window, so a stream of
// any length runs in bounded memory and backpressure reaches the source.
// Not thread-safe; owned by the ventilator's main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace zfarm::ventilator {

struct ledger_entry {
    std::string kind;
    std::string payload;
    std::uint32_t attempt = 1;
    std::chrono::steady_clock::time_point sent_at{};
    std::chrono::steady_clock::time_point lease_until{};  // re-sent when this passes
    std::string holder;   // worker identity in credit dispatch; empty in push dispatch
    std::string reasons;  // why earlier attempts did not count, for the final failure
    bool queued_for_resend = false;
    bool given_up = false;  // recorded as failed by the ventilator; waiting for its ACK
    // Sent again (credit dispatch) and counted among the re-sent tasks its
    // holder holds, of which a worker is given one at a time.
    bool suspect = false;
};

class ledger {
  public:
    explicit ledger(std::size_t window);

    std::size_t window() const noexcept { return window_; }
    std::size_t size() const noexcept { return entries_.size(); }
    bool full() const noexcept { return entries_.size() >= window_; }
    std::uint64_t acknowledged() const noexcept { return acknowledged_; }

    // Records a sent task: its entry, for the caller to fill, has every
    // field at its default, but its strings may keep the capacity of an
    // acknowledged task's (the ledger reuses their nodes, so a stream of
    // tasks costs no allocation once the window is full). Precondition:
    // !full(); an id already present is reset.
    ledger_entry& add(std::uint64_t id);
    // Removes an acknowledged task. False when id is not in flight (a
    // duplicate or stale ACK), which is harmless.
    bool acknowledge(std::uint64_t id);
    ledger_entry* find(std::uint64_t id);
    // Ids held by `holder`, for re-dispatch when it is lost.
    std::vector<std::uint64_t> held_by(const std::string& holder) const;
    // Ids whose lease ran out by `now` (not already queued for re-send).
    std::vector<std::uint64_t> expired(std::chrono::steady_clock::time_point now) const;
    template <class F>
    void for_each(F&& f) {
        for (auto& [id, e] : entries_)
            f(id, e);
    }

  private:
    std::size_t window_;
    std::uint64_t acknowledged_ = 0;
    using entries = std::unordered_map<std::uint64_t, ledger_entry>;
    entries entries_;
    // Nodes of acknowledged tasks, for add() to reuse: with entries_, never
    // more than the most tasks ever in flight at once.
    std::vector<entries::node_type> spare_;
};

}  // namespace zfarm::ventilator
