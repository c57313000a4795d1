// dax/mapping_impl.h — one DAX mapping of a file range (the kernel's VMA):
// the part every kind of mapping shares.
//
// Owns a 2 MiB-aligned run of the arena. Faults install MAP_FIXED mappings of
// the device (or of zero pages over holes, read-only) for whole extents;
// InvalidateFileRange returns a range to PROT_NONE and tells the program.
// What backs the faults is the subclass's: LocalMapping (local_mapping.h, a
// filesystem mounted in this process) or a direct client's mapping
// (client/client_mapping.h, whose faults ask the mount). The fault handlers
// (fault.cc) and the arena know only this class.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "fs/address_space.h"
#include "udax/mapping.h"

namespace udax {

class MappingImpl : public MappedRange {
 public:
  ~MappingImpl() override = default;

  // Called by the fault handler for an address inside this mapping. Ok: the
  // access can be restarted. An error: the access must fail (SIGBUS).
  virtual Status HandleFault(uint8_t* addr, bool write) = 0;
  // Makes stores in [p, p+len) durable.
  virtual Status Persist(const void* p, size_t len) const = 0;
  // A machine check hit `addr` (inside this mapping): what reports the
  // device page behind it as failed. Called on the routing thread with the
  // arena's ActiveGuard held (the mapping cannot go away meanwhile); the
  // returned function holds what it needs and runs after the guard is gone.
  virtual std::function<void()> MemoryFailureReporter(const void* addr) = 0;
  // Releases the address range and the backing's references.
  Status Unmap();

  bool writable() const { return static_cast<uint32_t>(prot_) & static_cast<uint32_t>(Prot::kWrite); }
  bool Covers(const void* p) const { return p >= base_ && p < base_ + size_; }

  void InvalidateFileRange(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                           bool notify) override;
  void SetCallback(InvalidateCallback cb) {
    std::lock_guard<std::mutex> g(cb_mu_);
    cb_ = std::move(cb);
  }

  uint8_t* base() const { return base_; }
  size_t size() const { return size_; }
  uint64_t file_offset() const { return file_off_; }
  bool mapped() const { return base_ != nullptr; }

 protected:
  MappingImpl() = default;
  // Checks the arguments, installs the fault handlers and reserves the
  // address range (PROT_NONE) for this mapping.
  Status Reserve(uint64_t off, size_t len, Prot prot);
  // Unmap, in this order: the subclass takes the mapping off the list that
  // revocations walk; the range goes back to the arena (PROT_NONE); the
  // subclass lets go of what backs the mapping (the inode reference).
  virtual void StopRevocations() = 0;
  virtual void ReleaseBacking() = 0;
  // Returns [va, va+len) to PROT_NONE.
  static void ProtNone(uint8_t* va, size_t len);
  // Maps zero pages (read-only) at [va, va+len): a hole.
  static Status MapZeroPages(uint8_t* va, size_t len);
  // Checks that [p, p+len) lies inside the mapping.
  Status CheckRange(const void* p, size_t len) const;

  uint8_t* base_ = nullptr;
  size_t size_ = 0;      // page-rounded length the program may touch
  uint64_t file_off_ = 0;
  Prot prot_ = Prot::kRead;

 private:
  std::mutex cb_mu_;
  InvalidateCallback cb_;
};

// Installs the SIGSEGV/SIGBUS handlers (once per process) and the fork hook.
void InstallFaultHandlers();
// Makes the page holding `addr` raise a real SIGBUS (BUS_ADRERR) on access.
void InstallSigbusPage(void* addr);
// Whether the calling thread runs inside Guarded (a fault then jumps to it,
// running no destructor on the way).
bool InsideGuarded();

}  // namespace udax
