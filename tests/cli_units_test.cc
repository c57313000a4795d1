// tests/cli_units_test.cc — the udax tool's own helpers (tools/udax/, not
// libudax): ParseSize, the size syntax every CLI number takes.
#include <gtest/gtest.h>

#include <cstdint>

#include "../tools/udax/units.h"

namespace udax {
namespace {

// ---- ParseSize ------------------------------------------------------------------------

TEST(ParseSize, Accepts) {
  struct {
    const char* in;
    uint64_t want;
  } cases[] = {
      {"0", 0},
      {"4096", 4096},
      {"0x1000", 4096},
      {"0X1000", 4096},
      {"0xff", 255},
      {"0xFF", 255},
      {"4k", 4096},
      {"4K", 4096},
      {"16m", 16ull << 20},
      {"16M", 16ull << 20},
      {"1g", 1ull << 30},
      {"2t", 2ull << 40},
      {"0x10k", 16ull << 10},
      {"007", 7},
      {"18446744073709551615", UINT64_MAX},
      {"0xffffffffffffffff", UINT64_MAX},
      {"16777215t", 16777215ull << 40},
  };
  for (const auto& c : cases) {
    auto v = ParseSize(c.in);
    ASSERT_TRUE(v.has_value()) << c.in;
    EXPECT_EQ(*v, c.want) << c.in;
  }
}

TEST(ParseSize, Rejects) {
  for (const char* in : {"", "k", "x", "0x", "0xg", "-1", "+1", " 1", "1 ", "1kb", "1kk", "4q",
                         "1.5m", "18446744073709551616", "0x10000000000000000",
                         "16777216t", "17179869184g", "1e3", "abc", "4k4", "1p"}) {
    EXPECT_FALSE(ParseSize(in).has_value()) << "'" << in << "' -> " << ParseSize(in).value_or(0);
  }
}

}  // namespace
}  // namespace udax
