// udax/fuse.h — the FUSE mount (src/fuse/): serves a mounted udax Filesystem to
// every program through the kernel's VFS, with libfuse3's low-level
// (inode-based) API. The operations themselves are in fuse_ops.cc.
//
// What a program sees through the mount (docs/fuse.md):
//  * every operation is durable when it returns, as in the library: writes
//    are write-through (no writeback cache), each FUSE request is one udax
//    call, and udax calls are durable at return;
//  * not DAX: the kernel has no DAX for user-space FUSE servers, so mmap of a
//    file in the mount goes through the page cache (DAX is File::Map);
//  * permissions are checked by the kernel (default_permissions) against the
//    owner and mode udax stores; new inodes belong to the calling process's
//    fsuid/fsgid;
//  * copy_file_range of whole blocks is a reflink (File::CloneRange), so
//    `cp` shares extents instead of copying;
//  * an unlinked open file stays usable until its last close: it is udax's
//    orphan, reached by inode number (a killed server leaves it on udax's
//    orphan list, and the next mount reclaims it).
//
// Lifecycle: Mount (the kernel mount exists when it returns) → Serve (until
// the mount is unmounted — `udax umount`, fusermount3 -u, umount — or
// SIGINT/SIGTERM/SIGHUP) → destruction (unmounts if still mounted). The udax
// Filesystem is the caller's: it must outlive the server and is unmounted by
// the caller after Serve returns.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "udax/export.h"
#include "udax/status.h"

struct fuse_session;

namespace udax {
class Filesystem;
}  // namespace udax

namespace udax::fusefs {

struct FuseServerOptions {
  bool read_only = false;        // mount ro (the kernel refuses writes)
  bool allow_other = false;      // other users may use the mount (root, or user_allow_other)
  bool single_threaded = false;  // one request at a time
  bool debug = false;            // libfuse's request trace on stderr
  std::string fsname;            // the mount's source in /proc/mounts (the device)
  std::vector<std::string> extra_options;  // more -o options, passed to libfuse
  // The owner the udax Filesystem gives new inodes (its MountOptions::uid/
  // gid); unset: this process's effective ids, as MountOptions defaults.
  std::optional<uint32_t> owner_uid, owner_gid;
};

class UDAX_EXPORT FuseServer {
 public:
  // Mounts `fs` on `mountpoint`. EINVAL for options libfuse refuses, and the
  // mount's own errno (ENOENT, ENOTDIR, EPERM...) when the kernel mount fails.
  static Result<std::unique_ptr<FuseServer>> Mount(Filesystem* fs, const std::string& mountpoint,
                                                   const FuseServerOptions& opts);
  ~FuseServer();
  FuseServer(const FuseServer&) = delete;
  FuseServer& operator=(const FuseServer&) = delete;

  // Detaches from the terminal (libfuse's fuse_daemonize: fork, setsid,
  // stdio to /dev/null); the parent exits once the child is ready. Call
  // before Serve and before anything starts a thread.
  Status Daemonize();
  // Sends libfuse's and the operations' log messages to syslog (facility
  // daemon, ident "udax") instead of stderr: for a detached server, whose
  // stderr is /dev/null.
  static void LogToSyslog();
  // Serves requests until the mount goes away or a termination signal
  // arrives (handlers installed for the duration; the previous ones come
  // back after). Returns an error only when the session itself failed.
  Status Serve();
  // Asks Serve to return (from any thread); the mount stays until Unmount.
  void Stop();
  // Removes the kernel mount (idempotent).
  void Unmount();
  const std::string& mountpoint() const { return mountpoint_; }

 private:
  struct Context;
  FuseServer(std::unique_ptr<Context> ctx, std::string mountpoint, bool single_threaded);
  std::unique_ptr<Context> ctx_;
  std::string mountpoint_;
  bool single_threaded_;
  ::fuse_session* se_ = nullptr;
  bool mounted_ = false;
};

// Takes the FUSE mount on `mountpoint` away: umount2 when allowed (root),
// else through fusermount3 -u. lazy: detach it even while in use
// (MNT_DETACH, -z). EBUSY when in use and not lazy; EINVAL when not mounted.
UDAX_EXPORT Status UnmountMountpoint(const std::string& mountpoint, bool lazy);

}  // namespace udax::fusefs
