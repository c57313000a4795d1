// share/futex.h — futex wait/wake on words in memory shared between processes,
// and the bounded spin the channel uses before it sleeps.
//
// The words live in a MAP_SHARED memfd mapping, so these are the shared
// (non-PRIVATE) futex operations: the kernel keys them on the memfd's inode and
// offset, so a wake reaches a waiter in another process, or in this process
// through another mapping of the same memfd.
// Thread safety: all functions may be called from any thread.
#pragma once

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace udax::share {

// Sleeps while *word == expected, at most `timeout` (negative: no bound).
// Returns early on a wake, a signal, or when *word already differs.
inline void FutexWait(uint32_t* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
    tsp = &ts;
  }
  syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, nullptr, 0);
}

// Wakes every thread sleeping on `word`, in any process.
inline void FutexWakeAll(uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// The CPU the calling thread runs on now (vDSO: no system call).
inline uint32_t CurrentCpu() {
  int c = sched_getcpu();
  return c < 0 ? UINT32_MAX : static_cast<uint32_t>(c);
}
// Publishes where this side runs, for the other side's SpinUntil.
inline void PublishCpu(uint32_t& word) {
  std::atomic_ref<uint32_t>(word).store(CurrentCpu(), std::memory_order_relaxed);
}
// Spins until done() or `budget` has passed; true when done(); false tells
// the caller to sleep on its futex. Polls with a pause; past the first
// microsecond it yields the CPU between polls only while the other side last
// ran on this very CPU (`peer_cpu`, published with PublishCpu): then a pure
// spin would hold it off for the whole budget (a futex wake tends to put the
// wakee beside its waker). Otherwise it does not yield: on a machine with
// more runnable threads than CPUs each yield can hand the CPU away for a
// whole time slice, while the peer on another CPU answers within a
// microsecond.
template <typename Done>
bool SpinUntil(std::chrono::nanoseconds budget, Done done, const uint32_t& peer_cpu) {
  if (done()) return true;
  if (budget.count() <= 0) return false;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + budget;
  const auto yield_from = start + std::chrono::microseconds(1);
  std::atomic_ref<uint32_t> peer(const_cast<uint32_t&>(peer_cpu));  // only loaded
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      CpuRelax();
      if (done()) return true;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return false;
    if (now >= yield_from && peer.load(std::memory_order_relaxed) == CurrentCpu()) {
      sched_yield();
      if (done()) return true;
    }
  }
}
// An atomic view of a word of the shared channel (plain integers in the
// layout, so the layout is a plain struct whose size can be checked).
inline std::atomic_ref<uint32_t> Word(uint32_t& w) { return std::atomic_ref<uint32_t>(w); }
inline std::atomic_ref<uint64_t> Word64(uint64_t& w) { return std::atomic_ref<uint64_t>(w); }

}  // namespace udax::share
