// tests/pattern.h — deterministic pseudo-random bytes for tests and their
// helper programs (which use the public API only, so this header includes
// nothing of udax).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace udax::testutil {

// Deterministic pseudo-random bytes (differ per seed and per offset; xorshift).
inline std::vector<uint8_t> Pattern(size_t len, uint64_t seed) {
  std::vector<uint8_t> v(len);
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 0x1234567;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

}  // namespace udax::testutil
