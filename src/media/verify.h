// media/verify.h — checksums and structure verifiers for every metadata block.
//
// On read: CRC first, then structure. On write: structure first, then CRC.
// A failure is a Status with EUCLEAN ("structure needs cleaning") naming the
// block and what is wrong; never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "media/format.h"
#include "udax/status.h"

namespace udax::media {

// Shape of the records of one B+tree kind (the engine's per-tree ops start here).
struct TreeShape {
  uint32_t magic;
  uint16_t rec_size;
  uint16_t key_words;  // the key is the record's first key_words u64s
  const char* name;
};
// nullptr when `magic` is not a B+tree node magic.
const TreeShape* ShapeForMagic(uint32_t magic);

uint32_t BlockCrc(const void* block);
void SetBlockCrc(void* block);

// Leaf and interior capacities for a tree shape.
inline uint32_t LeafCapacity(const TreeShape& s) {
  return (kBlockSize - sizeof(BtreeNodeHeader)) / s.rec_size;
}
inline uint32_t NodeCapacity(const TreeShape& s) {
  return (kBlockSize - sizeof(BtreeNodeHeader)) / (s.key_words * 8 + 8);
}
int CompareKeys(const uint64_t* a, const uint64_t* b, uint32_t words);

// Whether a read verifies the fields of a leaf's records (media/records.cc)
// besides the block's header, key order and child pointers. Only fsck skips
// them, to read a leaf with bad records and report every one (CheckRecord).
enum class RecordChecks { kAll, kSkip };

// Verifies a block read from the device at `bno` whose magic must be `magic`
// (0: any known metadata magic). `total_blocks` bounds every block number in
// it (child pointers, record fields).
Status VerifyRead(const void* block, uint64_t bno, uint32_t magic, uint64_t total_blocks,
                  RecordChecks records = RecordChecks::kAll);
// Verifies structure before a write and stamps blkno + CRC. Record fields are
// not checked on write: records enter from the media only through reads and
// journal replay, which check them; the filesystem's writers keep within the
// limits by its API's own checks.
Status VerifyAndSeal(void* block, uint64_t bno, uint64_t total_blocks);
// Stamps blkno and verifies structure, leaving the CRC to be set later
// (SetBlockCrc) — the journal seals a block only when it writes its home.
Status VerifyForWrite(void* block, uint64_t bno, uint64_t total_blocks);
// VerifyRead without the CRC check (magic 0: any known metadata magic):
// journal replay checks the blocks it rebuilt, records included.
Status VerifyUnsealed(const void* block, uint64_t bno, uint32_t magic, uint64_t total_blocks,
                      RecordChecks records = RecordChecks::kAll);

// ---- record checks (media/records.cc) -------------------------------------
// One leaf record of the tree `shape` against the format's limits
// (format.h, docs/format.md "Limits"): true when every field is within them;
// else false, and *why names the record, the field and its value.
bool CheckRecord(const TreeShape& shape, const void* rec, uint64_t total_blocks, std::string* why);
// The check CheckRecord runs for `shape` (nullptr: a shape without one), for
// callers that check many records of one tree.
using RecordCheck = bool (*)(const void* rec, uint64_t total_blocks, std::string* why);
RecordCheck RecordCheckFor(const TreeShape& shape);
// A tree root (root block, inode record): empty (block 0, levels 0), or a
// block of the device below the secondary superblock with 1..kMaxTreeLevels
// levels.
bool TreeRootOk(const BtreeRoot& root, uint64_t total_blocks);
std::string DescribeRoot(const BtreeRoot& root);  // "(block B, levels L)"
// The directory entry key's hash of a name (two crc32c with different seeds).
uint64_t NameHash(const char* name, size_t len);

// Superblock checks (geometry, magic, version, features) — used by mount, fsck, info.
Status VerifySuperblock(const Superblock& sb, uint64_t device_bytes);

std::string MagicName(uint32_t magic);

}  // namespace udax::media
