// check/fsck.cc — the offline checker (see udax/check.h). Reads everything through a
// read-only Transaction, so every block is CRC- and structure-verified; a
// corrupt block becomes a listed problem, never a crash. Block ownership is
// tracked in a DRAM map (one byte per block) to prove free ∪ used = device
// and that nothing is claimed twice.
#include "udax/check.h"

#include <sys/stat.h>

#include <cstring>
#include <algorithm>
#include <deque>
#include <tuple>
#include <unordered_map>

#include "space/dir.h"
#include "fs/fs_impl.h"
#include "space/rmap.h"
#include "media/verify.h"

namespace udax {



namespace {

enum Owner : uint8_t { kUnclaimed = 0, kReserved, kNode, kFreeList, kFree, kData, kBad };
const char* OwnerName(uint8_t o) {
  static const char* names[] = {"nothing", "static metadata", "a B+tree node", "the free list",
                                "free space", "file data", "a retired bad block"};
  return names[o];
}

struct InodeInfo {
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint64_t parent = 0;
  uint64_t dir_entries = 0;
  uint32_t refs = 0;     // directory entries naming it
  uint32_t subdirs = 0;  // for directories
  uint64_t found_parent = 0;
};

class Checker {
 public:
  // recovered: a read-write mount has just replayed the journal and
  // reclaimed the orphans, so an orphan left over is a problem.
  Checker(PmemDevice* dev, FsckReport* r, bool recovered) : dev_(dev), r_(r), recovered_(recovered) {}
  void Run();

 private:
  void Problem(std::string s) { r_->problems.push_back(std::move(s)); }
  bool Claim(uint64_t b, uint64_t n, Owner o, const std::string& who);
  void WalkTree(Transaction& tx, const media::BtreeRoot& root, uint32_t magic, uint64_t owner,
                const std::string& name, const std::function<void(const void*)>& on_rec);
  void WalkNode(Transaction& tx, const media::TreeShape& shape, uint64_t owner, const std::string& name,
                uint64_t bno, uint32_t level, const uint64_t* lo, const uint64_t* hi,
                const std::function<void(const void*)>& on_rec);
  const uint8_t* LeafWithBadRecords(uint64_t bno, uint32_t magic);
  void CheckFreeSpace(Transaction& tx, const media::RootBlock& root);
  void CheckInodes(Transaction& tx, const media::RootBlock& root);
  void CheckFile(Transaction& tx, const media::InodeRec& rec);
  void CheckDir(Transaction& tx, const media::InodeRec& rec);
  void CheckBadBlocks(const media::RootBlock& root);

  PmemDevice* dev_;
  FsckReport* r_;
  bool recovered_;
  media::Superblock sb_{};
  std::vector<uint8_t> owner_;
  std::unordered_map<uint64_t, InodeInfo> inodes_;
  uint64_t data_start_ = 0, data_end_ = 0;
  std::vector<uint32_t> data_refs_;          // file owners per block
  std::vector<media::RmapRec> expect_rmap_;  // what the rmap tree must hold
  void ExpectRmap(uint64_t start, uint64_t len, uint64_t owner, uint64_t offset, uint32_t flags) {
    expect_rmap_.push_back(media::RmapRec{start, owner, offset, static_cast<uint32_t>(len), flags});
  }
  void CheckRmapAndRefcount(Transaction& tx, const media::RootBlock& root);
};

bool Checker::Claim(uint64_t b, uint64_t n, Owner o, const std::string& who) {
  if (b < data_start_ || b + n > data_end_ || b + n < b) {
    if (o != kReserved) {
      Problem(who + ": blocks [" + std::to_string(b) + ", +" + std::to_string(n) +
              ") lie outside the allocatable area");
      return false;
    }
  }
  int reported = 0;
  for (uint64_t i = b; i < b + n && i < owner_.size(); i++) {
    if (o == kData && owner_[i] == kData) {  // a shared extent: counted, checked against refcounts
      data_refs_[i]++;
      continue;
    }
    if (o == kData) data_refs_[i] = 1;
    if (owner_[i] != kUnclaimed) {
      if (reported++ < 3)
        Problem(who + ": block " + std::to_string(i) + " is also used by " + OwnerName(owner_[i]));
      continue;
    }
    owner_[i] = o;
  }
  return reported == 0;
}

// Walks the tree top-down (as Btree::VisitNodes, but past what it can): a
// node that fails to read is a problem and its subtree is skipped; a node
// already claimed is not entered twice (a crafted tree may share subtrees).
void Checker::WalkTree(Transaction& tx, const media::BtreeRoot& root, uint32_t magic,
                       uint64_t owner, const std::string& name,
                       const std::function<void(const void*)>& on_rec) {
  if (!media::TreeRootOk(root, sb_.total_blocks)) {
    Problem(name + ": root " + media::DescribeRoot(root) + " is not a tree in the device");
    return;
  }
  if (root.levels == 0) return;
  WalkNode(tx, *media::ShapeForMagic(magic), owner, name, root.block, root.levels - 1, nullptr, nullptr, on_rec);
}

// A leaf that fails to read only because of its records' fields is read from
// the device without those checks, so that every bad record is reported and
// the good ones are still checked (nullptr when the block has other faults).
// The journal's cache never holds such a block: what it holds was verified.
const uint8_t* Checker::LeafWithBadRecords(uint64_t bno, uint32_t magic) {
  if (bno < data_start_ || bno >= data_end_) return nullptr;
  const uint8_t* raw = dev_->BlockPtr(bno, kBlockSize);
  if (!raw || !media::VerifyRead(raw, bno, magic, sb_.total_blocks, media::RecordChecks::kSkip).ok()) return nullptr;
  if (reinterpret_cast<const media::BtreeNodeHeader*>(raw)->level != 0) return nullptr;
  return raw;
}

void Checker::WalkNode(Transaction& tx, const media::TreeShape& shape, uint64_t owner, const std::string& name,
                       uint64_t bno, uint32_t level, const uint64_t* lo, const uint64_t* hi,
                       const std::function<void(const void*)>& on_rec) {
  bool records_checked = true;
  auto rd = tx.Read(bno, shape.magic);
  const uint8_t* node = rd.has_value() ? *rd : nullptr;
  if (!node && level == 0 && rd.error().err() == EUCLEAN) {
    node = LeafWithBadRecords(bno, shape.magic);
    records_checked = false;
  }
  if (!node) {
    Problem(name + ": " + rd.error().message());
    return;
  }
  const auto* h = reinterpret_cast<const media::BtreeNodeHeader*>(node);
  if (h->level != level) {
    Problem(name + " node " + std::to_string(bno) + ": level " + std::to_string(h->level) + ", expected " +
            std::to_string(level));
    return;
  }
  if (!Claim(bno, 1, kNode, name + " node " + std::to_string(bno))) return;
  uint64_t rowner;
  uint32_t rflags;
  RmapOwnerOfNode(shape.magic, owner, &rowner, &rflags);
  ExpectRmap(bno, 1, rowner, 0, rflags);
  r_->metadata_blocks++;
  if (h->owner != owner)
    Problem(name + " node " + std::to_string(bno) + " belongs to owner " + std::to_string(h->owner));
  const uint32_t kw = shape.key_words, stride = level == 0 ? shape.rec_size : kw * 8 + 8;
  const uint8_t* items = node + sizeof(media::BtreeNodeHeader);
  for (uint32_t i = 0; i < h->nrecs; i++) {
    const uint8_t* p = items + i * stride;
    uint64_t key[4] = {0, 0, 0, 0};
    std::memcpy(key, p, kw * 8);
    if ((lo && media::CompareKeys(key, lo, kw) < 0) || (hi && media::CompareKeys(key, hi, kw) >= 0))
      Problem(name + " node " + std::to_string(bno) + ": key outside its parent's range");
    if (level > 0) {
      uint64_t next[4] = {0, 0, 0, 0}, child;
      const bool has_next = i + 1 < h->nrecs;
      if (has_next) std::memcpy(next, p + stride, kw * 8);
      std::memcpy(&child, p + kw * 8, 8);
      WalkNode(tx, shape, owner, name, child, level - 1, key, has_next ? next : hi, on_rec);
      continue;
    }
    std::string why;
    if (!records_checked && !media::CheckRecord(shape, p, sb_.total_blocks, &why)) {
      Problem(name + ": metadata corruption in block " + std::to_string(bno) + ": " + shape.name + " record " +
              std::to_string(i) + ": " + why);
      continue;
    }
    on_rec(p);
  }
}

void Checker::CheckFreeSpace(Transaction& tx, const media::RootBlock& root) {
  std::vector<media::FreeBnoRec> by_bno;
  std::vector<media::FreeCntRec> by_cnt;
  WalkTree(tx, root.free_bno, media::kFreeBnoMagic, 0, "free-by-block tree",
           [&](const void* p) { by_bno.push_back(*static_cast<const media::FreeBnoRec*>(p)); });
  WalkTree(tx, root.free_cnt, media::kFreeCntMagic, 0, "free-by-size tree",
           [&](const void* p) { by_cnt.push_back(*static_cast<const media::FreeCntRec*>(p)); });
  uint64_t total = 0;
  std::map<std::pair<uint64_t, uint64_t>, int> extents;
  for (size_t i = 0; i < by_bno.size(); i++) {
    const auto& e = by_bno[i];
    if (e.length == 0) Problem("free extent at " + std::to_string(e.start) + " has length 0");
    Claim(e.start, e.length, kFree, "free extent " + std::to_string(e.start));
    if (i > 0 && by_bno[i - 1].start + by_bno[i - 1].length == e.start)
      Problem("free extents at " + std::to_string(by_bno[i - 1].start) + " and " +
              std::to_string(e.start) + " are adjacent but not merged");
    total += e.length;
    extents[{e.start, e.length}] |= 1;
  }
  for (const auto& c : by_cnt) extents[{c.start, c.length}] |= 2;
  for (const auto& [ext, mask] : extents)
    if (mask != 3)
      Problem("free extent [" + std::to_string(ext.first) + ", +" + std::to_string(ext.second) +
              ") is only in the " + (mask == 1 ? "by-block" : "by-size") + " tree");
  if (total != root.free_blocks)
    Problem("free block counter says " + std::to_string(root.free_blocks) + ", free trees hold " +
            std::to_string(total));
  r_->free_blocks = total;
  for (uint32_t i = 0; i < root.freelist_count; i++)
  {
    Claim(root.freelist[i], 1, kFreeList, "free list entry " + std::to_string(i));
    ExpectRmap(root.freelist[i], 1, media::kOwnAg, 0, 0);
  }
}

void Checker::CheckFile(Transaction& tx, const media::InodeRec& rec) {
  uint64_t blocks = 0, prev_end = 0;
  std::string who = "inode " + std::to_string(rec.ino);
  WalkTree(tx, rec.data, media::kBmapMagic, rec.ino, who + " extent map", [&](const void* p) {
    const auto* e = static_cast<const media::BmapRec*>(p);
    if (e->length == 0) Problem(who + ": empty extent at file block " + std::to_string(e->file_block));
    if (e->file_block < prev_end) Problem(who + ": overlapping extents at file block " + std::to_string(e->file_block));
    prev_end = e->file_block + e->length;
    Claim(e->start_block, e->length, kData, who + " extent at file block " + std::to_string(e->file_block));
    ExpectRmap(e->start_block, e->length, rec.ino, e->file_block, 0);
    blocks += e->length;
  });
  r_->data_blocks += blocks;
  if (blocks != rec.nblocks)
    Problem(who + ": block count says " + std::to_string(rec.nblocks) + ", extents hold " + std::to_string(blocks));
  if (S_ISLNK(rec.mode) && rec.size > media::kInodeInlineMax && blocks * kBlockSize < rec.size)
    Problem(who + ": symbolic link target is missing blocks");
  if (prev_end > kMaxFileSize / kBlockSize + 1)
    Problem(who + ": extent beyond the maximum file size");
}

void Checker::CheckDir(Transaction& tx, const media::InodeRec& rec) {
  uint64_t count = 0;
  std::string who = "directory " + std::to_string(rec.ino);
  WalkTree(tx, rec.data, media::kDirMagic, rec.ino, who, [&](const void* p) {
    const auto* d = static_cast<const media::DirRec*>(p);
    count++;
    std::string_view name(d->name, d->name_len);
    if (d->name_len == 0 || name.find('/') != std::string_view::npos || name == "." || name == "..")
      Problem(who + ": invalid entry name");
    else if (NameHash(name) != d->hash)
      Problem(who + ": entry '" + std::string(name) + "' has the wrong hash");
    auto it = inodes_.find(d->ino);
    if (it == inodes_.end()) {
      Problem(who + ": entry '" + std::string(name) + "' names missing inode " + std::to_string(d->ino));
      return;
    }
    it->second.refs++;
    if ((it->second.mode & S_IFMT) != (static_cast<uint32_t>(d->type) << 12))
      Problem(who + ": entry '" + std::string(name) + "' has the wrong file type");
    if (S_ISDIR(it->second.mode)) {
      inodes_[rec.ino].subdirs++;
      it->second.found_parent = rec.ino;
    }
  });
  if (count != rec.dir_entries)
    Problem(who + ": entry count says " + std::to_string(rec.dir_entries) + ", tree holds " + std::to_string(count));
}

void Checker::CheckInodes(Transaction& tx, const media::RootBlock& root) {
  std::vector<media::InodeRec> recs;
  WalkTree(tx, root.inodes, media::kInodeMagic, 0, "inode tree",
           [&](const void* p) { recs.push_back(*static_cast<const media::InodeRec*>(p)); });
  for (const auto& rec : recs) {
    InodeInfo info;
    info.mode = rec.mode;
    info.nlink = rec.nlink;
    info.parent = rec.parent;
    info.dir_entries = rec.dir_entries;
    inodes_[rec.ino] = info;
    if (rec.ino >= root.next_ino) Problem("inode " + std::to_string(rec.ino) + " is beyond the next inode number");
  }
  r_->inodes = recs.size();
  if (recs.size() != root.inode_count)
    Problem("inode counter says " + std::to_string(root.inode_count) + ", inode tree holds " + std::to_string(recs.size()));
  for (const auto& rec : recs) {
    switch (rec.mode & S_IFMT) {
      case S_IFREG: r_->files++; CheckFile(tx, rec); break;
      case S_IFLNK: r_->symlinks++; CheckFile(tx, rec); break;
      case S_IFDIR: r_->directories++; CheckDir(tx, rec); break;
      default: Problem("inode " + std::to_string(rec.ino) + " has an invalid file type");
    }
  }
  // An orphan record promises an inode with no links (recovery frees it);
  // one naming a linked or missing inode is a problem either way.
  std::unordered_map<uint64_t, bool> orphan;
  uint64_t pending_orphans = 0;
  WalkTree(tx, root.orphans, media::kOrphanMagic, 0, "orphan list", [&](const void* p) {
    uint64_t ino = static_cast<const media::OrphanRec*>(p)->ino;
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) {
      Problem("orphan record names inode " + std::to_string(ino) + ", which does not exist");
    } else if (it->second.nlink > 0) {
      Problem("orphan record names inode " + std::to_string(ino) + ", which has " +
              std::to_string(it->second.nlink) + " link" + (it->second.nlink == 1 ? "" : "s"));
    } else if (recovered_) {
      orphan[ino] = true;
      Problem("orphan inode " + std::to_string(ino) + " left after recovery");
    } else {
      orphan[ino] = true;
      pending_orphans++;
    }
  });
  if (pending_orphans)
    r_->notes.push_back(std::to_string(pending_orphans) +
                        " orphan inode(s) (unlinked while open): freed by the next read-write mount");
  auto root_it = inodes_.find(root.root_ino);
  if (root_it == inodes_.end() || !S_ISDIR(root_it->second.mode)) {
    Problem("root directory inode " + std::to_string(root.root_ino) + " is missing");
    return;
  }
  for (auto& [ino, in] : inodes_) {
    std::string who = "inode " + std::to_string(ino);
    if (S_ISDIR(in.mode)) {
      uint32_t want = 2 + in.subdirs;
      if (in.nlink != want && !(in.nlink == 0 && orphan.count(ino)))
        Problem(who + ": directory link count " + std::to_string(in.nlink) + ", expected " + std::to_string(want));
      if (ino == root.root_ino) {
        if (in.refs != 0) Problem("root directory is named by a directory entry");
        if (in.parent != ino) Problem("root directory's parent is not itself");
      } else if (in.refs == 0 && !orphan.count(ino)) {
        Problem(who + ": directory is not connected to the tree");
      } else if (in.refs > 1) {
        Problem(who + ": directory has " + std::to_string(in.refs) + " names");
      } else if (in.refs == 1 && in.parent != in.found_parent) {
        Problem(who + ": parent pointer " + std::to_string(in.parent) + " but it lives in " +
                std::to_string(in.found_parent));
      }
    } else {
      if (in.nlink != in.refs)
        Problem(who + ": link count " + std::to_string(in.nlink) + ", but " + std::to_string(in.refs) +
                " directory entries name it");
      if (in.refs == 0 && !orphan.count(ino)) Problem(who + ": not connected to the tree (lost)");
    }
  }
  // Connectivity: every directory reaches the root through parent pointers.
  for (auto& [ino, in] : inodes_) {
    if (!S_ISDIR(in.mode) || in.refs != 1) continue;
    uint64_t cur = ino;
    size_t steps = 0;
    while (cur != root.root_ino && steps++ <= inodes_.size()) {
      auto it = inodes_.find(cur);
      if (it == inodes_.end() || it->second.refs != 1) break;
      cur = it->second.found_parent;
    }
    if (cur != root.root_ino) Problem("directory " + std::to_string(ino) + " is not reachable from the root");
  }
}

// The rmap tree must hold exactly the records implied by every owner found
// above; the refcount tree exactly the blocks with more than one file owner.
void Checker::CheckRmapAndRefcount(Transaction& tx, const media::RootBlock& root) {
  std::vector<media::RmapRec> actual;
  WalkTree(tx, root.rmap, media::kRmapMagic, 0, "rmap tree",
           [&](const void* p) { actual.push_back(*static_cast<const media::RmapRec*>(p)); });
  std::vector<media::RefcountRec> refs;
  WalkTree(tx, root.refcount, media::kRefcountMagic, 0, "refcount tree",
           [&](const void* p) { refs.push_back(*static_cast<const media::RefcountRec*>(p)); });
  auto key_less = [](const media::RmapRec& a, const media::RmapRec& b) {
    return std::tie(a.start, a.owner, a.offset) < std::tie(b.start, b.owner, b.offset);
  };
  std::sort(expect_rmap_.begin(), expect_rmap_.end(), key_less);
  auto describe = [](const media::RmapRec& r) {
    std::string who = (r.owner & media::kOwnMetaBit) ? std::string("metadata=") + RmapMetaName(r.owner)
                                                     : "ino=" + std::to_string(r.owner) + " offset=" + std::to_string(r.offset);
    return "[" + std::to_string(r.start) + ", +" + std::to_string(r.length) + ") " + who +
           (r.flags & media::kRmapTreeBlock ? " (tree block)" : "");
  };
  size_t i = 0, j = 0;
  int reported = 0;
  while (i < expect_rmap_.size() || j < actual.size()) {
    bool take_expect = j >= actual.size() || (i < expect_rmap_.size() && key_less(expect_rmap_[i], actual[j]));
    bool take_actual = i >= expect_rmap_.size() || (j < actual.size() && key_less(actual[j], expect_rmap_[i]));
    if (take_expect) {
      if (reported++ < 10) Problem("rmap: no record for " + describe(expect_rmap_[i]));
      i++;
    } else if (take_actual) {
      if (reported++ < 10) Problem("rmap: record for no owner: " + describe(actual[j]));
      j++;
    } else {
      if (expect_rmap_[i].length != actual[j].length || expect_rmap_[i].flags != actual[j].flags)
        if (reported++ < 10) Problem("rmap: record " + describe(actual[j]) + " should be " + describe(expect_rmap_[i]));
      i++;
      j++;
    }
  }
  uint64_t prev_end = 0;
  std::vector<uint8_t> covered(sb_.total_blocks, 0);
  for (const auto& r : refs) {
    if (r.start < prev_end) Problem("refcount: overlapping records at block " + std::to_string(r.start));
    prev_end = r.start + r.length;
    if (r.refcount < 2 || r.length == 0) Problem("refcount: record at " + std::to_string(r.start) + " has count " + std::to_string(r.refcount));
    for (uint64_t b = r.start; b < r.start + r.length && b < sb_.total_blocks; b++) {
      covered[b] = 1;
      if (data_refs_[b] != r.refcount) {
        if (reported++ < 20)
          Problem("refcount: block " + std::to_string(b) + " has " + std::to_string(data_refs_[b]) +
                  " owners, refcount says " + std::to_string(r.refcount));
      }
    }
  }
  for (uint64_t b = 0; b < sb_.total_blocks; b++) {
    if (data_refs_[b] >= 2) {
      r_->shared_blocks++;
      if (!covered[b] && reported++ < 20)
        Problem("refcount: block " + std::to_string(b) + " has " + std::to_string(data_refs_[b]) + " owners but no record");
    }
  }
}

// A listed bad block is either still held by a file (reads give EIO until
// the file replaces it) or retired: owner kOwnBad, never free, never metadata.
void Checker::CheckBadBlocks(const media::RootBlock& root) {
  for (uint32_t i = 0; i < root.bad_count && i < media::kBadListMax; i++) {
    const media::BadExtent& e = root.bad[i];
    r_->bad_blocks += e.length;
    for (uint64_t b = e.start; b < e.start + e.length; b++) {
      if (b < data_start_ || b >= data_end_) {
        Problem("bad-block list: block " + std::to_string(b) + " lies outside the data area");
        break;
      }
      if (owner_[b] == kData) continue;
      if (owner_[b] == kUnclaimed) {
        owner_[b] = kBad;
        ExpectRmap(b, 1, media::kOwnBad, 0, 0);
        continue;
      }
      Problem("bad block " + std::to_string(b) + " is in use as " + OwnerName(owner_[b]));
    }
  }
  if (r_->bad_blocks)
    r_->notes.push_back(std::to_string(r_->bad_blocks) +
                        " bad block(s) listed (memory failures): never allocated again; not corruption");
}

void Checker::Run() {
  uint64_t dev_blocks = dev_->size() / kBlockSize;
  if (dev_blocks < 16) {
    Problem("device is too small to hold a udax filesystem");
    return;
  }
  const auto* sb0 = reinterpret_cast<const media::Superblock*>(dev_->BlockPtr(0, kBlockSize));
  const auto* sb1 = reinterpret_cast<const media::Superblock*>(dev_->BlockPtr(dev_blocks - 1, kBlockSize));
  Status st0 = media::VerifySuperblock(*sb0, dev_->size());
  Status st1 = media::VerifySuperblock(*sb1, dev_->size());
  if (!st0.ok()) Problem("primary superblock: " + st0.message());
  if (st0.ok()) {
    sb_ = *sb0;
    if (sb_.total_blocks != dev_blocks) {
      sb1 = reinterpret_cast<const media::Superblock*>(dev_->BlockPtr(sb_.total_blocks - 1, kBlockSize));
      st1 = media::VerifySuperblock(*sb1, dev_->size());
    }
    if (!st1.ok()) Problem("secondary superblock: " + st1.message());
    else if (std::memcmp(sb0, sb1, sizeof(media::Superblock)) != 0) Problem("superblock copies differ");
  } else if (st1.ok()) {
    sb_ = *sb1;
    r_->notes.push_back("using the secondary superblock");
  } else {
    return;
  }
  owner_.assign(sb_.total_blocks, kUnclaimed);
  data_start_ = sb_.log_start + sb_.log_blocks;
  data_end_ = sb_.total_blocks - 1;
  data_refs_.assign(sb_.total_blocks, 0);
  Claim(0, data_start_, kReserved, "superblock, root block and journal");
  Claim(sb_.total_blocks - 1, 1, kReserved, "secondary superblock");
  ExpectRmap(0, data_start_, media::kOwnStatic, 0, 0);
  ExpectRmap(sb_.total_blocks - 1, 1, media::kOwnStatic, 0, 0);
  Journal journal(dev_, sb_.log_start, sb_.log_blocks, sb_.total_blocks);
  auto pending = journal.Recover(/*read_only=*/true);
  if (!pending.has_value()) Problem("journal: " + pending.error().message());
  else if (*pending) r_->notes.push_back("journal holds " + std::to_string(*pending) + " committed blocks not yet written home: checked as replayed (in memory)");
  Transaction tx(&journal, true);
  auto rb = tx.Read(media::kRootBlockNo, media::kRootMagic);
  if (!rb.has_value()) {
    Problem("root block: " + rb.error().message());
    return;
  }
  media::RootBlock root;
  std::memcpy(&root, *rb, sizeof root);
  CheckFreeSpace(tx, root);
  CheckInodes(tx, root);
  CheckBadBlocks(root);
  CheckRmapAndRefcount(tx, root);
  uint64_t leaked = 0, first_leak = 0;
  for (uint64_t b = data_start_; b < data_end_; b++) {
    if (owner_[b] == kUnclaimed) {
      if (leaked++ == 0) first_leak = b;
    }
    if (owner_[b] != kUnclaimed && owner_[b] != kFree) r_->used_blocks++;
  }
  r_->used_blocks += data_start_ + 1;
  if (leaked)
    Problem(std::to_string(leaked) + " blocks are neither free nor used (first: " + std::to_string(first_leak) + ")");
}

}  // namespace

// With opts.recover the journal is replayed and orphans reclaimed by a
// read-write mount first (what recovery repaired is reported as a problem);
// without it nothing is written: the journal is replayed in memory only and
// the device is opened read-only. Either way the check itself reads.
Result<FsckReport> Fsck(const std::string& device, const FsckOptions& opts) {
  FsckReport report;
  bool recovered = false;
  if (opts.recover) {
    MountOptions mo;
    mo.on_note = [&](const std::string& note) { report.problems.push_back("recovery: " + note); };
    auto fs = FsImpl::Mount(device, mo);
    if (fs.has_value()) {
      Status st = (*fs)->Unmount();
      if (!st.ok()) report.notes.push_back("unmount after recovery: " + st.message());
      recovered = st.ok() && !(*fs)->read_only();
    } else if (fs.error().err() == EBUSY || fs.error().err() == ENOENT || fs.error().err() == EACCES) {
      return fs.error();
    } else {
      report.notes.push_back("mount failed, checking without recovery: " + fs.error().message());
    }
  }
  DeviceOptions dopts;
  dopts.read_only = true;
  ASSIGN_OR_RETURN(auto dev, PmemDevice::Open(device, dopts));
  Checker(dev.get(), &report, recovered).Run();
  return report;
}

}  // namespace udax
