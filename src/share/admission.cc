// share/admission.cc — the admission rule (see admission.h).
#include "share/admission.h"

#include <algorithm>

namespace udax::share {

bool MayReadWrite(const PeerCredentials& who, const struct stat& device) {
  if (who.uid == 0) return true;
  mode_t need;
  if (who.uid == device.st_uid) {
    need = S_IRUSR | S_IWUSR;
  } else if (who.gid == device.st_gid ||
             std::find(who.groups.begin(), who.groups.end(), device.st_gid) != who.groups.end()) {
    need = S_IRGRP | S_IWGRP;
  } else {
    need = S_IROTH | S_IWOTH;
  }
  return (device.st_mode & need) == need;
}

std::string RefusalMessage(const PeerCredentials& who, const std::string& device_name) {
  return "uid " + std::to_string(who.uid) + " (pid " + std::to_string(who.pid) +
         ") may not read and write " + device_name +
         ", so it cannot be a direct client; use the files through the mount point instead";
}

}  // namespace udax::share
