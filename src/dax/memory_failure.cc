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


// Reports the device page behind `addr` as failed; false when udax does not
// own the address. A mapping's page is found by its backing (outside the
// arena's guard: the report revokes, and revocation may release mappings).
bool Report(uintptr_t addr) {
  void* p = reinterpret_cast<void*>(addr);
  if (Arena* arena = Arena::Existing(); arena && arena->Contains(p)) {
    std::function<void()> report;
    {
      Arena::ActiveGuard active;  // the mapping cannot be destroyed meanwhile
      MappingImpl* m = arena->Lookup(p);
      if (!m || !m->Covers(p)) return false;
      report = m->MemoryFailureReporter(p);
    }
    report();
    return true;
  }
  uint64_t off = 0;
  PmemDevice* dev = PmemDevice::FindByAddress(p, &off);
  if (!dev) return false;
  dev->ReportPoison(off / kPageSize * kPageSize, kPageSize).IgnoreError();
  return true;
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
      Report(addr);
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
