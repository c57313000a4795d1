// fs/fs_impl.h — FsImpl: the mounted filesystem (the kernel's super_block).
//
// Owns: the device, the journal, the allocator, the table of in-core inodes
// (open files), and the metadata lock. Every public operation enters here.
//
// Locking (docs/ARCHITECTURE.md "Locking"):
//  * meta_mu_ (MetaMutex, a shared_mutex): exclusive for every writing
//    transaction, shared for lookups, reads, and overwrites of
//    already-allocated blocks; its write epoch counts exclusive sections;
//  * Inode::mu: protects an in-core inode's cached record (lazy timestamps)
//    and its last-extent cache; taken inside meta_mu_, never the other way round;
//  * inodes_mu_: the in-core inode table; innermost.
// Invariants:
//  * one writing FsTxn at a time (it is created under meta_mu_ exclusive);
//  * an in-core inode's `rec` equals its committed record plus lazy times;
//  * extent maps change only under meta_mu_ exclusive, so an extent found
//    under the shared lock stays exact while the write epoch is unchanged;
//  * a transaction that wrote new data blocks before commit frees nothing
//    before those allocations (the allocator refuses otherwise).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "btree/btree.h"
#include "device/pmem_device.h"
#include "fs/address_space.h"
#include "fs/alloc.h"
#include "fs/badblocks.h"
#include "journal/journal.h"
#include "media/format.h"
#include "udax/fs.h"

namespace udax {

struct ExtentLookup;
struct DirHit;

// Depth of meta_mu_ held by this thread (the DAX fault handler must not
// block on meta_mu_ when the faulting thread already holds it).
inline thread_local int tls_meta_lock_depth = 0;

// meta_mu_: a shared_mutex that counts its exclusive sections. Every
// extent-map change happens in one, so the epoch read under the shared lock
// names a state of every extent map that lasts while the epoch does (the
// in-core inodes' last-extent caches are stamped with it).
class MetaMutex {
 public:
  void lock() {
    mu_.lock();
    epoch_++;
  }
  void unlock() { mu_.unlock(); }
  void lock_shared() { mu_.lock_shared(); }
  void unlock_shared() { mu_.unlock_shared(); }
  // Read with the lock held (either way); written only under exclusive.
  uint64_t epoch() const { return epoch_; }

 private:
  std::shared_mutex mu_;
  uint64_t epoch_ = 1;  // 0 never names a state (an empty ExtentCache)
};

// meta_mu_ held exclusive (writers) / shared (readers), counted per thread.
class MetaWriteLock {
 public:
  explicit MetaWriteLock(MetaMutex& mu) : lk_(mu) { tls_meta_lock_depth++; }
  ~MetaWriteLock() { if (lk_.owns_lock()) tls_meta_lock_depth--; }
  void unlock() { lk_.unlock(); tls_meta_lock_depth--; }
 private:
  std::unique_lock<MetaMutex> lk_;
};
class MetaReadLock {
 public:
  explicit MetaReadLock(MetaMutex& mu) : lk_(mu) { tls_meta_lock_depth++; }
  ~MetaReadLock() { tls_meta_lock_depth--; }
 private:
  std::shared_lock<MetaMutex> lk_;
};

// The last mapped extent a read or an overwrite of an inode found: exact
// while meta_mu_'s epoch equals `epoch` (any exclusive section ends it — a
// conservative rule that needs no bookkeeping at each extent-map change).
struct ExtentCache {
  uint64_t epoch = 0;  // 0: empty
  media::BmapRec ext{};
};

// An in-core inode: exists while a File holds it open.
class Inode {
 public:
  explicit Inode(const media::InodeRec& r) : ino(r.ino), rec(r) {}
  const uint64_t ino;
  std::mutex mu;         // guards rec, times_dirty and last_ext
  media::InodeRec rec;   // committed record + lazy timestamps
  bool times_dirty = false;
  // The next read updates atime (the mount's AtimeMode, AtimeDue): the one
  // test a read makes; kept by every change of the record's times.
  std::atomic<bool> atime_due{false};
  ExtentCache last_ext;  // for Pread/Pwrite (file_io.cc), under meta_mu_ shared
  int open_count = 0;    // guarded by FsImpl::inodes_mu_ (open Files + Mappings)
  AddressSpace mappings; // live DAX mappings of this inode
};

// A writing transaction plus the filesystem-level bookkeeping around it.
class FsTxn {
 public:
  explicit FsTxn(FsImpl* fs);
  ~FsTxn();  // an uncommitted transaction is dropped; allocator state reset
  FsImpl* fs;
  Transaction tx;
  media::RootBlock* root = nullptr;  // the transaction's image of the root block
  std::map<uint64_t, media::InodeRec> inodes;  // records written, applied to in-core inodes on commit
  bool data_pending = false;  // data written with nodrain stores before commit
  // The operation's time: one clock read however many inodes it stamps (as
  // the kernel's current_time per system call).
  media::DiskTime Now();

 private:
  media::DiskTime now_{};
  bool have_now_ = false;
};

class FsImpl : public DeviceHolder, public std::enable_shared_from_this<FsImpl> {
 public:
  static Result<std::unique_ptr<FsImpl>> Mount(const std::string& device, const MountOptions& opts);
  // mkfs: formats the device described by `sb` and returns it mounted.
  static Result<std::unique_ptr<FsImpl>> FormatAndMount(std::unique_ptr<PmemDevice> dev,
                                                        const media::Superblock& sb, FsImpl** out);
  ~FsImpl() override;
  Status Unmount();
  void Crash();

  // ---- namespace (namei.cc) ----
  Result<File> Open(const PathAt& path, int flags, uint32_t mode);
  Status Mkdir(const PathAt& path, uint32_t mode);
  Status Rmdir(const PathAt& path);
  Status Unlink(const PathAt& path);
  Status Rename(const PathAt& from, const PathAt& to);
  Status Link(const PathAt& existing, const PathAt& new_path);
  Status Symlink(const std::string& target, const PathAt& path);
  Result<std::string> Readlink(const PathAt& path);
  Result<Stat> GetStat(const PathAt& path, bool follow);
  Status Chmod(const PathAt& path, uint32_t mode);
  // follow: a final symlink is followed (chown, utimensat) or changed
  // itself (lchown, AT_SYMLINK_NOFOLLOW).
  Status Chown(const PathAt& path, uint32_t uid, uint32_t gid, bool follow);
  Status Utimens(const PathAt& path, Timespec atime, Timespec mtime, bool follow);
  Status TruncatePath(const PathAt& path, uint64_t len);
  Result<std::vector<DirEntry>> ReadDir(const PathAt& path);
  Result<StatFs> GetStatFs();
  Status Sync();

  // ---- what a program may read beyond POSIX (introspect.cc) ----
  Result<FsStats> GetStats();
  // Filesystem::QueryRmap: QueryRmap in bytes, as public BlockOwners.
  Result<std::vector<BlockOwner>> BlockOwners(uint64_t device_offset, uint64_t len);

  // ---- file I/O (file_io.cc) ----
  Result<size_t> Pread(Inode* ip, void* buf, size_t len, uint64_t off);
  Result<size_t> Pwrite(Inode* ip, const void* buf, size_t len, uint64_t off, bool append);
  Status Truncate(Inode* ip, uint64_t len);
  Status Fallocate(Inode* ip, int mode, uint64_t off, uint64_t len);
  Status Fsync(Inode* ip);
  Result<Stat> StatInode(Inode* ip);
  Result<std::vector<FileExtent>> Fiemap(Inode* ip);
  void Release(Inode* ip);  // a File closed

  // ---- copy-on-write (cow.cc) and reflink (reflink.cc) ----
  // Replaces up to n shared blocks of `rec` from file block fblk with private
  // copies; returns how many (>= 1). Caller commits.
  // copy=false: the old blocks failed; the copies are zeroed instead.
  Result<uint64_t> CowBlocks(FsTxn& t, media::InodeRec& rec, uint64_t fblk, uint64_t n, bool copy = true);
  // A write starting at a failed block (bad_run bad blocks from pos): whole
  // blocks are replaced by fresh ones and written; a partial block is EIO.
  Result<size_t> OverwriteBad(FsTxn& t, media::InodeRec& rec, const uint8_t* src, size_t len, uint64_t pos,
                              uint64_t bad_run);
  // Writes into the mapped extent `e` at pos (copying shared blocks first);
  // returns the bytes written (up to the end of a shared/unshared run).
  Result<size_t> WriteMapped(FsTxn& t, media::InodeRec& rec, const struct ExtentLookup& e,
                             const uint8_t* src, size_t len, uint64_t pos);
  // Gives the file private copies of every shared block overlapping [a, b)
  // (content unchanged; may commit along the way). After it, zeroing in the
  // range allocates nothing, so cannot fail half-way with ENOSPC.
  Status UnshareRange(FsTxn& t, media::InodeRec& rec, uint64_t a, uint64_t b);
  // Zeroes file bytes [a, b) of mapped blocks in place (holes stay holes),
  // copying shared blocks first. May roll the transaction.
  Status ZeroMapped(FsTxn& t, media::InodeRec& rec, uint64_t a, uint64_t b);
  // FICLONERANGE: dst[dst_off, +len) becomes a reflink of src[src_off, +len).
  Status CloneRange(Inode* dst, Inode* src, uint64_t src_off, uint64_t len, uint64_t dst_off);
  // FIDEDUPERANGE: shares the ranges when their bytes are equal.
  Result<uint64_t> DedupeRange(Inode* dst, Inode* src, uint64_t src_off, uint64_t len, uint64_t dst_off);
  // Owners of device blocks [start, start+len) (rmap query).
  Result<std::vector<media::RmapRec>> QueryRmap(uint64_t start_block, uint64_t nblocks);
  // The file's extents split where sharing changes, with kExtentShared set.
  Result<std::vector<FileExtent>> SharedExtents(Inode* ip);

  // ---- DAX (dax_fault.cc) ----
  // What a fault should install: a page-aligned file range and what backs it.
  struct DaxExtent {
    enum Kind { kDevice, kZero } kind = kZero;
    uint64_t file_off = 0, len = 0;
    uint64_t dev_off = 0;  // kDevice
    bool writable = false;
  };
  // Resolves the fault at file offset `off` within the mapped window [lo, hi):
  // a write into a hole first allocates, zeroes and commits (MAP_SYNC). Calls
  // install() under meta_mu_, so no truncate can free the blocks before they
  // are mapped. Errors: EFAULT beyond EOF, ENOSPC, ESHUTDOWN, EUCLEAN.
  Status DaxFault(Inode* ip, uint64_t off, bool write, bool may_write, uint64_t lo, uint64_t hi,
                  const std::function<Status(const DaxExtent&)>& install);
  // The device ranges behind file range [off, off+len) (holes skipped).
  Result<std::vector<std::pair<uint64_t, uint64_t>>> DeviceRanges(Inode* ip, uint64_t off, uint64_t len);
  // unmap_mapping_range for every mapping of `ino`; caller holds meta_mu_.
  void InvalidateMappings(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                          bool notify = true);
  // The size of `ino` changed: pages between the old and new EOF change
  // meaning (beyond-EOF <-> inside), so mappings must fault them again.
  void SizeChanged(uint64_t ino, uint64_t old_size, uint64_t new_size);
  // A Mapping was created or destroyed (keeps the inode in core meanwhile).
  std::shared_ptr<Inode> GrabInode(Inode* ip);

  // ---- DeviceHolder: removal and memory failure (failure.cc) ----
  void NotifyFailure(uint64_t off, uint64_t len, FailureFlags flags) override;
  // Device blocks [start, start+n) failed: file owners (every sharer) lose
  // their mappings of the range (reason MemoryFailure, callbacks run) and read
  // EIO there; free blocks are retired; a metadata block shuts the fs down.
  // The blocks join the persistent bad-block list.
  Status MemoryFailure(uint64_t start, uint64_t n);
  const BadBlockList& bad_blocks() const { return bad_; }

  // ---- internals shared by the fs/*.cc files ----
  PmemDevice* device() { return dev_.get(); }
  Journal* journal() { return journal_.get(); }
  Allocator* allocator() { return &alloc_; }
  uint64_t total_blocks() const { return sb_.total_blocks; }
  uint64_t data_start() const { return sb_.log_start + sb_.log_blocks; }
  uint64_t data_end() const { return sb_.total_blocks - 1; }
  bool read_only() const { return read_only_; }
  AtimeMode atime_mode() const { return atime_mode_; }

  // Transactions: Begin under meta_mu_ exclusive; Commit applies inode records.
  Result<std::unique_ptr<FsTxn>> BeginTxn();
  Status CommitTxn(FsTxn& t);
  // Commits and starts over when fewer than `need` blocks of room are left.
  Status RollIfNeeded(FsTxn& t, size_t need);

  // Inode records (inode.cc).
  Result<media::InodeRec> ReadInode(Transaction& tx, uint64_t ino);
  Result<media::InodeRec> ReadInodeFor(FsTxn& t, uint64_t ino);  // sees in-txn updates
  Status WriteInode(FsTxn& t, const media::InodeRec& rec);
  Result<media::InodeRec> CreateInode(FsTxn& t, uint32_t mode, uint64_t parent);
  Status DeleteInode(FsTxn& t, uint64_t ino);
  std::shared_ptr<Inode> FindInCore(uint64_t ino);
  // A snapshot of the in-core inode table (taken under inodes_mu_).
  std::vector<std::shared_ptr<Inode>> InCoreInodes();
  // Every live mapping of every in-core inode back to PROT_NONE.
  void InvalidateAllMappings(InvalidateReason why, bool notify);
  std::shared_ptr<Inode> GetInCore(const media::InodeRec& rec);  // open_count++
  Status AddOrphan(FsTxn& t, uint64_t ino);
  Status RemoveOrphan(FsTxn& t, uint64_t ino);
  // Frees every block of an unlinked inode and the inode itself (rolling).
  Status ReclaimInode(uint64_t ino);
  // Frees every orphan with no links; a record naming a linked or missing
  // inode is dropped (in a transaction) and reported through Note.
  Status ReclaimOrphans();
  // A mount-time repair note (MountOptions::on_note, else stderr).
  void Note(const std::string& note);
  Status FlushLazyTimes(Inode* ip);

  MetaMutex& meta_mu() { return meta_mu_; }
  Status CheckMounted() const {
    if (!mounted_) return Errno(ESHUTDOWN, "filesystem is not mounted");
    if (shut_down_.load(std::memory_order_acquire)) return shutdown_status_;
    return Status::Ok();
  }
  // Entry to every public operation: a reference on the device (so removal
  // waits for the operation) — ENODEV once removal began — and a live fs.
  Result<DeviceRef> Enter();
  // Stops every later operation with `why` (device removed, metadata lost)
  // and revokes every mapping. Caller holds meta_mu_ exclusive.
  void Shutdown(Status why, InvalidateReason reason);
  bool shut_down() const { return shut_down_.load(std::memory_order_acquire); }

  // ---- path resolution (namei.cc); callers hold meta_mu_ ----
  // The inode `path` names; follows symlinks (the final one when follow_last).
  Result<media::InodeRec> Walk(Transaction& tx, const PathAt& path, bool follow_last);
  struct ParentAndName {
    media::InodeRec parent;
    std::string name;
    bool trailing_slash = false;
  };
  // The directory that holds the final component, and that component.
  Result<ParentAndName> WalkParent(Transaction& tx, const PathAt& path);
  // As WalkParent, for a name about to be created: EEXIST when it exists.
  Result<ParentAndName> WalkToNewName(Transaction& tx, const PathAt& path);
  // Adds the entry pn.name -> ino (of S_IF* `type`) to pn.parent, counting a
  // subdirectory's ".." link and touching the parent's mtime/ctime.
  // `absent`: a DirLookup of pn.name in this transaction that found it absent (dir.h).
  Status AddEntry(FsTxn& t, const ParentAndName& pn, uint64_t ino, uint32_t type,
                  const DirHit* absent = nullptr);
  // Drops one link of `ino` (already removed from its directory): orphan it,
  // and free it at once when nobody has it open.
  Status DropLink(FsTxn& t, uint64_t ino, bool* reclaim_now);
  static media::DiskTime Now();
  // The clock at tick granularity (CLOCK_REALTIME_COARSE, a few ns instead
  // of ~30): lazy times of plain overwrites, as the kernel stamps them.
  static media::DiskTime NowCoarse();
  // Whether a read of an inode with record `r` updates atime (AtimeMode).
  bool AtimeDue(const media::InodeRec& r, const media::DiskTime& now) const;
  // A read happened: atime updated lazily when due. ip->mu not held.
  void TouchAtime(Inode* ip);

 private:
  FsImpl() = default;
  Status CheckWritable() const;
  void ReleaseDevice();
  Result<std::string> ReadSymlink(Transaction& tx, const media::InodeRec& rec);
  Status WriteSymlinkTarget(FsTxn& t, media::InodeRec& rec, const std::string& target,
                            const BlockExtent& block);

  std::unique_ptr<PmemDevice> dev_;
  std::unique_ptr<Journal> journal_;
  media::Superblock sb_{};
  Allocator alloc_{this};
  BadBlockList bad_;
  bool read_only_ = false;
  AtimeMode atime_mode_ = AtimeMode::kRelatime;  // kNoatime when read-only
  uint32_t owner_uid_ = 0, owner_gid_ = 0;  // of new inodes (MountOptions)
  std::function<void(const std::string&)> on_note_;  // MountOptions::on_note
  std::atomic<bool> mounted_{false};
  std::atomic<bool> shut_down_{false};
  Status shutdown_status_;  // written once, before shut_down_ is set
  MetaMutex meta_mu_;
  std::mutex inodes_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Inode>> inodes_;
};

media::DiskTime ToDisk(Timespec t);
Timespec FromDisk(media::DiskTime t);

}  // namespace udax
