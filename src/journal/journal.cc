// journal/journal.cc — redo log commit and recovery (see journal.h and
// docs/journal.md).
#include "journal/journal.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <random>

#include "media/verify.h"
#include "util/crc32c.h"

namespace udax {

using media::kBlockSize;
using media::kLineSize;
using media::LogBlockDesc;
using media::LogHeader;
using media::LogRecordHeader;

namespace {

constexpr uint64_t kDescSize = sizeof(LogBlockDesc);
constexpr uint64_t kWorstBlockBytes = kDescSize + kBlockSize;  // a descriptor + every line

uint64_t AlignLine(uint64_t n) { return (n + kLineSize - 1) / kLineSize * kLineSize; }

uint64_t RecordBytes(uint64_t nblocks, uint64_t nlines) {
  return AlignLine(sizeof(LogRecordHeader) + nblocks * kDescSize) + nlines * kLineSize;
}

// Bit i set when line i of `a` and `b` differ: one 64-byte compare per line
// with AVX-512, two 32-byte ones with AVX2, memcmp otherwise.
__attribute__((target("avx512f"))) uint64_t ChangedLinesAvx512(const uint8_t* a, const uint8_t* b) {
  uint64_t mask = 0;
  for (uint32_t i = 0; i < media::kLinesPerBlock; i++) {
    __mmask8 ne = _mm512_cmpneq_epi64_mask(_mm512_loadu_si512(a + i * kLineSize),
                                           _mm512_loadu_si512(b + i * kLineSize));
    mask |= uint64_t{ne != 0} << i;
  }
  return mask;
}

__attribute__((target("avx2"))) uint64_t ChangedLinesAvx2(const uint8_t* a, const uint8_t* b) {
  uint64_t mask = 0;
  for (uint32_t i = 0; i < media::kLinesPerBlock; i++) {
    const auto* pa = reinterpret_cast<const __m256i*>(a + i * kLineSize);
    const auto* pb = reinterpret_cast<const __m256i*>(b + i * kLineSize);
    __m256i x = _mm256_or_si256(_mm256_xor_si256(_mm256_loadu_si256(pa), _mm256_loadu_si256(pb)),
                                _mm256_xor_si256(_mm256_loadu_si256(pa + 1), _mm256_loadu_si256(pb + 1)));
    mask |= uint64_t{!_mm256_testz_si256(x, x)} << i;
  }
  return mask;
}

uint64_t ChangedLinesPortable(const uint8_t* a, const uint8_t* b) {
  uint64_t mask = 0;
  for (uint32_t i = 0; i < media::kLinesPerBlock; i++)
    if (std::memcmp(a + i * kLineSize, b + i * kLineSize, kLineSize) != 0) mask |= uint64_t{1} << i;
  return mask;
}

using ChangedLinesFn = uint64_t (*)(const uint8_t*, const uint8_t*);
ChangedLinesFn PickChangedLines() {
  if (__builtin_cpu_supports("avx512f")) return ChangedLinesAvx512;
  if (__builtin_cpu_supports("avx2")) return ChangedLinesAvx2;
  return ChangedLinesPortable;
}

uint64_t ChangedLines(const uint8_t* a, const uint8_t* b) {
  static const ChangedLinesFn fn = PickChangedLines();
  return fn(a, b);
}

// A 4 KiB block copy. A constant-size memcpy compiles to `rep movsq`, which
// is slower here than 64-byte vector moves.
__attribute__((target("avx512f"))) void CopyBlockAvx512(uint8_t* dst, const uint8_t* src) {
  for (uint32_t i = 0; i < kBlockSize; i += 64) _mm512_storeu_si512(dst + i, _mm512_loadu_si512(src + i));
}
void CopyBlockPortable(uint8_t* dst, const uint8_t* src) { std::memcpy(dst, src, kBlockSize); }
void CopyBlock(uint8_t* dst, const uint8_t* src) {
  static const auto fn = __builtin_cpu_supports("avx512f") ? CopyBlockAvx512 : CopyBlockPortable;
  fn(dst, src);
}

const uint8_t* ZeroBlock() {
  alignas(64) static const uint8_t zeroes[kBlockSize] = {};
  return zeroes;
}

uint32_t RecordCrc(const uint8_t* rec, uint64_t len) {
  LogRecordHeader h;
  std::memcpy(&h, rec, sizeof h);
  h.crc = 0;
  return Crc32cExtend(Crc32c(&h, sizeof h), rec + sizeof h, len - sizeof h);
}

uint64_t NewGeneration() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd() ^ 1;  // never 0 (a zeroed log)
}

}  // namespace

Journal::Journal(PmemDevice* dev, uint64_t log_start, uint32_t log_blocks, uint64_t total_blocks)
    : dev_(dev),
      log_start_(log_start),
      log_blocks_(log_blocks),
      log_bytes_(uint64_t{log_blocks} * kBlockSize),
      total_blocks_(total_blocks),
      max_blocks_(static_cast<uint32_t>(std::min<uint64_t>(
          media::kLogMaxBlocks,
          (log_bytes_ - AlignLine(sizeof(LogRecordHeader) + kDescSize)) / kWorstBlockBytes))),
      generation_(NewGeneration()),
      verified_(new std::atomic<uint64_t>[(total_blocks + 63) / 64]()) {}

bool Journal::IsVerified(uint64_t bno) const {
  return (verified_[bno / 64].load(std::memory_order_relaxed) >> (bno % 64)) & 1;
}
void Journal::MarkVerified(uint64_t bno) {
  verified_[bno / 64].fetch_or(1ULL << (bno % 64), std::memory_order_relaxed);
}
void Journal::ForgetVerified(uint64_t bno) {
  verified_[bno / 64].fetch_and(~(1ULL << (bno % 64)), std::memory_order_relaxed);
}

bool Journal::IsMetadataHome(uint64_t bno) const {
  return bno >= media::kRootBlockNo && bno < total_blocks_ - 1 &&
         !(bno >= log_start_ && bno < log_start_ + log_blocks_);
}

size_t Journal::Room(size_t blocks, size_t revokes) const {
  if (blocks >= max_blocks_) return 0;
  uint64_t used = AlignLine(sizeof(LogRecordHeader) + (blocks + revokes + 1) * kDescSize) +
                  blocks * kBlockSize;
  if (used + kBlockSize > log_bytes_) return 0;
  return std::min<uint64_t>(max_blocks_ - blocks, (log_bytes_ - used) / kWorstBlockBytes);
}

Result<const uint8_t*> Journal::ReadBlock(uint64_t bno, uint32_t magic) {
  if (bno < media::kRootBlockNo || bno >= total_blocks_ ||
      (bno >= log_start_ && bno < log_start_ + log_blocks_))
    return Errno(EUCLEAN, "metadata corruption: pointer to block " + std::to_string(bno) +
                              " which cannot hold metadata");
  const uint8_t* p = dev_->BlockPtr(bno, kBlockSize);
  if (!p && dev_->IsPoisoned(bno * kBlockSize, kBlockSize))
    return Errno(EIO, "memory failure in metadata block " + std::to_string(bno));
  if (!p) return Errno(EIO, "block " + std::to_string(bno) + " outside the device");
  if (Cached* c = FindCached(bno)) {
    p = c->buf.get();  // verified when committed; not sealed
  } else if (!IsVerified(bno)) {
    RETURN_IF_ERROR(media::VerifyRead(p, bno, magic, total_blocks_));
    MarkVerified(bno);
    return p;
  }
  if (magic != 0 && reinterpret_cast<const media::BlockHeader*>(p)->magic != magic) {
    return Errno(EUCLEAN, "metadata corruption in block " + std::to_string(bno) + ": found " +
                              media::MagicName(reinterpret_cast<const media::BlockHeader*>(p)->magic) +
                              " where " + media::MagicName(magic) + " was expected");
  }
  return p;
}

Status Journal::Commit(std::vector<Image>& images, const std::vector<uint64_t>& revoked) {
  AssertWriterLockHeld();
  for (size_t i = 1; i < images.size(); i++)
    UDAX_ASSERT_MSG(images[i - 1].bno < images[i].bno, "commit images not sorted by block number");
  // Step 1: what changed, line by line.
  std::vector<uint64_t>& masks = masks_;  // reused: no allocation per commit
  masks.assign(images.size(), 0);
  uint64_t nblocks = revoked.size(), nlines = 0;
  for (size_t i = 0; i < images.size(); i++) {
    const Image& img = images[i];
    const uint8_t* base = ZeroBlock();
    if (!img.fresh) {
      Cached* c = FindCached(img.bno);
      base = c ? c->buf.get() : dev_->BlockPtr(img.bno, kBlockSize);
      if (!base) return Errno(EIO, "block " + std::to_string(img.bno) + " is not readable");
    }
    masks[i] = ChangedLines(img.buf.get(), base);
    if (masks[i] || img.fresh) nblocks++;
    nlines += std::popcount(masks[i]);
  }
  if (nblocks == 0) return Status::Ok();  // nothing changed
  const uint64_t len = RecordBytes(nblocks, nlines);
  if (nblocks - revoked.size() > max_blocks_ || len > log_bytes_)
    return Errno(ENOSPC, "transaction of " + std::to_string(nblocks) + " blocks does not fit the journal");

  // Step 2: the record.
  record_.assign(len, 0);
  auto* h = reinterpret_cast<LogRecordHeader*>(record_.data());
  h->magic = media::kLogRecordMagic;
  h->seq = seq_;
  h->generation = generation_;
  h->len = len;
  h->nblocks = static_cast<uint32_t>(nblocks);
  h->nlines = static_cast<uint32_t>(nlines);
  auto* desc = reinterpret_cast<LogBlockDesc*>(record_.data() + sizeof(LogRecordHeader));
  uint8_t* line = record_.data() + AlignLine(sizeof(LogRecordHeader) + nblocks * kDescSize);
  for (uint64_t bno : revoked) *desc++ = LogBlockDesc{bno, 0, media::kLogBlockRevoke, 0, 0};
  for (size_t i = 0; i < images.size(); i++) {
    if (!masks[i] && !images[i].fresh) continue;
    *desc++ = LogBlockDesc{images[i].bno, masks[i], images[i].fresh ? media::kLogBlockFresh : 0u, 0, 0};
    for (uint64_t m = masks[i]; m; m &= m - 1) {
      std::memcpy(line, images[i].buf.get() + std::countr_zero(m) * kLineSize, kLineSize);
      line += kLineSize;
    }
  }
  h->crc = RecordCrc(record_.data(), len);
  // The log is full: the homes must hold every line of the records about to
  // be overwritten.
  if (head_ + len > log_bytes_) RETURN_IF_ERROR(Checkpoint());
  RETURN_IF_ERROR(dev_->CopyIn(log_start_ * kBlockSize + head_, record_.data(), len, /*drain=*/true));
  head_ += len;
  seq_++;
  commits_++;
  last_commit_blocks_ = static_cast<uint32_t>(nblocks);
  // Step 3: the cache (the homes follow at the next checkpoint).
  for (uint64_t bno : revoked) Drop(bno);
  for (size_t i = 0; i < images.size(); i++)
    if (masks[i] || images[i].fresh) Apply(images[i], masks[i]);
  return Status::Ok();
}

void Journal::StampCached(Cached& c) {
  UDAX_DEBUG_ONLY(c.sum = Crc32c(c.buf.get(), kBlockSize));
}

void Journal::CheckCached(uint64_t bno, const Cached& c) {
  UDAX_ASSERT_MSG(Crc32c(c.buf.get(), kBlockSize) == c.sum,
                  "cached copy of block " + std::to_string(bno) +
                      " changed outside a commit (written through an image pointer after its commit?)");
}

void Journal::Apply(Image& img, uint64_t mask) {
  MarkVerified(img.bno);
  if (img.fresh) mask = ~uint64_t{0};  // the whole block goes home (zeroes too)
  auto [it, inserted] = cache_.try_emplace(img.bno);
  Cached& c = it->second;
  if (!inserted) CheckCached(img.bno, c);
  if (inserted) {
    c.buf = std::move(img.buf);
    slots_[img.bno % kSlots] = {img.bno, &c};
  } else if (img.fresh) {
    std::memcpy(c.buf.get(), img.buf.get(), kBlockSize);  // cached addresses are stable
  } else {
    for (uint64_t m = mask; m; m &= m - 1) {  // the rest of the cached copy is the same
      const uint32_t off = static_cast<uint32_t>(std::countr_zero(m)) * kLineSize;
      std::memcpy(c.buf.get() + off, img.buf.get() + off, kLineSize);
    }
  }
  if (!c.dirty) dirty_.push_back(img.bno);
  c.dirty |= mask;
  StampCached(c);
}

void Journal::KeepReplayed(uint64_t bno, std::unique_ptr<uint8_t[]> buf) {
  Image img{bno, std::move(buf), /*fresh=*/true};  // the whole block differs from home
  Apply(img, ~uint64_t{0});
}

void Journal::Drop(uint64_t bno) {
  ForgetVerified(bno);
  auto it = cache_.find(bno);
  if (it == cache_.end()) return;
  CheckCached(bno, it->second);
  dropped_.push_back(std::move(it->second.buf));
  cache_.erase(it);
  if (slots_[bno % kSlots].bno == bno) slots_[bno % kSlots] = {};
}

Journal::Cached* Journal::FindCached(uint64_t bno) const {
  const Slot& s = slots_[bno % kSlots];
  if (s.bno == bno) return s.entry;
  auto it = const_cast<Journal*>(this)->cache_.find(bno);
  return it == cache_.end() ? nullptr : &it->second;
}


Status Journal::Checkpoint() {
  AssertWriterLockHeld();
  for (uint64_t bno : dirty_) {
    auto it = cache_.find(bno);
    if (it == cache_.end() || !it->second.dirty) continue;  // revoked since
    Cached& c = it->second;
    CheckCached(bno, c);
    media::SetBlockCrc(c.buf.get());
    StampCached(c);
    const uint64_t home = bno * kBlockSize;
    for (uint64_t m = c.dirty | 1; m;) {  // runs of adjacent dirty lines; line 0 holds the crc
      uint32_t first = static_cast<uint32_t>(std::countr_zero(m));
      uint32_t n = static_cast<uint32_t>(std::countr_one(m >> first));
      RETURN_IF_ERROR(dev_->CopyIn(home + first * kLineSize, c.buf.get() + first * kLineSize,
                                   uint64_t{n} * kLineSize, false));
      m = n + first >= 64 ? 0 : m & ~(((uint64_t{1} << n) - 1) << first);
    }
    c.dirty = 0;
  }
  dev_->Drain();
  dirty_.clear();
  // The chain is obsolete now (replaying it whole would be harmless, and
  // would heal damage that fsck should see): clear its first header, with a
  // fence of its own. The next record is written over the old chain from the
  // start of the log, and in one fence window its lines may persist before
  // the cleared header: a line of it in the middle of the old chain would cut
  // the chain there, and a mount would replay the old records before the cut
  // over newer homes (found by the reordered crash states, crash_test).
  RETURN_IF_ERROR(dev_->Fill(log_start_ * kBlockSize, 0, kLineSize, true));
  head_ = 0;
  checkpoints_++;
  return Status::Ok();
}

void Journal::ForgetBlock(uint64_t bno) {
  auto it = cache_.find(bno);
  if (it != cache_.end() && it->second.dirty) return;  // the only up-to-date copy: kept
  Drop(bno);
}

// Debug builds: a pooled buffer holds this pattern until it is taken again.
[[maybe_unused]] constexpr uint8_t kPoolFill = 0xA5;

std::unique_ptr<uint8_t[]> Journal::TakeBuffer() {
  if (spare_.empty()) return std::make_unique_for_overwrite<uint8_t[]>(kBlockSize);
  auto b = std::move(spare_.back());
  spare_.pop_back();
#if UDAX_ASSERTS_ON
  static const auto* filled = [] {
    auto* f = new uint8_t[kBlockSize];
    std::memset(f, kPoolFill, kBlockSize);
    return f;
  }();
  UDAX_ASSERT_MSG(std::memcmp(b.get(), filled, kBlockSize) == 0,
                  "a pooled image buffer was written (through an image pointer after its transaction ended?)");
#endif
  return b;
}

void Journal::ReturnBuffer(std::unique_ptr<uint8_t[]> buf) {
  if (!buf || spare_.size() >= kSpareMax) return;
  UDAX_DEBUG_ONLY(std::memset(buf.get(), kPoolFill, kBlockSize));
  spare_.push_back(std::move(buf));
}

Status Journal::TrimCache() {
  AssertWriterLockHeld();
  UDAX_ASSERT_MSG(writer_.load(std::memory_order_relaxed) == nullptr,
                  "TrimCache while a transaction holds block images (their pointers may be dropped)");
  dropped_.clear();
  if (cache_.size() <= kCacheMaxBlocks) return Status::Ok();
  RETURN_IF_ERROR(Checkpoint());
  cache_.clear();
  for (size_t i = 0; i < kSlots; i++) slots_[i] = {};
  return Status::Ok();
}

Status Journal::Format() {
  // The homes first, then the cleared start of the log: a crash between them
  // must not leave a cleared log with lines that never reached their homes.
  RETURN_IF_ERROR(Checkpoint());
  return dev_->Fill(log_start_ * kBlockSize, 0, kBlockSize, true);
}

Result<uint32_t> Journal::Recover(bool read_only) {
  auto* h = reinterpret_cast<const media::BlockHeader*>(dev_->BlockPtr(log_start_, kBlockSize));
  if (!h) return Errno(EIO, "journal outside the device");
  if (h->magic == media::kLogMagic) return RecoverWholeImages(read_only);
  return RecoverChain(read_only);
}

Result<uint32_t> Journal::RecoverChain(bool read_only) {
  const uint8_t* log = dev_->BlockPtr(log_start_, kBlockSize);
  if (!dev_->Range(log_start_ * kBlockSize, log_bytes_).has_value())
    return Errno(EIO, "journal outside the device");
  // The chain: valid records from offset 0, one generation, consecutive seqs.
  struct Rec {
    uint64_t off, seq;
    const LogRecordHeader* h;
  };
  std::vector<Rec> chain;
  for (uint64_t off = 0; off + sizeof(LogRecordHeader) <= log_bytes_;) {
    const auto* r = reinterpret_cast<const LogRecordHeader*>(log + off);
    if (r->magic != media::kLogRecordMagic) break;
    if (r->len < sizeof(LogRecordHeader) || r->len % kLineSize || r->len > log_bytes_ - off) break;
    if (r->nblocks == 0 || RecordBytes(r->nblocks, r->nlines) != r->len) break;
    if (!chain.empty() && (r->generation != chain[0].h->generation || r->seq != chain.back().seq + 1)) break;
    if (r->crc != RecordCrc(log + off, r->len)) break;
    chain.push_back({off, r->seq, r});
    off += r->len;
  }
  if (chain.empty()) return 0u;
  // Revokes: a block's lines in records before its last revoke are void.
  std::unordered_map<uint64_t, uint64_t> revoked_at;  // bno -> seq of its last revoke
  for (const Rec& rec : chain) {
    const auto* d = reinterpret_cast<const LogBlockDesc*>(reinterpret_cast<const uint8_t*>(rec.h) + sizeof(LogRecordHeader));
    uint64_t lines = 0;
    for (uint32_t i = 0; i < rec.h->nblocks; i++) {
      if (!IsMetadataHome(d[i].home))
        return Errno(EUCLEAN, "journal names home block " + std::to_string(d[i].home) +
                                  " outside the metadata area; refusing to replay");
      if (d[i].flags & ~(media::kLogBlockFresh | media::kLogBlockRevoke))
        return Errno(EUCLEAN, "journal record " + std::to_string(rec.seq) + " has unknown descriptor flags " +
                                  std::to_string(d[i].flags) + " for block " + std::to_string(d[i].home) +
                                  "; refusing to replay");
      if (d[i].flags & media::kLogBlockRevoke) revoked_at[d[i].home] = rec.seq;
      lines += std::popcount(d[i].line_mask);
    }
    if (lines != rec.h->nlines)
      return Errno(EUCLEAN, "journal record " + std::to_string(rec.seq) + " names " + std::to_string(lines) +
                                " lines but holds " + std::to_string(rec.h->nlines) + "; refusing to replay");
  }
  // Rebuild every block in DRAM, record by record.
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> rebuilt;
  for (const Rec& rec : chain) {
    const auto* base = reinterpret_cast<const uint8_t*>(rec.h);
    const auto* d = reinterpret_cast<const LogBlockDesc*>(base + sizeof(LogRecordHeader));
    const uint8_t* line = base + AlignLine(sizeof(LogRecordHeader) + rec.h->nblocks * kDescSize);
    for (uint32_t i = 0; i < rec.h->nblocks; i++) {
      const uint64_t bno = d[i].home;
      auto rv = revoked_at.find(bno);
      const bool revoke = d[i].flags & media::kLogBlockRevoke;
      const bool replay = !revoke && !(rv != revoked_at.end() && rec.seq < rv->second);
      if (revoke) rebuilt.erase(bno);
      uint8_t* dst = nullptr;
      if (replay) {
        auto& buf = rebuilt[bno];
        if (!buf) {
          buf = std::make_unique_for_overwrite<uint8_t[]>(kBlockSize);
          const uint8_t* home = dev_->BlockPtr(bno, kBlockSize);
          if (!home) return Errno(EIO, "journal home block " + std::to_string(bno) + " is not readable");
          std::memcpy(buf.get(), home, kBlockSize);
        }
        if (d[i].flags & media::kLogBlockFresh) std::memset(buf.get(), 0, kBlockSize);
        dst = buf.get();
      }
      for (uint64_t m = d[i].line_mask; m; m &= m - 1) {  // void lines are skipped over
        if (dst) std::memcpy(dst + std::countr_zero(m) * kLineSize, line, kLineSize);
        line += kLineSize;
      }
    }
  }
  // Every rebuilt block must verify for its home: one that does not
  // (misdirected, crafted) would overwrite good metadata, so replay nothing.
  // Records hold lines as they were committed, before sealing: seal here.
  for (const auto& [bno, buf] : rebuilt) {
    media::SetBlockCrc(buf.get());
    Status st = media::VerifyUnsealed(buf.get(), bno, 0, total_blocks_);
    if (!st.ok())
      return Errno(EUCLEAN, "journal rebuilds home block " + std::to_string(bno) +
                                " that does not verify (" + st.message() + "); refusing to replay");
  }
  seq_ = chain.back().seq + 1;
  const uint32_t n = static_cast<uint32_t>(rebuilt.size());
  if (read_only) {
    for (auto& [bno, buf] : rebuilt) KeepReplayed(bno, std::move(buf));
    return n;
  }
  for (const auto& [bno, buf] : rebuilt)
    RETURN_IF_ERROR(dev_->CopyIn(bno * kBlockSize, buf.get(), kBlockSize, false));
  RETURN_IF_ERROR(Format());  // fences the replayed blocks first
  return n;
}

// ---- the older form: one header with home block numbers, whole images ------
// LogHeader.reserved == kLogCrcOfImageCrcs: the header crc covers the header
// and each image's own (sealed) block crc, and every image must match its own
// crc. A header with reserved == 0 covers the whole images.
constexpr uint32_t kLogCrcOfImageCrcs = 1;

static uint32_t LogCrc(const LogHeader* h, const std::vector<const uint8_t*>& images) {
  uint32_t c = media::BlockCrc(h);
  for (const uint8_t* img : images) {
    if (h->reserved == kLogCrcOfImageCrcs)
      c = Crc32cExtend(c, &reinterpret_cast<const media::BlockHeader*>(img)->crc, sizeof(uint32_t));
    else
      c = Crc32cExtend(c, img, kBlockSize);
  }
  return c;
}

// True when every image of the record is intact.
static bool LogImagesIntact(const LogHeader* h, const std::vector<const uint8_t*>& images) {
  if (h->reserved != kLogCrcOfImageCrcs) return true;  // covered by the header crc
  for (const uint8_t* img : images)
    if (reinterpret_cast<const media::BlockHeader*>(img)->crc != media::BlockCrc(img)) return false;
  return true;
}

Result<uint32_t> Journal::RecoverWholeImages(bool read_only) {
  auto* h = reinterpret_cast<const LogHeader*>(dev_->BlockPtr(log_start_, kBlockSize));
  if (h->nblocks == 0 || h->nblocks > log_blocks_ - 1 || h->nblocks > media::kLogMaxBlocks) return 0u;
  std::vector<const uint8_t*> imgs;
  for (uint32_t i = 0; i < h->nblocks; i++)
    imgs.push_back(dev_->BlockPtr(log_start_ + 1 + i, kBlockSize));
  if (h->hdr.crc != LogCrc(h, imgs) || !LogImagesIntact(h, imgs)) return 0u;  // torn: never committed
  for (uint32_t i = 0; i < h->nblocks; i++) {
    uint64_t home = h->homes[i];
    if (!IsMetadataHome(home))
      return Errno(EUCLEAN, "journal names home block " + std::to_string(home) +
                                " outside the metadata area; refusing to replay");
    // Every image was sealed for its home; one that does not verify there
    // (misdirected, crafted) would overwrite good metadata: replay nothing.
    Status st = media::VerifyRead(imgs[i], home, 0, total_blocks_);
    if (!st.ok())
      return Errno(EUCLEAN, "journal image for home block " + std::to_string(home) +
                                " does not verify (" + st.message() + "); refusing to replay");
  }
  seq_ = h->seq + 1;
  uint32_t n = h->nblocks;
  if (read_only) {
    for (uint32_t i = 0; i < n; i++) {
      auto buf = std::make_unique_for_overwrite<uint8_t[]>(kBlockSize);
      std::memcpy(buf.get(), imgs[i], kBlockSize);
      KeepReplayed(h->homes[i], std::move(buf));
    }
    return n;
  }
  for (uint32_t i = 0; i < n; i++)
    RETURN_IF_ERROR(dev_->CopyIn(h->homes[i] * kBlockSize, imgs[i], kBlockSize, false));
  RETURN_IF_ERROR(Format());
  return n;
}

// ---- Transaction -------------------------------------------------------------

std::vector<Transaction::Block>::iterator Transaction::Slot(uint64_t bno) {
  return std::lower_bound(blocks_.begin(), blocks_.end(), bno,
                          [](const Block& b, uint64_t n) { return b.bno < n; });
}

Result<const uint8_t*> Transaction::Read(uint64_t bno, uint32_t magic) {
  auto it = Slot(bno);
  if (it != blocks_.end() && it->bno == bno) return static_cast<const uint8_t*>(it->buf.get());
  return journal_->ReadBlock(bno, magic);
}

bool Transaction::Revoked(uint64_t bno) const {
  return std::find(revoked_.begin(), revoked_.end(), bno) != revoked_.end();
}

void Transaction::AssertMayChange(const char* op) {
  UDAX_ASSERT_MSG(state_ == State::kOpen,
                  std::string(op) + " on " + (state_ == State::kCommitted ? "a committed" : "an aborted") +
                      " transaction (Restart() first; a change now would be dropped unlogged)");
#if UDAX_ASSERTS_ON
  const Transaction* none = nullptr;
  if (!journal_->writer_.compare_exchange_strong(none, this, std::memory_order_relaxed))
    UDAX_ASSERT_MSG(none == this, std::string(op) + ": another transaction of this journal holds block images "
                                                    "(one writing transaction at a time)");
#endif
}

Result<uint8_t*> Transaction::Write(uint64_t bno, uint32_t magic) {
  if (read_only_) return Errno(EROFS, "read-only transaction");
  AssertMayChange("Write");
  auto it = Slot(bno);
  if (it != blocks_.end() && it->bno == bno) return it->buf.get();
  if (!revoked_.empty() && Revoked(bno)) {
    refused_ = Errno(EUCLEAN, "metadata corruption: block " + std::to_string(bno) +
                                  " is written after this transaction freed it (two owners of one block)");
    return refused_;
  }
  ASSIGN_OR_RETURN(const uint8_t* src, journal_->ReadBlock(bno, magic));
  auto buf = journal_->TakeBuffer();
  CopyBlock(buf.get(), src);
  uint8_t* p = buf.get();
  blocks_.insert(it, Block{bno, std::move(buf), false});
  return p;
}

Result<uint8_t*> Transaction::New(uint64_t bno) {
  if (read_only_) return Errno(EROFS, "read-only transaction");
  AssertMayChange("New");
  auto buf = journal_->TakeBuffer();
  std::memset(buf.get(), 0, kBlockSize);
  uint8_t* p = buf.get();
  auto it = Slot(bno);
  if (it != blocks_.end() && it->bno == bno) {
    journal_->ReturnBuffer(std::move(it->buf));
    *it = Block{bno, std::move(buf), true};
  } else {
    blocks_.insert(it, Block{bno, std::move(buf), true});
  }
  return p;
}

void Transaction::Release() {
  for (Block& b : blocks_) journal_->ReturnBuffer(std::move(b.buf));
  blocks_.clear();
  revoked_.clear();
  refused_ = Status::Ok();
#if UDAX_ASSERTS_ON
  const Transaction* me = this;
  journal_->writer_.compare_exchange_strong(me, nullptr, std::memory_order_relaxed);
#endif
}

void Transaction::Abort() {
  Release();
  if (state_ == State::kOpen) state_ = State::kAborted;
}

void Transaction::Restart() {
  UDAX_ASSERT_MSG(state_ != State::kOpen, "Restart() of a transaction that is still open");
  UDAX_ASSERT(blocks_.empty() && revoked_.empty());
  state_ = State::kOpen;
}

void Transaction::Forget(uint64_t bno) {
  if (read_only_) return;
  AssertMayChange("Forget");
  if (auto it = Slot(bno); it != blocks_.end() && it->bno == bno) {
    journal_->ReturnBuffer(std::move(it->buf));
    blocks_.erase(it);
  }
  revoked_.push_back(bno);  // dropped from the cache at commit
}

Status Transaction::Commit() {
  UDAX_ASSERT_MSG(state_ == State::kOpen, std::string("Commit of ") +
                                              (state_ == State::kCommitted ? "a committed" : "an aborted") +
                                              " transaction (committed twice?)");
  if (!refused_.ok()) {
    Status st = refused_;
    Abort();
    return st;
  }
  std::vector<Journal::Image> images;
  images.reserve(blocks_.size());
  for (Block& b : blocks_) {
    Status st = media::VerifyForWrite(b.buf.get(), b.bno, journal_->total_blocks());
    if (!st.ok()) {
      Abort();
      return st;
    }
    images.push_back({b.bno, std::move(b.buf), b.fresh});
  }
  Status st = journal_->Commit(images, revoked_);
  for (auto& img : images) journal_->ReturnBuffer(std::move(img.buf));  // those the cache did not take
  Release();
  state_ = st.ok() ? State::kCommitted : State::kAborted;
  return st;
}

}  // namespace udax
