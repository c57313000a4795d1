// journal/journal.cc — redo log commit and recovery (see journal.h).
#include "journal/journal.h"

#include <cstring>
#include <map>

#include "media/verify.h"
#include "util/crc32c.h"

namespace udax {

using media::kBlockSize;
using media::LogHeader;

Journal::Journal(PmemDevice* dev, uint64_t log_start, uint32_t log_blocks, uint64_t total_blocks)
    : dev_(dev),
      log_start_(log_start),
      log_blocks_(log_blocks),
      total_blocks_(total_blocks),
      max_blocks_(std::min<uint32_t>(media::kLogMaxBlocks, log_blocks - 1)),
      verified_(new std::atomic<uint64_t>[(total_blocks + 63) / 64]()),
      header_buf_(new uint8_t[kBlockSize]) {}

bool Journal::IsVerified(uint64_t bno) const {
  return (verified_[bno / 64].load(std::memory_order_relaxed) >> (bno % 64)) & 1;
}
void Journal::MarkVerified(uint64_t bno) {
  verified_[bno / 64].fetch_or(1ULL << (bno % 64), std::memory_order_relaxed);
}
void Journal::ForgetVerified(uint64_t bno) {
  verified_[bno / 64].fetch_and(~(1ULL << (bno % 64)), std::memory_order_relaxed);
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
  if (!IsVerified(bno)) {
    RETURN_IF_ERROR(media::VerifyRead(p, bno, magic, total_blocks_));
    MarkVerified(bno);
  } else if (magic != 0 && reinterpret_cast<const media::BlockHeader*>(p)->magic != magic) {
    return Errno(EUCLEAN, "metadata corruption in block " + std::to_string(bno) + ": found " +
                              media::MagicName(reinterpret_cast<const media::BlockHeader*>(p)->magic) +
                              " where " + media::MagicName(magic) + " was expected");
  }
  return p;
}

// LogHeader.reserved == kLogCrcOfImageCrcs: the header crc covers the header
// and each image's own (sealed) block crc, and every image must match its own
// crc — one crc32c pass over each image instead of two. A header written
// without the flag (reserved == 0, older udax) covers the whole images.
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

// LogHeader.reserved == kLogDeltas: the record holds runs of 64-byte lines;
// homes[i] = home << 16 | first line << 8 | number of lines, and the lines
// follow the header packed, in entry order; the header crc covers the header
// and every logged byte.
constexpr uint32_t kLogDeltas = 2;
constexpr uint32_t kLine = 64;
constexpr uint32_t kLinesPerBlock = kBlockSize / kLine;

static uint64_t EncodeRun(uint64_t home, uint32_t first, uint32_t n) {
  return home << 16 | uint64_t{first} << 8 | n;
}

std::vector<Journal::LineRun> Journal::DirtyRuns(const std::vector<Image>& images) const {
  std::vector<LineRun> runs;
  for (const Image& img : images) {
    const uint8_t* home = img.fresh ? nullptr : dev_->BlockPtr(img.bno, kBlockSize);
    if (!home) {
      runs.push_back({img.bno, 0, kLinesPerBlock, img.data});
      continue;
    }
    auto differs = [&](uint32_t l) { return std::memcmp(img.data + l * kLine, home + l * kLine, kLine) != 0; };
    for (uint32_t l = 0; l < kLinesPerBlock; l++) {
      if (!differs(l)) continue;
      // A run ends at two clean lines in a row (one clean line is cheaper
      // logged than described by another entry).
      uint32_t end = l + 1;
      for (uint32_t m = l + 1; m < kLinesPerBlock && m - end < 2; m++)
        if (differs(m)) end = m + 1;
      runs.push_back({img.bno, l, end - l, img.data});
      l = end;
    }
  }
  if (runs.size() <= media::kLogMaxBlocks) return runs;
  // Too many runs for one header: one span per block (at most max_blocks_).
  std::vector<LineRun> spans;
  for (const LineRun& r : runs) {
    if (!spans.empty() && spans.back().home == r.home) {
      spans.back().nlines = r.first_line + r.nlines - spans.back().first_line;
    } else {
      spans.push_back(r);
    }
  }
  return spans;
}

Status Journal::Commit(const std::vector<Image>& images) {
  if (images.empty()) return Status::Ok();
  if (images.size() > max_blocks_)
    return Errno(ENOSPC, "transaction of " + std::to_string(images.size()) +
                             " blocks does not fit the journal");
  std::vector<LineRun> runs = DirtyRuns(images);
  if (runs.empty()) return Status::Ok();  // every image equals its home block
  auto* h = reinterpret_cast<LogHeader*>(header_buf_.get());
  std::memset(h, 0, kBlockSize);
  h->hdr.magic = media::kLogMagic;
  h->hdr.blkno = log_start_;
  h->seq = seq_;
  h->nblocks = static_cast<uint32_t>(runs.size());
  h->reserved = kLogDeltas;
  for (size_t i = 0; i < runs.size(); i++) h->homes[i] = EncodeRun(runs[i].home, runs[i].first_line, runs[i].nlines);
  // Step 2: the lines, then the header; one fence makes the record durable.
  uint32_t crc = media::BlockCrc(h);
  uint64_t pos = (log_start_ + 1) * kBlockSize;
  for (const LineRun& r : runs) {
    const uint8_t* src = r.src + r.first_line * kLine;
    uint64_t len = uint64_t{r.nlines} * kLine;
    RETURN_IF_ERROR(dev_->CopyIn(pos, src, len, false));
    crc = Crc32cExtend(crc, src, len);
    pos += len;
  }
  h->hdr.crc = crc;
  RETURN_IF_ERROR(dev_->CopyIn(log_start_ * kBlockSize, h, kBlockSize, /*drain=*/true));
  // Step 3: apply in place — cached stores + flushes: the next transactions
  // read these blocks again (the log above is not read).
  for (const LineRun& r : runs) {
    RETURN_IF_ERROR(dev_->CopyInCached(r.home * kBlockSize + r.first_line * kLine, r.src + r.first_line * kLine,
                                       uint64_t{r.nlines} * kLine, false));
    MarkVerified(r.home);
  }
  dev_->Drain();
  seq_++;
  commits_++;
  return Status::Ok();
}

// Replays a kLogDeltas record: every image is rebuilt (home block + logged
// lines) and must verify before anything is written.
Result<uint32_t> Journal::RecoverDeltas(const LogHeader* h, bool read_only) {
  if (h->nblocks == 0 || h->nblocks > media::kLogMaxBlocks) return 0u;
  uint64_t total_lines = 0;
  for (uint32_t i = 0; i < h->nblocks; i++) total_lines += h->homes[i] & 0xff;
  if (total_lines == 0 || total_lines * kLine > uint64_t{log_blocks_ - 1} * kBlockSize) return 0u;
  ASSIGN_OR_RETURN(auto data, dev_->Range((log_start_ + 1) * kBlockSize, total_lines * kLine));
  if (h->hdr.crc != Crc32cExtend(media::BlockCrc(h), data.data(), data.size())) return 0u;  // torn
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> images;
  const uint8_t* src = data.data();
  for (uint32_t i = 0; i < h->nblocks; i++) {
    uint64_t home = h->homes[i] >> 16;
    uint32_t first = (h->homes[i] >> 8) & 0xff, n = h->homes[i] & 0xff;
    if (home < media::kRootBlockNo || home >= total_blocks_ - 1 ||
        (home >= log_start_ && home < log_start_ + log_blocks_))
      return Errno(EUCLEAN, "journal names home block " + std::to_string(home) +
                                " outside the metadata area; refusing to replay");
    if (n == 0 || first + n > kLinesPerBlock)
      return Errno(EUCLEAN, "journal entry for block " + std::to_string(home) + " is malformed; refusing to replay");
    auto& img = images[home];
    if (!img) {
      img = std::make_unique<uint8_t[]>(kBlockSize);
      ASSIGN_OR_RETURN(auto cur, dev_->Range(home * kBlockSize, kBlockSize));
      std::memcpy(img.get(), cur.data(), kBlockSize);
    }
    std::memcpy(img.get() + first * kLine, src, n * kLine);
    src += n * kLine;
  }
  for (const auto& [home, img] : images) {
    Status st = media::VerifyRead(img.get(), home, 0, total_blocks_);
    if (!st.ok())
      return Errno(EUCLEAN, "journal image for home block " + std::to_string(home) +
                                " does not verify (" + st.message() + "); refusing to replay");
  }
  seq_ = h->seq + 1;
  uint32_t n = static_cast<uint32_t>(images.size());
  if (read_only) return n;
  for (const auto& [home, img] : images) RETURN_IF_ERROR(dev_->CopyIn(home * kBlockSize, img.get(), kBlockSize, false));
  dev_->Drain();
  RETURN_IF_ERROR(Format());
  return n;
}

Status Journal::Format() {
  std::memset(header_buf_.get(), 0, kBlockSize);
  return dev_->CopyIn(log_start_ * kBlockSize, header_buf_.get(), kBlockSize, true);
}

Result<uint32_t> Journal::Recover(bool read_only) {
  auto* h = reinterpret_cast<const LogHeader*>(dev_->BlockPtr(log_start_, kBlockSize));
  if (!h) return Errno(EIO, "journal outside the device");
  if (h->hdr.magic != media::kLogMagic) return 0u;  // empty or cleared log
  if (h->reserved == kLogDeltas) return RecoverDeltas(h, read_only);
  if (h->nblocks == 0 || h->nblocks > max_blocks_) return 0u;
  std::vector<const uint8_t*> imgs;
  for (uint32_t i = 0; i < h->nblocks; i++)
    imgs.push_back(dev_->BlockPtr(log_start_ + 1 + i, kBlockSize));
  if (h->hdr.crc != LogCrc(h, imgs) || !LogImagesIntact(h, imgs)) return 0u;  // torn: never committed
  for (uint32_t i = 0; i < h->nblocks; i++) {
    uint64_t home = h->homes[i];
    if (home < media::kRootBlockNo || home >= total_blocks_ - 1 ||
        (home >= log_start_ && home < log_start_ + log_blocks_))
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
  if (read_only) return n;
  for (uint32_t i = 0; i < n; i++)
    RETURN_IF_ERROR(dev_->CopyIn(h->homes[i] * kBlockSize, imgs[i], kBlockSize, false));
  dev_->Drain();
  RETURN_IF_ERROR(Format());
  return n;
}

Result<const uint8_t*> Transaction::Read(uint64_t bno, uint32_t magic) {
  auto it = blocks_.find(bno);
  if (it != blocks_.end()) return static_cast<const uint8_t*>(it->second.data.get());
  return journal_->ReadBlock(bno, magic);
}

Result<uint8_t*> Transaction::Write(uint64_t bno, uint32_t magic) {
  if (read_only_) return Errno(EROFS, "read-only transaction");
  auto it = blocks_.find(bno);
  if (it != blocks_.end()) return it->second.data.get();
  ASSIGN_OR_RETURN(const uint8_t* src, journal_->ReadBlock(bno, magic));
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kBlockSize);  // filled below
  std::memcpy(buf.get(), src, kBlockSize);
  uint8_t* p = buf.get();
  blocks_.emplace(bno, Block{std::move(buf), false});
  return p;
}

Result<uint8_t*> Transaction::New(uint64_t bno) {
  if (read_only_) return Errno(EROFS, "read-only transaction");
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kBlockSize);  // filled below
  std::memset(buf.get(), 0, kBlockSize);
  uint8_t* p = buf.get();
  blocks_[bno] = Block{std::move(buf), true};
  return p;
}

void Transaction::Forget(uint64_t bno) {
  blocks_.erase(bno);
  journal_->ForgetVerified(bno);
}

Status Transaction::Commit() {
  std::vector<Journal::Image> images;
  images.reserve(blocks_.size());
  for (auto& [bno, blk] : blocks_) {
    Status st = media::VerifyAndSeal(blk.data.get(), bno, journal_->total_blocks());
    if (!st.ok()) {
      blocks_.clear();
      return st;
    }
    images.push_back({bno, blk.data.get(), blk.fresh});
  }
  Status st = journal_->Commit(images);
  blocks_.clear();
  return st;
}

}  // namespace udax
