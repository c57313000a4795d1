// fs/test_access.h — the tests' door into a mounted Filesystem: the FsImpl
// behind a public handle (journal, device, rmap queries by block), and a
// simulated power cut. For tests, src/testing/ and the fuzz harness only: it
// is not installed, and tools/ and bench/ use include/udax/ alone.
#pragma once

#include "api/backend.h"
#include "fs/fs_impl.h"
#include "udax/fs.h"

namespace udax {

// The mounted filesystem behind `fs` (a friend of Filesystem); nullptr for
// a direct client.
inline FsImpl* ImplOf(Filesystem& fs) { return LocalImplOf(fs.impl_.get()); }

// A power cut: drops the device without writing anything more (no lazy
// state, no checkpoint); every later operation fails as after Unmount.
inline void CrashForTesting(Filesystem& fs) { ImplOf(fs)->Crash(); }

}  // namespace udax
