// fs/caller.h — the kill-privileges rule on behalf of the current Caller
// (include/udax/fs.h: Caller, CallerScope). See caller.cc.
#pragma once

#include <cstdint>

#include "udax/fs.h"

namespace udax {

enum class PrivChange {
  kData,   // write, truncate, fallocate (punch, zero range, preallocation)
  kOwner,  // chown
};

// `mode` with setuid/setgid cleared as Linux clears them when the current
// caller changes a file of group `file_gid` in the way `change` says.
// Unchanged for anything but a regular file with one of the bits.
uint32_t ModeAfterKillPriv(uint32_t mode, uint32_t file_gid, PrivChange change);

}  // namespace udax
