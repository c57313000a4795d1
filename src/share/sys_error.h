// share/sys_error.h — a Status from errno: "what: strerror" with errno's value.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "udax/status.h"

namespace udax::share {

inline Status SysError(const std::string& what) {
  int e = errno;
  return Errno(e, what + ": " + std::strerror(e));
}

}  // namespace udax::share
