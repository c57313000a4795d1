// fuse/fuse_ops.h — the table of libfuse3 low-level operations that serve a
// udax Filesystem (fuse_ops.cc), and the data they run with.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_set>

namespace udax {
class Filesystem;
}  // namespace udax

namespace udax::fusefs {

// fuse_req_userdata() of a udax FUSE session.
struct FuseContext {
  Filesystem* fs = nullptr;
  fuse_session* se = nullptr;  // for notifications to the kernel
  bool single_threaded = false;  // one request at a time (no notification may wait)
  uint64_t root_ino = 0;  // the udax inode that FUSE_ROOT_ID stands for
  // The owner the udax mount gives new inodes (MountOptions::uid/gid); a
  // caller with other ids gets its new inodes chowned to itself.
  uint32_t owner_uid = 0, owner_gid = 0;
  // The handles the kernel holds (fi->fh of open files and directories),
  // closed by CloseAllHandles when the session ends with some still open
  // (a signal, or an unmount racing the last RELEASE).
  std::atomic<bool> logged_gone{false};  // ENODEV/ESHUTDOWN logged (once)
  std::mutex handles_mu;
  std::unordered_set<void*> open_files, open_dirs;
};

const fuse_lowlevel_ops& UdaxOperations();
// Closes every handle still open; only once no request can arrive.
void CloseAllHandles(FuseContext* ctx);

}  // namespace udax::fusefs
