// fs/meta_lock.h — meta_mu_, the filesystem's metadata lock (a shared_mutex
// that counts its exclusive sections), and the guards that take it.
//
// Lock order (outermost first): meta_mu_ → Inode::mu → the in-core inode
// table's mutex (InodeTable, innermost). meta_mu_ is held exclusive by every
// writing transaction, shared by lookups, reads and overwrites of
// already-allocated blocks. Its write epoch counts exclusive sections: every
// extent-map change happens in one, so the epoch read under the shared lock
// names a state of every extent map that lasts while the epoch does (the
// in-core inodes' LastExtent caches are stamped with it).
//
// In builds with assertions the mutex knows its holders, and the code that
// requires it held says so (AssertHeld: BeginTxn, CommitTxn, Shutdown, and the journal's
// Commit, Checkpoint and TrimCache once mounted; AssertReaderHeld:
// the epoch, revocation of mappings).
//
// tls_meta_lock_depth counts the guards this thread holds: a DAX fault taken
// while its thread already holds meta_mu_ (udax copying a user buffer that is
// itself a udax mapping) must not take it again.
#pragma once

#include <cstdint>
#include <mutex>
#include <shared_mutex>

#include "util/owned_mutex.h"

namespace udax {

// Depth of meta_mu_ held by this thread (MetaWriteLock / MetaReadLock).
inline thread_local int tls_meta_lock_depth = 0;

class MetaMutex {
 public:
  void lock() {
    mu_.lock();
    epoch_++;
  }
  void unlock() { mu_.unlock(); }
  void lock_shared() { mu_.lock_shared(); }
  void unlock_shared() { mu_.unlock_shared(); }
  // Read with the lock held (either way); written only under exclusive.
  uint64_t epoch() const {
    mu_.AssertReaderHeld();
    return epoch_;
  }
  // REQUIRES checks (debug builds, util/owned_mutex.h): the calling thread
  // holds meta_mu_ exclusive / in either mode.
  void AssertHeld() const { mu_.AssertHeld(); }
  void AssertReaderHeld() const { mu_.AssertReaderHeld(); }
  // For the journal's own check of its writers (Journal::SetWriterLock).
  const OwnedSharedMutex& owned() const { return mu_; }

 private:
  OwnedSharedMutex mu_;
  uint64_t epoch_ = 1;  // 0 never names a state (an empty LastExtent)
};

// meta_mu_ held exclusive (writers) / shared (readers), counted per thread.
class MetaWriteLock {
 public:
  explicit MetaWriteLock(MetaMutex& mu) : lk_(mu) { tls_meta_lock_depth++; }
  ~MetaWriteLock() { if (lk_.owns_lock()) tls_meta_lock_depth--; }
  void unlock() { lk_.unlock(); tls_meta_lock_depth--; }
 private:
  std::unique_lock<MetaMutex> lk_;
};
class MetaReadLock {
 public:
  explicit MetaReadLock(MetaMutex& mu) : lk_(mu) { tls_meta_lock_depth++; }
  ~MetaReadLock() { tls_meta_lock_depth--; }
 private:
  std::shared_lock<MetaMutex> lk_;
};

}  // namespace udax
