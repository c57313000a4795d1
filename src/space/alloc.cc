// space/alloc.cc — free-space trees and the node free list (see alloc.h).
#include "space/alloc.h"

#include <algorithm>
#include <limits>

#include "space/rmap.h"
#include "space/space.h"

namespace udax {

using media::FreeBnoRec;
using media::FreeCntRec;

namespace {

const media::TreeShape& BnoShape() { return *media::ShapeForMagic(media::kFreeBnoMagic); }
const media::TreeShape& CntShape() { return *media::ShapeForMagic(media::kFreeCntMagic); }

Result<media::RootBlock*> RootOf(Transaction& tx) {
  ASSIGN_OR_RETURN(uint8_t * p, tx.Write(media::kRootBlockNo, media::kRootMagic));
  return reinterpret_cast<media::RootBlock*>(p);
}

}  // namespace

Result<uint64_t> Allocator::AllocNode(Transaction& tx, const media::TreeShape& shape, uint64_t owner) {
  ASSIGN_OR_RETURN(media::RootBlock * root, RootOf(tx));
  if (root->freelist_count == 0)
    return Errno(ENOSPC, "no space left for metadata (free list exhausted)");
  uint64_t bno = root->freelist[--root->freelist_count];
  // Free-list blocks and the free-space/rmap/refcount trees share the owner
  // kOwnAg, so their nodes change hands without touching the rmap tree (no
  // recursion); any other tree's node gets its own rmap record.
  if (!IsAgOwned(shape.magic)) {
    uint64_t rowner;
    uint32_t flags;
    RmapOwnerOfNode(shape.magic, owner, &rowner, &flags);
    RETURN_IF_ERROR(RmapDelete(this, tx, bno, media::kOwnAg, 0));
    RETURN_IF_ERROR(RmapInsert(this, tx, media::RmapRec{bno, rowner, 0, 1, flags}));
  }
  return bno;
}

Status Allocator::FreeNode(Transaction& tx, uint64_t bno, const media::TreeShape& shape, uint64_t owner) {
  tx.Forget(bno);
  freed_in_txn_ = true;
  if (!IsAgOwned(shape.magic)) {
    uint64_t rowner;
    uint32_t flags;
    RmapOwnerOfNode(shape.magic, owner, &rowner, &flags);
    RETURN_IF_ERROR(RmapDelete(this, tx, bno, rowner, 0));
    RETURN_IF_ERROR(RmapInsert(this, tx, media::RmapRec{bno, media::kOwnAg, 0, 1, 0}));
  }
  ASSIGN_OR_RETURN(media::RootBlock * root, RootOf(tx));
  if (root->freelist_count < media::kFreeListMax) {
    root->freelist[root->freelist_count++] = bno;
  } else {
    overflow_.push_back(bno);
  }
  return Status::Ok();
}

Status Allocator::RemoveFree(SpaceTxn& t, const FreeBnoRec& ext) {
  Btree bno(&t.tx, BnoShape(), &t.root->free_bno, 0, this);
  Btree cnt(&t.tx, CntShape(), &t.root->free_cnt, 0, this);
  RETURN_IF_ERROR(bno.Delete(&ext.start));
  uint64_t ckey[2] = {ext.length, ext.start};
  RETURN_IF_ERROR(cnt.Delete(ckey));
  t.root->free_blocks -= ext.length;
  return Status::Ok();
}

Status Allocator::InsertFree(SpaceTxn& t, uint64_t start, uint64_t length) {
  Btree bno(&t.tx, BnoShape(), &t.root->free_bno, 0, this);
  Btree cnt(&t.tx, CntShape(), &t.root->free_cnt, 0, this);
  FreeBnoRec b{start, length};
  RETURN_IF_ERROR(bno.Insert(&b));
  FreeCntRec c{length, start};
  RETURN_IF_ERROR(cnt.Insert(&c));
  t.root->free_blocks += length;
  return Status::Ok();
}

Status Allocator::Carve(SpaceTxn& t, const FreeBnoRec& ext, uint64_t start, uint64_t len) {
  RETURN_IF_ERROR(RemoveFree(t, ext));
  if (start > ext.start) RETURN_IF_ERROR(InsertFree(t, ext.start, start - ext.start));
  uint64_t end = start + len, ext_end = ext.start + ext.length;
  if (end < ext_end) RETURN_IF_ERROR(InsertFree(t, end, ext_end - end));
  return Status::Ok();
}

Result<BlockRange> Allocator::TakeExtent(SpaceTxn& t, uint64_t want, uint64_t hint, bool for_data) {
  Btree bno(&t.tx, BnoShape(), &t.root->free_bno, 0, this);
  Btree cnt(&t.tx, CntShape(), &t.root->free_cnt, 0, this);
  FreeBnoRec found{};
  bool have = false;
  uint64_t take_at = 0;
  // 1. An extent containing the hint (contiguous file growth).
  if (hint != 0) {
    ASSIGN_OR_RETURN(bool hit, bno.LookupLE(&hint, &found));
    if (hit && found.start + found.length > hint) {
      have = true;
      take_at = hint;
    }
  }
  // 2. Best fit by size, else the largest extent.
  if (!have) {
    FreeCntRec c{};
    uint64_t key[2] = {want, 0};
    ASSIGN_OR_RETURN(bool hit, cnt.LookupGE(key, &c));
    if (!hit) {
      uint64_t max[2] = {std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint64_t>::max()};
      ASSIGN_OR_RETURN(hit, cnt.LookupLE(max, &c));
    }
    if (!hit) return Errno(ENOSPC, "no space left on device");
    found = {c.start, c.length};
    take_at = c.start;
    have = true;
  }
  uint64_t avail = found.start + found.length - take_at;
  uint64_t len = std::min({want, avail, for_data ? DataSpareBlocks(*t.root) : SpareBlocks(*t.root)});
  if (len == 0) return Errno(ENOSPC, "no space left on device");
  RETURN_IF_ERROR(Carve(t, found, take_at, len));
  return BlockRange{take_at, len};
}

uint64_t Allocator::DataSpareBlocks(const media::RootBlock& root) {
  return root.free_blocks - std::min(root.free_blocks, kReserveBlocks);
}

uint64_t Allocator::SpareBlocks(const media::RootBlock& root) const {
  return freeing_ ? root.free_blocks : DataSpareBlocks(root);
}

Status Allocator::CheckSpaceToAdd(const SpaceTxn& t) const {
  if (SpareBlocks(*t.root) == 0) return Errno(ENOSPC, "no space left on device");
  return Status::Ok();
}

Result<BlockRange> Allocator::AllocData(SpaceTxn& t, uint64_t want, uint64_t hint) {
  if (freed_in_txn_)
    return Errno(EINVAL, "internal error: data allocation after a free in one transaction");
  RETURN_IF_ERROR(FixFreeList(t));
  if (DataSpareBlocks(*t.root) == 0) return Errno(ENOSPC, "no space left on device");
  ASSIGN_OR_RETURN(BlockRange e, TakeExtent(t, std::min<uint64_t>(want, media::kMaxExtentBlocks), hint, true));
  RETURN_IF_ERROR(FixFreeList(t));
  return e;
}

Status Allocator::Free(SpaceTxn& t, uint64_t start, uint64_t length) {
  if (length == 0) return Status::Ok();
  if (start < space_->data_start() || start + length > space_->data_end() || start + length < start)
    return Errno(EUCLEAN, "freeing blocks [" + std::to_string(start) + ", +" +
                              std::to_string(length) + ") outside the data area");
  freed_in_txn_ = true;
  RETURN_IF_ERROR(FixFreeList(t));
  const BadBlockList& bad = space_->bad_blocks();
  for (uint64_t b = start, end = start + length; b < end;) {
    uint64_t good_end = bad.FirstBad(b, end);
    if (good_end > b) {
      RETURN_IF_ERROR(InsertMerged(t, b, good_end - b));
      b = good_end;
      continue;
    }
    for (uint64_t bad_end = bad.BadRunEnd(b, end); b < bad_end; b++)
      RETURN_IF_ERROR(RmapInsert(this, t.tx, media::RmapRec{b, media::kOwnBad, 0, 1, 0}));
  }
  return FixFreeList(t);
}

Status Allocator::Retire(SpaceTxn& t, uint64_t b) {
  if (int i = FreeListIndex(*t.root, b); i >= 0) {
    t.root->freelist[i] = t.root->freelist[--t.root->freelist_count];
    RETURN_IF_ERROR(RmapDelete(this, t.tx, b, media::kOwnAg, 0));
    RETURN_IF_ERROR(RmapInsert(this, t.tx, media::RmapRec{b, media::kOwnBad, 0, 1, 0}));
    return FixFreeList(t);
  }
  Btree bno(&t.tx, BnoShape(), &t.root->free_bno, 0, this);
  FreeBnoRec found{};
  ASSIGN_OR_RETURN(bool hit, bno.LookupLE(&b, &found));
  if (!hit || found.start + found.length <= b)
    return Errno(EUCLEAN, "retiring block " + std::to_string(b) + ", which is not free");
  RETURN_IF_ERROR(Carve(t, found, b, 1));
  RETURN_IF_ERROR(RmapInsert(this, t.tx, media::RmapRec{b, media::kOwnBad, 0, 1, 0}));
  return FixFreeList(t);
}

Status Allocator::InsertMerged(SpaceTxn& t, uint64_t start, uint64_t length) {
  Btree bno(&t.tx, BnoShape(), &t.root->free_bno, 0, this);
  FreeBnoRec left{}, right{};
  ASSIGN_OR_RETURN(bool has_left, bno.LookupLE(&start, &left));
  ASSIGN_OR_RETURN(bool has_right, bno.LookupGT(&start, &right));
  if (has_left && left.start + left.length > start)
    return Errno(EUCLEAN, "double free of block " + std::to_string(start));
  if (has_right && start + length > right.start)
    return Errno(EUCLEAN, "double free of block " + std::to_string(right.start));
  uint64_t new_start = start, new_len = length;
  if (has_left && left.start + left.length == start) {
    RETURN_IF_ERROR(RemoveFree(t, left));
    new_start = left.start;
    new_len += left.length;
  }
  if (has_right && start + length == right.start) {
    RETURN_IF_ERROR(RemoveFree(t, right));
    new_len += right.length;
  }
  return InsertFree(t, new_start, new_len);
}

Status Allocator::FixFreeList(SpaceTxn& t) {
  // Bounded: each round either fills the list or drains the overflow.
  for (int round = 0; round < 64; round++) {
    if (t.root->freelist_count < kFreeListLow) {
      if (!overflow_.empty()) {  // nodes freed when the list was full come back first
        t.root->freelist[t.root->freelist_count++] = overflow_.back();
        overflow_.pop_back();
        continue;
      }
      // Outside a FreeingOp, never into the reserve: the list stays low and
      // the adding operation meets ENOSPC in AllocNode or CheckSpaceToAdd.
      uint64_t need = std::min<uint64_t>(kFreeListHigh - t.root->freelist_count, SpareBlocks(*t.root));
      if (need == 0) return Status::Ok();
      ASSIGN_OR_RETURN(BlockRange e, TakeExtent(t, need, 0, false));
      for (uint64_t b = e.start; b < e.start + e.length; b++)
        RETURN_IF_ERROR(RmapInsert(this, t.tx, media::RmapRec{b, media::kOwnAg, 0, 1, 0}));
      for (uint64_t b = e.start; b < e.start + e.length; b++) {
        if (t.root->freelist_count < media::kFreeListMax)
          t.root->freelist[t.root->freelist_count++] = b;
        else
          overflow_.push_back(b);
      }
      continue;
    }
    if (!overflow_.empty() || t.root->freelist_count > kFreeListHigh) {
      uint64_t b;
      if (!overflow_.empty()) {
        b = overflow_.back();
        overflow_.pop_back();
      } else {
        b = t.root->freelist[--t.root->freelist_count];
      }
      freed_in_txn_ = true;
      // Inserting may split (pops the list); the loop re-checks both marks.
      RETURN_IF_ERROR(RmapDelete(this, t.tx, b, media::kOwnAg, 0));
      RETURN_IF_ERROR(InsertMerged(t, b, 1));
      continue;
    }
    return Status::Ok();
  }
  return Status::Ok();
}

Status Allocator::Format(SpaceTxn& t, uint64_t start, uint64_t end, uint64_t total_blocks) {
  // Seed the free list from the front of the area, then one free extent,
  // then the reverse mapping of everything in use so far.
  uint64_t b = start;
  while (t.root->freelist_count < kFreeListHigh && b < end) t.root->freelist[t.root->freelist_count++] = b++;
  if (b >= end) return Errno(ENOSPC, "device too small");
  RETURN_IF_ERROR(InsertFree(t, b, end - b));
  RETURN_IF_ERROR(RmapInsert(this, t.tx, media::RmapRec{0, media::kOwnStatic, 0, static_cast<uint32_t>(start), 0}));
  RETURN_IF_ERROR(RmapInsert(this, t.tx, media::RmapRec{total_blocks - 1, media::kOwnStatic, 0, 1, 0}));
  for (uint64_t fb = start; fb < b; fb++)
    RETURN_IF_ERROR(RmapInsert(this, t.tx, media::RmapRec{fb, media::kOwnAg, 0, 1, 0}));
  return Status::Ok();
}

}  // namespace udax
