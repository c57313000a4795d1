// journal/journal.h — the redo log and Transaction: the only way metadata
// reaches the device.
//
// Protocol (docs/journal.md). A transaction collects whole-block images of the
// metadata blocks it changes (copy-on-first-write into DRAM). Commit:
//   1. verify every image's structure and stamp its blkno; find the 64-byte
//      lines in which it differs from the block's current content (a fresh
//      block: from zeroes); an unchanged block is left out;
//   2. append one record — header, a descriptor per block (home, line mask,
//      fresh/revoke flags), the changed lines — to the log's chain with
//      non-temporal stores; FENCE — the transaction is committed;
//   3. copy the changed lines into the block cache and mark them dirty.
// One fence per commit. Home blocks are written back only at a checkpoint:
// when the log is full (before it wraps to its start), when the cache is
// trimmed, and at Format (clean unmount): every dirty block is sealed (its
// crc32c computed), its dirty lines and header line are written with
// non-temporal stores, FENCE, and the log starts again from its start. So a
// block changed by many commits is written home once per checkpoint.
// Recovery replays the chain — the records from the log's start on with one
// generation and consecutive sequence numbers — in order onto the home
// blocks, honouring revokes (a freed block's lines in earlier records are
// void: it may hold file data since), seals and verifies every rebuilt block,
// and only then writes them. A read-only recovery (a read-only mount, fsck -n,
// info) rebuilds the same blocks into the block cache instead, as not yet
// written home: reads see the committed state and the device is never
// written (nothing checkpoints a read-only journal).
//
// The block cache: the DRAM copy of every metadata block a commit wrote (and
// of every block not yet written home: it is the only up-to-date copy until
// the checkpoint). Reads (ReadBlock) are served from it. Cached copies are
// not sealed (their crc field is stale); homes always are.
//
// Invariants:
//  * nothing writes a metadata block except the checkpoint and Recover; a
//    journal recovered read-only is never checkpointed (its replayed blocks
//    live only in the cache, and its device refuses writes);
//  * a line of a home block differs from the cached copy only if it is dirty,
//    and every dirty line is in a record of the current chain;
//  * a block freed inside a transaction is revoked by its commit (its cached
//    copy and dirty lines are dropped), and is not reused before the
//    transaction commits (the allocator's busy list);
//  * the cache changes only under the writer's exclusive lock (Commit,
//    TrimCache); a cached block's buffer keeps its address until TrimCache,
//    which runs only where no block pointer is held (the start of a writing
//    operation), so pointers from ReadBlock stay valid across a Commit, as
//    device pointers do;
//  * the verified-block bitmap is set only for blocks whose content passed
//    VerifyRead or was written by Commit;
//  * a cached copy changes only in Apply (a commit or a read-only replay) and
//    when a checkpoint seals it: nothing writes through a pointer to it (an
//    image pointer kept past its transaction's commit would);
//  * a pooled image buffer (TakeBuffer / ReturnBuffer) is not written while
//    it is in the pool.
// Thread safety: one Transaction at a time may write (the filesystem's
// exclusive lock); read-only transactions may run concurrently with each other.
// Builds with UDAX_ASSERTS check the invariants that are cheap to check
// (util/assert.h): cached copies carry a checksum verified before each change
// and before each checkpoint, pooled buffers a fill pattern verified when
// they are taken, and the journal names its writing transaction (one at a
// time) and, when told, the lock writers hold (SetWriterLock).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "device/pmem_device.h"
#include "media/format.h"
#include "udax/status.h"
#include "util/assert.h"
#include "util/owned_mutex.h"

namespace udax {

class Transaction;

class Journal {
 public:
  Journal(PmemDevice* dev, uint64_t log_start, uint32_t log_blocks, uint64_t total_blocks);

  // Replays the committed records in the log, if any; then clears the log.
  // read_only: replays them into the block cache only (ReadBlock serves the
  // replayed blocks) and writes nothing. Returns the number of blocks replayed.
  Result<uint32_t> Recover(bool read_only);

  // A verified block image to commit (media::VerifyForWrite).
  struct Image {
    uint64_t bno;
    std::unique_ptr<uint8_t[]> buf;
    bool fresh;  // a newly allocated block: its old content is irrelevant
  };
  // Commits the images (sorted by block number) and revokes the freed
  // blocks. The images become the cached copies of their blocks (buffers the
  // cache does not take are left in `images`).
  Status Commit(std::vector<Image>& images, const std::vector<uint64_t>& revoked);
  // Writes every dirty block home (sealed) and fences; the log then starts
  // again from its start.
  Status Checkpoint();
  // Checkpoint, then clears the log (mkfs, clean unmount).
  Status Format();

  uint32_t max_blocks_per_txn() const { return max_blocks_; }
  // Whole blocks that still fit a record that already holds `blocks` block
  // images and `revokes` revokes.
  size_t Room(size_t blocks, size_t revokes) const;
  uint64_t total_blocks() const { return total_blocks_; }
  // The first block after the log (allocatable space starts here).
  uint64_t log_end() const { return log_start_ + log_blocks_; }
  PmemDevice* device() const { return dev_; }
  uint64_t commits() const { return commits_; }
  uint64_t seq() const { return seq_; }
  uint64_t checkpoints() const { return checkpoints_; }
  // Blocks the last commit's record holds (changed, fresh and revoked).
  uint32_t last_commit_blocks() const { return last_commit_blocks_; }
  static constexpr uint32_t kFencesPerCommit = 1;  // + 1 per checkpoint

  // Verified-block cache: a block is CRC+structure-checked once per mount.
  bool IsVerified(uint64_t bno) const;
  void MarkVerified(uint64_t bno);
  void ForgetVerified(uint64_t bno);

  // A metadata block's current content, verified: the cached copy, or
  // straight from the device.
  Result<const uint8_t*> ReadBlock(uint64_t bno, uint32_t magic);

  // Tests that change a home block behind the journal's back: Checkpoint
  // first, then change it, then drop the (clean) cached copy with this.
  void ForgetBlock(uint64_t bno);
  // Frees dropped buffers and, when the cache holds more than its bound,
  // checkpoints and empties it. Only where no pointer from ReadBlock is held.
  Status TrimCache();
  size_t dirty_blocks() const { return dirty_.size(); }

  // 4 KiB image buffers, recycled (the writer's; not thread safe).
  std::unique_ptr<uint8_t[]> TakeBuffer();
  void ReturnBuffer(std::unique_ptr<uint8_t[]> buf);
  size_t cached_blocks() const { return cache_.size(); }
  static constexpr size_t kCacheMaxBlocks = 16384;  // 64 MiB

  // Debug builds: the lock every writer holds exclusively (the filesystem's
  // metadata lock); Commit, Checkpoint and TrimCache then assert that the
  // calling thread holds it. Null (the default): not checked.
  void SetWriterLock(const OwnedSharedMutex* mu) { writer_lock_ = mu; }

 private:
  friend class Transaction;
  bool IsMetadataHome(uint64_t bno) const;
  Result<uint32_t> RecoverWholeImages(bool read_only);  // the older log form
  Result<uint32_t> RecoverChain(bool read_only);
  // Step 3 for one image: its changed lines into the cache, marked dirty.
  void Apply(Image& img, uint64_t mask);
  // A block rebuilt by a read-only recovery: cached as not yet written home.
  void KeepReplayed(uint64_t bno, std::unique_ptr<uint8_t[]> buf);
  void Drop(uint64_t bno);  // a revoked block leaves the cache, dirty or not
  struct Cached;
  Cached* FindCached(uint64_t bno) const;

  PmemDevice* dev_;
  uint64_t log_start_;
  uint32_t log_blocks_;
  uint64_t log_bytes_;
  uint64_t total_blocks_;
  uint32_t max_blocks_;
  uint64_t generation_;
  uint64_t head_ = 0;  // byte offset in the log of the next record
  uint64_t seq_ = 1;
  uint64_t commits_ = 0;
  uint64_t checkpoints_ = 0;
  uint32_t last_commit_blocks_ = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> verified_;
  std::vector<uint8_t> record_;  // the record being built
  std::vector<uint64_t> masks_;  // Commit's changed-line masks
  struct Cached {
    std::unique_ptr<uint8_t[]> buf;
    uint64_t dirty = 0;  // lines not yet written home
    UDAX_DEBUG_ONLY(uint32_t sum = 0;)  // crc32c of buf after its last change
  };
  // Debug builds: the checksum of a cached copy, stamped after each change
  // and checked before the next one (no-ops otherwise).
  static void StampCached(Cached& c);
  static void CheckCached(uint64_t bno, const Cached& c);
  void AssertWriterLockHeld() const {
    if (writer_lock_) writer_lock_->AssertHeld();
  }
  std::unordered_map<uint64_t, Cached> cache_;
  // A direct-mapped index in front of cache_ (its nodes never move), set when
  // a block enters the cache and cleared when it leaves: most lookups skip
  // the hash table.
  struct Slot {
    uint64_t bno = ~uint64_t{0};
    Cached* entry = nullptr;
  };
  static constexpr size_t kSlots = 1024;
  std::unique_ptr<Slot[]> slots_{new Slot[kSlots]};
  std::vector<uint64_t> dirty_;  // blocks with dirty lines (maybe dropped since)
  std::vector<std::unique_ptr<uint8_t[]>> dropped_;  // freed at TrimCache
  std::vector<std::unique_ptr<uint8_t[]>> spare_;    // TakeBuffer's pool
  static constexpr size_t kSpareMax = 64;
  const OwnedSharedMutex* writer_lock_ = nullptr;
  // The transaction holding block images or revokes (debug builds): at most
  // one at a time. Atomic: read-only transactions may end on any thread.
  UDAX_DEBUG_ONLY(std::atomic<const Transaction*> writer_{nullptr};)
};

// A set of metadata block changes that commit atomically.
//
// State: open -> committed (Commit) or aborted (Abort, a failed Commit, the
// destructor). Only an open transaction takes images (Write, New) or frees
// blocks (Forget) and only an open one commits; a rolling operation carries
// on in the same object after Restart(). Debug builds assert this (a write
// after the commit would be dropped with the object, unlogged), and that at
// most one transaction of a journal holds images at a time.
// Reads are allowed in every state.
class Transaction {
 public:
  explicit Transaction(Journal* journal, bool read_only = false)
      : journal_(journal), read_only_(read_only) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() { Abort(); }  // an uncommitted transaction is simply dropped

  // The current content of a metadata block (the transaction's copy when it
  // has one). The pointer is valid until the next Write/New/Forget of bno.
  Result<const uint8_t*> Read(uint64_t bno, uint32_t magic);
  // A writable copy of an existing block (read + verified first).
  Result<uint8_t*> Write(uint64_t bno, uint32_t magic);
  // A writable zeroed image for a newly allocated block.
  Result<uint8_t*> New(uint64_t bno);
  // The block was freed: its image is dropped from the transaction and the
  // commit revokes it. A block this transaction freed may be taken again only
  // as a new block (New: the free list hands nodes out again at once). A
  // Write of it means two owners of one block (a cross-linked tree on a
  // crafted image, or a use after free): the Write fails and the transaction
  // refuses to commit, with EUCLEAN naming the block. (A second Forget is
  // not refused: a node popped from the free list and given back unused, as
  // a failed split does, is freed twice without ever being taken by New.)
  void Forget(uint64_t bno);

  bool dirty() const { return !blocks_.empty() || !revoked_.empty(); }
  size_t dirty_blocks() const { return blocks_.size(); }
  bool read_only() const { return read_only_; }
  Journal* journal() const { return journal_; }
  // Room left (in blocks) before the transaction would not fit the log.
  size_t room() const { return journal_->Room(blocks_.size(), revoked_.size()); }

  // Seals and commits; the transaction is empty (and committed) afterwards.
  // Image pointers it handed out are dead from here on.
  Status Commit();
  // Drops every image; an open transaction becomes aborted.
  void Abort();
  // A committed or aborted (empty) transaction becomes open again: the next
  // transaction of a rolling operation.
  void Restart();
  bool open() const { return state_ == State::kOpen; }

 private:
  enum class State : uint8_t { kOpen, kCommitted, kAborted };
  struct Block {
    uint64_t bno;
    std::unique_ptr<uint8_t[]> buf;
    bool fresh;
  };
  // The block's entry, or where it would be inserted (blocks_ is sorted).
  std::vector<Block>::iterator Slot(uint64_t bno);
  bool Revoked(uint64_t bno) const;
  // Debug builds: the state machine's checks for a change (Write, New,
  // Forget), and the journal's one-writer rule.
  void AssertMayChange(const char* op);
  // Returns every buffer and empties the transaction.
  void Release();
  Journal* journal_;
  bool read_only_;
  State state_ = State::kOpen;
  std::vector<Block> blocks_;  // sorted by bno: a few entries, mostly
  std::vector<uint64_t> revoked_;
  Status refused_;  // a refused change: the commit fails with it (see Forget)
};

}  // namespace udax
