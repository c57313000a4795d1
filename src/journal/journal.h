// journal/journal.h — the redo log and Transaction: the only way metadata
// reaches the device.
//
// Protocol (docs/journal.md): a transaction collects whole-block images of the
// metadata blocks it changes (copy-on-first-write into DRAM). Commit:
//   1. seal every image (structure verifier, then blkno + crc32c);
//   2. write the images into the log region after the commit header, and the
//      header (home block numbers, seq, crc32c over the header and each
//      image's sealed crc), all with non-temporal stores; FENCE 1 — the
//      transaction is now committed;
//   3. copy the images to their home blocks; FENCE 2 — applied.
// Two fences per commit, whatever its size. Recovery replays the header's
// images when its crc matches and every image matches its own crc (replaying
// an applied transaction is harmless: block images are idempotent and the log
// only ever holds the newest one).
//
// The block cache: the DRAM copy of every metadata block a commit wrote (up to
// a bound). Reads (ReadBlock) are served from it, so a block that Commit just
// wrote and flushed — which the flush took out of the CPU cache — is not read
// back from the device, and Commit applies home blocks with non-temporal
// stores (nobody reads the device copy while the DRAM copy exists). A cached
// block's content always equals the device's committed content.
//
// Invariants:
//  * nothing writes a metadata block except Journal::Commit and Recover;
//  * the cache changes only under the writer's exclusive lock (Commit, Forget,
//    TrimCache); a cached block's buffer keeps its address until TrimCache,
//    which runs only where no block pointer is held (the start of a writing
//    operation), so pointers from ReadBlock stay valid across a Commit, as
//    device pointers do;
//  * a block freed inside a transaction is dropped from it (Forget) and is not
//    reused before the transaction commits (the allocator's busy list);
//  * the verified-block bitmap is set only for blocks whose content passed
//    VerifyRead or was written by Commit.
// Thread safety: one Transaction at a time may write (the filesystem's
// exclusive lock); read-only transactions may run concurrently with each other.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "device/pmem_device.h"
#include "media/format.h"
#include "udax/status.h"

namespace udax {

class Journal {
 public:
  Journal(PmemDevice* dev, uint64_t log_start, uint32_t log_blocks, uint64_t total_blocks);

  // Replays the committed transaction in the log, if any; then clears the
  // header. Returns the number of blocks replayed.
  Result<uint32_t> Recover(bool read_only);
  // Commits sealed block images (sorted by block number; each image's block
  // crc must be current, as media::VerifyAndSeal leaves it). The images
  // become the cached copies of their blocks (the vector is left with
  // whatever buffers the cache did not take).
  using Images = std::vector<std::pair<uint64_t, std::unique_ptr<uint8_t[]>>>;
  Status Commit(Images& images);
  // Writes an empty (invalid) commit header: used by mkfs.
  Status Format();

  uint32_t max_blocks_per_txn() const { return max_blocks_; }
  uint64_t total_blocks() const { return total_blocks_; }
  // The first block after the log (allocatable space starts here).
  uint64_t log_end() const { return log_start_ + log_blocks_; }
  PmemDevice* device() const { return dev_; }
  uint64_t commits() const { return commits_; }
  uint64_t seq() const { return seq_; }
  static constexpr uint32_t kFencesPerCommit = 2;

  // Verified-block cache: a block is CRC+structure-checked once per mount.
  bool IsVerified(uint64_t bno) const;
  void MarkVerified(uint64_t bno);
  void ForgetVerified(uint64_t bno);

  // A metadata block's current content, verified: the cached copy, or
  // straight from the device.
  Result<const uint8_t*> ReadBlock(uint64_t bno, uint32_t magic);

  // The block was freed: its cached copy is dropped (its buffer lives until
  // TrimCache, so a stale pointer still reads memory udax owns).
  void ForgetBlock(uint64_t bno);
  // Frees dropped buffers and, when the cache holds more than its bound,
  // empties it. Only where no pointer from ReadBlock is held.
  void TrimCache();
  size_t cached_blocks() const { return cache_.size(); }
  static constexpr size_t kCacheMaxBlocks = 16384;  // 64 MiB

 private:
  PmemDevice* dev_;
  uint64_t log_start_;
  uint32_t log_blocks_;
  uint64_t total_blocks_;
  uint32_t max_blocks_;
  uint64_t seq_ = 1;
  uint64_t commits_ = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> verified_;
  std::unique_ptr<uint8_t[]> header_buf_;
  std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> cache_;
  std::vector<std::unique_ptr<uint8_t[]>> dropped_;  // freed at TrimCache

  // Commit's step 3 for one image: the home block, then the cache (which
  // takes the image buffer when the block was not cached).
  Status Apply(uint64_t bno, std::unique_ptr<uint8_t[]>& img);
};

// A set of metadata block changes that commit atomically.
class Transaction {
 public:
  explicit Transaction(Journal* journal, bool read_only = false)
      : journal_(journal), read_only_(read_only) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() = default;  // an uncommitted transaction is simply dropped

  // The current content of a metadata block (the transaction's copy when it
  // has one). The pointer is valid until the next Write/New/Forget of bno.
  Result<const uint8_t*> Read(uint64_t bno, uint32_t magic);
  // A writable copy of an existing block (read + verified first).
  Result<uint8_t*> Write(uint64_t bno, uint32_t magic);
  // A writable zeroed image for a newly allocated block.
  Result<uint8_t*> New(uint64_t bno);
  // The block was freed: its image is dropped from the transaction.
  void Forget(uint64_t bno);

  bool dirty() const { return !blocks_.empty(); }
  size_t dirty_blocks() const { return blocks_.size(); }
  bool read_only() const { return read_only_; }
  Journal* journal() const { return journal_; }
  // Room left before the transaction would not fit the log.
  size_t room() const {
    size_t max = journal_->max_blocks_per_txn();
    return blocks_.size() >= max ? 0 : max - blocks_.size();
  }

  // Seals and commits; the transaction is empty afterwards.
  Status Commit();
  void Abort() { blocks_.clear(); }

 private:
  Journal* journal_;
  bool read_only_;
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> blocks_;
};

}  // namespace udax
