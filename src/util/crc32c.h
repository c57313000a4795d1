// util/crc32c.h — CRC-32C (Castagnoli), computed by ISA-L (libisal).
#pragma once
#include <cstddef>
#include <cstdint>

namespace udax {
// Continues a CRC: Crc32cExtend(Crc32cExtend(0, a), b) == crc of a||b.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t len);
inline uint32_t Crc32c(const void* data, size_t len) { return Crc32cExtend(0, data, len); }
}  // namespace udax
