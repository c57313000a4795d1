// client/connect.h — a direct client's backend (api/backend.h): connects to
// the mount serving `mountpoint` (share::Client), maps the device it was
// handed, and serves the public API over that connection (client_fs.cc).
#pragma once

#include <memory>
#include <string>

#include "api/backend.h"

namespace udax::client {

Result<std::shared_ptr<FsBackend>> ConnectToMount(const std::string& mountpoint);

}  // namespace udax::client
