// udax/status.h — the error type of the public API.
//
// Status carries an errno value (0 = ok) and a human-readable message.
// Result<T> holds either a value or a non-ok Status; its member names follow
// std::expected (has_value, value, error) so it can be swapped for it later.
// Neither type throws. Both are cheap to move.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "udax/export.h"

namespace udax {

class [[nodiscard]] UDAX_EXPORT Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(int err, std::string msg) { return Status(err, std::move(msg)); }

  bool ok() const { return err_ == 0; }
  int err() const { return err_; }
  const std::string& message() const { return msg_; }
  // "message (ENOENT)"-style rendering for logs and the CLI.
  std::string ToString() const;
  // Adds context in front of the message: "ctx: message".
  // (A string_view: a literal builds no string when the status is ok.)
  Status Prefixed(std::string_view ctx) const {
    return ok() ? *this : Status(err_, std::string(ctx) + ": " + msg_);
  }
  // Explicitly ignores a Status (greppable).
  void IgnoreError() const {}

 private:
  Status(int err, std::string msg) : err_(err), msg_(std::move(msg)) {}
  int err_ = 0;
  std::string msg_;
};

// Name of an errno value ("ENOENT"), or "E?" for unknown values.
UDAX_EXPORT const char* ErrnoName(int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}      // NOLINT: must be an error
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; Status::Ok() when a value is held.
  Status error() const { return has_value() ? Status::Ok() : std::get<1>(v_); }
  Status status() const { return error(); }

 private:
  std::variant<T, Status> v_;
};

#define UDAX_CONCAT_INNER(a, b) a##b
#define UDAX_CONCAT(a, b) UDAX_CONCAT_INNER(a, b)

// Returns early from the enclosing function when `expr` (a Status) fails.
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::udax::Status _st = (expr);              \
    if (!_st.ok()) return _st;                \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, ResultExpr)` — unwraps or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr)                          \
  auto UDAX_CONCAT(_res_, __LINE__) = (expr);                \
  if (!UDAX_CONCAT(_res_, __LINE__).has_value())             \
    return UDAX_CONCAT(_res_, __LINE__).error();             \
  lhs = std::move(UDAX_CONCAT(_res_, __LINE__)).value()

inline Status Errno(int err, std::string msg) { return Status::Error(err, std::move(msg)); }

}  // namespace udax
