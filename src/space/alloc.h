// space/alloc.h — the block allocator: free space in two B+trees (by block and
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
//  * the reserve: an adding operation (create, mkdir, symlink, link, rename
//    to a new name, write, fallocate, DAX fault, clone) never takes the free
//    trees below kReserveBlocks — not for data, not to refill the free list
//    — so it fails with ENOSPC first; only a freeing operation (unlink,
//    rmdir, rename over a name, truncate, punch, inode reclaim, memory
//    failure: a FreeingOp is alive) may use the reserve, and only for
//    B+tree nodes: data (a copy-on-write of a shared block a partial punch
//    zeroes) never comes from it. The bound on what a freeing operation
//    needs is in docs/failure.md ("The reserve").
#pragma once

#include <cstdint>
#include <vector>

#include "btree/btree.h"
#include "space/space_txn.h"

namespace udax {

class Space;
struct SpaceTxn;

struct BlockRange {
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

  // `space`: the data range and the bad-block list (space.h).
  explicit Allocator(const Space* space) : space_(space) {}

  // The scope of a freeing operation (under meta_mu_ exclusive): while it
  // lives, free-list refills may take the reserve. Begin tops the free
  // list up (from the reserve if need be), so the operation starts with at
  // least kFreeListLow nodes however low adding operations left it.
  class FreeingOp {
   public:
    explicit FreeingOp(Allocator* a) : a_(a), was_(a->freeing_) { a_->freeing_ = true; }
    ~FreeingOp() { a_->freeing_ = was_; }
    FreeingOp(const FreeingOp&) = delete;
    FreeingOp& operator=(const FreeingOp&) = delete;
    [[nodiscard]] Status Begin(SpaceTxn& t) { return a_->FixFreeList(t); }
    // The operation turned out to add (rename to a new name): no reserve.
    void Cancel() { a_->freeing_ = was_; }

   private:
    Allocator* a_;
    bool was_;
  };
  // ENOSPC unless blocks above the reserve are free (or a FreeingOp lives):
  // adding operations call it before they change anything.
  Status CheckSpaceToAdd(const SpaceTxn& t) const;

  // Up to `want` contiguous data blocks, preferring to start at `hint`.
  Result<BlockRange> AllocData(SpaceTxn& t, uint64_t want, uint64_t hint);
  // Returns an extent to the free trees — except its bad blocks (see
  // badblocks.h), which go to owner kOwnBad for good.
  Status Free(SpaceTxn& t, uint64_t start, uint64_t length);
  // Takes free block `b` (in a free tree or on the free list) out of
  // circulation: its rmap owner becomes kOwnBad. EUCLEAN when b is not free.
  Status Retire(SpaceTxn& t, uint64_t b);
  // Brings the free list between its low and high marks and flushes node
  // frees. Outside a FreeingOp a refill takes only blocks above the reserve;
  // when there are none the list stays low (AllocNode's ENOSPC is the limit).
  Status FixFreeList(SpaceTxn& t);
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
  Status Format(SpaceTxn& t, uint64_t start, uint64_t end, uint64_t total_blocks);

 private:
  Status RemoveFree(SpaceTxn& t, const media::FreeBnoRec& ext);
  Status InsertFree(SpaceTxn& t, uint64_t start, uint64_t length);
  // Takes [start, start+len) out of the free extent `ext` (which holds it).
  Status Carve(SpaceTxn& t, const media::FreeBnoRec& ext, uint64_t start, uint64_t len);
  // Inserts a freed extent, merging with its neighbours (EUCLEAN on overlap).
  Status InsertMerged(SpaceTxn& t, uint64_t start, uint64_t length);
  // Up to `want` blocks of one free extent, never more than the spare ones.
  Result<BlockRange> TakeExtent(SpaceTxn& t, uint64_t want, uint64_t hint, bool for_data);
  // Free-tree blocks above the reserve: all that data may ever take.
  static uint64_t DataSpareBlocks(const media::RootBlock& root);
  // Free-tree blocks this operation may take for the free list: all in a
  // FreeingOp, else those above the reserve.
  uint64_t SpareBlocks(const media::RootBlock& root) const;

  const Space* space_;
  bool freed_in_txn_ = false;
  bool freeing_ = false;  // a FreeingOp lives: the reserve may be used
  std::vector<uint64_t> overflow_;  // freed nodes that did not fit the free list
};

}  // namespace udax
