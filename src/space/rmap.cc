// space/rmap.cc — reverse-mapping records (see rmap.h).
#include "space/rmap.h"

#include <algorithm>

#include "space/refcount.h"

namespace udax {

using media::RmapRec;

namespace {

const media::TreeShape& RmapShape() { return *media::ShapeForMagic(media::kRmapMagic); }
const media::TreeShape& FreeBnoShape() { return *media::ShapeForMagic(media::kFreeBnoMagic); }

// The key just below `k` in (start, owner, offset) order.
bool PrevKey(uint64_t k[3]) {
  for (int i = 2; i >= 0; i--) {
    if (k[i] > 0) {
      k[i]--;
      for (int j = i + 1; j < 3; j++) k[j] = UINT64_MAX;
      return true;
    }
  }
  return false;
}

Result<media::RootBlock> ReadRoot(Transaction& tx) {
  ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
  return *reinterpret_cast<const media::RootBlock*>(rb);
}

}  // namespace

bool IsAgOwned(uint32_t magic) {
  return magic == media::kFreeBnoMagic || magic == media::kFreeCntMagic || magic == media::kRmapMagic ||
         magic == media::kRefcountMagic;
}

void RmapOwnerOfNode(uint32_t magic, uint64_t tree_owner, uint64_t* owner, uint32_t* flags) {
  *flags = 0;
  if (IsAgOwned(magic)) {
    *owner = media::kOwnAg;
  } else if (magic == media::kInodeMagic) {
    *owner = media::kOwnInodeTree;
  } else if (magic == media::kOrphanMagic) {
    *owner = media::kOwnOrphanTree;
  } else {
    *owner = tree_owner;  // an inode's extent map or directory
    *flags = media::kRmapTreeBlock;
  }
}

const char* RmapMetaName(uint64_t owner) {
  switch (owner) {
    case media::kOwnStatic: return "static";  // superblock, root block, journal
    case media::kOwnAg: return "ag";          // free list, free-space/rmap/refcount trees
    case media::kOwnInodeTree: return "inode-btree";
    case media::kOwnOrphanTree: return "orphan-btree";
    case media::kOwnBad: return "bad-block";
  }
  return "unknown";
}

static Result<media::RootBlock*> WritableRoot(Transaction& tx) {
  ASSIGN_OR_RETURN(uint8_t * p, tx.Write(media::kRootBlockNo, media::kRootMagic));
  return reinterpret_cast<media::RootBlock*>(p);
}

Status RmapInsert(NodeAllocator* alloc, Transaction& tx, const RmapRec& rec) {
  ASSIGN_OR_RETURN(media::RootBlock * root, WritableRoot(tx));
  Btree tree(&tx, RmapShape(), &root->rmap, 0, alloc);
  return tree.Insert(&rec).Prefixed("rmap insert");
}

Status RmapDelete(NodeAllocator* alloc, Transaction& tx, uint64_t start, uint64_t owner, uint64_t offset) {
  ASSIGN_OR_RETURN(media::RootBlock * root, WritableRoot(tx));
  Btree tree(&tx, RmapShape(), &root->rmap, 0, alloc);
  uint64_t key[3] = {start, owner, offset};
  Status st = tree.Delete(key);
  if (st.err() == ENOENT)
    return Errno(EUCLEAN, "rmap record for block " + std::to_string(start) + " owner " +
                              std::to_string(owner) + " is missing");
  return st;
}

Status RmapSetLength(NodeAllocator* alloc, Transaction& tx, uint64_t start, uint64_t owner, uint64_t offset,
                     uint32_t length) {
  ASSIGN_OR_RETURN(media::RootBlock * root, WritableRoot(tx));
  Btree tree(&tx, RmapShape(), &root->rmap, 0, alloc);
  uint64_t key[3] = {start, owner, offset};
  RmapRec rec;
  ASSIGN_OR_RETURN(bool found, tree.Lookup(key, &rec));
  if (!found)
    return Errno(EUCLEAN, "rmap record for block " + std::to_string(start) + " is missing");
  rec.length = length;
  return tree.Update(&rec);
}

Result<std::vector<RmapRec>> RmapOwners(Transaction& tx, uint64_t bno) {
  ASSIGN_OR_RETURN(media::RootBlock root, ReadRoot(tx));
  std::vector<RmapRec> out;
  // A free block has no owner.
  {
    Btree free_tree(&tx, FreeBnoShape(), &root.free_bno, 0, nullptr);
    media::FreeBnoRec f;
    ASSIGN_OR_RETURN(bool hit, free_tree.LookupLE(&bno, &f));
    if (hit && f.start + f.length > bno) return out;
  }
  ASSIGN_OR_RETURN(uint32_t want, RefcountOf(tx, root, bno));
  if (want == 0) want = 1;
  Btree tree(&tx, RmapShape(), &root.rmap, 0, nullptr);
  uint64_t key[3] = {bno, UINT64_MAX, UINT64_MAX};
  // Walk back from the last record starting at or before bno; the owners'
  // records are among those, and there are exactly `want` of them.
  for (uint64_t steps = 0; out.size() < want; steps++) {
    RmapRec r;
    ASSIGN_OR_RETURN(bool hit, tree.LookupLE(key, &r));
    if (!hit || steps > (1u << 22)) break;
    if (r.start + r.length > bno) out.push_back(r);
    uint64_t k[3] = {r.start, r.owner, r.offset};
    if (!PrevKey(k)) break;
    key[0] = k[0];
    key[1] = k[1];
    key[2] = k[2];
  }
  if (out.size() != want)
    return Errno(EUCLEAN, "rmap: block " + std::to_string(bno) + " has " + std::to_string(out.size()) +
                              " owner records, expected " + std::to_string(want));
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<RmapRec>> RmapQuery(Transaction& tx, uint64_t start, uint64_t len) {
  std::vector<RmapRec> out;
  if (len == 0) return out;
  // Records that begin before `start` and reach into the range cover `start`.
  ASSIGN_OR_RETURN(auto first, RmapOwners(tx, start));
  for (const auto& r : first)
    if (r.start < start) out.push_back(r);
  ASSIGN_OR_RETURN(media::RootBlock root, ReadRoot(tx));
  Btree tree(&tx, RmapShape(), &root.rmap, 0, nullptr);
  uint64_t key[3] = {start, 0, 0};
  uint64_t end = start + len;
  RETURN_IF_ERROR(tree.Scan(key, [&](const void* p) {
    const auto* r = static_cast<const RmapRec*>(p);
    if (r->start >= end) return false;
    out.push_back(*r);
    return true;
  }));
  return out;
}

}  // namespace udax
