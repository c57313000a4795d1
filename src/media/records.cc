// media/records.cc — the record checks: every field of every B+tree leaf
// record against the format's limits (format.h; docs/format.md "Limits"),
// one function per tree shape, in the libxfs spirit ("every record read is
// converted and checked").
//
// The node verifier (verify.cc) runs them on every leaf read from the device
// (once per mount per block: the journal's verified-block bitmap) and on every
// block journal replay rebuilds, so code above media/ sees only records whose
// lengths fit their slots, whose sizes are within the maxima, and whose block
// numbers lie inside the device; no allocation size or loop bound it takes
// from a record is unchecked. Block numbers are checked against the device
// (blocks kLogStart .. total-2); whether a block is in the data area rather
// than the journal is checked where it is used (LookupExtent, Allocator::Free,
// fsck), which know the journal's size.
//
// Cost: a few comparisons per record; a directory entry also hashes its name
// (two crc32c of at most 255 bytes). A message is built only on failure.
#include <sys/stat.h>

#include <cstring>

#include "media/verify.h"
#include "util/crc32c.h"

namespace udax::media {
namespace {

std::string U(uint64_t v) { return std::to_string(v); }
std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// [start, start + len) lies in the device's blocks after the superblock and
// root block and before the secondary superblock.
bool InDevice(uint64_t start, uint64_t len, uint64_t total_blocks) {
  return start >= kLogStart && start < total_blocks - 1 && len <= total_blocks - 1 - start;
}
std::string Extent(uint64_t start, uint64_t len) {
  std::string s = "[";  // built by appends: g++ 12 warns (-Wrestrict) about "[" + U(start) + ...
  s += U(start);
  s += ", +";
  s += U(len);
  s += ")";
  return s;
}

bool KnownType(uint32_t type) { return type == S_IFREG || type == S_IFDIR || type == S_IFLNK; }

bool CheckBmap(const void* p, uint64_t total, std::string* why) {
  const auto& r = *static_cast<const BmapRec*>(p);
  auto bad = [&](const std::string& s) {
    *why = "extent at file block " + U(r.file_block) + ": " + s;
    return false;
  };
  if (r.length == 0 || r.length > kMaxExtentBlocks)
    return bad("length " + U(r.length) + " is not in 1.." + U(kMaxExtentBlocks));
  if (!InDevice(r.start_block, r.length, total))
    return bad("start_block/length " + Extent(r.start_block, r.length) + " outside the device");
  if (r.file_block > kMaxFileBlocks || r.length > kMaxFileBlocks - r.file_block)
    return bad("file_block + length reaches past the maximum file size");
  if (r.flags != 0) return bad("unknown flags " + Hex(r.flags));
  return true;
}

bool CheckFreeExtent(uint64_t start, uint64_t length, uint64_t total, std::string* why) {
  if (length != 0 && InDevice(start, length, total)) return true;
  *why = "free extent start/length " + Extent(start, length) + (length ? " outside the device" : " is empty");
  return false;
}
bool CheckFreeBno(const void* p, uint64_t total, std::string* why) {
  const auto& r = *static_cast<const FreeBnoRec*>(p);
  return CheckFreeExtent(r.start, r.length, total, why);
}
bool CheckFreeCnt(const void* p, uint64_t total, std::string* why) {
  const auto& r = *static_cast<const FreeCntRec*>(p);
  return CheckFreeExtent(r.start, r.length, total, why);
}

bool CheckInode(const void* p, uint64_t total, std::string* why) {
  const auto& r = *static_cast<const InodeRec*>(p);
  auto bad = [&](const std::string& s) {
    *why = "inode " + U(r.ino) + ": " + s;
    return false;
  };
  const uint32_t type = r.mode & S_IFMT;
  if (r.ino == 0) return bad("ino is 0");
  if (!KnownType(type) || (r.mode & ~uint32_t{S_IFMT | 07777}))
    return bad("mode " + Hex(r.mode) + " is not a file type udax knows");
  if (r.size > kMaxFileSize) return bad("size " + U(r.size) + " exceeds the maximum file size " + U(kMaxFileSize));
  if (r.nblocks > total) return bad("nblocks " + U(r.nblocks) + " exceeds the device's " + U(total) + " blocks");
  const std::pair<const char*, const DiskTime*> times[] = {
      {"atime", &r.atime}, {"mtime", &r.mtime}, {"ctime", &r.ctime}, {"btime", &r.btime}};
  for (const auto& [name, t] : times)
    if (t->nsec >= kNsecPerSec) return bad(std::string(name) + " nsec " + U(t->nsec) + " is not below 10^9");
  if (!TreeRootOk(r.data, total)) return bad("data tree root " + DescribeRoot(r.data) + " is not a tree in the device");
  if (r.flags & ~kInodeFlagsKnown) return bad("unknown flags " + Hex(r.flags));
  if (r.inline_len > kInodeInlineMax)
    return bad("inline_len " + U(r.inline_len) + " exceeds the " + U(kInodeInlineMax) + "-byte inline area");
  if (type == S_IFLNK) {
    if (r.size == 0 || r.size > kMaxSymlinkLen)
      return bad("symlink size " + U(r.size) + " is not in 1.." + U(kMaxSymlinkLen));
    if (r.size <= kInodeInlineMax && r.inline_len != r.size)
      return bad("symlink inline_len " + U(r.inline_len) + " differs from its size " + U(r.size));
  }
  return true;
}

bool CheckDirEntry(const void* p, uint64_t total, std::string* why) {
  const auto& r = *static_cast<const DirRec*>(p);
  auto bad = [&](const std::string& s) {
    *why = "entry (hash " + Hex(r.hash) + ", seq " + U(r.seq) + "): " + s;
    return false;
  };
  static_assert(kMaxNameLen == 255 && sizeof(r.name) > kMaxNameLen, "name_len (u8) always fits the name slot");
  if (r.ino == 0) return bad("ino is 0");
  if (r.name_len == 0) return bad("name_len is 0");
  if (std::memchr(r.name, '/', r.name_len) || std::memchr(r.name, '\0', r.name_len))
    return bad("name contains '/' or a NUL byte");
  if ((r.name_len == 1 && r.name[0] == '.') || (r.name_len == 2 && r.name[0] == '.' && r.name[1] == '.'))
    return bad("name is '.' or '..'");
  if (!KnownType(uint32_t{r.type} << 12)) return bad("type " + U(r.type) + " is not a file type udax knows");
  if (r.hash != NameHash(r.name, r.name_len)) return bad("hash does not match the name");
  return true;
}

bool CheckOrphan(const void* p, uint64_t total, std::string* why) {
  if (static_cast<const OrphanRec*>(p)->ino != 0) return true;
  *why = "orphan ino is 0";
  return false;
}

bool CheckRmap(const void* p, uint64_t total, std::string* why) {
  const auto& r = *static_cast<const RmapRec*>(p);
  auto bad = [&](const std::string& s) {
    *why = "rmap record at block " + U(r.start) + ": " + s;
    return false;
  };
  // The static metadata owner holds blocks 0.. and the last block: the whole device.
  if (r.length == 0 || r.start >= total || r.length > total - r.start)
    return bad("start/length " + Extent(r.start, r.length) + " outside the device");
  const bool meta = r.owner & kOwnMetaBit;
  if (r.owner == 0 || (meta && (r.owner < kOwnStatic || r.owner > kOwnBad)))
    return bad("owner " + Hex(r.owner) + " is not an inode or a metadata owner udax knows");
  if ((r.flags & ~kRmapTreeBlock) || (meta && r.flags))
    return bad("flags " + Hex(r.flags) + " are not valid for owner " + Hex(r.owner));
  if (meta ? r.offset != 0 : (r.offset > kMaxFileBlocks || r.length > kMaxFileBlocks - r.offset))
    return bad("offset " + U(r.offset) + " is out of range");
  return true;
}

bool CheckRefcount(const void* p, uint64_t total, std::string* why) {
  const auto& r = *static_cast<const RefcountRec*>(p);
  if (r.refcount < 2) {
    *why = "refcount record at block " + U(r.start) + ": refcount " + U(r.refcount) + " is below 2";
    return false;
  }
  if (r.length == 0 || !InDevice(r.start, r.length, total)) {
    *why = "refcount record start/length " + Extent(r.start, r.length) + " outside the device";
    return false;
  }
  return true;
}

}  // namespace

RecordCheck RecordCheckFor(const TreeShape& shape) {
  switch (shape.magic) {
    case kBmapMagic: return CheckBmap;
    case kFreeBnoMagic: return CheckFreeBno;
    case kFreeCntMagic: return CheckFreeCnt;
    case kInodeMagic: return CheckInode;
    case kDirMagic: return CheckDirEntry;
    case kOrphanMagic: return CheckOrphan;
    case kRmapMagic: return CheckRmap;
    case kRefcountMagic: return CheckRefcount;
    default: return nullptr;
  }
}

bool CheckRecord(const TreeShape& shape, const void* rec, uint64_t total_blocks, std::string* why) {
  RecordCheck check = RecordCheckFor(shape);
  return !check || check(rec, total_blocks, why);
}

bool TreeRootOk(const BtreeRoot& r, uint64_t total_blocks) {
  if (r.levels == 0) return r.block == 0;
  return r.levels <= kMaxTreeLevels && r.block >= kLogStart && r.block < total_blocks - 1;
}

std::string DescribeRoot(const BtreeRoot& r) { return "(block " + U(r.block) + ", levels " + U(r.levels) + ")"; }

uint64_t NameHash(const char* name, size_t len) {
  uint64_t hi = Crc32cExtend(0x5ed5, name, len);
  uint64_t lo = Crc32c(name, len);
  return (hi << 32) | lo;
}

}  // namespace udax::media
