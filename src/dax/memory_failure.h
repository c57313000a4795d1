// dax/memory_failure.h — routing a real memory failure (a machine check the
// kernel delivers as SIGBUS with BUS_MCEERR_AR/AO) to the device's holder.
//
// The signal handler may not lock or allocate, so it only queues the address
// (a fixed lock-free ring) and wakes the routing thread through a pipe. The
// routing thread resolves the address — a udax mapping (file offset -> device
// offset through the filesystem) or a device's own mapping — and calls
// PmemDevice::ReportPoison, which takes the same path as InjectPoison.
#pragma once

namespace udax {

// Starts the routing thread (once per process; called with the handlers).
void StartMemoryFailureRouting();
// Async-signal-safe: queues `addr` for routing. A full ring drops the oldest.
void QueueMemoryFailure(const void* addr);
// Waits (test hook) until every queued address was routed, up to `timeout_ms`.
bool WaitMemoryFailureRouted(int timeout_ms);

}  // namespace udax
