// dax/fault.cc — the SIGSEGV/SIGBUS handlers that serve DAX faults in user
// space, chaining to the handlers installed before ours, and Guarded().
//
// What may run here: the handler runs in the faulting thread, which was
// interrupted at a load or store to a udax mapping (program code, or udax
// copying a user buffer). It takes udax locks only when the thread holds none
// (tls_meta_lock_depth, see fs/meta_lock.h); otherwise DaxFaults::ResolveFault
// (fs/dax_fault.h) serves it
// without locking and without allocating. It allocates memory (a transaction)
// for a write fault into a hole: a thread interrupted at a plain load/store
// holds no malloc lock.
//
// Where it runs: the handlers are SA_ONSTACK, so a program's own handler
// (chained from ours) gets its alternate stack. A fault that takes locks needs
// far more stack than a small alternate stack has; on one (OnSmallAltStack)
// it is served by the fault service thread (fault_service.h) and the handler
// only waits and acts on the result. Without an alternate stack, or on a big
// one, nothing changes: served inline, no extra syscall.
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "dax/arena.h"
#include "dax/fault_service.h"
#include "dax/mapping_impl.h"
#include "dax/memory_failure.h"
#include "fs/meta_lock.h"
#include "util/tsan.h"

namespace udax {
namespace {

struct sigaction g_old_segv, g_old_bus;
int g_sigbus_fd = -1;                   // an empty memfd: every access past its EOF is SIGBUS
std::atomic<bool> g_forked_child{false};  // udax mappings are revoked in a forked child

struct GuardFrame {
  sigjmp_buf jb;
  int err = 0;
  GuardFrame* prev = nullptr;
};
thread_local GuardFrame* tls_guard = nullptr;

void Chain(const struct sigaction& old, int sig, siginfo_t* si, void* uctx) {
  if (old.sa_flags & SA_SIGINFO) {
    old.sa_sigaction(sig, si, uctx);
  } else if (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN) {
    // Die as the kernel would: default action, then the access repeats.
    signal(sig, SIG_DFL);
  } else {
    old.sa_handler(sig);
  }
}

[[noreturn]] void JumpToGuard(int err) {
  GuardFrame* f = tls_guard;
  f->err = err;
  siglongjmp(f->jb, 1);
}

void SegvHandler(int sig, siginfo_t* si, void* uctx) {
  int saved_errno = errno;
  Arena* arena = Arena::Existing();
  void* addr = si->si_addr;
  if (!arena || !arena->Contains(addr)) return Chain(g_old_segv, sig, si, uctx);
  bool write = (static_cast<ucontext_t*>(uctx)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
  // Only the errno leaves this block: siglongjmp to a guard runs no
  // destructor, so the Status (and its message) must be gone before it.
  int err = 0;
  {
    Arena::ActiveGuard active;
    MappingImpl* m = arena->Lookup(addr);
    if (!m || !m->Covers(addr)) {
      return Chain(g_old_segv, sig, si, uctx);  // not mapped: a real segfault
    } else if (write && !m->writable()) {
      return Chain(g_old_segv, sig, si, uctx);  // store through a read-only mapping
    } else if (g_forked_child.load(std::memory_order_relaxed)) {
      err = ENODEV;  // udax mappings are not inherited by a forked child
    } else if (tls_meta_lock_depth == 0 && OnSmallAltStack(uctx)) {
      err = HandleFaultOnServiceThread(m, static_cast<uint8_t*>(addr), write);
    } else {
      err = ServeFault(m, static_cast<uint8_t*>(addr), write);
    }
  }
  if (err) {
    if (tls_guard) JumpToGuard(err);
    InstallSigbusPage(addr);  // the restarted access gets the kernel's SIGBUS
  }
  errno = saved_errno;
}

void BusHandler(int sig, siginfo_t* si, void* uctx) {
  Arena* arena = Arena::Existing();
  if (si->si_code == BUS_MCEERR_AR || si->si_code == BUS_MCEERR_AO) {
    // A machine check: the memory at si_addr failed. Route it (the holder
    // revokes every mapping of it); the interrupted access itself fails.
    int saved_errno = errno;
    QueueMemoryFailure(si->si_addr);
    errno = saved_errno;
    if (si->si_code == BUS_MCEERR_AO) return;  // action optional: nobody was touching it
    if (tls_guard) JumpToGuard(EIO);
    return Chain(g_old_bus, sig, si, uctx);  // as the kernel: the program's handler, or death
  }
  if (arena && arena->Contains(si->si_addr) && tls_guard) JumpToGuard(EFAULT);
  Chain(g_old_bus, sig, si, uctx);
}

void ForkChild() {
  g_forked_child.store(true);
  if (Arena* a = Arena::Existing()) a->RevokeAll();
}

}  // namespace

void InstallSigbusPage(void* addr) {
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(addr) & ~uintptr_t{4095});
  ScopedTsanIgnore remap;
  mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, g_sigbus_fd, 0);
}

void InstallFaultHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_sigbus_fd = static_cast<int>(syscall(SYS_memfd_create, "udax-sigbus", 1u /*MFD_CLOEXEC*/));
    struct sigaction sa = {};
    sa.sa_sigaction = SegvHandler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sa.sa_sigaction = BusHandler;
    sigaction(SIGBUS, &sa, &g_old_bus);
    pthread_atfork(nullptr, nullptr, ForkChild);
    StartMemoryFailureRouting();
    StartFaultService();
  });
}

bool InsideGuarded() { return tls_guard != nullptr; }

Status Guarded(const std::function<void()>& fn) {
  GuardFrame frame;
  frame.prev = tls_guard;
  if (sigsetjmp(frame.jb, 1) == 0) {
    tls_guard = &frame;
    fn();
    tls_guard = frame.prev;
    return Status::Ok();
  }
  tls_guard = frame.prev;
  switch (frame.err) {
    case ENOSPC: return Errno(ENOSPC, "no space left on device for a write fault (SIGBUS)");
    case ENODEV: return Errno(ENODEV, "mapping revoked: device removed (SIGBUS)");
    case ESHUTDOWN: return Errno(ESHUTDOWN, "filesystem shut down (SIGBUS)");
    case EFAULT: return Errno(EFAULT, "access beyond end of file (SIGBUS)");
    case EIO: return Errno(EIO, "memory failure: the page is poisoned (SIGBUS)");
    default: return Errno(frame.err ? frame.err : EIO, "bad access to a udax mapping (SIGBUS)");
  }
}

const char* InvalidateReasonName(InvalidateReason r) {
  switch (r) {
    case InvalidateReason::kTruncate: return "Truncate";
    case InvalidateReason::kCopyOnWrite: return "CopyOnWrite";
    case InvalidateReason::kMemoryFailure: return "MemoryFailure";
    case InvalidateReason::kRemoved: return "Removed";
  }
  return "Unknown";
}

}  // namespace udax
