// btree/btree.cc — the B+tree engine (see btree.h): descent with a recorded
// path, lookups and scans that step between leaves through that path (there
// are no sibling pointers), insert with split-on-the-way-up, delete with
// merging of neighbours that fit in one node and root collapse, and the fsck
// node visitor.
//
// Layout of a node block: media::BtreeNodeHeader, then nrecs packed items of
// `stride` bytes starting at sizeof(BtreeNodeHeader): records (leaf) or
// {key (key_words u64), child u64} entries (interior). All item access goes
// through memcpy so that no unaligned u64 is ever dereferenced.
//
// Contracts (builds with UDAX_ASSERTS, util/assert.h): after every change to
// a node, AssertNodeSound checks it — its shape's magic, its level, at most
// capacity items, keys strictly ascending, interior children non-null and not
// the node itself; a split checks that the left half's last key is below the
// right half's first (the separator); a delete leaves no empty non-root node
// behind and a root with at least two children (or a leaf); a new root's
// level is one below the tree's level count. These hold whatever the media
// holds, because the engine works only on nodes that passed the verifier
// (one node each) and checks at run time, in every build, the three places
// where it combines what two nodes say: a separator must fit between its
// parent's neighbouring keys, a merge must keep the left node's keys below
// the right one's, and a collapsed root's child must sit one level down —
// each an EUCLEAN naming the block otherwise. A node read through the
// transaction must carry the shape's magic (an image of another tree's block
// is a cross-link).
#include "btree/btree.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "util/assert.h"

namespace udax {
namespace {

#if UDAX_ASSERTS_ON
thread_local Btree::Fault tls_fault = Btree::Fault::kNone;  // InjectFaultForTesting
bool Injected(Btree::Fault f) { return tls_fault == f; }
#endif

using media::BtreeNodeHeader;
using media::kBlockSize;

constexpr uint32_t kMaxDepth = 16;    // levels of the deepest tree we accept
constexpr uint32_t kMaxKeyWords = 4;  // largest key any shape may have
constexpr size_t kHdr = sizeof(BtreeNodeHeader);

using Key = std::array<uint64_t, kMaxKeyWords>;

// One step of a root-to-leaf path: the node and the item chosen in it (the
// child index at interior nodes, the record position at the leaf).
struct PathEnt {
  uint64_t bno;
  int32_t idx;
};

struct Path {
  uint32_t depth = 0;  // == root levels; the leaf is ent[depth - 1]
  PathEnt ent[kMaxDepth];
};

const BtreeNodeHeader& Header(const uint8_t* node) {
  return *reinterpret_cast<const BtreeNodeHeader*>(node);
}
BtreeNodeHeader& Header(uint8_t* node) { return *reinterpret_cast<BtreeNodeHeader*>(node); }

Status Corrupt(uint64_t bno, const std::string& what) {
  return Errno(EUCLEAN, "metadata corruption in block " + std::to_string(bno) + ": " + what);
}

// The engine proper, built over a Btree's members for one call (keeps the
// public header free of implementation detail).
class Engine {
 public:
  Engine(Transaction* tx, const media::TreeShape& shape, media::BtreeRoot* root, uint64_t owner,
         NodeAllocator* alloc, bool* root_changed, bool keep_empty_root)
      : tx_(tx),
        root_(root),
        owner_(owner),
        alloc_(alloc),
        root_changed_(root_changed),
        keep_empty_root_(keep_empty_root),
        shape_(shape),
        kw_(shape_.key_words),
        estride_(kw_ * 8 + 8),
        leaf_cap_(media::LeafCapacity(shape_)),
        node_cap_(media::NodeCapacity(shape_)) {}

  Status CheckShape() const {
    if (kw_ == 0 || kw_ > kMaxKeyWords || shape_.rec_size < kw_ * 8)
      return Errno(EINVAL, std::string("btree shape ") + shape_.name + " is not supported");
    return Status::Ok();
  }

  Status CheckRoot() const {
    const media::BtreeRoot& r = *root_;
    if ((r.block == 0) != (r.levels == 0) || r.levels > kMaxDepth)
      return Errno(EUCLEAN, std::string("metadata corruption: bad ") + shape_.name +
                                " btree root (block " + std::to_string(r.block) + ", levels " +
                                std::to_string(r.levels) + ")");
    return Status::Ok();
  }

  uint32_t Stride(uint32_t level) const { return level == 0 ? shape_.rec_size : estride_; }
  uint32_t Cap(uint32_t level) const { return level == 0 ? leaf_cap_ : node_cap_; }

  static const uint8_t* Item(const uint8_t* node, uint32_t stride, uint32_t i) {
    return node + kHdr + size_t(i) * stride;
  }
  static uint8_t* Item(uint8_t* node, uint32_t stride, uint32_t i) {
    return node + kHdr + size_t(i) * stride;
  }
  uint64_t Child(const uint8_t* node, uint32_t i) const {
    uint64_t c;
    std::memcpy(&c, Item(node, estride_, i) + kw_ * 8, 8);
    return c;
  }
  Key LoadKey(const void* p) const {
    Key k{};
    std::memcpy(k.data(), p, kw_ * 8);
    return k;
  }
  // Compares the key stored at `p` (possibly unaligned) with `key`.
  int CompareAt(const uint8_t* p, const uint64_t* key) const {
    for (uint32_t w = 0; w < kw_; w++) {
      uint64_t v;
      std::memcpy(&v, p + w * 8, 8);
      if (v != key[w]) return v < key[w] ? -1 : 1;
    }
    return 0;
  }
  // First item whose key is >= key (strict: > key).
  uint32_t LowerBound(const uint8_t* node, uint32_t stride, const uint64_t* key,
                      bool strict) const {
    uint32_t lo = 0, hi = Header(node).nrecs;
    while (lo < hi) {
      uint32_t mid = (lo + hi) / 2;
      int c = CompareAt(Item(node, stride, mid), key);
      if (c < 0 || (strict && c == 0)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  // Reads a node and checks that it sits where the tree expects it.
  Result<const uint8_t*> ReadNode(uint64_t bno, uint32_t level) {
    ASSIGN_OR_RETURN(const uint8_t* node, tx_->Read(bno, shape_.magic));
    const BtreeNodeHeader& h = Header(node);
    if (h.hdr.magic != shape_.magic)  // the transaction's image of another tree's block
      return Corrupt(bno, std::string(shape_.name) + " btree reaches a block of another kind (found " +
                              media::MagicName(h.hdr.magic) + ")");
    if (h.level != level)
      return Corrupt(bno, std::string(shape_.name) + " btree level mismatch (found " +
                              std::to_string(h.level) + ", expected " + std::to_string(level) +
                              ")");
    if (h.nrecs > Cap(level))
      return Corrupt(bno, std::string(shape_.name) + " node has too many records");
    if (level > 0 && h.nrecs == 0)
      return Corrupt(bno, std::string(shape_.name) + " empty interior node");
    return node;
  }
  Result<uint8_t*> WriteNode(uint64_t bno) { return tx_->Write(bno, shape_.magic); }

  // Inserting separator `item` at pos of the interior node at bno (a child
  // split): its key must lie between the keys around pos, or the child held
  // keys outside its parent's range (a crafted image).
  Status CheckSeparatorFits(const uint8_t* node, uint64_t bno, uint32_t pos, const uint8_t* item) const {
    const uint32_t n = Header(node).nrecs;
    const Key sep = LoadKey(item);
    if ((pos > 0 && CompareAt(Item(node, estride_, pos - 1), sep.data()) >= 0) ||
        (pos < n && CompareAt(Item(node, estride_, pos), sep.data()) <= 0))
      return Corrupt(bno, std::string(shape_.name) + " btree: keys of child " + std::to_string(pos - 1) +
                              " lie outside the range its parent gives it");
    return Status::Ok();
  }

  // Debug builds: the node at bno, just changed by this engine, is sound on
  // its own (see the file comment). O(node).
  void AssertNodeSound(const uint8_t* node, uint64_t bno, uint32_t level, const char* after) const {
#if UDAX_ASSERTS_ON
    const BtreeNodeHeader& h = Header(node);
    auto where = [&] {  // built only when a check fails
      return std::string(shape_.name) + " btree node " + std::to_string(bno) + " after " + after;
    };
    UDAX_ASSERT_MSG(h.hdr.magic == shape_.magic, where() + ": magic " + media::MagicName(h.hdr.magic));
    UDAX_ASSERT_MSG(h.level == level, where() + ": level " + std::to_string(h.level) + ", expected " +
                                          std::to_string(level));
    UDAX_ASSERT_MSG(h.nrecs <= Cap(level), where() + ": " + std::to_string(h.nrecs) + " items, capacity " +
                                               std::to_string(Cap(level)));
    const uint32_t stride = Stride(level);
    for (uint32_t i = 1; i < h.nrecs; i++)
      UDAX_ASSERT_MSG(CompareAt(Item(node, stride, i - 1), LoadKey(Item(node, stride, i)).data()) < 0,
                      where() + ": keys out of order at item " + std::to_string(i));
    for (uint32_t i = 0; level > 0 && i < h.nrecs; i++) {
      const uint64_t c = Child(node, i);
      UDAX_ASSERT_MSG(c != 0 && c != bno, where() + ": child " + std::to_string(i) + " is block " + std::to_string(c));
    }
#endif
  }
  // The node at bno as this transaction holds it (debug checks only).
  void AssertHeldNodeSound(uint64_t bno, uint32_t level, const char* after) {
#if UDAX_ASSERTS_ON
    Result<const uint8_t*> node = tx_->Read(bno, shape_.magic);
    UDAX_ASSERT_MSG(node.has_value(), std::string(shape_.name) + " btree node " + std::to_string(bno) +
                                          " unreadable after " + after);
    AssertNodeSound(*node, bno, level, after);
#endif
  }

  uint32_t LevelAt(const Path& p, uint32_t d) const { return p.depth - 1 - d; }

  // Descends from the root towards `key` (the leftmost leaf when null),
  // recording the path. At the leaf, idx is the first record >= key.
  Status Descend(const uint64_t* key, Path* p) {
    RETURN_IF_ERROR(CheckRoot());
    p->depth = root_->levels;
    uint64_t bno = root_->block;
    for (uint32_t d = 0; d < p->depth; d++) {
      uint32_t level = LevelAt(*p, d);
      ASSIGN_OR_RETURN(const uint8_t* node, ReadNode(bno, level));
      p->ent[d] = {bno, 0};
      if (level == 0) {
        if (key) p->ent[d].idx = int32_t(LowerBound(node, shape_.rec_size, key, false));
      } else {
        // Largest key <= search key, or child 0.
        if (key) p->ent[d].idx = std::max(int32_t(LowerBound(node, estride_, key, true)) - 1, 0);
        bno = Child(node, uint32_t(p->ent[d].idx));
      }
    }
    return Status::Ok();
  }

  // Moves the path to the first record of the next leaf; false at the end.
  Result<bool> NextLeaf(Path* p) {
    for (int d = int(p->depth) - 2; d >= 0; d--) {
      ASSIGN_OR_RETURN(const uint8_t* node, ReadNode(p->ent[d].bno, LevelAt(*p, d)));
      if (p->ent[d].idx + 1 >= Header(node).nrecs) continue;
      p->ent[d].idx++;
      return DescendEdge(p, uint32_t(d), /*rightmost=*/false);
    }
    return false;
  }

  // Moves the path past the last record of the previous leaf (idx == nrecs).
  Result<bool> PrevLeaf(Path* p) {
    for (int d = int(p->depth) - 2; d >= 0; d--) {
      if (p->ent[d].idx == 0) continue;
      p->ent[d].idx--;
      return DescendEdge(p, uint32_t(d), /*rightmost=*/true);
    }
    return false;
  }

  // From the child chosen at depth d, follows the leftmost (or rightmost)
  // edge down to a leaf.
  Result<bool> DescendEdge(Path* p, uint32_t d, bool rightmost) {
    for (; d + 1 < p->depth; d++) {
      ASSIGN_OR_RETURN(const uint8_t* node, ReadNode(p->ent[d].bno, LevelAt(*p, d)));
      uint64_t child = Child(node, uint32_t(p->ent[d].idx));
      ASSIGN_OR_RETURN(const uint8_t* cn, ReadNode(child, LevelAt(*p, d + 1)));
      int32_t last = int32_t(Header(cn).nrecs);  // past the end at a leaf
      if (LevelAt(*p, d + 1) > 0) last--;        // the last child at an interior node
      p->ent[d + 1] = {child, rightmost ? last : 0};
    }
    return true;
  }

  // The leaf at the end of the path.
  Result<const uint8_t*> Leaf(const Path& p) { return ReadNode(p.ent[p.depth - 1].bno, 0); }

  void CopyOut(const uint8_t* rec, void* out) const {
    if (out) std::memcpy(out, rec, shape_.rec_size);
  }

  // Smallest record with key >= key (> key when strict).
  Result<bool> Seek(const uint64_t* key, bool strict, void* out) {
    RETURN_IF_ERROR(CheckShape());
    if (root_->levels == 0 && root_->block == 0) return false;
    Path p;
    RETURN_IF_ERROR(Descend(key, &p));
    ASSIGN_OR_RETURN(const uint8_t* leaf, Leaf(p));
    uint32_t idx = LowerBound(leaf, shape_.rec_size, key, strict);
    while (idx >= Header(leaf).nrecs) {
      ASSIGN_OR_RETURN(bool more, NextLeaf(&p));
      if (!more) return false;
      ASSIGN_OR_RETURN(leaf, Leaf(p));
      idx = 0;
    }
    CopyOut(Item(leaf, shape_.rec_size, idx), out);
    return true;
  }

  Result<bool> LookupLE(const uint64_t* key, void* out) {
    RETURN_IF_ERROR(CheckShape());
    if (root_->levels == 0 && root_->block == 0) return false;
    Path p;
    RETURN_IF_ERROR(Descend(key, &p));
    ASSIGN_OR_RETURN(const uint8_t* leaf, Leaf(p));
    uint32_t idx = LowerBound(leaf, shape_.rec_size, key, /*strict=*/true);  // first > key
    while (idx == 0) {
      ASSIGN_OR_RETURN(bool more, PrevLeaf(&p));
      if (!more) return false;
      ASSIGN_OR_RETURN(leaf, Leaf(p));
      idx = Header(leaf).nrecs;
    }
    CopyOut(Item(leaf, shape_.rec_size, idx - 1), out);
    return true;
  }

  Result<bool> Lookup(const uint64_t* key, void* out) {
    RETURN_IF_ERROR(CheckShape());
    if (root_->levels == 0 && root_->block == 0) return false;
    Path p;
    RETURN_IF_ERROR(Descend(key, &p));
    ASSIGN_OR_RETURN(const uint8_t* leaf, Leaf(p));
    uint32_t idx = uint32_t(p.ent[p.depth - 1].idx);
    if (idx >= Header(leaf).nrecs || CompareAt(Item(leaf, shape_.rec_size, idx), key) != 0)
      return false;
    CopyOut(Item(leaf, shape_.rec_size, idx), out);
    return true;
  }

  Status Scan(const uint64_t* start, const std::function<bool(const void*)>& fn) {
    RETURN_IF_ERROR(CheckShape());
    if (root_->levels == 0 && root_->block == 0) return Status::Ok();
    Path p;
    RETURN_IF_ERROR(Descend(start, &p));
    uint32_t idx = uint32_t(p.ent[p.depth - 1].idx);
    for (;;) {
      ASSIGN_OR_RETURN(const uint8_t* leaf, Leaf(p));
      for (uint32_t i = idx; i < Header(leaf).nrecs; i++)
        if (!fn(Item(leaf, shape_.rec_size, i))) return Status::Ok();
      ASSIGN_OR_RETURN(bool more, NextLeaf(&p));
      if (!more) return Status::Ok();
      idx = 0;
    }
  }

  Status CheckWritable() {
    RETURN_IF_ERROR(CheckShape());
    if (!alloc_) return Errno(EROFS, std::string(shape_.name) + " btree opened read-only");
    return Status::Ok();
  }

  // Formats a fresh node image at bno.
  Result<uint8_t*> NewNode(uint64_t bno, uint32_t level) {
    ASSIGN_OR_RETURN(uint8_t * node, tx_->New(bno));
    BtreeNodeHeader& h = Header(node);
    h.hdr.magic = shape_.magic;
    h.hdr.blkno = bno;
    h.owner = owner_;
    h.level = uint16_t(level);
    h.nrecs = 0;
    return node;
  }

  void SetRoot(uint64_t block, uint32_t levels) {
    UDAX_DEBUG_ONLY(if (Injected(Btree::Fault::kWrongRootLevel) && block) levels++;)
    root_->block = block;
    root_->levels = levels;
    *root_changed_ = true;
#if UDAX_ASSERTS_ON
    if (block == 0) return;
    Result<const uint8_t*> node = tx_->Read(block, shape_.magic);
    UDAX_ASSERT_MSG(node.has_value() && uint32_t{Header(*node).level} + 1 == levels,
                    std::string(shape_.name) + " btree root " + std::to_string(block) + " of a " +
                        std::to_string(levels) + "-level tree is not on level " + std::to_string(levels - 1));
#endif
  }

  // Frees the blocks of `bnos` (used to undo a partial allocation).
  void FreeAll(const uint64_t* bnos, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) alloc_->FreeNode(*tx_, bnos[i], shape_, owner_).IgnoreError();
  }

  Status Insert(const void* rec) {
    RETURN_IF_ERROR(CheckWritable());
    RETURN_IF_ERROR(CheckRoot());
    Key key = LoadKey(rec);
    if (root_->levels == 0) {
      ASSIGN_OR_RETURN(uint64_t bno, alloc_->AllocNode(*tx_, shape_, owner_));
      ASSIGN_OR_RETURN(uint8_t * node, NewNode(bno, 0));
      std::memcpy(Item(node, shape_.rec_size, 0), rec, shape_.rec_size);
      Header(node).nrecs = 1;
      SetRoot(bno, 1);
      return Status::Ok();
    }
    Path p;
    RETURN_IF_ERROR(Descend(key.data(), &p));
    // Gather what the change needs before touching anything: the nodes whose
    // lower-bound key must drop, and how many nodes split.
    uint16_t nrecs[kMaxDepth];
    bool lower[kMaxDepth];
    for (uint32_t d = 0; d < p.depth; d++) {
      ASSIGN_OR_RETURN(const uint8_t* node, ReadNode(p.ent[d].bno, LevelAt(p, d)));
      nrecs[d] = Header(node).nrecs;
      lower[d] = false;
      if (d + 1 < p.depth) {
        lower[d] = p.ent[d].idx == 0 && CompareAt(Item(node, estride_, 0), key.data()) > 0;
      } else {
        uint32_t idx = uint32_t(p.ent[d].idx);
        if (idx < nrecs[d] && CompareAt(Item(node, shape_.rec_size, idx), key.data()) == 0)
          return Errno(EEXIST, std::string(shape_.name) + " btree: key already present");
      }
    }
    uint32_t splits = 0;
    for (int d = int(p.depth) - 1; d >= 0 && nrecs[d] >= Cap(LevelAt(p, uint32_t(d))); d--)
      splits++;
    uint32_t need = splits + (splits == p.depth ? 1 : 0);  // + a new root
    if (splits == p.depth && p.depth >= kMaxDepth)
      return Errno(EFBIG, std::string(shape_.name) + " btree too deep");
    uint64_t fresh[kMaxDepth + 1];
    for (uint32_t i = 0; i < need; i++) {
      Result<uint64_t> b = alloc_->AllocNode(*tx_, shape_, owner_);
      if (!b) {
        FreeAll(fresh, i);
        return b.error();
      }
      fresh[i] = *b;
    }
    for (uint32_t d = 0; d + 1 < p.depth; d++) {
      if (!lower[d]) continue;
      ASSIGN_OR_RETURN(uint8_t * node, WriteNode(p.ent[d].bno));
      std::memcpy(Item(node, estride_, 0), key.data(), kw_ * 8);
      AssertNodeSound(node, p.ent[d].bno, LevelAt(p, d), "lowering its first key");
    }
    // Insert the record in the leaf, then each separator one level up while
    // nodes split.
    uint8_t item[kBlockSize];
    std::memcpy(item, rec, shape_.rec_size);
    uint32_t pos = uint32_t(p.ent[p.depth - 1].idx);
    bool rightmost = true;  // the leaf is the last one of the tree
    for (uint32_t d = 0; d + 1 < p.depth; d++)
      rightmost = rightmost && uint32_t(p.ent[d].idx) + 1 == nrecs[d];
    uint32_t used = 0;
    for (int d = int(p.depth) - 1;; d--) {
      uint32_t level = LevelAt(p, uint32_t(d));
      uint32_t stride = Stride(level);
      uint64_t bno = p.ent[d].bno;
      ASSIGN_OR_RETURN(uint8_t * node, WriteNode(bno));
      uint32_t n = Header(node).nrecs;
      if (d < int(p.depth) - 1) RETURN_IF_ERROR(CheckSeparatorFits(node, bno, pos, item));
      UDAX_DEBUG_ONLY(if (Injected(Btree::Fault::kMisplaceInsert) && pos < n) pos++;)
      if (n < Cap(level)) {
        uint8_t* at = Item(node, stride, pos);
        std::memmove(at + stride, at, size_t(n - pos) * stride);
        std::memcpy(at, item, stride);
        Header(node).nrecs = uint16_t(n + 1);
        AssertNodeSound(node, bno, level, "insert");
        return Status::Ok();
      }
      // Split: the n + 1 items are dealt out to this node and a new right
      // node. Appending at the very end of the tree (sequential inserts) keeps
      // this node full; otherwise the items are halved.
      uint8_t all[2 * kBlockSize];
      uint8_t* items = Item(node, stride, 0);
      std::memcpy(all, items, size_t(pos) * stride);
      std::memcpy(all + size_t(pos) * stride, item, stride);
      std::memcpy(all + size_t(pos + 1) * stride, items + size_t(pos) * stride,
                  size_t(n - pos) * stride);
      uint32_t left = (rightmost && pos == n) ? n : (n + 1) / 2;
      uint64_t rbno = fresh[used++];
      ASSIGN_OR_RETURN(uint8_t * right, NewNode(rbno, level));
      std::memcpy(Item(right, stride, 0), all + size_t(left) * stride,
                  size_t(n + 1 - left) * stride);
      Header(right).nrecs = uint16_t(n + 1 - left);
      ASSIGN_OR_RETURN(node, WriteNode(bno));  // re-fetch after New
      std::memcpy(Item(node, stride, 0), all, size_t(left) * stride);
      std::memset(Item(node, stride, left), 0, kBlockSize - kHdr - size_t(left) * stride);
      Header(node).nrecs = uint16_t(left);
      AssertNodeSound(node, bno, level, "split (left half)");
      AssertHeldNodeSound(rbno, level, "split (right half)");
      UDAX_ASSERT_MSG(left > 0 && CompareAt(Item(node, stride, left - 1), LoadKey(all + size_t(left) * stride).data()) < 0,
                      std::string(shape_.name) + " btree split of node " + std::to_string(bno) +
                          ": the left half's last key is not below the separator");
      // The separator entry for the parent: right's first key, right's block.
      std::memcpy(item, Item(right, stride, 0), kw_ * 8);
      std::memcpy(item + kw_ * 8, &rbno, 8);
      if (d == 0) {
        uint64_t nbno = fresh[used++];
        ASSIGN_OR_RETURN(uint8_t * root, NewNode(nbno, level + 1));
        ASSIGN_OR_RETURN(const uint8_t* lnode, ReadNode(bno, level));
        std::memcpy(Item(root, estride_, 0), Item(lnode, stride, 0), kw_ * 8);
        std::memcpy(Item(root, estride_, 0) + kw_ * 8, &bno, 8);
        std::memcpy(Item(root, estride_, 1), item, estride_);
        Header(root).nrecs = 2;
        AssertNodeSound(root, nbno, level + 1, "new root");
        SetRoot(nbno, p.depth + 1);
        return Status::Ok();
      }
      pos = uint32_t(p.ent[d - 1].idx) + 1;
    }
  }

  Status Update(const void* rec) {
    RETURN_IF_ERROR(CheckWritable());
    Key key = LoadKey(rec);
    Status absent = Errno(ENOENT, std::string(shape_.name) + " btree: no record to update");
    if (root_->levels == 0 && root_->block == 0) return absent;
    Path p;
    RETURN_IF_ERROR(Descend(key.data(), &p));
    ASSIGN_OR_RETURN(const uint8_t* leaf, Leaf(p));
    uint32_t idx = uint32_t(p.ent[p.depth - 1].idx);
    if (idx >= Header(leaf).nrecs || CompareAt(Item(leaf, shape_.rec_size, idx), key.data()) != 0)
      return absent;
    ASSIGN_OR_RETURN(uint8_t * w, WriteNode(p.ent[p.depth - 1].bno));
    std::memcpy(Item(w, shape_.rec_size, idx), rec, shape_.rec_size);
    AssertNodeSound(w, p.ent[p.depth - 1].bno, 0, "update");
    return Status::Ok();
  }

  // Item count of a node this delete already holds in the transaction; it
  // may be a transiently empty interior node, which ReadNode refuses.
  Result<uint32_t> HeldCount(uint64_t bno) {
    ASSIGN_OR_RETURN(const uint8_t* node, tx_->Read(bno, shape_.magic));
    return uint32_t(Header(node).nrecs);
  }

  // Removes item idx of the node at bno (on `level`); the node may become
  // empty (the caller then frees it or fills it).
  Status RemoveItem(uint64_t bno, uint32_t level, uint32_t idx) {
    uint32_t stride = Stride(level);
    ASSIGN_OR_RETURN(uint8_t * node, WriteNode(bno));
    uint32_t n = Header(node).nrecs;
    if (idx >= n)
      return Corrupt(bno, std::string(shape_.name) + " btree: item to remove is missing");
    uint8_t* at = Item(node, stride, idx);
    std::memmove(at, at + stride, size_t(n - idx - 1) * stride);
    std::memset(Item(node, stride, n - 1), 0, stride);
    Header(node).nrecs = uint16_t(n - 1);
    AssertNodeSound(node, bno, level, "removing an item");
    return Status::Ok();
  }

  // Appends the items of the node at rbno to those of its left neighbour at
  // lbno (both on `level`); returns left's former count. Key order holds
  // because every key under rbno is above every key under lbno.
  Result<uint32_t> Append(uint64_t lbno, uint64_t rbno, uint32_t level) {
    uint32_t stride = Stride(level);
    ASSIGN_OR_RETURN(uint8_t * left, WriteNode(lbno));
    ASSIGN_OR_RETURN(const uint8_t* right, tx_->Read(rbno, shape_.magic));
    uint32_t ln = Header(left).nrecs, rn = Header(right).nrecs;
    if (ln + rn > Cap(level))
      return Corrupt(lbno, std::string(shape_.name) + " btree: merged node would overflow");
    if (ln > 0 && rn > 0 && CompareAt(Item(left, stride, ln - 1), LoadKey(Item(right, stride, 0)).data()) >= 0)
      return Corrupt(rbno, std::string(shape_.name) + " btree: first key not above the last key of left sibling " +
                               std::to_string(lbno));
    std::memcpy(Item(left, stride, ln), Item(right, stride, 0), size_t(rn) * stride);
    Header(left).nrecs = uint16_t(ln + rn);
    AssertNodeSound(left, lbno, level, "merging its right sibling");
    return ln;
  }

  // Merges child j of the interior node pbno (on plevel) into child j - 1,
  // which the caller checked they fit in: the items move left, the right
  // node is freed and its entry leaves the parent (whose key j - 1 stays a
  // lower bound of the merged subtree). Merging two interior nodes makes the
  // left one's last child and the right one's first child siblings, so those
  // are merged too when they fit, and so on down that seam.
  Status MergeChildren(uint64_t pbno, uint32_t plevel, uint32_t j) {
    for (;;) {
      uint32_t level = plevel - 1;
      ASSIGN_OR_RETURN(const uint8_t* parent, tx_->Read(pbno, shape_.magic));
      uint64_t lbno = Child(parent, j - 1), rbno = Child(parent, j);
      ASSIGN_OR_RETURN(uint32_t ln, Append(lbno, rbno, level));
      RETURN_IF_ERROR(RemoveItem(pbno, plevel, j));
      RETURN_IF_ERROR(alloc_->FreeNode(*tx_, rbno, shape_, owner_));
      if (level == 0) return Status::Ok();
      ASSIGN_OR_RETURN(const uint8_t* merged, tx_->Read(lbno, shape_.magic));
      if (ln == 0 || ln >= Header(merged).nrecs) return Status::Ok();  // no seam
      uint64_t a = Child(merged, ln - 1), b = Child(merged, ln);
      ASSIGN_OR_RETURN(const uint8_t* an, ReadNode(a, level - 1));
      uint32_t na = Header(an).nrecs;
      ASSIGN_OR_RETURN(const uint8_t* bn, ReadNode(b, level - 1));
      if (na + Header(bn).nrecs > Cap(level - 1)) return Status::Ok();
      pbno = lbno;
      plevel = level;
      j = ln;
    }
  }

  // The node at depth d > 0 of the path lost items. While it and its left or
  // right neighbour under the same parent fit in one node, the two are
  // merged (into the left one, which the path then follows); an empty only
  // child is freed. Returns whether the parent lost entries.
  Result<bool> MergeAround(Path* p, uint32_t d) {
    const uint32_t level = LevelAt(*p, d), cap = Cap(level);
    const uint64_t pbno = p->ent[d - 1].bno;
    bool shrank = false;
    for (;;) {
      uint32_t i = uint32_t(p->ent[d - 1].idx);
      uint64_t xbno = p->ent[d].bno;
      ASSIGN_OR_RETURN(const uint8_t* parent, ReadNode(pbno, level + 1));
      uint32_t pn = Header(parent).nrecs;
      if (i >= pn || Child(parent, i) != xbno)
        return Corrupt(pbno, std::string(shape_.name) + " btree: path lost its child entry");
      uint64_t lbno = i > 0 ? Child(parent, i - 1) : 0;
      uint64_t rbno = i + 1 < pn ? Child(parent, i + 1) : 0;
      ASSIGN_OR_RETURN(uint32_t xn, HeldCount(xbno));
      UDAX_DEBUG_ONLY(if (Injected(Btree::Fault::kKeepEmptyNode) && xn == 0) lbno = rbno = 0;)
      if (pn == 1) {
        if (xn > 0) return shrank;
        RETURN_IF_ERROR(RemoveItem(pbno, level + 1, i));
        RETURN_IF_ERROR(alloc_->FreeNode(*tx_, xbno, shape_, owner_));
        return true;
      }
      if (lbno) {
        ASSIGN_OR_RETURN(const uint8_t* l, ReadNode(lbno, level));
        if (Header(l).nrecs + xn <= cap) {
          RETURN_IF_ERROR(MergeChildren(pbno, level + 1, i));
          p->ent[d] = {lbno, 0};
          p->ent[d - 1].idx = int32_t(i - 1);
          shrank = true;
          continue;
        }
      }
      if (rbno) {
        ASSIGN_OR_RETURN(const uint8_t* r, ReadNode(rbno, level));
        if (xn + Header(r).nrecs <= cap) {
          RETURN_IF_ERROR(MergeChildren(pbno, level + 1, i + 1));
          shrank = true;
          continue;
        }
      }
      UDAX_ASSERT_MSG(xn > 0, std::string(shape_.name) + " btree delete leaves empty node " +
                                  std::to_string(xn == 0 ? xbno : 0) + " beside its siblings");
      return shrank;
    }
  }

  Status Delete(const uint64_t* key) {
    RETURN_IF_ERROR(CheckWritable());
    if (root_->levels == 0 && root_->block == 0)
      return Errno(ENOENT, std::string(shape_.name) + " btree: no such key");
    Path p;
    RETURN_IF_ERROR(Descend(key, &p));  // reads (and checks) every node of the path
    const uint32_t leafd = p.depth - 1;
    {
      ASSIGN_OR_RETURN(const uint8_t* leaf, Leaf(p));
      uint32_t idx = uint32_t(p.ent[leafd].idx);
      if (idx >= Header(leaf).nrecs || CompareAt(Item(leaf, shape_.rec_size, idx), key) != 0)
        return Errno(ENOENT, std::string(shape_.name) + " btree: no such key");
    }
    RETURN_IF_ERROR(RemoveItem(p.ent[leafd].bno, 0, uint32_t(p.ent[leafd].idx)));
    // Merge from the leaf up for as long as parents lose entries.
    int d = int(leafd);
    for (; d > 0; d--) {
      ASSIGN_OR_RETURN(bool shrank, MergeAround(&p, uint32_t(d)));
      if (!shrank) break;
    }
    if (d == 0) {
      ASSIGN_OR_RETURN(uint32_t n, HeldCount(root_->block));
      if (n == 0 && !(keep_empty_root_ && root_->levels == 1)) {  // the last record is gone
        uint64_t old = root_->block;
        SetRoot(0, 0);
        return alloc_->FreeNode(*tx_, old, shape_, owner_);
      }
    }
    // Collapse interior roots with a single child.
    while (root_->levels > 1) {
      ASSIGN_OR_RETURN(const uint8_t* root, ReadNode(root_->block, root_->levels - 1));
      if (Header(root).nrecs != 1) break;
      uint64_t child = Child(root, 0), old = root_->block;
      RETURN_IF_ERROR(ReadNode(child, root_->levels - 2).error());  // on the level below
      SetRoot(child, root_->levels - 1);
      RETURN_IF_ERROR(alloc_->FreeNode(*tx_, old, shape_, owner_));
    }
#if UDAX_ASSERTS_ON
    if (root_->levels > 0) {
      ASSIGN_OR_RETURN(uint32_t n, HeldCount(root_->block));
      UDAX_ASSERT_MSG(root_->levels == 1 ? n > 0 || keep_empty_root_ : n >= 2,
                      std::string(shape_.name) + " btree delete leaves root " + std::to_string(root_->block) +
                          " with " + std::to_string(n) + " items");
    }
#endif
    return Status::Ok();
  }

  using VisitFn = std::function<Status(uint64_t, const uint8_t*, const uint64_t*, const uint64_t*)>;

  Status Visit(uint64_t bno, uint32_t level, const uint64_t* lo, const uint64_t* hi,
               const VisitFn& fn) {
    ASSIGN_OR_RETURN(const uint8_t* node, ReadNode(bno, level));
    RETURN_IF_ERROR(fn(bno, node, lo, hi));
    if (level == 0) return Status::Ok();
    uint32_t n = Header(node).nrecs;
    for (uint32_t i = 0; i < n; i++) {
      Key clo = LoadKey(Item(node, estride_, i)), chi{};
      bool has_hi = i + 1 < n;
      if (has_hi) chi = LoadKey(Item(node, estride_, i + 1));
      uint64_t child = Child(node, i);
      RETURN_IF_ERROR(Visit(child, level - 1, clo.data(), has_hi ? chi.data() : hi, fn));
    }
    return Status::Ok();
  }

  Status VisitNodes(const VisitFn& fn) {
    RETURN_IF_ERROR(CheckShape());
    RETURN_IF_ERROR(CheckRoot());
    if (root_->levels == 0) return Status::Ok();
    return Visit(root_->block, root_->levels - 1, nullptr, nullptr, fn);
  }

 private:
  Transaction* tx_;
  media::BtreeRoot* root_;
  uint64_t owner_;
  NodeAllocator* alloc_;
  bool* root_changed_;
  const bool keep_empty_root_;
  const media::TreeShape& shape_;
  const uint32_t kw_;
  const uint32_t estride_;
  const uint32_t leaf_cap_;
  const uint32_t node_cap_;
};

}  // namespace

#define UDAX_ENGINE Engine(tx_, shape_, root_, owner_, alloc_, &root_changed_, keep_empty_root_)

Result<bool> Btree::Lookup(const uint64_t* key, void* rec_out) {
  return UDAX_ENGINE.Lookup(key, rec_out);
}
Result<bool> Btree::LookupLE(const uint64_t* key, void* rec_out) {
  return UDAX_ENGINE.LookupLE(key, rec_out);
}
Result<bool> Btree::LookupGE(const uint64_t* key, void* rec_out) {
  return UDAX_ENGINE.Seek(key, /*strict=*/false, rec_out);
}
Result<bool> Btree::LookupGT(const uint64_t* key, void* rec_out) {
  return UDAX_ENGINE.Seek(key, /*strict=*/true, rec_out);
}
Status Btree::Insert(const void* rec) { return UDAX_ENGINE.Insert(rec); }
Status Btree::Update(const void* rec) { return UDAX_ENGINE.Update(rec); }
Status Btree::Delete(const uint64_t* key) { return UDAX_ENGINE.Delete(key); }
Status Btree::Scan(const uint64_t* start, const std::function<bool(const void* rec)>& fn) {
  return UDAX_ENGINE.Scan(start, fn);
}
Status Btree::VisitNodes(const std::function<Status(uint64_t bno, const uint8_t* node,
                                                    const uint64_t* lo, const uint64_t* hi)>& fn) {
  return UDAX_ENGINE.VisitNodes(fn);
}

#undef UDAX_ENGINE

Status Btree::FreeEmptyRoot() {
  if (root_->levels == 0) return Status::Ok();
  ASSIGN_OR_RETURN(const uint8_t* node, tx_->Read(root_->block, shape_.magic));
  const auto& h = *reinterpret_cast<const media::BtreeNodeHeader*>(node);
  if (root_->levels != 1 || h.nrecs != 0)
    return Errno(EUCLEAN, std::string(shape_.name) + " btree of owner " + std::to_string(owner_) +
                              " still has records");
  uint64_t old = root_->block;
  root_->block = 0;
  root_->levels = 0;
  root_changed_ = true;
  return alloc_->FreeNode(*tx_, old, shape_, owner_);
}

void Btree::InjectFaultForTesting(Fault f) { UDAX_DEBUG_ONLY(tls_fault = f;) }

uint64_t Btree::CountRecords() {
  uint64_t n = 0;
  Status st = VisitNodes([&](uint64_t, const uint8_t* node, const uint64_t*, const uint64_t*) {
    const auto& h = *reinterpret_cast<const media::BtreeNodeHeader*>(node);
    if (h.level == 0) n += h.nrecs;
    return Status::Ok();
  });
  return st.ok() ? n : 0;
}

}  // namespace udax
