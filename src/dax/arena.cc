// dax/arena.cc — see arena.h.
#include "dax/arena.h"
#include "util/tsan.h"

#include <sched.h>
#include <sys/mman.h>

#include <cstring>

namespace udax {

std::atomic<Arena*> Arena::instance_{nullptr};
std::atomic<int> Arena::active_{0};

namespace {
void* ReserveNone(void* at, size_t len) {
  ScopedTsanIgnore remap;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (at ? MAP_FIXED : 0);
  return mmap(at, len, PROT_NONE, flags, -1, 0);
}
}  // namespace

Arena* Arena::Get() {
  static std::mutex mu;
  if (Arena* a = Existing()) return a;
  std::lock_guard<std::mutex> g(mu);
  if (Arena* a = Existing()) return a;
  // Over-reserve by one granule to align the base.
  void* p = ReserveNone(nullptr, kSize + kGranule);
  if (p == MAP_FAILED) return nullptr;
  auto raw = reinterpret_cast<uintptr_t>(p);
  uintptr_t aligned = (raw + kGranule - 1) / kGranule * kGranule;
  if (aligned > raw) munmap(p, aligned - raw);
  uintptr_t end = raw + kSize + kGranule;
  if (end > aligned + kSize) munmap(reinterpret_cast<void*>(aligned + kSize), end - aligned - kSize);
  auto* a = new Arena();
  a->base_ = reinterpret_cast<uint8_t*>(aligned);
  a->slots_ = new std::atomic<MappingImpl*>[kSize / kGranule]();
  a->free_[0] = kSize / kGranule;
  instance_.store(a, std::memory_order_release);
  return a;
}

Result<uint8_t*> Arena::Reserve(size_t len, MappingImpl* owner) {
  uint64_t need = RoundUp(len) / kGranule;
  std::lock_guard<std::mutex> g(mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    uint64_t start = it->first, run = it->second;
    free_.erase(it);
    if (run > need) free_[start + need] = run - need;
    for (uint64_t i = start; i < start + need; i++) slots_[i].store(owner, std::memory_order_release);
    return base_ + start * kGranule;
  }
  return Errno(ENOMEM, "DAX address space exhausted");
}

void Arena::Release(uint8_t* addr, size_t len) {
  uint64_t start = static_cast<uint64_t>(addr - base_) / kGranule, n = RoundUp(len) / kGranule;
  for (uint64_t i = start; i < start + n; i++) slots_[i].store(nullptr, std::memory_order_release);
  while (active_.load(std::memory_order_acquire) != 0) sched_yield();
  ReserveNone(addr, n * kGranule);
  std::lock_guard<std::mutex> g(mu_);
  // Merge with neighbouring free runs.
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + n) {
    n += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      prev->second += n;
      return;
    }
  }
  free_[start] = n;
}

void Arena::RevokeAll() { ReserveNone(base_, kSize); }

}  // namespace udax
