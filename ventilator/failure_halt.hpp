// --halt-on-failure (PROTOCOL.md 7.12): the decision to stop a job at its
// first recorded failure. It learns of failures from the `failed` ids of the
// sink's ACKs (5.8, rule 7); once one arrives, no new task may be sent, the
// tasks in flight run to their end (with their retries), and then the job is
// cancelled, unless every task had been sent already, in which case the job
// ends with its DONE as usual.
//
// The dispatcher asks it; it owns no socket. Not thread-safe; owned by the
// ventilator's main thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_set>
#include <vector>

namespace zfarm::ventilator {

class failure_halt {
  public:
    explicit failure_halt(bool enabled) : enabled_(enabled) {}

    bool enabled() const noexcept { return enabled_; }
    // Takes the `failed` ids of one ACK of the job. Returns true when they
    // start the halt (the first failure seen while enabled).
    bool on_failed(const std::vector<std::uint64_t>& failed);
    // A failure was seen while enabled: no new task may be sent.
    bool halting() const noexcept { return first_.has_value(); }
    bool may_send_new() const noexcept { return !halting(); }
    // The first failed id seen (the first listed in the first ACK with any).
    std::optional<std::uint64_t> first_failed() const noexcept { return first_; }
    // Distinct failed ids seen since the halt began, the first included.
    std::size_t failures() const noexcept { return failed_.size(); }
    // Cancel now: halting, nothing in flight (every task sent was recorded),
    // and the job not closed (when it is, every task was sent and its DONE
    // is on its way: the job ends as usual).
    bool should_cancel(std::size_t in_flight, bool closed) const noexcept {
        return halting() && in_flight == 0 && !closed;
    }

  private:
    bool enabled_;
    std::optional<std::uint64_t> first_;
    std::unordered_set<std::uint64_t> failed_;  // bounded: nothing new is sent once halting
};

}  // namespace zfarm::ventilator
