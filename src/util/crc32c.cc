// util/crc32c.cc — CRC-32C (Castagnoli). Buffers of 256 bytes and more go to
// ISA-L's crc32_iscsi, which picks the fastest kernel the CPU has at run time
// (PCLMULQDQ/VPCLMULQDQ folding; 4 KiB in ~85 ns here, against ~150 ns for
// three interleaved SSE4.2 crc32 streams). Short ones — names, journal record
// headers — take the SSE4.2 crc32 instruction directly: ISA-L's setup costs
// more than they do. ISA-L keeps the CRC register un-inverted, so a chained
// CRC passes its complement in and complements the result.
#include "util/crc32c.h"

#include <isa-l/crc.h>
#include <nmmintrin.h>

#include <climits>
#include <cstring>

namespace udax {
namespace {

constexpr size_t kShort = 256;

__attribute__((target("sse4.2"))) uint32_t ShortCrc(uint32_t reg, const unsigned char* p, size_t len) {
  uint64_t r = reg;
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    r = _mm_crc32_u64(r, w);
  }
  uint32_t r32 = static_cast<uint32_t>(r);
  for (; len > 0; p++, len--) r32 = _mm_crc32_u8(r32, *p);
  return r32;
}

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t len) {
  static const bool sse42 = __builtin_cpu_supports("sse4.2");
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  if (len < kShort && sse42) return ~ShortCrc(crc, p, len);
  while (len > 0) {  // crc32_iscsi takes an int length
    int n = len > size_t(INT_MAX) ? INT_MAX : int(len);
    crc = crc32_iscsi(const_cast<unsigned char*>(p), n, crc);
    p += n;
    len -= size_t(n);
  }
  return ~crc;
}

}  // namespace udax
