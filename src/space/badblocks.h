// space/badblocks.h — the in-core copy of the persistent bad-block list (the
// root block's `bad` array) and the edits made to that array.
//
// Blocks are listed here once their memory failed (InjectPoison, or a real
// machine-check SIGBUS routed through the device). The list only grows: a bad
// block is never allocated again (see alloc.h, Allocator::Free/Retire).
//
// Invariants: extents sorted by start, disjoint and not adjacent; the in-core
// copy equals the committed root block's list (updated after each commit that
// changes it). Thread safety: readers (Overlaps, FirstBad, ...) may run from
// any thread; updates happen under the fs's metadata lock
// (meta_mu_) held exclusive.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "media/format.h"
#include "udax/status.h"

namespace udax {

class BadBlockList {
 public:
  void Assign(const media::RootBlock& root);
  void Add(uint64_t start, uint64_t length);  // in-core only (read-only mounts)
  // False at once when nothing is bad (the common case costs one load).
  bool any() const { return any_.load(std::memory_order_acquire); }
  bool Overlaps(uint64_t start, uint64_t length) const;
  // The first bad block in [start, end), or end.
  uint64_t FirstBad(uint64_t start, uint64_t end) const;
  // The first good block at or after the bad block `b` (below `end`).
  uint64_t BadRunEnd(uint64_t b, uint64_t end) const;
  // The first block after the last bad block in [lo, b), or lo.
  uint64_t GoodRunStart(uint64_t lo, uint64_t b) const;
  std::vector<media::BadExtent> List() const;

  // Adds [start, start+length) to the root block's list, merging; ENOSPC
  // when the list is full.
  static Status AddToRoot(media::RootBlock* root, uint64_t start, uint64_t length);

 private:
  mutable std::mutex mu_;
  std::vector<media::BadExtent> list_;
  std::atomic<bool> any_{false};
};

}  // namespace udax
