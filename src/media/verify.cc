// media/verify.cc — checksums and block verifiers (see verify.h): block
// header, superblock, root block and B+tree node structure; the fields of
// leaf records are checked by media/records.cc, called from VerifyNode.
#include "media/verify.h"

#include <cstring>

#include "util/crc32c.h"

namespace udax::media {
namespace {

const TreeShape kShapes[] = {
    {kBmapMagic, sizeof(BmapRec), 1, "bmap"},
    {kFreeBnoMagic, sizeof(FreeBnoRec), 1, "free-by-block"},
    {kFreeCntMagic, sizeof(FreeCntRec), 2, "free-by-size"},
    {kInodeMagic, sizeof(InodeRec), 1, "inodes"},
    {kDirMagic, sizeof(DirRec), 2, "directory"},
    {kOrphanMagic, sizeof(OrphanRec), 1, "orphans"},
    {kRmapMagic, sizeof(RmapRec), 3, "rmap"},
    {kRefcountMagic, sizeof(RefcountRec), 1, "refcount"},
};

Status Corrupt(uint64_t bno, const std::string& what) {
  return Errno(EUCLEAN, "metadata corruption in block " + std::to_string(bno) + ": " + what);
}

Status VerifyNode(const uint8_t* b, uint64_t bno, const TreeShape& s, uint64_t total_blocks,
                  RecordChecks records) {
  const auto* h = reinterpret_cast<const BtreeNodeHeader*>(b);
  if (h->level > kMaxTreeLevels) return Corrupt(bno, std::string(s.name) + " node level too large");
  uint32_t cap = h->level == 0 ? LeafCapacity(s) : NodeCapacity(s);
  if (h->nrecs > cap) return Corrupt(bno, std::string(s.name) + " node has too many records");
  if (h->level > 0 && h->nrecs == 0) return Corrupt(bno, std::string(s.name) + " empty interior node");
  const uint8_t* p = b + sizeof(BtreeNodeHeader);
  uint32_t stride = h->level == 0 ? s.rec_size : s.key_words * 8 + 8;
  const RecordCheck check = h->level == 0 && records == RecordChecks::kAll ? RecordCheckFor(s) : nullptr;
  std::string why;
  for (uint32_t i = 0; i < h->nrecs; i++) {
    const auto* k = reinterpret_cast<const uint64_t*>(p + i * stride);
    if (i > 0) {
      const auto* prev = reinterpret_cast<const uint64_t*>(p + (i - 1) * stride);
      if (CompareKeys(prev, k, s.key_words) >= 0)
        return Corrupt(bno, std::string(s.name) + " keys out of order");
    }
    if (h->level > 0) {
      uint64_t child;
      std::memcpy(&child, p + i * stride + s.key_words * 8, 8);
      if (child < kLogStart || child >= total_blocks)
        return Corrupt(bno, std::string(s.name) + " child pointer outside the device");
    } else if (check && !check(k, total_blocks, &why)) {
      return Corrupt(bno, std::string(s.name) + " record " + std::to_string(i) + ": " + why);
    }
  }
  return Status::Ok();
}

Status VerifyStructure(const uint8_t* b, uint64_t bno, uint64_t total_blocks, RecordChecks records) {
  const auto* hdr = reinterpret_cast<const BlockHeader*>(b);
  if (hdr->magic == kRootMagic) {
    const auto* r = reinterpret_cast<const RootBlock*>(b);
    const std::pair<const char*, const BtreeRoot*> roots[] = {
        {"free_bno", &r->free_bno}, {"free_cnt", &r->free_cnt}, {"inodes", &r->inodes},
        {"orphans", &r->orphans},   {"rmap", &r->rmap},         {"refcount", &r->refcount}};
    for (const auto& [name, root] : roots)
      if (!TreeRootOk(*root, total_blocks))
        return Corrupt(bno, std::string(name) + " tree root " + DescribeRoot(*root) + " is not a tree in the device");
    if (r->free_blocks > total_blocks)
      return Corrupt(bno, "free_blocks " + std::to_string(r->free_blocks) + " exceeds the device's " +
                              std::to_string(total_blocks) + " blocks");
    if (r->freelist_count > kFreeListMax) return Corrupt(bno, "free list too long");
    for (uint32_t i = 0; i < r->freelist_count; i++)
      if (r->freelist[i] < kLogStart || r->freelist[i] >= total_blocks)
        return Corrupt(bno, "free list entry outside the device");
    if (r->bad_count > kBadListMax) return Corrupt(bno, "bad-block list too long");
    for (uint32_t i = 0; i < r->bad_count; i++) {
      const BadExtent& e = r->bad[i];
      if (e.length == 0 || e.start < kLogStart || e.start >= total_blocks || e.length > total_blocks - e.start)
        return Corrupt(bno, "bad-block list entry outside the device");
      if (i > 0 && e.start <= r->bad[i - 1].start + r->bad[i - 1].length)
        return Corrupt(bno, "bad-block list out of order");
    }
    return Status::Ok();
  }
  if (const TreeShape* s = ShapeForMagic(hdr->magic)) return VerifyNode(b, bno, *s, total_blocks, records);
  return Corrupt(bno, "unknown block magic " + MagicName(hdr->magic));
}

}  // namespace

const TreeShape* ShapeForMagic(uint32_t magic) {
  for (const auto& s : kShapes)
    if (s.magic == magic) return &s;
  return nullptr;
}

int CompareKeys(const uint64_t* a, const uint64_t* b, uint32_t words) {
  for (uint32_t i = 0; i < words; i++) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

uint32_t BlockCrc(const void* block) {
  const auto* b = static_cast<const uint8_t*>(block);
  uint32_t c = Crc32cExtend(0, b, 4);
  return Crc32cExtend(c, b + 8, kBlockSize - 8);
}

void SetBlockCrc(void* block) {
  auto* hdr = static_cast<BlockHeader*>(block);
  hdr->crc = BlockCrc(block);
}

std::string MagicName(uint32_t magic) {
  std::string s;
  for (int i = 0; i < 4; i++) {
    char c = static_cast<char>((magic >> (8 * i)) & 0xff);
    s += (c >= 32 && c < 127) ? c : '?';
  }
  return "'" + s + "'";
}

Status VerifyRead(const void* block, uint64_t bno, uint32_t magic, uint64_t total_blocks,
                  RecordChecks records) {
  const auto* hdr = static_cast<const BlockHeader*>(block);
  if (magic != 0 && hdr->magic != magic)
    return Corrupt(bno, "bad magic " + MagicName(hdr->magic) + ", expected " + MagicName(magic));
  if (hdr->crc != BlockCrc(block)) return Corrupt(bno, "checksum mismatch");
  return VerifyUnsealed(block, bno, magic, total_blocks, records);
}

Status VerifyUnsealed(const void* block, uint64_t bno, uint32_t magic, uint64_t total_blocks,
                      RecordChecks records) {
  const auto* hdr = static_cast<const BlockHeader*>(block);
  if (magic != 0 && hdr->magic != magic)
    return Corrupt(bno, "bad magic " + MagicName(hdr->magic) + ", expected " + MagicName(magic));
  if (hdr->blkno != bno) return Corrupt(bno, "block claims to be block " + std::to_string(hdr->blkno));
  return VerifyStructure(static_cast<const uint8_t*>(block), bno, total_blocks, records);
}

Status VerifyForWrite(void* block, uint64_t bno, uint64_t total_blocks) {
  static_cast<BlockHeader*>(block)->blkno = bno;
  return VerifyStructure(static_cast<const uint8_t*>(block), bno, total_blocks, RecordChecks::kSkip)
      .Prefixed("refusing to write");
}

Status VerifyAndSeal(void* block, uint64_t bno, uint64_t total_blocks) {
  RETURN_IF_ERROR(VerifyForWrite(block, bno, total_blocks));
  SetBlockCrc(block);
  return Status::Ok();
}

Status VerifySuperblock(const Superblock& sb, uint64_t device_bytes) {
  auto bad = [](const std::string& what) { return Errno(EUCLEAN, "bad superblock: " + what); };
  if (sb.hdr.magic != kSuperMagic) return bad("wrong magic " + MagicName(sb.hdr.magic) + " (not a udax filesystem)");
  if (sb.hdr.crc != BlockCrc(&sb)) return bad("checksum mismatch");
  if (sb.version != kVersion) return bad("unsupported version " + std::to_string(sb.version));
  if (sb.block_size != kBlockSize) return bad("unsupported block size " + std::to_string(sb.block_size));
  if (sb.total_blocks < 16 || sb.total_blocks > device_bytes / kBlockSize)
    return bad("filesystem size " + std::to_string(sb.total_blocks) +
               " blocks does not fit the device (" + std::to_string(device_bytes) + " bytes)");
  if (sb.log_start != kLogStart || sb.log_blocks < 8 || sb.log_blocks > kLogMaxBlocks + 1 ||
      sb.log_start + sb.log_blocks >= sb.total_blocks - 1)
    return bad("journal geometry out of range");
  if (sb.root_block != kRootBlockNo) return bad("root block pointer is wrong");
  if (sb.features_incompat & ~kFeatureIncompatKnown)
    return Errno(EOPNOTSUPP, "filesystem has unknown incompatible features 0x" +
                                 [&] { char b[32]; snprintf(b, sizeof b, "%llx", (unsigned long long)(sb.features_incompat & ~kFeatureIncompatKnown)); return std::string(b); }() +
                                 "; refusing to mount");
  return Status::Ok();
}

}  // namespace udax::media
