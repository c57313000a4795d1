// fs/mount.cc — FsImpl (see fs_impl.h): mkfs, mount (with recovery),
// unmount, entering an operation, shutdown, the transaction bracket every
// metadata change goes through, and the whole-filesystem operations (statfs,
// sync, rmap queries).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>

#include "fs/fs_impl.h"
#include "media/verify.h"
#include "space/dir.h"
#include "space/rmap.h"

namespace udax {



namespace {

constexpr uint64_t kMinBlocks = 1024;  // 4 MiB

bool NotAfter(const media::DiskTime& a, const media::DiskTime& b) {
  return a.sec < b.sec || (a.sec == b.sec && a.nsec <= b.nsec);
}
constexpr int64_t kRelatimeMaxAge = 24 * 60 * 60;  // seconds, as Linux's relatime

uint32_t ChooseLogBlocks(uint64_t total_blocks) {
  uint64_t l = total_blocks / 64;
  if (l < 64) l = 64;
  if (l > media::kLogMaxBlocks + 1) l = media::kLogMaxBlocks + 1;
  return static_cast<uint32_t>(l);
}

// Both superblock copies, then a fence.
Status WriteSuperblocks(PmemDevice* dev, const media::Superblock& sb) {
  alignas(64) uint8_t blk[kBlockSize] = {};
  std::memcpy(blk, &sb, sizeof sb);
  reinterpret_cast<media::BlockHeader*>(blk)->blkno = 0;
  media::SetBlockCrc(blk);
  RETURN_IF_ERROR(dev->CopyIn(0, blk, kBlockSize, false));
  // The secondary copy differs only in blkno... which the crc covers; keep
  // blkno 0 in both so that either verifies as "the superblock".
  return dev->CopyIn((sb.total_blocks - 1) * kBlockSize, blk, kBlockSize, true);
}

// The primary superblock, or the secondary one when the primary is damaged.
Result<media::Superblock> ReadSuperblock(PmemDevice* dev) {
  media::Superblock sb;
  RETURN_IF_ERROR(dev->CopyOut(&sb, 0, sizeof sb));
  // Verify over the whole block (the crc covers it).
  ASSIGN_OR_RETURN(auto blk, dev->Range(0, kBlockSize));
  Status st = media::VerifySuperblock(*reinterpret_cast<const media::Superblock*>(blk.data()), dev->size());
  if (st.ok()) return sb;
  if (st.err() == EOPNOTSUPP) return st;
  uint64_t last = dev->size() / kBlockSize - 1;
  auto sec = dev->Range(last * kBlockSize, kBlockSize);
  if (sec.has_value()) {
    const auto* s2 = reinterpret_cast<const media::Superblock*>(sec->data());
    if (media::VerifySuperblock(*s2, dev->size()).ok() && s2->total_blocks == last + 1) return *s2;
  }
  return st;
}

}  // namespace

// Without -f mkfs takes only a device or file that holds no data: empty, all
// zeroes or holes (a fresh truncate/fallocate). A udax filesystem or other
// data is refused.
static Status CheckMayFormat(const std::string& device, const struct stat& st) {
  if (S_ISREG(st.st_mode) && st.st_size == 0) return Status::Ok();
  DeviceOptions dopts;
  dopts.create = true;  // the create path's O_NOFOLLOW, without a resize
  ASSIGN_OR_RETURN(auto dev, PmemDevice::Open(device, dopts));
  if (ReadSuperblock(dev.get()).has_value())
    return Errno(EEXIST, device + " already contains a udax filesystem (use -f to overwrite)");
  if (dev->HoldsData()) return Errno(EEXIST, device + " holds data that is not a udax filesystem; -f overwrites it");
  return Status::Ok();
}

Status Filesystem::Mkfs(const std::string& device, const MkfsOptions& opts) {
  struct stat st;
  bool exists = ::stat(device.c_str(), &st) == 0;
  if (!exists && opts.size == 0)
    return Errno(EINVAL, "device " + device + " does not exist; give a size (-s) to create it");
  if (opts.size != 0 && opts.size / kBlockSize < kMinBlocks)
    return Errno(EINVAL, "size " + std::to_string(opts.size) + " is too small (minimum 4 MiB)");
  // What an existing file holds is judged before anything (a resize) changes it.
  if (exists && !opts.force) RETURN_IF_ERROR(CheckMayFormat(device, st));
  DeviceOptions dopts;
  dopts.create = true;
  dopts.size = opts.size ? opts.size / kBlockSize * kBlockSize : 0;
  ASSIGN_OR_RETURN(auto dev, PmemDevice::Open(device, dopts));
  uint64_t total = dev->size() / kBlockSize;
  if (total < kMinBlocks) return Errno(EINVAL, "device " + device + " is too small (minimum 4 MiB)");

  media::Superblock sb;
  std::memset(&sb, 0, sizeof sb);
  sb.hdr.magic = media::kSuperMagic;
  sb.version = media::kVersion;
  sb.block_size = kBlockSize;
  sb.total_blocks = total;
  sb.log_start = media::kLogStart;
  sb.log_blocks = ChooseLogBlocks(total);
  if (opts.log_blocks) {
    if (opts.log_blocks < 8 || opts.log_blocks > media::kLogMaxBlocks + 1 ||
        media::kLogStart + opts.log_blocks + 64 > total)
      return Errno(EINVAL, "journal size " + std::to_string(opts.log_blocks) + " blocks: it must be 8 to " +
                               std::to_string(media::kLogMaxBlocks + 1) + " and leave room for data");
    sb.log_blocks = opts.log_blocks;
  }
  sb.root_block = media::kRootBlockNo;
  sb.features_ro_compat = media::kFeatureRoCompatRmap;
  sb.features_incompat = media::kFeatureIncompatReflink | media::kFeatureIncompatLineLog;
  std::random_device rd;
  for (auto& b : sb.uuid) b = static_cast<uint8_t>(rd());
  sb.mkfs_time = ClockNow().sec;
  // Invalidate both superblocks first: a crash mid-mkfs leaves no filesystem.
  RETURN_IF_ERROR(dev->Fill(0, 0, kBlockSize, false));
  RETURN_IF_ERROR(dev->Fill((total - 1) * kBlockSize, 0, kBlockSize, true));

  // Build the root block, free space and the root directory in one transaction.
  FsImpl* fs_raw;
  auto mounted = FsImpl::FormatAndMount(std::move(dev), sb, &fs_raw);
  if (!mounted.has_value()) return mounted.error();
  return (*mounted)->Unmount();
}

Result<std::unique_ptr<FsImpl>> FsImpl::FormatAndMount(std::unique_ptr<PmemDevice> dev,
                                                       const media::Superblock& sb_in, FsImpl** out) {
  std::unique_ptr<FsImpl> fs(new FsImpl());
  fs->dev_ = std::move(dev);
  fs->UseSuperblock(sb_in);
  fs->owner_uid_ = geteuid();
  fs->owner_gid_ = getegid();
  fs->journal_ = std::make_unique<Journal>(fs->dev_.get(), fs->sb_.log_start, fs->sb_.log_blocks,
                                           fs->sb_.total_blocks);
  RETURN_IF_ERROR(fs->journal_->Format());
  {
    MetaWriteLock lk(fs->meta_mu_);  // as every transaction (CommitTxn asserts it)
    FsTxn t(fs->journal_.get(), fs->space_.allocator());
    ASSIGN_OR_RETURN(uint8_t * rb, t.tx.New(media::kRootBlockNo));
    t.root = reinterpret_cast<media::RootBlock*>(rb);
    t.root->hdr.magic = media::kRootMagic;
    t.root->next_ino = 1;
    RETURN_IF_ERROR(fs->space_.allocator()->Format(t, fs->data_start(), fs->data_end(), fs->sb_.total_blocks));
    ASSIGN_OR_RETURN(media::InodeRec root, fs->store_.Create(t, S_IFDIR | 0755, 0));
    root.parent = root.ino;
    RETURN_IF_ERROR(fs->store_.Write(t, root));
    t.root->root_ino = root.ino;
    RETURN_IF_ERROR(fs->CommitTxn(t));
  }
  // The superblocks go last: until they are written there is no filesystem.
  RETURN_IF_ERROR(WriteSuperblocks(fs->dev_.get(), fs->sb_));
  fs->mounted_ = true;
  fs->journal_->SetWriterLock(&fs->meta_mu_.owned());
  *out = fs.get();
  return fs;
}

Result<std::unique_ptr<FsImpl>> FsImpl::Mount(const std::string& device, const MountOptions& opts) {
  std::unique_ptr<FsImpl> fs(new FsImpl());
  DeviceOptions dopts;
  dopts.read_only = opts.read_only;  // O_RDONLY, PROT_READ, a shared lock
  ASSIGN_OR_RETURN(fs->dev_, PmemDevice::Open(device, dopts));
  if (fs->dev_->size() < kMinBlocks * kBlockSize)
    return Errno(EUCLEAN, "device " + device + " is too small to hold a udax filesystem");
  ASSIGN_OR_RETURN(media::Superblock sb, ReadSuperblock(fs->dev_.get()));
  fs->UseSuperblock(sb);
  fs->read_only_ = opts.read_only;
  fs->owner_uid_ = opts.uid.value_or(geteuid());
  fs->owner_gid_ = opts.gid.value_or(getegid());
  fs->on_note_ = opts.on_note;
  if (fs->sb_.features_ro_compat & ~media::kFeatureRoCompatKnown) fs->read_only_ = true;
  fs->atime_mode_ = fs->read_only_ ? AtimeMode::kNoatime : opts.atime;
  fs->journal_ = std::make_unique<Journal>(fs->dev_.get(), fs->sb_.log_start, fs->sb_.log_blocks,
                                           fs->sb_.total_blocks);
  // Read-only: the committed records are replayed into the journal's block
  // cache only; the mount sees the committed state and writes nothing.
  RETURN_IF_ERROR(fs->journal_->Recover(fs->read_only_).error());
  if (!fs->read_only_ && !(fs->sb_.features_incompat & media::kFeatureIncompatLineLog)) {
    // An image of an older udax: from now on its journal is written as line
    // records, which that udax must not mistake for an empty log.
    fs->sb_.features_incompat |= media::kFeatureIncompatLineLog;
    RETURN_IF_ERROR(WriteSuperblocks(fs->dev_.get(), fs->sb_));
  }
  {
    Transaction tx(fs->journal_.get(), true);
    ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
    const auto* root = reinterpret_cast<const media::RootBlock*>(rb);
    ASSIGN_OR_RETURN(media::InodeRec rootino, fs->store_.Read(tx, root->root_ino));
    if (!S_ISDIR(rootino.mode)) return Errno(EUCLEAN, "root inode is not a directory");
    // Known-bad memory stays off limits (the device refuses to touch it).
    fs->space_.bad_blocks().Assign(*root);
    for (const auto& e : fs->space_.bad_blocks().List())
      fs->dev_->MarkPoisoned(e.start * kBlockSize, e.length * kBlockSize);
  }
  RETURN_IF_ERROR(fs->dev_->SetHolder(&fs->failure_));
  fs->mounted_ = true;
  // From here every commit and checkpoint runs under meta_mu_ exclusive
  // (recovery, before, runs alone and without it).
  fs->journal_->SetWriterLock(&fs->meta_mu_.owned());
  if (!fs->read_only_) {
    MetaWriteLock lk(fs->meta_mu_);
    RETURN_IF_ERROR(fs->store_.ReclaimOrphans());
  }
  return fs;
}

FsImpl::FsImpl() { space_.SetObserver(&inodes_); }

FsImpl::~FsImpl() {
  if (mounted_) Unmount().IgnoreError();
  ReleaseDevice();
}

Status FsImpl::Unmount() {
  MetaWriteLock lk(meta_mu_);
  if (!mounted_) return Errno(EINVAL, "not mounted");
  Status result;
  if (shut_down_) {
    // Nothing more may be written (the device is gone, or its metadata is):
    // every commit is already durable, the journal replays what is left.
    mounted_ = false;
    ReleaseDevice();
    return Status::Ok();
  }
  if (!read_only_) {
    for (auto& ip : inodes_.Snapshot()) {
      Status st = store_.FlushLazyTimes(ip.get());
      if (result.ok() && !st.ok()) result = st;
    }
  }
  // Every transaction is applied in place: mark the journal clean.
  if (!read_only_ && result.ok()) result = journal_->Format();
  mounted_ = false;
  ReleaseDevice();
  return result;
}

void FsImpl::Crash() {
  MetaWriteLock lk(meta_mu_);
  mounted_ = false;
  ReleaseDevice();
}

void FsImpl::ReleaseDevice() {
  if (!dev_) return;
  // No mapping may keep pointing at a device the filesystem let go of.
  inodes_.RevokeAllMappings(InvalidateReason::kRemoved, /*notify=*/false);
  dev_->ClearHolder(&failure_);
  journal_.reset();
  dev_.reset();  // unmaps and drops the exclusive lock
}

void FsImpl::Note(const std::string& note) {
  if (on_note_) {
    on_note_(note);
  } else {
    std::fprintf(stderr, "udax: %s: %s\n", dev_ ? dev_->path().c_str() : "", note.c_str());
  }
}

void FsImpl::UseSuperblock(const media::Superblock& sb) {
  sb_ = sb;
  // Allocatable: after the journal, before the secondary superblock.
  space_.SetDataRange(sb.log_start + sb.log_blocks, sb.total_blocks - 1);
}

Status FsImpl::CheckLiveAndWritable() const {
  RETURN_IF_ERROR(CheckLive());
  if (read_only_) return Errno(EROFS, "read-only filesystem");
  return Status::Ok();
}

Result<std::unique_ptr<FsTxn>> FsImpl::BeginTxn() {
  meta_mu_.AssertHeld();
  RETURN_IF_ERROR(CheckLiveAndWritable());
  RETURN_IF_ERROR(journal_->TrimCache());  // the exclusive lock is held and no block pointer yet
  auto t = std::make_unique<FsTxn>(journal_.get(), space_.allocator());
  ASSIGN_OR_RETURN(uint8_t * rb, t->tx.Write(media::kRootBlockNo, media::kRootMagic));
  t->root = reinterpret_cast<media::RootBlock*>(rb);
  return t;
}

Status FsImpl::CommitTxn(FsTxn& t) {
  meta_mu_.AssertHeld();
  Status st = space_.allocator()->FixFreeList(t);
  if (st.ok() && t.data_pending) dev_->Drain();  // data before the metadata naming it
  if (st.ok()) st = t.tx.Commit();
  if (!st.ok()) t.tx.Abort();
  space_.allocator()->EndTxn();
  t.data_pending = false;
  if (st.ok()) {
    for (auto& [ino, rec] : t.inodes) {
      if (auto ip = inodes_.Find(ino)) {
        std::lock_guard<std::mutex> g(ip->mu);
        ip->rec = rec;
        ip->times_dirty = false;
        ip->atime_due.store(AtimeDue(rec, t.Now()), std::memory_order_relaxed);
      }
    }
  }
  t.inodes.clear();
  t.root = nullptr;
  return st;
}

Status FsImpl::RollIfNeeded(FsTxn& t, size_t need) {
  if (t.tx.room() >= need) return Status::Ok();
  RETURN_IF_ERROR(CommitTxn(t));
  t.tx.Restart();
  ASSIGN_OR_RETURN(uint8_t * rb, t.tx.Write(media::kRootBlockNo, media::kRootMagic));
  t.root = reinterpret_cast<media::RootBlock*>(rb);
  return Status::Ok();
}

Result<DeviceRef> FsImpl::BeginOperation() {
  PmemDevice* dev = dev_.get();
  if (!dev) return Errno(ESHUTDOWN, "filesystem is not mounted");
  auto ref = dev->TryRef();
  if (!ref.has_value()) return Errno(ENODEV, "filesystem shut down: device removed");
  RETURN_IF_ERROR(CheckLive());
  return ref;
}

void FsImpl::Shutdown(Status why, InvalidateReason reason) {
  meta_mu_.AssertHeld();
  if (shut_down_) return;
  shutdown_status_ = std::move(why);
  shut_down_.store(true, std::memory_order_release);
  inodes_.RevokeAllMappings(reason, /*notify=*/true);
  if (shutdown_listener_) shutdown_listener_(reason);
}


// Linux's relatime_need_update: atime not after mtime or ctime, or a day old.
bool FsImpl::AtimeDue(const media::InodeRec& r, const media::DiskTime& now) const {
  switch (atime_mode_) {
    case AtimeMode::kNoatime: return false;
    case AtimeMode::kStrictatime: return true;
    case AtimeMode::kRelatime:
      return NotAfter(r.atime, r.mtime) || NotAfter(r.atime, r.ctime) || now.sec - r.atime.sec >= kRelatimeMaxAge;
  }
  return false;
}

Result<StatFs> FsImpl::GetStatFs() {
  MetaReadLock lk(meta_mu_);
  RETURN_IF_ERROR(CheckLive());
  Transaction tx(journal_.get(), true);
  ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
  const auto* root = reinterpret_cast<const media::RootBlock*>(rb);
  StatFs s;
  s.total_blocks = sb_.total_blocks;
  s.free_blocks = root->free_blocks > Allocator::kReserveBlocks ? root->free_blocks - Allocator::kReserveBlocks : 0;
  s.used_inodes = root->inode_count;
  s.total_inodes = root->inode_count + s.free_blocks * (media::kBlockSize / sizeof(media::InodeRec));
  return s;
}

Status FsImpl::Sync() {
  MetaWriteLock lk(meta_mu_);
  RETURN_IF_ERROR(CheckLive());
  for (auto& ip : inodes_.Snapshot()) RETURN_IF_ERROR(store_.FlushLazyTimes(ip.get()));
  // Every metadata block home: nothing is left for a mount to replay.
  if (!read_only_) RETURN_IF_ERROR(journal_->Checkpoint());
  return Status::Ok();
}

Result<std::vector<media::RmapRec>> FsImpl::QueryRmap(uint64_t start_block, uint64_t nblocks) {
  MetaReadLock lk(meta_mu_);
  RETURN_IF_ERROR(CheckLive());
  if (start_block >= sb_.total_blocks || nblocks > sb_.total_blocks - start_block)
    return Errno(EINVAL, "range outside the device");
  Transaction tx(journal_.get(), true);
  return RmapQuery(tx, start_block, nblocks);
}

}  // namespace udax
