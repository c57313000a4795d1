// tests/crc32c_test.cc — util/crc32c: the ISA-L backed implementation
// equals a byte-at-a-time CRC-32C for every length, offset and seed, and
// chains (Extend) like one CRC over the concatenation.
#include "util/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace udax {
namespace {

uint32_t Bitwise(uint32_t crc, const uint8_t* p, size_t len) {
  crc = ~crc;
  while (len--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return ~crc;
}

TEST(Crc32c, KnownAnswer) { EXPECT_EQ(Crc32c("123456789", 9), 0xe3069283u); }

TEST(Crc32c, MatchesBitwiseForAllShapes) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf(40000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  std::vector<size_t> lens = {0, 1, 7, 8, 9, 767, 768, 769, 4079, 4080, 4088, 4096, 8191, 24576, 24577, 39990};
  for (int i = 0; i < 300; i++) lens.push_back(rng() % 30000);
  for (size_t len : lens) {
    size_t off = rng() % 9;
    uint32_t seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(Crc32cExtend(seed, buf.data() + off, len), Bitwise(seed, buf.data() + off, len))
        << "len " << len << " off " << off;
  }
}

TEST(Crc32c, ExtendChains) {
  std::vector<uint8_t> buf(10000, 0x5a);
  for (size_t i = 0; i < buf.size(); i++) buf[i] = static_cast<uint8_t>(i * 7);
  for (size_t cut : {0, 5, 4096, 6000, 10000})
    EXPECT_EQ(Crc32cExtend(Crc32c(buf.data(), cut), buf.data() + cut, buf.size() - cut),
              Crc32c(buf.data(), buf.size()));
}

}  // namespace
}  // namespace udax
