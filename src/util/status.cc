// util/status.cc — Status rendering and errno names.
#include "udax/status.h"

#include <string.h>

namespace udax {

// glibc's table (strerrorname_np, glibc 2.32): every errno the kernel has,
// so a new one (EPROTO, ENOTCONN, ETIMEDOUT...) never prints as unknown.
const char* ErrnoName(int err) {
  if (err == 0) return "OK";
  const char* name = strerrorname_np(err);
  return name ? name : "E?";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return msg_ + " (" + ErrnoName(err_) + ")";
}

}  // namespace udax
