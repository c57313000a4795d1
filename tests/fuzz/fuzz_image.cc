// tests/fuzz/fuzz_image.cc — decoding, re-sealing and encoding of fuzz
// inputs (see fuzz_image.h).
#include "fuzz_image.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "media/verify.h"
#include "util/crc32c.h"

namespace udax::fuzz {
namespace {

using media::kBlockSize;

constexpr size_t kPatchHeader = 6;

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
void PutLe16(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}

bool IsBlockMagic(uint32_t magic) {
  return magic == media::kSuperMagic || magic == media::kRootMagic || media::ShapeForMagic(magic) != nullptr;
}

uint32_t MagicOf(const uint8_t* block) {
  uint32_t m;
  std::memcpy(&m, block, sizeof m);
  return m;
}

// The journal region as mount would find it: from the primary superblock,
// else the secondary, else mkfs's default for this device size.
struct LogGeometry {
  uint64_t start = media::kLogStart;
  uint64_t blocks = 64;
};

bool SaneSuperblock(const uint8_t* b, media::Superblock* out) {
  if (!b || MagicOf(b) != media::kSuperMagic) return false;
  std::memcpy(out, b, sizeof *out);
  return out->log_start == media::kLogStart && out->log_blocks >= 8 &&
         out->log_blocks <= media::kLogMaxBlocks + 1 && out->log_start + out->log_blocks < kFuzzDeviceBlocks - 1;
}

LogGeometry FindLog(const SparseImage& image) {
  media::Superblock sb;
  LogGeometry g;
  if (SaneSuperblock(image.Find(0), &sb) || SaneSuperblock(image.Find(kFuzzDeviceBlocks - 1), &sb)) {
    g.start = sb.log_start;
    g.blocks = sb.log_blocks;
  }
  return g;
}

// The older whole-image log (see journal.cc, RecoverWholeImages): the
// header's crc covers the header and either each image's own crc
// (reserved == 1) or the whole images.
void ResealWholeImageLog(SparseImage& image, const LogGeometry& g) {
  auto* h = reinterpret_cast<media::LogHeader*>(image.Block(g.start));
  if (h->nblocks == 0 || h->nblocks > g.blocks - 1 || h->nblocks > media::kLogMaxBlocks) return;
  std::vector<const uint8_t*> images;
  for (uint32_t i = 0; i < h->nblocks; i++) {
    uint8_t* img = image.Block(g.start + 1 + i);
    if (IsBlockMagic(MagicOf(img))) media::SetBlockCrc(img);
    images.push_back(img);
  }
  uint32_t c = media::BlockCrc(h);
  for (const uint8_t* img : images) {
    if (h->reserved == 1)
      c = Crc32cExtend(c, img + offsetof(media::BlockHeader, crc), sizeof(uint32_t));
    else
      c = Crc32cExtend(c, img, kBlockSize);
  }
  h->hdr.crc = c;
}

// The line-record chain (see journal.cc, RecoverChain): each record's crc
// covers the whole record with the crc field zero.
void ResealLineLog(SparseImage& image, const LogGeometry& g) {
  const uint64_t log_bytes = g.blocks * kBlockSize;
  std::vector<uint8_t> log(log_bytes, 0);
  for (uint64_t i = 0; i < g.blocks; i++)
    if (const uint8_t* b = image.Find(g.start + i)) std::memcpy(log.data() + i * kBlockSize, b, kBlockSize);
  for (uint64_t off = 0; off + sizeof(media::LogRecordHeader) <= log_bytes;) {
    auto* r = reinterpret_cast<media::LogRecordHeader*>(log.data() + off);
    if (r->magic != media::kLogRecordMagic) break;
    if (r->len < sizeof *r || r->len % media::kLineSize || r->len > log_bytes - off) break;
    r->crc = 0;
    uint32_t crc = Crc32c(log.data() + off, r->len);
    // The header never straddles a block: records start 64-byte aligned.
    uint8_t* home = image.Block(g.start + off / kBlockSize) + off % kBlockSize;
    std::memcpy(home + offsetof(media::LogRecordHeader, crc), &crc, sizeof crc);
    off += r->len;
  }
}

}  // namespace

uint8_t* SparseImage::Block(uint64_t bno) {
  auto& b = blocks_[bno];
  if (!b) b = std::make_unique<uint8_t[]>(kBlockSize);  // zeroed
  return b.get();
}

const uint8_t* SparseImage::Find(uint64_t bno) const {
  auto it = blocks_.find(bno);
  return it == blocks_.end() ? nullptr : it->second.get();
}

void SparseImage::DropIfZero(uint64_t bno) {
  auto it = blocks_.find(bno);
  if (it == blocks_.end()) return;
  const uint8_t* p = it->second.get();
  if (std::all_of(p, p + kBlockSize, [](uint8_t c) { return c == 0; })) blocks_.erase(it);
}

DecodedInput Decode(const uint8_t* data, size_t size) {
  DecodedInput in;
  if (size >= 1) in.flags = data[0];
  if (size >= 2) in.ops = data[1];
  size_t pos = 2;
  while (pos + kPatchHeader <= size) {
    const uint64_t bno = Le16(data + pos) % kFuzzDeviceBlocks;
    const size_t off = Le16(data + pos + 2) % kBlockSize;
    size_t len = Le16(data + pos + 4);
    pos += kPatchHeader;
    len = std::min({len, kBlockSize - off, size - pos});
    std::memcpy(in.image.Block(bno) + off, data + pos, len);
    pos += len;
  }
  if (!(in.flags & kFlagRawCrc)) Reseal(in.image);
  return in;
}

void Reseal(SparseImage& image) {
  const LogGeometry g = FindLog(image);
  std::vector<uint64_t> bnos;
  for (const auto& [bno, b] : image.blocks()) bnos.push_back(bno);
  for (uint64_t bno : bnos) {
    if (bno >= g.start && bno < g.start + g.blocks) continue;  // the journal's own format
    uint8_t* b = image.Block(bno);
    if (IsBlockMagic(MagicOf(b))) media::SetBlockCrc(b);
  }
  const uint8_t* head = image.Find(g.start);
  if (!head) return;
  if (MagicOf(head) == media::kLogMagic) ResealWholeImageLog(image, g);
  if (MagicOf(head) == media::kLogRecordMagic) ResealLineLog(image, g);
}

std::vector<uint8_t> Encode(const SparseImage& image, uint8_t flags, uint8_t ops) {
  std::vector<uint8_t> out{flags, ops};
  for (const auto& [bno, b] : image.blocks()) {
    const uint8_t* p = b.get();
    size_t i = 0;
    while (i < kBlockSize) {
      if (p[i] == 0) {
        i++;
        continue;
      }
      // A run of nonzero bytes, joined with the next one across gaps shorter
      // than a patch header.
      size_t end = i;
      for (size_t zeroes = 0, j = i; j < kBlockSize && zeroes <= kPatchHeader; j++) {
        zeroes = p[j] ? 0 : zeroes + 1;
        if (p[j]) end = j + 1;
      }
      PutLe16(out, static_cast<uint32_t>(bno));
      PutLe16(out, static_cast<uint32_t>(i));
      PutLe16(out, static_cast<uint32_t>(end - i));
      out.insert(out.end(), p + i, p + end);
      i = end;
    }
  }
  return out;
}

bool WriteImage(const SparseImage& image, int fd) {
  if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, static_cast<off_t>(kFuzzDeviceBytes)) != 0) return false;
  for (const auto& [bno, b] : image.blocks())
    if (::pwrite(fd, b.get(), kBlockSize, static_cast<off_t>(bno * kBlockSize)) != kBlockSize) return false;
  return true;
}

}  // namespace udax::fuzz
