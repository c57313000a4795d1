// space/refcount.h — the refcount B+tree: reference counts of shared extents.
//
// A block with no record has one owner (or none when free); a record
// [start, start+length) says every block in it has `refcount` >= 2 owners.
// Records never overlap; neighbours with equal counts are merged. See the
// picture in docs/rmap-reflink.md for how ranges split and merge.
#pragma once

#include <cstdint>
#include <vector>

#include "btree/btree.h"
#include "space/alloc.h"

namespace udax {

// The reference count of `bno` from the tree (0 = no record: one owner or free).
Result<uint32_t> RefcountOf(Transaction& tx, const media::RootBlock& root, uint64_t bno);

// Whether `bno` is shared, and where that answer stops holding (exclusive end
// of the run of blocks that are all shared or all unshared), capped at `limit`.
Result<bool> SharedRun(Transaction& tx, const media::RootBlock& root, uint64_t bno, uint64_t limit,
                       uint64_t* run_end);
// The same, reading the root block (the transaction's image) itself.
Result<bool> SharedRun(Transaction& tx, uint64_t bno, uint64_t limit, uint64_t* run_end);

// Adds `delta` (+1 or -1) to the count of every block of [start, start+len).
// Blocks whose count drops to zero are appended to *unowned: the caller frees
// them. Blocks without a record count as one owner.
Status RefcountAdjust(NodeAllocator* alloc, Transaction& tx, uint64_t start, uint64_t len, int delta,
                      std::vector<BlockRange>* unowned);

}  // namespace udax
