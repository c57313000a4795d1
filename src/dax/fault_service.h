// dax/fault_service.h — serving a DAX fault on a thread with a large stack
// when the faulting thread's signal handler runs on a small alternate stack.
//
// A fault that takes udax locks runs B+tree walks, record verifiers and, for a
// store into a hole or onto a shared block, a whole transaction: tens of KiB of
// stack (see kFaultStackNeed). The handlers are SA_ONSTACK (a program's own
// stack-overflow handler, chained from ours, needs its alternate stack), so in
// a thread with a sigaltstack of SIGSTKSZ or a few pages — Rust's std, ASan and
// many runtimes give one to every thread — that work would overflow it. Such a
// fault is handed to the fault service thread (8 MiB stack, started once with
// the handlers), and the faulting thread waits for the result on a futex.
//
// Invariants: only a fault whose thread holds no udax lock is handed off (the
// service thread takes the locks itself; one holding meta_mu_ is served in the
// handler, without locking or allocating). The faulting thread keeps its
// Arena::ActiveGuard while it waits, so the mapping outlives the request.
// Everything the faulting thread does here is async-signal-safe: a lock-free
// push, futex wake and wait — no lock, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace udax {

class MappingImpl;

// Smallest stack a fault taking locks is served on in the handler; a smaller
// alternate stack hands it off. Measured need: see docs/dax.md.
constexpr size_t kFaultStackNeed = 1u << 20;

// Starts the service thread (once per process; called with the handlers).
void StartFaultService();
// True when the handler (the caller) runs on an alternate signal stack
// smaller than kFaultStackNeed. `uctx` is the handler's ucontext: the kernel
// saved the thread's sigaltstack settings in it, so this needs no syscall.
bool OnSmallAltStack(const void* uctx);
// Serves m->HandleFault(addr, write) in the calling thread; returns its errno
// (0: installed, the access can restart).
int ServeFault(MappingImpl* m, uint8_t* addr, bool write);
// Async-signal-safe: serves m->HandleFault(addr, write) on the service thread
// and returns its errno, as ServeFault. Serves inline when the service thread
// could not start, or when the caller is the service thread.
int HandleFaultOnServiceThread(MappingImpl* m, uint8_t* addr, bool write);

}  // namespace udax
