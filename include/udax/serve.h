// udax/serve.h — the mount's service to direct clients (docs/shared.md):
// the process that mounted a udax Filesystem lets other processes use it
// directly (Filesystem::Connect) — they map the device themselves, read and
// write file data in device memory, and send metadata calls here, where they
// run as this process's own transactions.
//
// Leases: the server records which file ranges each client may reach in
// device memory (extents it was handed, ranges its mappings installed).
// Before anything changes what such a range means — a truncate, punch, zero
// range, copy-on-write, a clone onto it, a hole filled, memory failure,
// removal, unmount — the range is revoked in every client holding it, and
// the change waits until each has acknowledged or, past `revoke_timeout`,
// was killed (SIGKILL) and is dead. So a block is never reused, and device
// memory never taken away, while any process may still reach it.
//
// Lifecycle: Start after the kernel mount exists (the socket is named after
// the mount point's device number: share/rendezvous.h; Start stat()s the
// mount point, so a process serving FUSE itself calls it from another thread
// than its FUSE loop, or that stat waits for a loop not yet running) → Stop (every client
// revoked, told, and disconnected; the socket removed) → then unmount the
// Filesystem. The Filesystem must outlive the server.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "udax/export.h"
#include "udax/fs.h"
#include "udax/status.h"

namespace udax {

struct DirectServerOptions {
  // How long a client has to acknowledge a revocation before it is killed
  // (`udax mount -o revoke_ms=N`).
  std::chrono::milliseconds revoke_timeout{1000};
  // The device file the Filesystem was mounted from (clients get it opened
  // read-write; admission checks them against its owner, group and mode).
  std::string device;
};

class UDAX_EXPORT DirectServer {
 public:
  // Serves `fs` (mounted in this process) to direct clients of the mount at
  // `mountpoint`. EINVAL when fs is not mounted here (a client's
  // Filesystem); the socket's errors otherwise (EADDRINUSE: another server
  // serves this mount).
  static Result<std::unique_ptr<DirectServer>> Start(Filesystem& fs, const std::string& mountpoint,
                                                     const DirectServerOptions& opts);
  ~DirectServer();  // Stop()
  DirectServer(const DirectServer&) = delete;
  DirectServer& operator=(const DirectServer&) = delete;

  // Revokes everything every client holds (reason Removed), disconnects
  // them (their later calls fail with ENOTCONN), removes the socket.
  // Idempotent.
  void Stop();
  SharingStatus GetStatus() const;
  const std::string& socket_path() const;

  struct Impl;

 private:
  explicit DirectServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace udax
