// media/format.h — every on-media structure of udax, in one place.
//
// The layout is described in prose in docs/format.md; keep the two in step.
// All integers are little-endian fixed-width (the host must be little-endian;
// checked at compile time). Sizes are locked with static_assert. Every
// metadata block starts with a BlockHeader whose crc32c covers the whole block
// except the crc field itself.
//
// Device layout (block size 4096):
//   block 0                  primary superblock
//   block 1                  root block (journaled: tree roots, counters, free list)
//   blocks 2 .. 2+L-1        journal (redo log), L = sb.log_blocks
//   blocks 2+L .. N-2        allocatable space (free-space B+trees)
//   block N-1                secondary superblock
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "udax/types.h"

namespace udax::media {

static_assert(std::endian::native == std::endian::little, "udax media is little-endian");

using ::udax::kBlockSize;  // 4096, defined once in udax/types.h
inline constexpr uint32_t kVersion = 1;

constexpr uint32_t Magic(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}

inline constexpr uint32_t kSuperMagic = Magic("UDXS");
inline constexpr uint32_t kRootMagic = Magic("UDXR");
inline constexpr uint32_t kLogMagic = Magic("UDXL");     // whole-image log header (older udax)
inline constexpr uint32_t kLogRecordMagic = Magic("UDXJ");  // line record of the log chain
// B+tree node magics, one per tree kind.
inline constexpr uint32_t kBmapMagic = Magic("BMAP");     // per-inode extent map
inline constexpr uint32_t kFreeBnoMagic = Magic("FSBN");  // free space by block
inline constexpr uint32_t kFreeCntMagic = Magic("FSCN");  // free space by size
inline constexpr uint32_t kInodeMagic = Magic("INOB");    // inode records
inline constexpr uint32_t kDirMagic = Magic("DIRB");      // directory entries
inline constexpr uint32_t kOrphanMagic = Magic("ORPH");   // unlinked-but-open inodes
inline constexpr uint32_t kRmapMagic = Magic("RMAP");     // reverse mapping: block -> owners
inline constexpr uint32_t kRefcountMagic = Magic("REFC"); // shared extents' reference counts

// Feature masks. An unknown incompat bit refuses the mount; an unknown
// ro-compat bit allows a read-only mount only; unknown compat bits are ignored.
// ro-compat RMAPBT: the reverse-mapping tree (a udax without it could read
// the filesystem but would not keep the tree exact when writing).
inline constexpr uint64_t kFeatureRoCompatRmap = 1ull << 0;
// incompat REFLINK: extents may be shared, counted in the refcount tree (a
// udax without it would free shared blocks).
inline constexpr uint64_t kFeatureIncompatReflink = 1ull << 0;
// The journal is a chain of line records (LogRecordHeader): a udax that only
// knows the whole-image log would not replay it. Set by mkfs, and by the first
// read-write mount of an older image.
inline constexpr uint64_t kFeatureIncompatLineLog = 1ull << 1;
inline constexpr uint64_t kFeatureCompatKnown = 0;
inline constexpr uint64_t kFeatureRoCompatKnown = kFeatureRoCompatRmap;
inline constexpr uint64_t kFeatureIncompatKnown = kFeatureIncompatReflink | kFeatureIncompatLineLog;

inline constexpr uint64_t kSuperBlockNo = 0;
inline constexpr uint64_t kRootBlockNo = 1;
inline constexpr uint64_t kLogStart = 2;

struct BlockHeader {
  uint32_t magic;
  uint32_t crc;    // crc32c of the block with this field skipped
  uint64_t blkno;  // where the block lives (catches misdirected writes)
};
static_assert(sizeof(BlockHeader) == 16);

struct Superblock {
  BlockHeader hdr;
  uint32_t version;
  uint32_t block_size;
  uint64_t total_blocks;
  uint64_t log_start;
  uint32_t log_blocks;
  uint32_t reserved0;
  uint64_t root_block;
  uint64_t features_compat;
  uint64_t features_ro_compat;
  uint64_t features_incompat;
  uint8_t uuid[16];
  int64_t mkfs_time;
  char label[32];
};
static_assert(sizeof(Superblock) == 136);

// Root of one B+tree: block 0 = empty tree.
struct BtreeRoot {
  uint64_t block;
  uint32_t levels;  // 0 = empty, 1 = a single leaf
  uint32_t reserved;
};
static_assert(sizeof(BtreeRoot) == 16);

// The free list: blocks reserved for B+tree nodes, so that a split never has
// to allocate from the tree it is splitting (XFS's AGFL).
inline constexpr uint32_t kFreeListMax = 128;

// A run of device blocks whose memory failed (the persistent bad-block list).
struct BadExtent {
  uint64_t start;
  uint64_t length;
};
inline constexpr uint32_t kBadListMax = 128;

struct RootBlock {
  BlockHeader hdr;
  BtreeRoot free_bno;
  BtreeRoot free_cnt;
  BtreeRoot inodes;
  BtreeRoot orphans;
  BtreeRoot rmap;
  BtreeRoot refcount;
  uint64_t root_ino;
  uint64_t next_ino;
  uint64_t free_blocks;  // in the free-space trees (not counting the free list)
  uint64_t inode_count;
  uint32_t freelist_count;
  uint32_t reserved0;
  uint64_t freelist[kFreeListMax];
  // Blocks whose memory failed, sorted, disjoint and not adjacent. A bad
  // block is never free: a file that owned it keeps it (reads give EIO) until
  // it overwrites or punches it; otherwise it is owned by kOwnBad in the
  // rmap tree. Zero in images made before the list existed.
  uint32_t bad_count;
  uint32_t reserved1;
  BadExtent bad[kBadListMax];
};
static_assert(sizeof(RootBlock) <= kBlockSize);

// Journal commit header: the first block of the log. The images of `nblocks`
// blocks follow it; `crc` covers this header (crc field skipped) and all images.
inline constexpr uint32_t kLogMaxBlocks = (kBlockSize - 32) / 8;
struct LogHeader {
  BlockHeader hdr;
  uint64_t seq;
  uint32_t nblocks;
  uint32_t reserved;
  uint64_t homes[kLogMaxBlocks];
};
static_assert(sizeof(LogHeader) == kBlockSize);

// The journal as udax writes it now: a chain of line records (docs/journal.md).
// Records start at 64-byte aligned offsets of the log region, the first at
// its start; each one is a LogRecordHeader, `nblocks` LogBlockDescs, then
// `nlines` 64-byte lines (for each descriptor in order, the lines its mask
// names, in line order). `crc` covers the whole record with the crc field
// zero. The chain is the records from offset 0 on, each with the first one's
// `generation` and a `seq` one more than the one before it.
inline constexpr uint32_t kLineSize = 64;
inline constexpr uint32_t kLinesPerBlock = kBlockSize / kLineSize;
static_assert(kLinesPerBlock == 64, "a line mask is one u64");
struct LogRecordHeader {
  uint32_t magic;       // kLogRecordMagic
  uint32_t crc;
  uint64_t seq;
  uint64_t generation;  // random per mount: records of an earlier mount are not in the chain
  uint64_t len;         // bytes of the whole record, a multiple of kLineSize
  uint32_t nblocks;
  uint32_t nlines;
  uint64_t reserved[3];
};
static_assert(sizeof(LogRecordHeader) == kLineSize);
// LogBlockDesc.flags
inline constexpr uint32_t kLogBlockFresh = 1;   // the block starts from zeroes (newly allocated)
inline constexpr uint32_t kLogBlockRevoke = 2;  // the block was freed: earlier records' lines of it are void
struct LogBlockDesc {
  uint64_t home;
  uint64_t line_mask;  // bit i: line i of the block is in the record
  uint32_t flags;
  uint32_t reserved0;
  uint64_t reserved1;
};
static_assert(sizeof(LogBlockDesc) == 32);

// ---- B+tree nodes ----------------------------------------------------------
// Leaves hold records; every record begins with its key (1 or 2 u64 words).
// Interior nodes hold (key, child block) pairs.
struct BtreeNodeHeader {
  BlockHeader hdr;
  uint64_t owner;  // inode number for per-inode trees, 0 otherwise
  uint16_t level;  // 0 = leaf
  uint16_t nrecs;
  uint32_t reserved;
};
static_assert(sizeof(BtreeNodeHeader) == 32);

// Per-inode extent map record (key: file_block).
struct BmapRec {
  uint64_t file_block;
  uint64_t start_block;
  uint32_t length;  // blocks
  uint32_t flags;
};
static_assert(sizeof(BmapRec) == 24);
inline constexpr uint32_t kMaxExtentBlocks = 1u << 20;

// Free space by block (key: start).
struct FreeBnoRec {
  uint64_t start;
  uint64_t length;
};
static_assert(sizeof(FreeBnoRec) == 16);

// Free space by size (key: length, start).
struct FreeCntRec {
  uint64_t length;
  uint64_t start;
};
static_assert(sizeof(FreeCntRec) == 16);

struct DiskTime {
  int64_t sec;
  uint32_t nsec;
  uint32_t reserved;
};
static_assert(sizeof(DiskTime) == 16);

inline constexpr uint32_t kInodeInlineMax = 96;

// Inode record (key: ino). Lives in the inode B+tree.
struct InodeRec {
  uint64_t ino;
  uint32_t mode;
  uint32_t nlink;
  uint32_t uid;
  uint32_t gid;
  uint64_t size;
  uint64_t nblocks;  // data blocks owned (4 KiB units)
  DiskTime atime, mtime, ctime, btime;
  uint64_t generation;
  uint64_t parent;       // directories: the parent directory
  uint64_t dir_entries;  // directories: number of entries (without . and ..)
  uint64_t reserved0;
  BtreeRoot data;        // files/symlinks: extent map; directories: entries
  uint32_t flags;
  uint16_t inline_len;   // symlinks: target length when stored inline
  uint16_t reserved1;
  uint8_t inline_data[kInodeInlineMax];
};
static_assert(sizeof(InodeRec) == 256);

// Directory entry (key: name hash, collision sequence).
struct DirRec {
  uint64_t hash;
  uint64_t seq;
  uint64_t ino;
  uint8_t type;  // S_IFMT >> 12
  uint8_t name_len;
  uint8_t reserved[6];
  char name[256];
};
static_assert(sizeof(DirRec) == 288);

// Orphan record (key: ino): an inode with nlink 0 still open, or being freed.
struct OrphanRec {
  uint64_t ino;
};
static_assert(sizeof(OrphanRec) == 8);

// Reverse mapping record (key: start, owner, offset). File data records
// mirror the owner's extent-map records one to one; every metadata block has
// a record of its own (length 1).
struct RmapRec {
  uint64_t start;   // device block
  uint64_t owner;   // inode number, or a kOwn* constant for metadata
  uint64_t offset;  // file block for data, 0 for metadata
  uint32_t length;  // blocks
  uint32_t flags;   // kRmapTreeBlock
};
static_assert(sizeof(RmapRec) == 32);
// Metadata owners have the top bit set.
inline constexpr uint64_t kOwnMetaBit = 1ull << 63;
inline constexpr uint64_t kOwnStatic = kOwnMetaBit | 1;     // superblocks, root block, journal
inline constexpr uint64_t kOwnAg = kOwnMetaBit | 2;         // free list, free-space, rmap and refcount trees
inline constexpr uint64_t kOwnInodeTree = kOwnMetaBit | 3;  // inode B+tree nodes
inline constexpr uint64_t kOwnOrphanTree = kOwnMetaBit | 4; // orphan B+tree nodes
inline constexpr uint64_t kOwnBad = kOwnMetaBit | 5;        // retired bad blocks (one record per block)
// With an inode owner: the block is a node of that inode's extent map or
// directory tree, not file data.
inline constexpr uint32_t kRmapTreeBlock = 1;

// Reference count of a shared extent (key: start). Blocks with no record
// have one owner (or none, when free).
struct RefcountRec {
  uint64_t start;
  uint32_t length;
  uint32_t refcount;  // >= 2
};
static_assert(sizeof(RefcountRec) == 16);

// InodeRec.flags
inline constexpr uint32_t kInodeFlagReflinked = 1;  // may own shared extents
inline constexpr uint32_t kInodeFlagsKnown = kInodeFlagReflinked;

// ---- limits ----------------------------------------------------------------
// Every record field read from the media is checked against these before it
// is used (media/records.cc; docs/format.md "Limits"). The public API's
// constants (include/udax/fs.h) equal them (static_asserts in src/fs/).
inline constexpr uint64_t kMaxFileSize = 1ull << 46;                  // 64 TiB: every size and offset
inline constexpr uint64_t kMaxFileBlocks = kMaxFileSize / kBlockSize; // file blocks are below this
inline constexpr uint32_t kMaxNameLen = 255;                          // DirRec.name_len: 1..255
inline constexpr uint32_t kMaxSymlinkLen = 4095;                      // a symlink target: 1..4095 bytes
inline constexpr uint32_t kMaxTreeLevels = 16;                        // BtreeRoot.levels and node level at most this
inline constexpr uint32_t kNsecPerSec = 1000000000;                   // DiskTime.nsec is below this
static_assert(kMaxSymlinkLen < kBlockSize, "a long symlink target fits one data block");

}  // namespace udax::media
