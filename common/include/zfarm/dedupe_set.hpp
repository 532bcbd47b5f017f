// The set of task ids of one job that the sink has recorded.
//
// Ids are dense (0..N-1) and recorded roughly in order, so the set keeps a
// floor (every id below it is recorded) and a bitmap of the span above it:
// memory grows with the span of ids in flight, not with the job's length.
// Not thread-safe; owned by the sink's main thread.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

namespace zfarm {

class dedupe_set {
  public:
    // Ids further than this above the floor are refused (insert returns
    // rejected): no id, however forged, can make the bitmap grow past 32 MiB.
    static constexpr std::uint64_t k_max_span = std::uint64_t{1} << 28;

    enum class outcome { added, duplicate, rejected };

    outcome insert(std::uint64_t id);
    bool contains(std::uint64_t id) const noexcept;
    std::uint64_t size() const noexcept { return count_; }
    // Every id below floor() is recorded.
    std::uint64_t floor() const noexcept { return base_ + floor_bits_; }
    // The recorded ids at or above floor(), ascending.
    std::vector<std::uint64_t> above_floor() const;

  private:
    void advance();

    std::uint64_t base_ = 0;        // id of bit 0 of words_.front(); a multiple of 64
    std::uint64_t floor_bits_ = 0;  // leading set bits of the bitmap, < 64 after advance()
    std::uint64_t count_ = 0;
    std::deque<std::uint64_t> words_;
};

}  // namespace zfarm
