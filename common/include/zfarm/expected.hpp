// A minimal expected<T, E> for C++20 (std::expected is C++23): a value or an
// error, never both. Used at every boundary where an operation can fail, so
// errors are values and no exception crosses an API.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

namespace zfarm {

template <class E>
struct unexpected {
    E error;
};
template <class E>
unexpected(E) -> unexpected<E>;

template <class T, class E>
class expected {
  public:
    expected(T value)
        : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    expected(unexpected<E> u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT
    // An error of another type that E can be made from, e.g. unexpected{"why"}
    // or unexpected{std::string} for an E that wraps a reason.
    template <class G>
    requires(!std::is_same_v<G, E> && std::is_constructible_v<E, G>)
        expected(unexpected<G> u)  // NOLINT: implicit by design
        : v_(std::in_place_index<1>, E(std::move(u.error))) {}

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    E& error() & { return std::get<1>(v_); }
    const E& error() const& { return std::get<1>(v_); }

  private:
    std::variant<T, E> v_;
};

}  // namespace zfarm
