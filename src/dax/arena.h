// dax/arena.h — the address-space arena every DAX mapping of the process
// lives in, and the lock-free lookup the fault handler uses.
//
// One large PROT_NONE reservation (MAP_NORESERVE) made on first use; mappings
// get 2 MiB-aligned runs of it. A table with one atomic slot per 2 MiB granule
// names the mapping that owns the granule, so the signal handler finds a
// faulting address's mapping with one load — no lock, no allocation.
//
// Lifetime: Release() clears the slots, then waits until no fault handler is
// running (handlers count themselves in ActiveGuard), so a handler never uses
// a mapping after it was destroyed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

#include "udax/status.h"

namespace udax {

class MappingImpl;

class Arena {
 public:
  static constexpr uint64_t kGranule = 2ull << 20;
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer leaves programs ~1.5 TiB regions of address space, which
  // libraries and stacks share: a 1 TiB reservation failed in ~1 of 4 runs.
  static constexpr uint64_t kSize = 1ull << 37;  // 128 GiB under TSan
#else
  static constexpr uint64_t kSize = 1ull << 40;  // 1 TiB of address space
#endif

  // The process's arena (created on first call); null if it could not be reserved.
  static Arena* Get();
  // The arena if it exists (async-signal-safe).
  static Arena* Existing() { return instance_.load(std::memory_order_acquire); }

  bool Contains(const void* p) const {
    auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(base_);
    return a >= b && a < b + kSize;
  }
  MappingImpl* Lookup(const void* p) const {
    uint64_t i = (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(base_)) / kGranule;
    return slots_[i].load(std::memory_order_acquire);
  }
  // A 2 MiB-aligned run of at least `len` bytes for `owner`.
  Result<uint8_t*> Reserve(size_t len, MappingImpl* owner);
  // Returns the run to PROT_NONE and to the pool, once no handler uses it.
  void Release(uint8_t* addr, size_t len);
  // Every mapping's memory back to PROT_NONE (fork child).
  void RevokeAll();
  static size_t RoundUp(size_t len) { return (len + kGranule - 1) / kGranule * kGranule; }

  // Counts running fault handlers (see Release).
  struct ActiveGuard {
    ActiveGuard() { active_.fetch_add(1, std::memory_order_acq_rel); }
    ~ActiveGuard() { active_.fetch_sub(1, std::memory_order_acq_rel); }
  };

 private:
  Arena() = default;
  static std::atomic<Arena*> instance_;
  static std::atomic<int> active_;
  uint8_t* base_ = nullptr;
  std::atomic<MappingImpl*>* slots_ = nullptr;
  std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;  // granule index -> run length (granules)
};

}  // namespace udax
