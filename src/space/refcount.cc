// space/refcount.cc — reference counts of shared extents (see refcount.h).
#include "space/refcount.h"

namespace udax {

using media::RefcountRec;

namespace {

const media::TreeShape& RefcountShape() { return *media::ShapeForMagic(media::kRefcountMagic); }
constexpr uint64_t kMaxRecordBlocks = media::kMaxExtentBlocks;

// Merges neighbouring records with equal counts around [start, end].
Status MergeAround(Btree& tree, uint64_t start, uint64_t end) {
  std::vector<RefcountRec> recs;
  RefcountRec first;
  uint64_t from = start;
  if (start > 0) {
    uint64_t k = start - 1;
    ASSIGN_OR_RETURN(bool hit, tree.LookupLE(&k, &first));
    if (hit) from = first.start;
  }
  RETURN_IF_ERROR(tree.Scan(&from, [&](const void* p) {
    const auto* r = static_cast<const RefcountRec*>(p);
    if (r->start > end) return false;
    recs.push_back(*r);
    return true;
  }));
  for (size_t i = 0; i + 1 < recs.size(); i++) {
    RefcountRec& a = recs[i];
    const RefcountRec& b = recs[i + 1];
    if (a.start + a.length == b.start && a.refcount == b.refcount &&
        uint64_t{a.length} + b.length <= kMaxRecordBlocks) {
      RETURN_IF_ERROR(tree.Delete(&b.start));
      a.length += b.length;
      RETURN_IF_ERROR(tree.Update(&a));
      recs[i + 1] = a;  // a may merge further with the next one
    }
  }
  return Status::Ok();
}

}  // namespace

Result<uint32_t> RefcountOf(Transaction& tx, const media::RootBlock& root, uint64_t bno) {
  media::BtreeRoot r = root.refcount;
  Btree tree(&tx, RefcountShape(), &r, 0, nullptr);
  RefcountRec rec;
  ASSIGN_OR_RETURN(bool hit, tree.LookupLE(&bno, &rec));
  return (hit && rec.start + rec.length > bno) ? rec.refcount : 0u;
}

Result<bool> SharedRun(Transaction& tx, uint64_t bno, uint64_t limit, uint64_t* run_end) {
  ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
  return SharedRun(tx, *reinterpret_cast<const media::RootBlock*>(rb), bno, limit, run_end);
}

Result<bool> SharedRun(Transaction& tx, const media::RootBlock& root, uint64_t bno, uint64_t limit,
                       uint64_t* run_end) {
  media::BtreeRoot r = root.refcount;
  *run_end = limit;
  if (r.levels == 0) return false;
  Btree tree(&tx, RefcountShape(), &r, 0, nullptr);
  RefcountRec rec;
  ASSIGN_OR_RETURN(bool hit, tree.LookupLE(&bno, &rec));
  if (hit && rec.start + rec.length > bno) {
    *run_end = std::min<uint64_t>(limit, rec.start + rec.length);
    return true;
  }
  ASSIGN_OR_RETURN(bool next, tree.LookupGT(&bno, &rec));
  if (next) *run_end = std::min<uint64_t>(limit, rec.start);
  return false;
}

Status RefcountAdjust(NodeAllocator* alloc, Transaction& tx, uint64_t start, uint64_t len, int delta,
                      std::vector<BlockRange>* unowned) {
  ASSIGN_OR_RETURN(uint8_t * rb, tx.Write(media::kRootBlockNo, media::kRootMagic));
  auto* root = reinterpret_cast<media::RootBlock*>(rb);
  Btree tree(&tx, RefcountShape(), &root->refcount, 0, alloc);
  uint64_t pos = start, end = start + len;
  while (pos < end) {
    RefcountRec r;
    ASSIGN_OR_RETURN(bool hit, tree.LookupLE(&pos, &r));
    if (hit && r.start + r.length > pos) {
      uint64_t r_end = r.start + r.length, seg_end = std::min(end, r_end);
      RETURN_IF_ERROR(tree.Delete(&r.start));
      if (r.start < pos) {
        RefcountRec head{r.start, static_cast<uint32_t>(pos - r.start), r.refcount};
        RETURN_IF_ERROR(tree.Insert(&head));
      }
      uint32_t count = static_cast<uint32_t>(int64_t{r.refcount} + delta);
      if (count >= 2) {
        RefcountRec mid{pos, static_cast<uint32_t>(seg_end - pos), count};
        RETURN_IF_ERROR(tree.Insert(&mid));
      }
      if (seg_end < r_end) {
        RefcountRec tail{seg_end, static_cast<uint32_t>(r_end - seg_end), r.refcount};
        RETURN_IF_ERROR(tree.Insert(&tail));
      }
      pos = seg_end;
      continue;
    }
    // Blocks with no record have exactly one owner.
    uint64_t seg_end = end;
    ASSIGN_OR_RETURN(bool next, tree.LookupGT(&pos, &r));
    if (next) seg_end = std::min(seg_end, r.start);
    seg_end = std::min(seg_end, pos + kMaxRecordBlocks);
    if (delta > 0) {
      RefcountRec rec{pos, static_cast<uint32_t>(seg_end - pos), 2};
      RETURN_IF_ERROR(tree.Insert(&rec));
    } else {
      unowned->push_back(BlockRange{pos, seg_end - pos});
    }
    pos = seg_end;
  }
  return MergeAround(tree, start, end);
}

}  // namespace udax
