// util/crc32c.cc — CRC-32C through the SSE4.2 crc32 instruction (8 bytes/step).
#include "util/crc32c.h"

#include <nmmintrin.h>

#include <cstring>

namespace udax {

__attribute__((target("sse4.2"))) uint32_t Crc32cExtend(uint32_t crc, const void* data,
                                                        size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (len--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

}  // namespace udax
