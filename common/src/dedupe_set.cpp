#include "zfarm/dedupe_set.hpp"

#include <bit>

namespace zfarm {

dedupe_set::outcome dedupe_set::insert(std::uint64_t id) {
    if (id < base_) return outcome::duplicate;
    const std::uint64_t offset = id - base_;
    if (offset >= k_max_span) return outcome::rejected;
    const std::uint64_t word = offset / 64;
    if (word >= words_.size()) words_.resize(word + 1, 0);
    const std::uint64_t bit = std::uint64_t{1} << (offset % 64);
    if (words_[word] & bit) return outcome::duplicate;
    words_[word] |= bit;
    ++count_;
    if (word == 0) advance();
    return outcome::added;
}

bool dedupe_set::contains(std::uint64_t id) const noexcept {
    if (id < base_) return true;
    const std::uint64_t offset = id - base_;
    const std::uint64_t word = offset / 64;
    if (word >= words_.size()) return false;
    return (words_[word] >> (offset % 64)) & 1u;
}

std::vector<std::uint64_t> dedupe_set::above_floor() const {
    std::vector<std::uint64_t> out;
    const std::uint64_t lowest = floor();
    for (std::size_t w = 0; w < words_.size(); ++w) {
        for (std::uint64_t bits = words_[w]; bits != 0; bits &= bits - 1) {
            const std::uint64_t id =
                base_ + 64 * w + static_cast<std::uint64_t>(std::countr_zero(bits));
            if (id >= lowest) out.push_back(id);
        }
    }
    return out;
}

void dedupe_set::advance() {
    while (!words_.empty() && words_.front() == ~std::uint64_t{0}) {
        words_.pop_front();
        base_ += 64;
    }
    floor_bits_ = words_.empty() ? 0 : static_cast<std::uint64_t>(std::countr_one(words_.front()));
}

}  // namespace zfarm
