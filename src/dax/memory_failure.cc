// dax/memory_failure.cc — see memory_failure.h.
#include "dax/memory_failure.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

#include "dax/arena.h"
#include "dax/mapping_impl.h"
#include "device/pmem_device.h"

namespace udax {
namespace {

constexpr uint32_t kRing = 64;
std::atomic<uintptr_t> g_ring[kRing];
std::atomic<uint32_t> g_next{0};                   // ring index of the next address
std::atomic<uint32_t> g_queued{0}, g_routed{0};    // counted once in the ring / once routed
int g_pipe[2] = {-1, -1};


// The device page behind `addr`, or false when udax does not own the address.
bool ResolveDevice(uintptr_t addr, PmemDevice** dev, uint64_t* dev_off) {
  if (Arena* arena = Arena::Existing(); arena && arena->Contains(reinterpret_cast<void*>(addr))) {
    MappingImpl::Target target;
    {
      Arena::ActiveGuard active;  // the mapping cannot be destroyed meanwhile
      MappingImpl* m = arena->Lookup(reinterpret_cast<void*>(addr));
      if (!m || !m->Covers(reinterpret_cast<void*>(addr))) return false;
      target = m->TargetOf(reinterpret_cast<void*>(addr));
    }
    auto ranges = target.fs->dax().DeviceRanges(target.inode.get(), target.file_off / kPageSize * kPageSize, kPageSize);
    if (!ranges.has_value() || ranges->empty()) return false;
    *dev = target.fs->device();
    *dev_off = ranges->front().first;
    return *dev != nullptr;
  }
  *dev = PmemDevice::FindByAddress(reinterpret_cast<void*>(addr), dev_off);
  *dev_off = *dev_off / kPageSize * kPageSize;
  return *dev != nullptr;
}

void RouteLoop() {
  for (;;) {
    char c;
    if (read(g_pipe[0], &c, 1) != 1) continue;
    // Every address counted in `queued` is already in the ring (it is counted
    // after it is stored), so this scan routes at least those.
    uint32_t queued = g_queued.load(std::memory_order_acquire);
    for (auto& slot : g_ring) {
      uintptr_t addr = slot.exchange(0, std::memory_order_acq_rel);
      if (!addr) continue;
      PmemDevice* dev = nullptr;
      uint64_t off = 0;
      if (ResolveDevice(addr, &dev, &off)) dev->ReportPoison(off, kPageSize).IgnoreError();
    }
    g_routed.store(queued, std::memory_order_release);
  }
}

}  // namespace

void StartMemoryFailureRouting() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (pipe2(g_pipe, O_CLOEXEC) != 0) return;
    std::thread(RouteLoop).detach();
  });
}

void QueueMemoryFailure(const void* addr) {
  if (g_pipe[1] < 0) return;
  uint32_t i = g_next.fetch_add(1, std::memory_order_acq_rel);
  g_ring[i % kRing].store(reinterpret_cast<uintptr_t>(addr), std::memory_order_release);
  g_queued.fetch_add(1, std::memory_order_acq_rel);
  char c = 1;
  (void)!write(g_pipe[1], &c, 1);
}

bool WaitMemoryFailureRouted(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (g_routed.load(std::memory_order_acquire) != g_queued.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace udax
