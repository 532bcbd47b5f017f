// Unit tests for zfarm/expected.hpp: a value or an error, never both.
#include "zfarm/expected.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace {

using zfarm::expected;
using zfarm::unexpected;

expected<int, std::string> parse_digit(char c) {
    if (c < '0' || c > '9') return unexpected{std::string("not a digit")};
    return c - '0';
}

TEST(Expected, HoldsAValue) {
    auto r = parse_digit('7');
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(static_cast<bool>(r));
    EXPECT_EQ(r.value(), 7);
    EXPECT_EQ(*r, 7);
}

TEST(Expected, HoldsAnError) {
    auto r = parse_digit('x');
    EXPECT_FALSE(r.has_value());
    EXPECT_FALSE(static_cast<bool>(r));
    EXPECT_EQ(r.error(), "not a digit");
}

TEST(Expected, HoldsAValueOfTheErrorsType) {
    // T and E may be the same type; the constructor used decides which it is.
    expected<std::string, std::string> ok = std::string("fine");
    expected<std::string, std::string> bad = unexpected{std::string("broken")};
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, "fine");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), "broken");
}

TEST(Expected, MovesMoveOnlyValuesOut) {
    expected<std::unique_ptr<int>, std::string> r = std::make_unique<int>(42);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r->get(), 42);
    std::unique_ptr<int> p = std::move(r).value();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 42);
}

TEST(Expected, GivesMemberAccessThroughArrow) {
    expected<std::string, int> r = std::string("abc");
    EXPECT_EQ(r->size(), 3u);
    r->push_back('d');
    EXPECT_EQ(*r, "abcd");
}

TEST(Expected, TakesAnErrorOfATypeItsErrorCanBeMadeFrom) {
    struct reason {
        reason(std::string w) : what(std::move(w)) {}  // NOLINT: implicit, as tested
        std::string what;
    };
    expected<int, reason> from_string = unexpected{std::string("bad")};
    expected<int, reason> from_literal = unexpected{"worse"};
    ASSERT_FALSE(from_string);
    EXPECT_EQ(from_string.error().what, "bad");
    ASSERT_FALSE(from_literal);
    EXPECT_EQ(from_literal.error().what, "worse");
}

TEST(Expected, ThrowsWhenTheMissingSideIsRead) {
    // Reading the value of an error is a caller bug; it is not undefined.
    auto r = parse_digit('x');
    EXPECT_ANY_THROW((void)r.value());
    auto v = parse_digit('1');
    EXPECT_ANY_THROW((void)v.error());
}

}  // namespace
