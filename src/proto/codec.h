// proto/codec.h — writing and reading the payload of a request or response
// on the channel (share/channel_format.h): fixed-size values in this
// machine's layout (both ends are processes on one machine, built from one
// protocol version) and length-prefixed strings.
//
// The mount reads what a client wrote, and a client may be hostile: a Reader
// never reads past its span, bounds every length it is given before using
// it, and once anything is wrong every later read fails too (ok() false);
// the decoder then answers EPROTO. Nothing read is trusted further: the
// server checks handles, paths and ranges as any caller's.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "udax/status.h"

namespace udax::proto {

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>* out) : out_(out) {}
  template <typename T>
  Writer& Put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_->insert(out_->end(), p, p + sizeof(T));
    return *this;
  }
  Writer& PutBytes(const void* p, size_t n) {
    Put(static_cast<uint32_t>(n));
    out_->insert(out_->end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    return *this;
  }
  Writer& PutString(std::string_view s) { return PutBytes(s.data(), s.size()); }
  size_t size() const { return out_->size(); }

 private:
  std::vector<uint8_t>* out_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  template <typename T>
  T Get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v{};
    if (!Take(sizeof(T))) return v;
    std::memcpy(&v, in_.data() + pos_ - sizeof(T), sizeof(T));
    return v;
  }
  // A view of the next length-prefixed bytes (at most `max`), valid while
  // the span read is.
  std::span<const uint8_t> GetBytes(size_t max) {
    uint32_t n = Get<uint32_t>();
    if (n > max) ok_ = false;
    if (!ok_ || !Take(n)) return {};
    return in_.subspan(pos_ - n, n);
  }
  std::string_view GetString(size_t max) {
    auto b = GetBytes(max);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }
  bool ok() const { return ok_; }
  // Every byte read, nothing left over.
  bool done() const { return ok_ && pos_ == in_.size(); }
  // EPROTO naming `what` unless the payload was read whole and well.
  Status Finish(const char* what) const {
    return done() ? Status::Ok() : Errno(EPROTO, std::string("malformed ") + what + " message");
  }

 private:
  bool Take(size_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace udax::proto
