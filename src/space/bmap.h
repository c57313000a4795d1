// space/bmap.h — a file's extent map (the per-inode B+tree of BmapRec), the
// kernel's bmap: file block -> device block.
//
// Invariants: extents of one file never overlap; each lies inside the data
// area; rec.nblocks equals the sum of extent lengths.
#pragma once

#include <cstdint>
#include <vector>

#include "btree/btree.h"
#include "space/space.h"
#include "udax/types.h"

namespace udax {

// The extent containing file block `fblk`, or the next one after it
// (found=false, next_fblk set) — for read paths; no transaction needed.
struct ExtentOrHole {
  bool mapped = false;
  media::BmapRec ext{};  // when mapped
  uint64_t hole_end = UINT64_MAX;  // when not mapped: first mapped block after fblk
};
Result<ExtentOrHole> LookupExtent(Transaction& tx, const media::InodeRec& rec, uint64_t fblk);
// The same, from the inode number and extent-map root alone.
Result<ExtentOrHole> LookupExtent(Transaction& tx, uint64_t ino, const media::BtreeRoot& data, uint64_t fblk);

// Maps [fblk, fblk+len) (a hole) to device blocks starting at `start`;
// merges with the extent to the left when contiguous. Tells no one: the
// caller revokes the zero pages mappings show over the hole it filled (the
// fs does it as its own step, so a write fault never calls back up from here).
Status MapExtent(Space* space, SpaceTxn& t, media::InodeRec& rec, uint64_t fblk, uint64_t start,
                 uint64_t len);

// Unmaps and frees up to `max_extents` extents overlapping [fblk, end).
// Sets *done when nothing is left in the range.
// Mappings of the range are invalidated with reason `why` first (the
// space's RangeObserver). Blocks
// still shared with another owner only lose a reference.
Status UnmapRange(Space* space, SpaceTxn& t, media::InodeRec& rec, uint64_t fblk, uint64_t end,
                  int max_extents, bool* done, InvalidateReason why = InvalidateReason::kTruncate);
// Drops one reference to device blocks [start, start+len): frees those that
// no other owner shares.
Status DropBlocks(Space* space, SpaceTxn& t, uint64_t start, uint64_t len);

// Every extent, in order.
Status ListExtents(Transaction& tx, const media::InodeRec& rec, std::vector<media::BmapRec>* out);

}  // namespace udax
