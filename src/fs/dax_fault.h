// fs/dax_fault.h — DaxFaults: the filesystem half of a DAX fault (the
// kernel's iomap_begin for dax_iomap_fault): find — or allocate, zero and
// commit — the blocks behind a faulting file offset, and hand the dax/ layer
// the range to install, all under meta_mu_ so the blocks cannot be freed
// before they are mapped.
//
// The write fault into a hole reads top-down: dax/fault.cc →
// MappingImpl::HandleFault → DaxFaults::ResolveFault → space/ (AllocData,
// MapExtent; nothing there calls up) → FsImpl::CommitTxn (journal) → then,
// back in ResolveFault, the zero pages other mappings showed over the filled
// hole are revoked (InodeTable → AddressSpace) and the caller's install()
// maps the blocks. A store into a shared block copies it (CopyOnWrite); its
// UnmapRange revokes the replaced range through the space layer's
// RangeObserver before the shared blocks lose this file's reference.
//
// Locking: ResolveFault takes meta_mu_ shared to look up, exclusive to
// allocate or copy — neither when the faulting thread already holds it
// (tls_meta_lock_depth: udax copying a user buffer that is itself a udax
// mapping), in which case it cannot allocate (EDEADLK). install() runs with
// meta_mu_ held.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "fs/inode.h"

namespace udax {

class FsImpl;

// What a fault installs: a page-aligned file range and what backs it.
struct InstallRange {
  enum Kind { kDevice, kZero } kind = kZero;
  uint64_t file_off = 0, len = 0;
  uint64_t dev_off = 0;  // kDevice
  bool writable = false;
};

// A file range as a direct client may reach it (serve/'s kLease): pieces
// in file order, contiguous from the range's start, each a hole or device
// memory, shared (a store must go through the mount) or not.
struct LeasePiece {
  uint64_t file_off = 0, len = 0;
  uint64_t dev_off = 0;  // mapped only
  bool mapped = false, shared = false;
};
struct LeaseView {
  uint64_t size = 0;  // the file's size now
  uint32_t mode = 0;
  bool atime_due = false;
  std::vector<LeasePiece> pieces;
};

class DaxFaults {
 public:
  explicit DaxFaults(FsImpl& fs) : fs_(fs) {}

  // Resolves the fault at file offset `off` within the mapped window [lo, hi):
  // a write into a hole first allocates, zeroes and commits (MAP_SYNC); a
  // write to a shared block copies it first. Calls install() under meta_mu_,
  // so no truncate can free the blocks before they are mapped. Errors:
  // EFAULT beyond EOF, ENOSPC, ESHUTDOWN, EUCLEAN, EIO (failed memory).
  Status ResolveFault(Inode* ip, uint64_t off, bool write, bool may_write, uint64_t lo, uint64_t hi,
                      const std::function<Status(const InstallRange&)>& install);
  // The device ranges (offset, length) behind file range [off, off+len),
  // holes skipped: what Persist flushes under a crash recorder, and where a
  // machine check's file offset lies.
  Result<std::vector<std::pair<uint64_t, uint64_t>>> DeviceRanges(Inode* ip, uint64_t off, uint64_t len);
  // The pieces of [off, off+len) ∩ [0, size) (at most `max_pieces`; fewer
  // when the range is cut short before a failed block, which is never
  // handed out), then record(view) under meta_mu_ shared: no extent can
  // change, and so no revocation run, between the lookup and what record
  // does with it. ENODEV/ESHUTDOWN as CheckLive; EISDIR for a directory.
  Status LeaseRange(Inode* ip, uint64_t off, uint64_t len, size_t max_pieces,
                    const std::function<void(const LeaseView&)>& record);

 private:
  FsImpl& fs_;
};

}  // namespace udax
