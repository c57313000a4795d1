// fs/fs_impl.h — FsImpl: the mounted filesystem (the kernel's super_block).
//
// Owns the device, the journal, the superblock, the block space (Space: the
// allocator, data range, bad blocks), the metadata lock, the mount state
// (mounted, read-only, shut down) and the transaction bracket every metadata
// change goes through (BeginTxn / CommitTxn / RollIfNeeded); mkfs, mount
// (recovery, orphan reclaim) and unmount (mount.cc). The work is done by its
// parts, one class and one file each, which reach the shared state through
// FsImpl's accessors:
//
//   inodes()   InodeTable    in-core inodes, revocation of mappings   inode_table.h
//   store()    InodeStore    inode records, orphans, open/last close  inode_store.h
//   names()    Namespace     path walk and namespace operations       namespace.h
//   files()    FileIo        read/write/truncate/fallocate/fsync      file_io.h
//   cow()      CopyOnWrite   writes over shared or failed blocks      cow.h
//   reflink()  Reflink       clone, dedupe, shared-extent view        reflink.h
//   dax()      DaxFaults     the fs half of a DAX fault               dax_fault.h
//   failure()  FailureHandler the device's holder: removal, failures  failure.h
//
// The public Filesystem and File (api.cc) call the part that owns each
// operation, inside BeginOperation.
//
// Locking (meta_lock.h; docs/ARCHITECTURE.md "Locking"): meta_mu_ exclusive
// for every writing transaction, shared for lookups, reads and overwrites of
// allocated blocks → Inode::mu → the inode table's mutex (innermost).
// Invariants:
//  * one writing FsTxn at a time (it is created under meta_mu_ exclusive);
//  * extent maps change only under meta_mu_ exclusive, so an extent found
//    under the shared lock stays exact while the write epoch is unchanged;
//  * a transaction that wrote new data blocks before commit frees nothing
//    before those allocations (the allocator refuses otherwise);
//  * shutdown_status_ is written once, before shut_down_ is set.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "device/pmem_device.h"
#include "fs/cow.h"
#include "fs/dax_fault.h"
#include "fs/failure.h"
#include "fs/file_io.h"
#include "fs/fs_txn.h"
#include "fs/inode.h"
#include "fs/inode_store.h"
#include "fs/inode_table.h"
#include "fs/meta_lock.h"
#include "fs/namespace.h"
#include "fs/reflink.h"
#include "journal/journal.h"
#include "media/format.h"
#include "space/space.h"
#include "udax/fs.h"

namespace udax {

// The public limits (udax/fs.h) are the format's.
static_assert(media::kMaxFileSize == kMaxFileSize, "the public file size limit is the format's");
static_assert(media::kMaxNameLen == kMaxNameLen, "the public name limit is the format's");

class FsImpl : public std::enable_shared_from_this<FsImpl> {
 public:
  static Result<std::unique_ptr<FsImpl>> Mount(const std::string& device, const MountOptions& opts);
  // mkfs: formats the device described by `sb` and returns it mounted.
  static Result<std::unique_ptr<FsImpl>> FormatAndMount(std::unique_ptr<PmemDevice> dev,
                                                        const media::Superblock& sb, FsImpl** out);
  ~FsImpl();
  Status Unmount();
  // A power cut: drops the device without writing anything more.
  void Crash();

  // ---- the parts ----
  InodeTable& inodes() { return inodes_; }
  InodeStore& store() { return store_; }
  Namespace& names() { return names_; }
  FileIo& files() { return files_; }
  CopyOnWrite& cow() { return cow_; }
  Reflink& reflink() { return reflink_; }
  DaxFaults& dax() { return dax_; }
  FailureHandler& failure() { return failure_; }

  // ---- whole-filesystem operations (statfs, sync_fs) ----
  Result<StatFs> GetStatFs();
  // Writes every open file's lazy times and checkpoints the journal.
  Status Sync();
  // Owners of device blocks [start, start+len) (rmap query).
  Result<std::vector<media::RmapRec>> QueryRmap(uint64_t start_block, uint64_t nblocks);
  // What a program may read beyond POSIX (introspect.cc): the journal's and
  // the allocator's counters, and QueryRmap in bytes as public BlockOwners.
  Result<FsStats> GetStats();
  Result<std::vector<BlockOwner>> BlockOwners(uint64_t device_offset, uint64_t len);

  // ---- entering an operation ----
  // Entry to every public operation and every fault: a reference on the
  // device (so removal waits for the operation) — ENODEV once removal began —
  // and a live filesystem (CheckLive).
  Result<DeviceRef> BeginOperation();
  // ESHUTDOWN when unmounted; the shutdown's reason once shut down.
  Status CheckLive() const {
    if (!mounted_) return Errno(ESHUTDOWN, "filesystem is not mounted");
    if (shut_down_.load(std::memory_order_acquire)) return shutdown_status_;
    return Status::Ok();
  }
  // CheckLive, and EROFS on a read-only mount.
  Status CheckLiveAndWritable() const;
  // Stops every later operation with `why` (device removed, metadata lost)
  // and revokes every mapping. Caller holds meta_mu_ exclusive.
  void Shutdown(Status why, InvalidateReason reason);
  // Told once the filesystem shut down, after every mapping was revoked,
  // with meta_mu_ held (the mount's DirectServer tells its clients, and lets
  // go of the device once it was removed). Set with meta_mu_ held.
  void SetShutdownListener(std::function<void(InvalidateReason)> fn) {
    meta_mu_.AssertHeld();
    shutdown_listener_ = std::move(fn);
  }
  bool shut_down() const { return shut_down_.load(std::memory_order_acquire); }
  bool mounted() const { return mounted_.load(); }

  // ---- transactions: Begin under meta_mu_ exclusive; Commit applies inode records ----
  Result<std::unique_ptr<FsTxn>> BeginTxn();
  Status CommitTxn(FsTxn& t);
  // Commits and starts over when fewer than `need` blocks of room are left.
  Status RollIfNeeded(FsTxn& t, size_t need);

  // ---- shared state ----
  MetaMutex& meta_mu() { return meta_mu_; }
  PmemDevice* device() { return dev_.get(); }
  Journal* journal() { return journal_.get(); }
  Space* space() { return &space_; }
  Allocator* allocator() { return space_.allocator(); }
  const BadBlockList& bad_blocks() const { return space_.bad_blocks(); }
  uint64_t total_blocks() const { return sb_.total_blocks; }
  uint64_t data_start() const { return space_.data_start(); }
  uint64_t data_end() const { return space_.data_end(); }
  bool read_only() const { return read_only_; }
  AtimeMode atime_mode() const { return atime_mode_; }
  uint32_t owner_uid() const { return owner_uid_; }  // of new inodes (MountOptions)
  uint32_t owner_gid() const { return owner_gid_; }
  // Whether a read of an inode with record `r` updates atime (AtimeMode).
  bool AtimeDue(const media::InodeRec& r, const media::DiskTime& now) const;
  // A mount-time repair note (MountOptions::on_note, else stderr).
  void Note(const std::string& note);

 private:
  FsImpl();
  // Adopts the superblock read (or formatted) at mount: the data range.
  void UseSuperblock(const media::Superblock& sb);
  void ReleaseDevice();

  std::unique_ptr<PmemDevice> dev_;
  std::unique_ptr<Journal> journal_;
  media::Superblock sb_{};
  Space space_;  // the allocator, the data range, the bad-block list
  bool read_only_ = false;
  AtimeMode atime_mode_ = AtimeMode::kRelatime;  // kNoatime when read-only
  uint32_t owner_uid_ = 0, owner_gid_ = 0;  // of new inodes (MountOptions)
  std::function<void(const std::string&)> on_note_;  // MountOptions::on_note
  std::function<void(InvalidateReason)> shutdown_listener_;  // under meta_mu_
  std::atomic<bool> mounted_{false};
  std::atomic<bool> shut_down_{false};
  Status shutdown_status_;  // written once, before shut_down_ is set
  MetaMutex meta_mu_;

  InodeTable inodes_;
  InodeStore store_{*this};
  Namespace names_{*this};
  FileIo files_{*this};
  CopyOnWrite cow_{*this};
  Reflink reflink_{*this};
  DaxFaults dax_{*this};
  FailureHandler failure_{*this};
};

}  // namespace udax
