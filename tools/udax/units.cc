// tools/udax/units.cc — see units.h.
#include "units.h"

#include <cctype>
#include <limits>

namespace udax {

std::optional<uint64_t> ParseSize(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  }
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < s.size(); i++) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else break;
    if (v > (std::numeric_limits<uint64_t>::max() - d) / base) return std::nullopt;
    v = v * base + d;
    digits++;
  }
  if (digits == 0) return std::nullopt;
  if (i < s.size()) {
    if (i + 1 != s.size()) return std::nullopt;
    int shift;
    switch (std::tolower(static_cast<unsigned char>(s[i]))) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      default: return std::nullopt;
    }
    if (v > (std::numeric_limits<uint64_t>::max() >> shift)) return std::nullopt;
    v <<= shift;
  }
  return v;
}

}  // namespace udax
