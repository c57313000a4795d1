// util/tsan.h — ThreadSanitizer annotations for address-space changes.
//
// TSan records an mmap as a write by the mapping thread to the whole range;
// DAX remaps device memory under other threads' feet (a fault installs an
// extent, an invalidation revokes one), with the ordering provided by the
// kernel, not by a lock TSan can see. Inside a ScopedTsanIgnore the remap
// resets TSan's shadow of the range instead, so only the program's own
// accesses are checked for races. No-op in other builds.
#pragma once

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace udax {
struct ScopedTsanIgnore {
#if defined(__SANITIZE_THREAD__)
  ScopedTsanIgnore() { __tsan_ignore_thread_begin(); }
  ~ScopedTsanIgnore() { __tsan_ignore_thread_end(); }
#else
  ScopedTsanIgnore() {}  // user-provided: a scope guard, not an "unused variable"
#endif
};
}  // namespace udax
