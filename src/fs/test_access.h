// fs/test_access.h — the internal door into a Filesystem: its backend, the
// FsImpl behind a public handle (journal, device, rmap queries by block), and
// a simulated power cut. For tests, src/testing/, the fuzz harness and the
// mount's DirectServer (serve/) only: it is not installed, and tools/ and
// bench/ use include/udax/ alone.
#pragma once

#include "api/backend.h"
#include "fs/fs_impl.h"
#include "udax/fs.h"

namespace udax {

// What `fs` stands on (a friend of Filesystem): api/backend.h.
inline FsBackend* BackendOf(Filesystem& fs) { return fs.impl_.get(); }
// The mounted filesystem behind `fs`; nullptr for a direct client.
inline FsImpl* ImplOf(Filesystem& fs) { return LocalImplOf(BackendOf(fs)); }

// A power cut: drops the device without writing anything more (no lazy
// state, no checkpoint); every later operation fails as after Unmount.
inline void CrashForTesting(Filesystem& fs) { ImplOf(fs)->Crash(); }

}  // namespace udax
