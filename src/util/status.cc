// util/status.cc — Status rendering and errno names.
#include "udax/status.h"

namespace udax {

const char* ErrnoName(int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
    E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV)
    E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG)
    E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS)
    E(ENOTEMPTY) E(ELOOP) E(EOVERFLOW) E(EOPNOTSUPP) E(EUCLEAN) E(ESHUTDOWN) E(ETXTBSY)
    E(ENODATA) E(ECANCELED) E(EHWPOISON) E(EBADE) E(EDEADLK)
#undef E
    default: return "E?";
  }
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return msg_ + " (" + ErrnoName(err_) + ")";
}

}  // namespace udax
