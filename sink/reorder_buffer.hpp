// The results of one job held back by `zfarm-sink --keep-order` until every
// lower id is written (like `parallel -k`), with the memory they take.
//
// The buffer only holds and releases; what is held and when it is released
// is the recorder's business (result_recorder.hpp, PROTOCOL.md 7.3 rule 4).
// Its size is bounded by the ventilator's window: a held result is not
// acknowledged until it is written, so it stays in flight.
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "zfarm/protocol.hpp"

namespace zfarm::sink {

class reorder_buffer {
  public:
    // Holds `r`. False, and `r` is left alone, when its id is held already.
    bool hold(proto::result&& r);
    bool contains(std::uint64_t id) const { return held_.contains(id); }
    bool empty() const noexcept { return held_.empty(); }
    std::size_t size() const noexcept { return held_.size(); }
    // Approximate memory the held results take, in bytes.
    std::size_t bytes() const noexcept { return bytes_; }
    // The lowest held id; precondition: !empty().
    std::uint64_t lowest() const { return held_.begin()->first; }
    // The held ids, ascending.
    std::vector<std::uint64_t> ids() const;

    // Removes the held results whose id is below `floor` and calls `f` with
    // each, in ascending id order.
    template <class F>
    void release_below(std::uint64_t floor, F&& f) {
        auto it = held_.begin();
        while (it != held_.end() && it->first < floor) {
            proto::result r = std::move(it->second);
            bytes_ -= footprint(r);
            it = held_.erase(it);
            f(r);
        }
    }
    // Removes the lowest held result and calls `f` with it; precondition:
    // !empty().
    template <class F>
    void release_lowest(F&& f) {
        auto it = held_.begin();
        proto::result r = std::move(it->second);
        bytes_ -= footprint(r);
        held_.erase(it);
        f(r);
    }
    // Removes every held result, calling `f` with each in ascending id order.
    template <class F>
    void release_all(F&& f) {
        while (!held_.empty())
            release_lowest(f);
    }
    // Drops everything held (a cancelled job).
    void clear() noexcept {
        held_.clear();
        bytes_ = 0;
    }

    static std::size_t footprint(const proto::result& r) noexcept;

  private:
    std::map<std::uint64_t, proto::result> held_;
    std::size_t bytes_ = 0;
};

}  // namespace zfarm::sink
