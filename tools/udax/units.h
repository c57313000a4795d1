// tools/udax/units.h — parsing of sizes and numbers as the CLI takes them
// ("4096", "0x1000", "4k", "16m", "1g").
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace udax {
// Decimal or 0x-hex, with an optional k/m/g/t suffix (powers of 1024).
std::optional<uint64_t> ParseSize(const std::string& s);
}  // namespace udax
