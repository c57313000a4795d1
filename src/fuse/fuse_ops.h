// fuse/fuse_ops.h — the table of libfuse3 high-level operations that serve a
// udax Filesystem (fuse_ops.cc), and the private data they run with.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse3/fuse.h>

#include <cstdint>

namespace udax {
class Filesystem;
}  // namespace udax

namespace udax::fusefs {

// fuse_get_context()->private_data of a udax FUSE mount.
struct FuseContext {
  Filesystem* fs = nullptr;
  // The owner the udax mount gives new inodes (MountOptions::uid/gid); a
  // caller with other ids gets its new inodes chowned to itself.
  uint32_t owner_uid = 0, owner_gid = 0;
};

const fuse_operations& UdaxOperations();

}  // namespace udax::fusefs
