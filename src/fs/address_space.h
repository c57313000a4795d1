// fs/address_space.h — an in-core inode's list of live DAX mappings (the
// kernel's i_mmap) and unmap_mapping_range.
//
// The dax/ layer registers each Mapping here as a MappedRange; the filesystem
// calls Invalidate whenever the blocks behind a file range change (truncate,
// punch, a hole filled by write/fallocate, size changes, CoW, failures), and
// every registered mapping returns that range to PROT_NONE so the next access
// faults again.
//
// Locking: callers of Invalidate hold FsImpl::meta_mu_ exclusive, which also
// excludes faults (a fault holds meta_mu_ while it installs a mapping), so no
// mapping can be re-established between the invalidation and the change that
// caused it. mu_ only protects the list.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "udax/types.h"  // InvalidateReason

namespace udax {

class MappedRange {
 public:
  virtual ~MappedRange() = default;
  // Returns [off, off+len) of the file to PROT_NONE in this mapping (if it
  // overlaps) and tells the program through its callback.
  // `notify`: tell the program (false for internal changes such as a hole
  // being filled, where only a zero page is replaced).
  virtual void InvalidateFileRange(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                                   bool notify) = 0;
};

class AddressSpace {
 public:
  void Add(MappedRange* m) {
    std::lock_guard<std::mutex> g(mu_);
    maps_.push_back(m);
  }
  void Remove(MappedRange* m) {
    std::lock_guard<std::mutex> g(mu_);
    maps_.erase(std::remove(maps_.begin(), maps_.end(), m), maps_.end());
  }
  bool empty() {
    std::lock_guard<std::mutex> g(mu_);
    return maps_.empty();
  }
  void Invalidate(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why, bool notify) {
    std::lock_guard<std::mutex> g(mu_);
    for (MappedRange* m : maps_) m->InvalidateFileRange(ino, off, len, why, notify);
  }

 private:
  std::mutex mu_;
  std::vector<MappedRange*> maps_;
};

}  // namespace udax
