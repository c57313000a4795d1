// space/bmap.cc — extent map operations (see bmap.h).
#include "space/bmap.h"

#include "space/refcount.h"
#include "space/rmap.h"

namespace udax {

using media::BmapRec;

namespace {
const media::TreeShape& BmapShape() { return *media::ShapeForMagic(media::kBmapMagic); }
}  // namespace

Result<ExtentOrHole> LookupExtent(Transaction& tx, const media::InodeRec& rec, uint64_t fblk) {
  return LookupExtent(tx, rec.ino, rec.data, fblk);
}

Result<ExtentOrHole> LookupExtent(Transaction& tx, uint64_t ino, const media::BtreeRoot& data, uint64_t fblk) {
  media::BtreeRoot root = data;
  Btree tree(&tx, BmapShape(), &root, ino, nullptr);
  ExtentOrHole out;
  BmapRec e;
  ASSIGN_OR_RETURN(bool hit, tree.LookupLE(&fblk, &e));
  if (hit && e.file_block + e.length > fblk) {
    // Data goes straight to these device blocks: never trust an extent that
    // reaches outside the allocatable area (superblocks, root block, log).
    uint64_t lo = tx.journal()->log_end(), hi = tx.journal()->total_blocks() - 1;
    if (e.start_block < lo || e.start_block >= hi || e.length > hi - e.start_block)
      return Errno(EUCLEAN, "metadata corruption: inode " + std::to_string(ino) +
                                " maps file block " + std::to_string(e.file_block) +
                                " to device blocks [" + std::to_string(e.start_block) + ", +" +
                                std::to_string(e.length) + ") outside the data area");
    out.mapped = true;
    out.ext = e;
    return out;
  }
  ASSIGN_OR_RETURN(bool next, tree.LookupGT(&fblk, &e));
  if (next) {
    // Callers walk a range from hole to extent: a "next" extent that does not
    // lie past fblk (a crafted tree out of order) would never let them move on.
    if (e.file_block <= fblk)
      return Errno(EUCLEAN, "metadata corruption: inode " + std::to_string(ino) +
                                "'s extent map is out of order: the extent after file block " +
                                std::to_string(fblk) + " starts at " + std::to_string(e.file_block));
    out.hole_end = e.file_block;
  }
  return out;
}

Status MapExtent(Space* space, SpaceTxn& t, media::InodeRec& rec, uint64_t fblk, uint64_t start,
                 uint64_t len) {
  Btree tree(&t.tx, BmapShape(), &rec.data, rec.ino, space->allocator());
  while (len > 0) {
    uint64_t n = std::min<uint64_t>(len, media::kMaxExtentBlocks);
    BmapRec left;
    ASSIGN_OR_RETURN(bool hit, tree.LookupLE(&fblk, &left));
    if (hit && left.file_block + left.length == fblk && left.start_block + left.length == start &&
        left.flags == 0 && left.length + n <= media::kMaxExtentBlocks) {
      left.length += static_cast<uint32_t>(n);
      RETURN_IF_ERROR(tree.Update(&left));
      RETURN_IF_ERROR(RmapSetLength(space->allocator(), t.tx, left.start_block, rec.ino, left.file_block, left.length));
    } else {
      BmapRec e{fblk, start, static_cast<uint32_t>(n), 0};
      RETURN_IF_ERROR(tree.Insert(&e));
      RETURN_IF_ERROR(RmapInsert(space->allocator(), t.tx, media::RmapRec{start, rec.ino, fblk, static_cast<uint32_t>(n), 0}));
    }
    rec.nblocks += n;
    fblk += n;
    start += n;
    len -= n;
  }
  return Status::Ok();
}

Status DropBlocks(Space* space, SpaceTxn& t, uint64_t start, uint64_t len) {
  ASSIGN_OR_RETURN(const uint8_t* rb, t.tx.Read(media::kRootBlockNo, media::kRootMagic));
  if (reinterpret_cast<const media::RootBlock*>(rb)->refcount.levels == 0)
    return space->allocator()->Free(t, start, len);  // nothing is shared
  std::vector<BlockRange> unowned;
  RETURN_IF_ERROR(RefcountAdjust(space->allocator(), t.tx, start, len, -1, &unowned));
  for (const auto& e : unowned) RETURN_IF_ERROR(space->allocator()->Free(t, e.start, e.length));
  return Status::Ok();
}

Status UnmapRange(Space* space, SpaceTxn& t, media::InodeRec& rec, uint64_t fblk, uint64_t end,
                  int max_extents, bool* done, InvalidateReason why) {
  *done = false;
  Btree tree(&t.tx, BmapShape(), &rec.data, rec.ino, space->allocator());
  for (int i = 0; i < max_extents; i++) {
    // The last extent that starts before `end`, working backwards.
    uint64_t key = end - 1;
    BmapRec e;
    ASSIGN_OR_RETURN(bool hit, tree.LookupLE(&key, &e));
    if (!hit || e.file_block + e.length <= fblk) {
      *done = true;
      return Status::Ok();
    }
    uint64_t e_end = e.file_block + e.length;
    uint64_t cut_lo = std::max(e.file_block, fblk), cut_hi = std::min(e_end, end);
    uint64_t dev_lo = e.start_block + (cut_lo - e.file_block);
    // Keep [e.file_block, cut_lo) and [cut_hi, e_end).
    // The extent-map and rmap records change in step (same boundaries).
    NodeAllocator* na = space->allocator();
    if (cut_lo > e.file_block) {
      BmapRec head = e;
      head.length = static_cast<uint32_t>(cut_lo - e.file_block);
      RETURN_IF_ERROR(tree.Update(&head));
      RETURN_IF_ERROR(RmapSetLength(na, t.tx, e.start_block, rec.ino, e.file_block, head.length));
    } else {
      RETURN_IF_ERROR(tree.Delete(&e.file_block));
      RETURN_IF_ERROR(RmapDelete(na, t.tx, e.start_block, rec.ino, e.file_block));
    }
    if (cut_hi < e_end) {
      BmapRec tail{cut_hi, e.start_block + (cut_hi - e.file_block),
                   static_cast<uint32_t>(e_end - cut_hi), e.flags};
      RETURN_IF_ERROR(tree.Insert(&tail));
      RETURN_IF_ERROR(RmapInsert(na, t.tx, media::RmapRec{tail.start_block, rec.ino, tail.file_block, tail.length, 0}));
    }
    // Mappings let go of the blocks before they can be reused.
    space->FileRangeChanged(rec.ino, cut_lo * media::kBlockSize, (cut_hi - cut_lo) * media::kBlockSize, why,
                            /*notify=*/true);
    RETURN_IF_ERROR(DropBlocks(space, t, dev_lo, cut_hi - cut_lo));
    rec.nblocks -= cut_hi - cut_lo;
    end = cut_lo;
    if (end <= fblk) {
      *done = true;
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status ListExtents(Transaction& tx, const media::InodeRec& rec, std::vector<BmapRec>* out) {
  media::BtreeRoot root = rec.data;
  Btree tree(&tx, BmapShape(), &root, rec.ino, nullptr);
  return tree.Scan(nullptr, [&](const void* r) {
    out->push_back(*static_cast<const BmapRec*>(r));
    return true;
  });
}

}  // namespace udax
