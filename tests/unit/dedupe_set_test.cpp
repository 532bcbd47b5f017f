// Unit tests for zfarm/dedupe_set.hpp: the sink's record of which ids of a
// job it has seen, kept as a floor plus a bitmap of the span above it.
#include "zfarm/dedupe_set.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

namespace {

using zfarm::dedupe_set;
using outcome = dedupe_set::outcome;

TEST(DedupeSet, StartsEmpty) {
    dedupe_set s;
    EXPECT_EQ(s.size(), 0u);
    EXPECT_EQ(s.floor(), 0u);
    EXPECT_FALSE(s.contains(0));
    EXPECT_FALSE(s.contains(12345));
}

TEST(DedupeSet, AddsAnIdOnceAndReportsItAsDuplicateAfterwards) {
    dedupe_set s;
    EXPECT_EQ(s.insert(5), outcome::added);
    EXPECT_EQ(s.insert(5), outcome::duplicate);
    EXPECT_TRUE(s.contains(5));
    EXPECT_FALSE(s.contains(4));
    EXPECT_FALSE(s.contains(6));
    EXPECT_EQ(s.size(), 1u);
}

TEST(DedupeSet, FloorIsTheFirstMissingId) {
    dedupe_set s;
    s.insert(0);
    s.insert(1);
    s.insert(3);
    EXPECT_EQ(s.floor(), 2u);
    s.insert(2);
    EXPECT_EQ(s.floor(), 4u);
}

TEST(DedupeSet, FloorAdvancesOverFullWords) {
    dedupe_set s;
    for (std::uint64_t id = 0; id < 64; ++id)
        s.insert(id);
    EXPECT_EQ(s.floor(), 64u);
    for (std::uint64_t id = 64; id < 200; ++id)
        s.insert(id);
    EXPECT_EQ(s.floor(), 200u);
    EXPECT_EQ(s.size(), 200u);
    // Ids below the floor remain recorded once their words are dropped.
    EXPECT_TRUE(s.contains(0));
    EXPECT_TRUE(s.contains(63));
    EXPECT_EQ(s.insert(0), outcome::duplicate);
    EXPECT_EQ(s.insert(127), outcome::duplicate);
    EXPECT_FALSE(s.contains(200));
}

TEST(DedupeSet, FloorAdvancesOverManyWordsFilledOutOfOrder) {
    dedupe_set s;
    // Fill 64..255 first: nothing moves while id 0..63 are missing.
    for (std::uint64_t id = 64; id < 256; ++id)
        EXPECT_EQ(s.insert(id), outcome::added);
    EXPECT_EQ(s.floor(), 0u);
    for (std::uint64_t id = 63; id > 0; --id)
        s.insert(id);
    EXPECT_EQ(s.floor(), 0u);
    s.insert(0);
    EXPECT_EQ(s.floor(), 256u);
    EXPECT_EQ(s.size(), 256u);
}

TEST(DedupeSet, AcceptsOutOfOrderInserts) {
    dedupe_set s;
    for (std::uint64_t id : {9u, 3u, 1000u, 0u, 2u, 1u, 64u, 65u})
        EXPECT_EQ(s.insert(id), outcome::added) << id;
    EXPECT_EQ(s.floor(), 4u);
    EXPECT_EQ(s.size(), 8u);
    for (std::uint64_t id : {0u, 1u, 2u, 3u, 9u, 64u, 65u, 1000u})
        EXPECT_TRUE(s.contains(id)) << id;
    for (std::uint64_t id : {4u, 8u, 10u, 63u, 66u, 999u, 1001u})
        EXPECT_FALSE(s.contains(id)) << id;
}

TEST(DedupeSet, RejectsIdsAtOrBeyondTheMaxSpanAboveTheFloor) {
    dedupe_set s;
    EXPECT_EQ(s.insert(dedupe_set::k_max_span), outcome::rejected);
    EXPECT_EQ(s.insert(std::numeric_limits<std::uint64_t>::max()), outcome::rejected);
    EXPECT_EQ(s.size(), 0u);
    EXPECT_FALSE(s.contains(dedupe_set::k_max_span));
    // The last id inside the span is fine (this grows the bitmap to 32 MiB).
    EXPECT_EQ(s.insert(dedupe_set::k_max_span - 1), outcome::added);
    EXPECT_TRUE(s.contains(dedupe_set::k_max_span - 1));
}

TEST(DedupeSet, RejectedIdsAreNotCounted) {
    dedupe_set s;
    s.insert(dedupe_set::k_max_span + 7);
    s.insert(1);
    EXPECT_EQ(s.size(), 1u);
    EXPECT_EQ(s.floor(), 0u);
}

TEST(DedupeSet, MillionSequentialInsertsLeaveOnlyTheFloor) {
    dedupe_set s;
    constexpr std::uint64_t n = 1'000'000;
    for (std::uint64_t id = 0; id < n; ++id)
        ASSERT_EQ(s.insert(id), outcome::added) << id;
    EXPECT_EQ(s.size(), n);
    EXPECT_EQ(s.floor(), n);
    EXPECT_TRUE(s.contains(n - 1));
    EXPECT_FALSE(s.contains(n));
    // The span is measured from the floor, so the window has slid with it:
    // floor + k_max_span is out of reach, while an id that was out of reach
    // from 0 no longer is. A bitmap still holding the million ids would have
    // refused it.
    EXPECT_EQ(s.insert(n + dedupe_set::k_max_span), outcome::rejected);
    EXPECT_EQ(s.insert(dedupe_set::k_max_span), outcome::added);
}

TEST(DedupeSet, ListsTheIdsAboveItsFloor) {
    dedupe_set s;
    EXPECT_TRUE(s.above_floor().empty());
    for (std::uint64_t id : {0, 1, 2, 5, 63, 64, 200, 1000})
        s.insert(id);
    EXPECT_EQ(s.floor(), 3u);
    EXPECT_EQ(s.above_floor(), (std::vector<std::uint64_t>{5, 63, 64, 200, 1000}));
    for (std::uint64_t id = 3; id < 200; ++id)
        s.insert(id);
    EXPECT_EQ(s.floor(), 201u);
    EXPECT_EQ(s.above_floor(), (std::vector<std::uint64_t>{1000}));
}

}  // namespace
