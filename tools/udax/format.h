// tools/udax/format.h — printf-style formatting into a std::string (the CLI's and
// the bench's report lines). Lines longer than 1023 bytes are cut.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>

namespace udax {

inline std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string Fmt(const char* fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  return line;
}

}  // namespace udax
