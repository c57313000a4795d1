// util/owned_mutex.h — OwnedSharedMutex: a std::shared_mutex that, in builds
// with assertions (util/assert.h), knows who holds it, so that code can state
// and check "REQUIRES: mu held" (leveldb's REQUIRES comments, as checks).
//
// It is a drop-in replacement (lock / unlock / lock_shared / unlock_shared /
// try_*, so std::unique_lock and std::shared_lock work on it). With
// UDAX_ASSERTS it records the exclusive holder's thread and, per thread, how
// many shared holds the thread has, and asserts:
//   * AssertHeld(): the calling thread holds it exclusively;
//   * AssertReaderHeld(): the calling thread holds it, shared or exclusive;
//   * AssertNotHeld(): the calling thread holds it in neither mode;
//   * lock() / lock_shared() by a thread that already holds it (a
//     self-deadlock on std::shared_mutex) and unlock() / unlock_shared() by
//     a thread that does not hold it.
// Without UDAX_ASSERTS it is a std::shared_mutex and every check is a no-op.
//
// Thread safety: as std::shared_mutex. The bookkeeping is per thread
// (thread_local) or atomic, so it adds no race of its own.
#pragma once

#include <atomic>
#include <shared_mutex>
#include <thread>

#include "util/assert.h"

namespace udax {

class OwnedSharedMutex {
 public:
  OwnedSharedMutex() = default;
  OwnedSharedMutex(const OwnedSharedMutex&) = delete;
  OwnedSharedMutex& operator=(const OwnedSharedMutex&) = delete;

  void lock() {
    UDAX_DEBUG_ONLY(BeforeLock("lock"));
    mu_.lock();
    UDAX_DEBUG_ONLY(writer_.store(std::this_thread::get_id(), std::memory_order_relaxed));
  }
  bool try_lock() {
    if (!mu_.try_lock()) return false;
    UDAX_DEBUG_ONLY(writer_.store(std::this_thread::get_id(), std::memory_order_relaxed));
    return true;
  }
  void unlock() {
    UDAX_ASSERT_MSG(HeldByMe(), "unlock() of a mutex the thread does not hold exclusively");
    UDAX_DEBUG_ONLY(writer_.store(std::thread::id(), std::memory_order_relaxed));
    mu_.unlock();
  }
  void lock_shared() {
    UDAX_DEBUG_ONLY(BeforeLock("lock_shared"));
    mu_.lock_shared();
    UDAX_DEBUG_ONLY(AddShared(+1));
  }
  bool try_lock_shared() {
    if (!mu_.try_lock_shared()) return false;
    UDAX_DEBUG_ONLY(AddShared(+1));
    return true;
  }
  void unlock_shared() {
    UDAX_ASSERT_MSG(SharedByMe() > 0, "unlock_shared() of a mutex the thread does not hold shared");
    UDAX_DEBUG_ONLY(AddShared(-1));
    mu_.unlock_shared();
  }

  void AssertHeld() const {
    UDAX_ASSERT_MSG(HeldByMe(), "REQUIRES: the calling thread holds the lock exclusively");
  }
  void AssertReaderHeld() const {
    UDAX_ASSERT_MSG(HeldByMe() || SharedByMe() > 0, "REQUIRES: the calling thread holds the lock");
  }
  void AssertNotHeld() const {
    UDAX_ASSERT_MSG(!HeldByMe() && SharedByMe() == 0, "REQUIRES: the calling thread does not hold the lock");
  }

 private:
#if UDAX_ASSERTS_ON
  bool HeldByMe() const { return writer_.load(std::memory_order_relaxed) == std::this_thread::get_id(); }
  int SharedByMe() const;   // this thread's shared holds of this mutex
  void AddShared(int delta);
  void BeforeLock(const char* op) const {
    UDAX_ASSERT_MSG(!HeldByMe() && SharedByMe() == 0,
                    std::string(op) + "() by a thread that already holds the mutex (self-deadlock)");
  }
  // The exclusive holder; only the holder itself ever finds its own id here.
  std::atomic<std::thread::id> writer_{};
#endif
  std::shared_mutex mu_;
};

}  // namespace udax
