// Unit tests for ventilator/ledger.hpp: the tasks sent and not yet
// acknowledged, bounded by the dispatch window.
#include "ledger.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using zfarm::ventilator::ledger;
using zfarm::ventilator::ledger_entry;

ledger_entry entry(std::string holder = "", std::uint32_t attempt = 1) {
    ledger_entry e;
    e.kind = "sleep";
    e.payload = "5";
    e.attempt = attempt;
    e.sent_at = std::chrono::steady_clock::now();
    e.holder = std::move(holder);
    return e;
}

TEST(Ledger, StartsEmptyWithItsWindow) {
    ledger l(8);
    EXPECT_EQ(l.window(), 8u);
    EXPECT_EQ(l.size(), 0u);
    EXPECT_FALSE(l.full());
    EXPECT_EQ(l.acknowledged(), 0u);
}

TEST(Ledger, WindowIsAtLeastOne) {
    ledger l(0);
    EXPECT_EQ(l.window(), 1u);
    EXPECT_FALSE(l.full());
    l.add(0) = entry();
    EXPECT_TRUE(l.full());
}

TEST(Ledger, RemembersWhatWasAdded) {
    ledger l(4);
    l.add(7) = entry("w1", 3);
    ASSERT_EQ(l.size(), 1u);
    ledger_entry* e = l.find(7);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->kind, "sleep");
    EXPECT_EQ(e->payload, "5");
    EXPECT_EQ(e->attempt, 3u);
    EXPECT_EQ(e->holder, "w1");
    EXPECT_EQ(l.find(8), nullptr);
}

TEST(Ledger, FindGivesAMutableEntryForResend) {
    ledger l(4);
    l.add(1) = entry("w1");
    ledger_entry* e = l.find(1);
    ASSERT_NE(e, nullptr);
    e->attempt = 2;
    e->holder = "w2";
    EXPECT_EQ(l.find(1)->attempt, 2u);
    EXPECT_EQ(l.find(1)->holder, "w2");
}

TEST(Ledger, IsFullAtTheWindow) {
    ledger l(3);
    l.add(0) = entry();
    l.add(1) = entry();
    EXPECT_FALSE(l.full());
    l.add(2) = entry();
    EXPECT_TRUE(l.full());
    EXPECT_EQ(l.size(), 3u);
}

TEST(Ledger, AcknowledgeFreesRoomInTheWindow) {
    ledger l(2);
    l.add(0) = entry();
    l.add(1) = entry();
    ASSERT_TRUE(l.full());
    EXPECT_TRUE(l.acknowledge(0));
    EXPECT_FALSE(l.full());
    EXPECT_EQ(l.size(), 1u);
    EXPECT_EQ(l.acknowledged(), 1u);
    EXPECT_EQ(l.find(0), nullptr);
    EXPECT_NE(l.find(1), nullptr);
}

TEST(Ledger, AcknowledgeOfAnUnknownIdReturnsFalse) {
    ledger l(2);
    l.add(0) = entry();
    EXPECT_FALSE(l.acknowledge(99));
    EXPECT_EQ(l.size(), 1u);
    EXPECT_EQ(l.acknowledged(), 0u);
}

TEST(Ledger, DuplicateAcknowledgeReturnsFalseAndCountsOnce) {
    ledger l(2);
    l.add(5) = entry();
    EXPECT_TRUE(l.acknowledge(5));
    EXPECT_FALSE(l.acknowledge(5));
    EXPECT_EQ(l.acknowledged(), 1u);
}

TEST(Ledger, HeldByReturnsOnlyThatHoldersIdsSorted) {
    ledger l(16);
    for (std::uint64_t id : {9u, 2u, 14u, 5u})
        l.add(id) = entry("w1");
    for (std::uint64_t id : {3u, 8u})
        l.add(id) = entry("w2");
    l.add(1) = entry();  // push dispatch: no holder
    EXPECT_EQ(l.held_by("w1"), (std::vector<std::uint64_t>{2, 5, 9, 14}));
    EXPECT_EQ(l.held_by("w2"), (std::vector<std::uint64_t>{3, 8}));
    EXPECT_EQ(l.held_by(""), (std::vector<std::uint64_t>{1}));
    EXPECT_TRUE(l.held_by("w3").empty());
}

TEST(Ledger, HeldByForgetsAcknowledgedIds) {
    ledger l(4);
    l.add(1) = entry("w1");
    l.add(2) = entry("w1");
    l.acknowledge(1);
    EXPECT_EQ(l.held_by("w1"), (std::vector<std::uint64_t>{2}));
}

TEST(Ledger, HandlesIdsAcrossTheWholeRange) {
    ledger l(2);
    const std::uint64_t big = std::numeric_limits<std::uint64_t>::max();
    l.add(big) = entry("w");
    l.add(0) = entry("w");
    EXPECT_EQ(l.held_by("w"), (std::vector<std::uint64_t>{0, big}));
    EXPECT_TRUE(l.acknowledge(big));
}

TEST(Ledger, RunsAStreamLongerThanItsWindowInBoundedSize) {
    // The ventilator's loop: add while not full, then wait for ACKs.
    ledger l(32);
    std::uint64_t next = 0;
    std::uint64_t acked = 0;
    while (acked < 10000) {
        while (!l.full())
            l.add(next++) = entry();
        ASSERT_LE(l.size(), l.window());
        for (int i = 0; i < 7 && acked < next; ++i)
            ASSERT_TRUE(l.acknowledge(acked++));
    }
    EXPECT_EQ(l.acknowledged(), acked);
    EXPECT_EQ(l.size(), next - acked);
}

TEST(Ledger, AnEntryAddedAfterAnAcknowledgedOneHasNothingOfIt) {
    // add() reuses the node of an acknowledged task: every field must read
    // as a fresh entry's, and its strings keep their room.
    ledger l(4);
    ledger_entry& old = l.add(1);
    old = entry("w1", 3);
    old.payload = std::string(200, 'p');
    old.lease_until = std::chrono::steady_clock::now();
    old.reasons = "attempt 1: lost";
    old.queued_for_resend = true;
    old.given_up = true;
    ASSERT_TRUE(l.acknowledge(1));
    ledger_entry& e = l.add(2);
    EXPECT_EQ(e.kind, "");
    EXPECT_EQ(e.payload, "");
    EXPECT_GE(e.payload.capacity(), 200u) << "the acknowledged entry's node was not reused";
    EXPECT_EQ(e.attempt, 1u);
    EXPECT_EQ(e.sent_at, std::chrono::steady_clock::time_point{});
    EXPECT_EQ(e.lease_until, std::chrono::steady_clock::time_point{});
    EXPECT_EQ(e.holder, "");
    EXPECT_EQ(e.reasons, "");
    EXPECT_FALSE(e.queued_for_resend);
    EXPECT_FALSE(e.given_up);
    EXPECT_EQ(l.find(1), nullptr);
    EXPECT_EQ(l.find(2), &e);
    EXPECT_EQ(l.size(), 1u);
}

TEST(Ledger, AddingAnIdInFlightResetsItsEntry) {
    ledger l(4);
    l.add(3) = entry("w1", 2);
    l.add(9) = entry("w1");
    ASSERT_TRUE(l.acknowledge(9));  // a spare node, which add(3) must not lose
    ledger_entry& e = l.add(3);
    EXPECT_EQ(e.holder, "");
    EXPECT_EQ(e.attempt, 1u);
    EXPECT_EQ(l.size(), 1u);
    l.add(4) = entry("w2");
    EXPECT_EQ(l.size(), 2u);
    EXPECT_EQ(l.held_by("w2"), (std::vector<std::uint64_t>{4}));
}

}  // namespace
