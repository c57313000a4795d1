// fs/alloc.h — the block allocator: free space in two B+trees (by block and
// by size, as XFS's bnobt/cntbt) and the free list of blocks reserved for
// B+tree nodes (XFS's AGFL).
//
// Invariants:
//  * every allocatable block is in exactly one of: a free-tree extent, the
//    free list, a B+tree node, a file extent;
//  * the two free trees hold the same extents; adjacent free extents are
//    merged; root.free_blocks is the sum of their lengths;
//  * B+tree nodes are taken only from the free list (AllocNode never touches a
//    tree), so a split can never recurse into the tree being split;
//  * data blocks are never handed out in a transaction that has already freed
//    blocks: data is written before its transaction commits, and a block
//    freed by an uncommitted transaction still belongs to its old owner;
//  * kReserveBlocks stay free for metadata: data allocation fails with ENOSPC
//    before metadata-only operations (unlink, rmdir...) can run out.
#pragma once

#include <cstdint>
#include <vector>

#include "btree/btree.h"

namespace udax {

class FsImpl;
class FsTxn;

struct BlockExtent {
  uint64_t start = 0;
  uint64_t length = 0;
};

// Where block `b` sits on the root block's node free list, or -1.
inline int FreeListIndex(const media::RootBlock& root, uint64_t b) {
  for (uint32_t i = 0; i < root.freelist_count; i++)
    if (root.freelist[i] == b) return static_cast<int>(i);
  return -1;
}

class Allocator : public NodeAllocator {
 public:
  static constexpr uint32_t kFreeListLow = 40;   // refill below this
  static constexpr uint32_t kFreeListHigh = 96;  // give back above this
  static constexpr uint64_t kReserveBlocks = 256;

  explicit Allocator(FsImpl* fs) : fs_(fs) {}

  // Up to `want` contiguous data blocks, preferring to start at `hint`.
  Result<BlockExtent> AllocData(FsTxn& t, uint64_t want, uint64_t hint);
  // Returns an extent to the free trees — except its bad blocks (see
  // badblocks.h), which go to owner kOwnBad for good.
  Status Free(FsTxn& t, uint64_t start, uint64_t length);
  // Takes free block `b` (in a free tree or on the free list) out of
  // circulation: its rmap owner becomes kOwnBad. EUCLEAN when b is not free.
  Status Retire(FsTxn& t, uint64_t b);
  // Brings the free list between its low and high marks and flushes node frees.
  Status FixFreeList(FsTxn& t);
  // True once the current transaction freed a block (a B+tree node, a free
  // list give-back, file data): AllocData refuses until it commits, so
  // callers that allocate in a loop roll the transaction first.
  bool freed_in_txn() const { return freed_in_txn_; }
  // Called when a transaction ends (commit or abort).
  void EndTxn() {
    freed_in_txn_ = false;
    overflow_.clear();
  }

  // NodeAllocator
  Result<uint64_t> AllocNode(Transaction& tx, const media::TreeShape& shape, uint64_t owner) override;
  Status FreeNode(Transaction& tx, uint64_t bno, const media::TreeShape& shape, uint64_t owner) override;

  // mkfs: builds the free trees for [start, end) into a fresh root block.
  Status Format(FsTxn& t, uint64_t start, uint64_t end, uint64_t total_blocks);

 private:
  Status RemoveFree(FsTxn& t, const media::FreeBnoRec& ext);
  Status InsertFree(FsTxn& t, uint64_t start, uint64_t length);
  // Takes [start, start+len) out of the free extent `ext` (which holds it).
  Status Carve(FsTxn& t, const media::FreeBnoRec& ext, uint64_t start, uint64_t len);
  // Inserts a freed extent, merging with its neighbours (EUCLEAN on overlap).
  Status InsertMerged(FsTxn& t, uint64_t start, uint64_t length);
  Result<BlockExtent> TakeExtent(FsTxn& t, uint64_t want, uint64_t hint, bool for_data);

  FsImpl* fs_;
  bool freed_in_txn_ = false;
  std::vector<uint64_t> overflow_;  // freed nodes that did not fit the free list
};

}  // namespace udax
