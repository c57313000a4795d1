// dax/mapping_impl.h — one DAX mapping of a file range (the kernel's VMA).
//
// Owns a 2 MiB-aligned run of the arena. Faults install MAP_FIXED mappings of
// the device (or of zero pages over holes, read-only) for whole extents;
// InvalidateFileRange returns a range to PROT_NONE. Keeps the file's in-core
// inode (and so the filesystem object) alive while mapped.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "fs/fs_impl.h"
#include "udax/mapping.h"

namespace udax {

class MappingImpl : public MappedRange {
 public:
  static Result<std::unique_ptr<MappingImpl>> Create(std::shared_ptr<FsImpl> fs,
                                                     std::shared_ptr<Inode> inode, uint64_t off,
                                                     size_t len, Prot prot);
  ~MappingImpl() override;

  // Called by the fault handler for an address inside this mapping. Ok: the
  // access can be restarted. An error: the access must fail (SIGBUS).
  Status HandleFault(uint8_t* addr, bool write);
  bool writable() const { return static_cast<uint32_t>(prot_) & static_cast<uint32_t>(Prot::kWrite); }
  bool Covers(const void* p) const { return p >= base_ && p < base_ + size_; }

  void InvalidateFileRange(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                           bool notify) override;
  Status Unmap();
  Status Persist(const void* p, size_t len) const;
  void SetCallback(InvalidateCallback cb) {
    std::lock_guard<std::mutex> g(cb_mu_);
    cb_ = std::move(cb);
  }

  // What a memory failure at `addr` (inside this mapping) concerns.
  struct Target {
    std::shared_ptr<FsImpl> fs;
    std::shared_ptr<Inode> inode;
    uint64_t file_off = 0;
  };
  Target TargetOf(const void* addr) const {
    return {fs_, inode_, file_off_ + static_cast<uint64_t>(static_cast<const uint8_t*>(addr) - base_)};
  }
  uint8_t* base() const { return base_; }
  size_t size() const { return size_; }
  uint64_t file_offset() const { return file_off_; }
  bool mapped() const { return base_ != nullptr; }

 private:
  MappingImpl() = default;
  std::shared_ptr<FsImpl> fs_;
  std::shared_ptr<Inode> inode_;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;      // page-rounded length the program may touch
  size_t reserved_ = 0;  // arena bytes (2 MiB granules)
  uint64_t file_off_ = 0;
  Prot prot_ = Prot::kRead;
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
