// daemonkit/result.hpp: Result<T>, a value or an Error.
//
// Shaped like std::expected<T, Error> (value(), error(), operator*, ->,
// has_value(), explicit bool) so that a move to C++23 can make it an alias.
// Kept as our own type because g++ 12 offers std::expected only with
// -std=c++2b and clang 14 tools cannot parse that header.
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

#include "daemonkit/error.hpp"

namespace daemonkit {

// Wraps an Error so that `return fail(err);` converts into any Result<T>.
struct Failure {
  Error error;
};

inline Failure fail(Error e) {
  return Failure{std::move(e)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value)
      : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Failure f)
      : v_(std::in_place_index<1>, std::move(f.error)) {}  // NOLINT(google-explicit-constructor)
  Result(Error e)
      : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  [[nodiscard]] const Error& error() const& {
    assert(!has_value());
    return std::get<1>(v_);
  }
  [[nodiscard]] Error&& error() && {
    assert(!has_value());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  // A sink: the error is moved from `f` (cppcheck does not see through it).
  // cppcheck-suppress passedByValue
  Result(Failure f)
      : error_(std::move(f.error)), failed_(true) {}        // NOLINT(google-explicit-constructor)
  Result(Error e) : error_(std::move(e)), failed_(true) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return has_value(); }
  [[nodiscard]] const Error& error() const& {
    assert(failed_);
    return error_;
  }
  [[nodiscard]] Error&& error() && {
    assert(failed_);
    return std::move(error_);
  }

 private:
  Error error_;
  bool failed_ = false;
};

}  // namespace daemonkit
