// dax/fault_service.cc — see fault_service.h.
//
// Requests live on the waiting thread's (alternate) stack. They are pushed on
// a lock-free stack (g_pending); the service thread takes the whole list at
// once, serves each, and publishes its result with `done` = 1 and a futex
// wake. It reads a request's `next` before completing it: once `done` is set
// the waiter returns and the request's memory is gone.
#include "dax/fault_service.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

#include "dax/mapping_impl.h"

namespace udax {
namespace {

constexpr size_t kServiceStackSize = 8u << 20;

struct FaultRequest {
  MappingImpl* mapping;
  uint8_t* addr;
  bool write;
  int err = 0;
  std::atomic<uint32_t> done{0};
  FaultRequest* next = nullptr;
};

std::atomic<FaultRequest*> g_pending{nullptr};
std::atomic<uint32_t> g_pushes{0};  // futex word the service thread sleeps on
std::atomic<bool> g_started{false};
thread_local bool tls_is_fault_service = false;

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void FutexWake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void* ServiceLoop(void*) {
  tls_is_fault_service = true;
  for (;;) {
    uint32_t seen = g_pushes.load(std::memory_order_acquire);
    FaultRequest* r = g_pending.exchange(nullptr, std::memory_order_acq_rel);
    if (!r) {
      FutexWait(&g_pushes, seen);  // returns at once if a push came after `seen`
      continue;
    }
    while (r) {
      FaultRequest* next = r->next;
      r->err = ServeFault(r->mapping, r->addr, r->write);
      r->done.store(1, std::memory_order_release);
      FutexWake(&r->done);  // the waiter may be gone already: a wake of nobody
      r = next;
    }
  }
  return nullptr;
}

}  // namespace

int ServeFault(MappingImpl* m, uint8_t* addr, bool write) {
  Status st = m->HandleFault(addr, write);
  return st.ok() ? 0 : (st.err() ? st.err() : EIO);
}

void StartFaultService() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kServiceStackSize);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // The program's asynchronous signals go to its own threads, never to this
    // one (SIGSEGV/SIGBUS stay open: they are synchronous).
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    if (pthread_create(&t, &attr, ServiceLoop, nullptr) == 0) g_started.store(true, std::memory_order_release);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
  });
}

bool OnSmallAltStack(const void* uctx) {
  // The kernel saved the thread's sigaltstack in uc_stack at delivery
  // (ss_flags describe the interrupted stack pointer, not ours, so the
  // handler compares its own frame's address with the range).
  const stack_t& ss = static_cast<const ucontext_t*>(uctx)->uc_stack;
  if ((ss.ss_flags & SS_DISABLE) || ss.ss_size >= kFaultStackNeed) return false;
  auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  auto lo = reinterpret_cast<uintptr_t>(ss.ss_sp);
  return sp >= lo && sp < lo + ss.ss_size;
}

int HandleFaultOnServiceThread(MappingImpl* m, uint8_t* addr, bool write) {
  if (!g_started.load(std::memory_order_acquire) || tls_is_fault_service) return ServeFault(m, addr, write);
  FaultRequest r{.mapping = m, .addr = addr, .write = write};
  FaultRequest* head = g_pending.load(std::memory_order_relaxed);
  do {
    r.next = head;
  } while (!g_pending.compare_exchange_weak(head, &r, std::memory_order_release, std::memory_order_relaxed));
  g_pushes.fetch_add(1, std::memory_order_release);
  FutexWake(&g_pushes);
  while (r.done.load(std::memory_order_acquire) == 0) FutexWait(&r.done, 0);  // EINTR: loop
  return r.err;
}

}  // namespace udax
