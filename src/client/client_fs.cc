// client/client_fs.cc — SCAFFOLD (wip/core only): replaced by the direct
// client before this branch is merged.
#include "client/connect.h"

namespace udax::client {
Result<std::shared_ptr<FsBackend>> ConnectToMount(const std::string& mountpoint) {
  return Errno(ENOSYS, "direct clients not built yet: " + mountpoint);
}
}  // namespace udax::client
