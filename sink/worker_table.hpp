// Liveness of workers, as the sink sees it: who said HELLO or HEARTBEAT or
// delivered a result lately, and which tasks each one last said it holds.
// A worker silent for longer than the liveness timeout is lost: its tasks are
// reported (LOST) so the ventilator re-sends them at once. A lost worker
// that speaks again rejoins.
// Silence is measured only while the sink listens: a sink that was itself
// paused (a disk stall, SIGSTOP, a descheduled VM) does not blame its
// workers for the messages it did not read meanwhile.
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "zfarm/protocol.hpp"

namespace zfarm::sink {

class worker_table {
  public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t k_max_workers = 100000;

    // `check_interval`: how often expire() is called; a gap of more than
    // four of them between two calls is a pause of the sink.
    explicit worker_table(clock::duration timeout,
                          clock::duration check_interval = std::chrono::milliseconds(250))
        : timeout_(timeout), check_interval_(check_interval) {}

    void hello(const proto::hello& h, clock::time_point now);
    void heartbeat(const proto::heartbeat& hb, clock::time_point now);
    void seen(const std::string& worker, clock::time_point now);
    // A worker said BYE: forgotten, never declared lost (the sink publishes a
    // LOST with no tasks for it, so what it left queued is re-sent).
    void bye(const std::string& worker);

    // Workers silent for longer than the timeout, removed, each with the
    // tasks it last reported. Call every check interval. When the previous
    // call (before the first: the first worker heard) is more than four
    // intervals ago, the sink was paused: the time beyond one interval is not
    // counted as anyone's silence, and is returned in `paused` (zero
    // otherwise).
    std::vector<proto::lost> expire(clock::time_point now, clock::duration* paused = nullptr);

    // Ids of `job` that live workers report holding, for lease renewal.
    std::vector<std::uint64_t> held(const std::string& job) const;
    std::size_t alive() const { return workers_.size(); }
    // Heard from lately: neither lost nor gone (BYE).
    bool present(const std::string& worker) const { return workers_.contains(worker); }
    // Lost workers heard from again since the last call.
    std::vector<std::string> take_rejoined() { return std::exchange(rejoined_, {}); }
    std::uint64_t lost_count() const { return lost_count_; }

  private:
    struct entry {
        clock::time_point last_seen;
        std::vector<proto::task_ref> holding;
    };
    entry* touch(const std::string& worker, clock::time_point now);

    clock::duration timeout_;
    clock::duration check_interval_;
    std::optional<clock::time_point> last_check_;
    std::unordered_map<std::string, entry> workers_;
    std::unordered_map<std::string, bool> ever_lost_;
    std::vector<std::string> rejoined_;
    std::uint64_t lost_count_ = 0;
};

}  // namespace zfarm::sink
