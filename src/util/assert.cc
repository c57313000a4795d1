// util/assert.cc — the failure path of UDAX_ASSERT (see assert.h).
#include "util/assert.h"

#include <cstdio>
#include <cstdlib>

namespace udax {

void AssertFail(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "udax: assertion failed: %s:%d: %s%s%s\n", file, line, cond,
               msg.empty() ? "" : ": ", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace udax
