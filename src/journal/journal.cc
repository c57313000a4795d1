// journal/journal.cc — redo log commit and recovery (see journal.h).
#include "journal/journal.h"

#include <cstring>

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
  if (auto it = cache_.find(bno); it != cache_.end()) p = it->second.get();
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

Status Journal::Commit(Images& images) {
  if (images.empty()) return Status::Ok();
  if (images.size() > max_blocks_)
    return Errno(ENOSPC, "transaction of " + std::to_string(images.size()) +
                             " blocks does not fit the journal");
  auto* h = reinterpret_cast<LogHeader*>(header_buf_.get());
  std::memset(h, 0, kBlockSize);
  h->hdr.magic = media::kLogMagic;
  h->hdr.blkno = log_start_;
  h->seq = seq_;
  h->nblocks = static_cast<uint32_t>(images.size());
  h->reserved = kLogCrcOfImageCrcs;  // the images are sealed (Transaction::Commit)
  std::vector<const uint8_t*> imgs;
  imgs.reserve(images.size());
  for (size_t i = 0; i < images.size(); i++) {
    h->homes[i] = images[i].first;
    imgs.push_back(images[i].second.get());
  }
  h->hdr.crc = LogCrc(h, imgs);
  // Step 2: images, then the header; one fence makes the whole record durable.
  for (size_t i = 0; i < images.size(); i++)
    RETURN_IF_ERROR(dev_->CopyIn((log_start_ + 1 + i) * kBlockSize, imgs[i], kBlockSize, false));
  RETURN_IF_ERROR(dev_->CopyIn(log_start_ * kBlockSize, h, kBlockSize, /*drain=*/true));
  // Step 3: apply in place, and keep the images as the cached copies.
  for (auto& [bno, img] : images) RETURN_IF_ERROR(Apply(bno, img));
  dev_->Drain();
  seq_++;
  commits_++;
  return Status::Ok();
}

Status Journal::Apply(uint64_t bno, std::unique_ptr<uint8_t[]>& img) {
  // Non-temporal stores: reads of this block are served from the cache.
  RETURN_IF_ERROR(dev_->CopyIn(bno * kBlockSize, img.get(), kBlockSize, false));
  MarkVerified(bno);
  auto [it, inserted] = cache_.try_emplace(bno);
  if (inserted)
    it->second = std::move(img);
  else
    std::memcpy(it->second.get(), img.get(), kBlockSize);  // cached addresses are stable
  return Status::Ok();
}

void Journal::ForgetBlock(uint64_t bno) {
  ForgetVerified(bno);
  auto it = cache_.find(bno);
  if (it == cache_.end()) return;
  dropped_.push_back(std::move(it->second));
  cache_.erase(it);
}

void Journal::TrimCache() {
  dropped_.clear();
  if (cache_.size() > kCacheMaxBlocks) cache_.clear();
}

Status Journal::Format() {
  std::memset(header_buf_.get(), 0, kBlockSize);
  return dev_->CopyIn(log_start_ * kBlockSize, header_buf_.get(), kBlockSize, true);
}

Result<uint32_t> Journal::Recover(bool read_only) {
  auto* h = reinterpret_cast<const LogHeader*>(dev_->BlockPtr(log_start_, kBlockSize));
  if (!h) return Errno(EIO, "journal outside the device");
  if (h->hdr.magic != media::kLogMagic) return 0u;  // empty or cleared log
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
  if (it != blocks_.end()) return static_cast<const uint8_t*>(it->second.get());
  return journal_->ReadBlock(bno, magic);
}

Result<uint8_t*> Transaction::Write(uint64_t bno, uint32_t magic) {
  if (read_only_) return Errno(EROFS, "read-only transaction");
  auto it = blocks_.find(bno);
  if (it != blocks_.end()) return it->second.get();
  ASSIGN_OR_RETURN(const uint8_t* src, journal_->ReadBlock(bno, magic));
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kBlockSize);  // filled below
  std::memcpy(buf.get(), src, kBlockSize);
  uint8_t* p = buf.get();
  blocks_.emplace(bno, std::move(buf));
  return p;
}

Result<uint8_t*> Transaction::New(uint64_t bno) {
  if (read_only_) return Errno(EROFS, "read-only transaction");
  auto buf = std::make_unique_for_overwrite<uint8_t[]>(kBlockSize);  // filled below
  std::memset(buf.get(), 0, kBlockSize);
  uint8_t* p = buf.get();
  blocks_[bno] = std::move(buf);
  return p;
}

void Transaction::Forget(uint64_t bno) {
  blocks_.erase(bno);
  journal_->ForgetBlock(bno);
}

Status Transaction::Commit() {
  Journal::Images images;
  images.reserve(blocks_.size());
  for (auto& [bno, buf] : blocks_) {
    Status st = media::VerifyAndSeal(buf.get(), bno, journal_->total_blocks());
    if (!st.ok()) {
      blocks_.clear();
      return st;
    }
    images.emplace_back(bno, std::move(buf));
  }
  Status st = journal_->Commit(images);
  blocks_.clear();
  return st;
}

}  // namespace udax
