// fs/reflink.h — Reflink: clone and dedupe ranges (FICLONERANGE /
// FIDEDUPERANGE) and the shared-extent view of a file (fiemap).
//
// A clone is ONE transaction: the destination range is unmapped (its blocks
// lose a reference, unshared ones are freed), every source extent in the
// range is mapped into the destination (extent map + rmap record) and its
// blocks' refcounts go up by one; sizes and the reflink flags change with it.
// A clone too large for one journal transaction fails with E2BIG and changes
// nothing — it is never half-done. See docs/rmap-reflink.md.
//
// Locking: CloneRange and DedupeRange take meta_mu_ exclusive;
// SharedExtents takes it shared.
#pragma once

#include <cstdint>
#include <vector>

#include "fs/inode.h"
#include "udax/fs.h"

namespace udax {

class FsImpl;

class Reflink {
 public:
  explicit Reflink(FsImpl& fs) : fs_(fs) {}

  // dst[dst_off, +len) becomes a reflink of src[src_off, +len).
  Status CloneRange(Inode* dst, Inode* src, uint64_t src_off, uint64_t len, uint64_t dst_off);
  // Shares the ranges when their bytes are equal.
  Result<uint64_t> DedupeRange(Inode* dst, Inode* src, uint64_t src_off, uint64_t len, uint64_t dst_off);
  // The file's extents split where sharing changes, with kExtentShared set.
  Result<std::vector<FileExtent>> SharedExtents(Inode* ip);

 private:
  FsImpl& fs_;
};

}  // namespace udax
