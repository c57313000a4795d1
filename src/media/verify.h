// media/verify.h — checksums and structure verifiers for every metadata block.
//
// On read: CRC first, then structure. On write: structure first, then CRC.
// A failure is a Status with EUCLEAN ("structure needs cleaning") naming the
// block and what is wrong; never a crash.
#pragma once

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

// Verifies a block read from the device at `bno` whose magic must be `magic`
// (0: any known metadata magic). `total_blocks` bounds child pointers.
Status VerifyRead(const void* block, uint64_t bno, uint32_t magic, uint64_t total_blocks);
// Verifies structure before a write and stamps blkno + CRC.
Status VerifyAndSeal(void* block, uint64_t bno, uint64_t total_blocks);
// Stamps blkno and verifies structure, leaving the CRC to be set later
// (SetBlockCrc) — the journal seals a block only when it writes its home.
Status VerifyForWrite(void* block, uint64_t bno, uint64_t total_blocks);
// VerifyRead without the CRC check (magic 0: any known metadata magic).
Status VerifyUnsealed(const void* block, uint64_t bno, uint32_t magic, uint64_t total_blocks);

// Superblock checks (geometry, magic, version, features) — used by mount, fsck, info.
Status VerifySuperblock(const Superblock& sb, uint64_t device_bytes);

std::string MagicName(uint32_t magic);

}  // namespace udax::media
