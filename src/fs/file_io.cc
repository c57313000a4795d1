// fs/file_io.cc — FileIo: read, write, truncate, fallocate, fsync (see
// file_io.h).
#include "fs/file_io.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <cstring>
#include <optional>
#include <vector>

#include "fs/caller.h"
#include "fs/fs_impl.h"
#include "space/bmap.h"
#include "space/dir.h"

namespace udax {

using media::InodeRec;

namespace {
constexpr size_t kRollRoom = 64;     // commit and continue below this many free log slots

uint64_t RoundUp(uint64_t v) { return (v + kBlockSize - 1) / kBlockSize * kBlockSize; }

// Every size change goes through here so DAX mappings see the new EOF.
void SetSize(FsImpl& fs, InodeRec& rec, uint64_t size) {
  fs.inodes().RevokeSizeChange(rec.ino, rec.size, size);
  rec.size = size;
}

// Blocks [fblk, fblk+n) of `ino` were a hole and are mapped now: mappings
// showing zero pages there fault again (no callback: the bytes are the same).
void RevokeZeroPages(FsImpl& fs, uint64_t ino, uint64_t fblk, uint64_t n) {
  fs.inodes().RevokeMappings(ino, fblk * kBlockSize, n * kBlockSize, InvalidateReason::kTruncate,
                             /*notify=*/false);
}
}  // namespace

Stat StatFromRecord(const InodeRec& r);

namespace {
// What Pread and the Pwrite fast path need of an in-core inode, copied under
// ip->mu (not the whole 256-byte record).
struct InodeView {
  uint64_t size;
  uint32_t mode, flags;
  media::BtreeRoot data;
  LastExtent cached;
};
// An overwrite's lazy mtime/ctime from the coarse clock `now` (see
// ClockNowCoarse in inode.h). They never move back: the coarse clock lags the precise
// one (by up to about two ticks, measured), so a time a little ahead of it is
// a recent precise stamp and is kept. A time more than a second ahead (set by
// utimens, or the clock was stepped back) becomes now, as in the kernel.
// Returns whether *t changed.
bool StampLazy(media::DiskTime& t, const media::DiskTime& now) {
  bool later = now.sec > t.sec || (now.sec == t.sec && now.nsec > t.nsec);
  bool far_ahead = t.sec > now.sec + 1 || (t.sec == now.sec + 1 && t.nsec > now.nsec);
  if (!later && !far_ahead) return false;
  t = now;
  return true;
}

// An overwrite's lazy times on `ip` (ip->mu held).
void StampOverwriteLocked(FsImpl& fs, Inode* ip) {
  media::DiskTime now = ClockNowCoarse();
  bool m = StampLazy(ip->rec.mtime, now), c = StampLazy(ip->rec.ctime, now);
  if (m || c) {
    ip->times_dirty = true;
    if (fs.atime_mode() == AtimeMode::kRelatime) ip->atime_due.store(true, std::memory_order_relaxed);
  }
}

InodeView ViewOf(Inode* ip) {
  std::lock_guard<std::mutex> g(ip->mu);
  return InodeView{ip->rec.size, ip->rec.mode, ip->rec.flags, ip->rec.data, ip->last_ext};
}

// The extent lookups of one Pread/Pwrite under meta_mu_ shared: the inode's
// cached last extent when it is of the current epoch and covers the block,
// else the extent map (through a read-only transaction made at first need).
class ExtentFinder {
 public:
  ExtentFinder(Journal* journal, uint64_t ino, const InodeView& v, uint64_t epoch)
      : journal_(journal), ino_(ino), data_(v.data), epoch_(epoch), have_(v.cached.epoch == epoch),
        ext_(v.cached.ext) {}
  Result<ExtentOrHole> Find(uint64_t fblk) {
    ExtentOrHole e;
    if (have_ && fblk >= ext_.file_block && fblk - ext_.file_block < ext_.length) {
      e.mapped = true;
      e.ext = ext_;
      return e;
    }
    if (!tx_) tx_.emplace(journal_, true);
    ASSIGN_OR_RETURN(e, LookupExtent(*tx_, ino_, data_, fblk));
    if (e.mapped) {
      ext_ = e.ext;
      have_ = fresh_ = true;
    }
    return e;
  }
  bool fresh() const { return fresh_; }
  // Caches the last extent read from the map; ip->mu held.
  void Remember(Inode* ip) const {
    if (fresh_) ip->last_ext = LastExtent{epoch_, ext_};
  }

 private:
  Journal* journal_;
  uint64_t ino_;
  media::BtreeRoot data_;
  uint64_t epoch_;
  bool have_, fresh_ = false;
  media::BmapRec ext_;
  std::optional<Transaction> tx_;
};
}  // namespace

Result<size_t> FileIo::Pread(Inode* ip, void* buf, size_t len, uint64_t off) {
  MetaReadLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  InodeView v = ViewOf(ip);
  if (S_ISDIR(v.mode)) return Errno(EISDIR, "is a directory");
  if (off >= v.size || len == 0) return size_t{0};
  len = std::min<uint64_t>(len, v.size - off);
  ExtentFinder finder(fs_.journal(), ip->ino, v, fs_.meta_mu().epoch());
  auto* out = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    uint64_t pos = off + done;
    ASSIGN_OR_RETURN(ExtentOrHole lk2, finder.Find(pos / kBlockSize));
    if (lk2.mapped) {
      uint64_t ext_end = (lk2.ext.file_block + lk2.ext.length) * kBlockSize;
      uint64_t n = std::min<uint64_t>(len - done, ext_end - pos);
      uint64_t dev_b = lk2.ext.start_block + (pos / kBlockSize - lk2.ext.file_block);
      if (fs_.bad_blocks().any()) {  // stop before failed memory: a short read, or EIO at it
        uint64_t nblk = (pos % kBlockSize + n + kBlockSize - 1) / kBlockSize;
        uint64_t first_bad = fs_.bad_blocks().FirstBad(dev_b, dev_b + nblk);
        if (first_bad == dev_b) {
          if (done) return done;
          return Errno(EIO, "memory failure: file offset " + std::to_string(pos) + " is poisoned");
        }
        n = std::min<uint64_t>(n, (first_bad - dev_b) * kBlockSize - pos % kBlockSize);
      }
      uint64_t dev_off = lk2.ext.start_block * kBlockSize + (pos - lk2.ext.file_block * kBlockSize);
      RETURN_IF_ERROR(fs_.device()->CopyOut(out + done, dev_off, n));
      done += n;
    } else {
      uint64_t hole_end = lk2.hole_end == UINT64_MAX ? UINT64_MAX : lk2.hole_end * kBlockSize;
      uint64_t n = std::min<uint64_t>(len - done, hole_end - pos);
      std::memset(out + done, 0, n);
      done += n;
    }
  }
  if (finder.fresh()) {
    std::lock_guard<std::mutex> g(ip->mu);
    finder.Remember(ip);
  }
  if (ip->atime_due.load(std::memory_order_relaxed)) fs_.store().TouchAtime(ip);  // lazy, as overwrites' times
  return done;
}

// Copies into already-mapped blocks of [off, off+len); returns how many bytes
// from the front were copied before the first hole.
static Result<size_t> OverwriteMapped(PmemDevice* dev, ExtentFinder& finder, const uint8_t* src,
                                      size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    uint64_t pos = off + done;
    ASSIGN_OR_RETURN(ExtentOrHole lk, finder.Find(pos / kBlockSize));
    if (!lk.mapped) break;
    uint64_t ext_end = (lk.ext.file_block + lk.ext.length) * kBlockSize;
    uint64_t n = std::min<uint64_t>(len - done, ext_end - pos);
    uint64_t dev_off = lk.ext.start_block * kBlockSize + (pos - lk.ext.file_block * kBlockSize);
    RETURN_IF_ERROR(dev->CopyIn(dev_off, src + done, n, false));
    done += n;
  }
  return done;
}

Result<size_t> FileIo::Pwrite(Inode* ip, const void* buf, size_t len, uint64_t off, bool append) {
  const auto* src = static_cast<const uint8_t*>(buf);
  if (len == 0) return size_t{0};
  {
    // Fast path: no allocation, no size change — shared lock, one fence.
    MetaReadLock lk(fs_.meta_mu());
    RETURN_IF_ERROR(fs_.CheckLiveAndWritable());
    InodeView v = ViewOf(ip);
    if (S_ISDIR(v.mode)) return Errno(EISDIR, "is a directory");
    if (append) off = v.size;
    if (off > kMaxFileSize || len > kMaxFileSize - off) return Errno(EFBIG, "file too large");
    // (A file with setuid/setgid bits takes the transaction: the write may kill them.)
    if (off + len <= v.size && !(v.flags & media::kInodeFlagReflinked) && !fs_.bad_blocks().any() &&
        !(v.mode & (S_ISUID | S_ISGID))) {
      ExtentFinder finder(fs_.journal(), ip->ino, v, fs_.meta_mu().epoch());
      ASSIGN_OR_RETURN(size_t n, OverwriteMapped(fs_.device(), finder, src, len, off));
      if (n == len) {
        fs_.device()->Drain();
        std::lock_guard<std::mutex> g(ip->mu);
        StampOverwriteLocked(fs_, ip);
        finder.Remember(ip);
        return len;
      }
    }
  }
  MetaWriteLock lk(fs_.meta_mu());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(InodeRec rec, fs_.store().ReadForUpdate(*t, ip->ino));
  if (append) off = rec.size;
  if (off > kMaxFileSize || len > kMaxFileSize - off) return Errno(EFBIG, "file too large");
  // Zero stale bytes past the old EOF in its block before extending over them.
  if (off > rec.size && rec.size % kBlockSize)
    RETURN_IF_ERROR(fs_.cow().ZeroMapped(*t, rec, rec.size, RoundUp(rec.size)));
  // A write that allocates several extents may commit more than one
  // transaction (the rolls below). The size changes only in the last one, so
  // a crash leaves all of the size change or none; until then the blocks it
  // mapped lie past EOF, and they must read as zeroes there (as fallocate
  // KEEP_SIZE leaves them, which every size extension relies on). So data for
  // blocks wholly past the old EOF reaches the device before a commit only in
  // new blocks of the last transaction; new blocks of a rolled transaction are
  // zeroed again before it commits, and those bytes, like bytes for blocks
  // already mapped past EOF, are copied after the last commit.
  struct Copy {
    uint64_t dev_off;
    const uint8_t* src;
    uint64_t len;
  };
  const uint64_t past_eof = RoundUp(rec.size);  // first byte of the first block wholly past EOF
  std::vector<Copy> in_txn, after_commit;       // data past EOF: in this transaction's new blocks / later
  auto roll = [&](size_t need) -> Status {
    if (t->tx.room() >= need) return Status::Ok();
    for (const Copy& c : in_txn) RETURN_IF_ERROR(fs_.device()->Fill(c.dev_off, 0, c.len, false));
    after_commit.insert(after_commit.end(), in_txn.begin(), in_txn.end());
    in_txn.clear();
    RETURN_IF_ERROR(fs_.store().Write(*t, rec));
    return fs_.RollIfNeeded(*t, need);
  };
  size_t done = 0;
  Status err;
  while (done < len) {
    uint64_t pos = off + done;
    ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(t->tx, rec, pos / kBlockSize));
    if (e.mapped && pos >= past_eof && !(rec.flags & media::kInodeFlagReflinked) && !fs_.bad_blocks().any()) {
      // Preallocated past EOF (never shared: truncate frees whole blocks past
      // EOF). With failed memory on the device WriteMapped's checks come first
      // instead, and the data goes in before the commit.
      uint64_t ext_end = (e.ext.file_block + e.ext.length) * kBlockSize;
      uint64_t n = std::min<uint64_t>(len - done, ext_end - pos);
      after_commit.push_back(Copy{e.ext.start_block * kBlockSize + (pos - e.ext.file_block * kBlockSize), src + done, n});
      done += n;
      continue;
    }
    if (e.mapped) {
      if (fs_.allocator()->freed_in_txn()) RETURN_IF_ERROR(roll(SIZE_MAX));  // a copy-on-write below may allocate
      auto n = fs_.cow().WriteMapped(*t, rec, e, src + done, len - done, pos);
      if (!n.has_value()) {
        err = n.error();
        break;
      }
      done += *n;
      RETURN_IF_ERROR(roll(kRollRoom));
      continue;
    }
    // A hole: allocate up to the end of the write or of the hole.
    uint64_t fblk = pos / kBlockSize;
    uint64_t last = (off + len - 1) / kBlockSize + 1;
    if (e.hole_end != UINT64_MAX) last = std::min(last, e.hole_end);
    uint64_t hint = 0;
    if (fblk > 0) {
      ASSIGN_OR_RETURN(ExtentOrHole prev, LookupExtent(t->tx, rec, fblk - 1));
      if (prev.mapped) hint = prev.ext.start_block + (fblk - 1 - prev.ext.file_block) + 1;
    }
    // An earlier allocation in this transaction freed a block (B+tree node
    // churn, free-list give-back): new data may not be placed before that
    // commits, so commit what is mapped and go on in a new transaction.
    if (fs_.allocator()->freed_in_txn()) RETURN_IF_ERROR(roll(SIZE_MAX));
    auto ext = fs_.allocator()->AllocData(*t, last - fblk, hint);
    if (!ext.has_value()) {
      err = ext.error();
      break;
    }
    uint64_t dev_base = ext->start * kBlockSize;
    uint64_t in_blk = pos % kBlockSize;
    uint64_t n = std::min<uint64_t>(len - done, ext->length * kBlockSize - in_blk);
    if (in_blk) RETURN_IF_ERROR(fs_.device()->Fill(dev_base, 0, in_blk, false));
    RETURN_IF_ERROR(fs_.device()->CopyIn(dev_base + in_blk, src + done, n, false));
    uint64_t tail = ext->length * kBlockSize - in_blk - n;
    if (tail) RETURN_IF_ERROR(fs_.device()->Fill(dev_base + in_blk + n, 0, tail, false));
    if (uint64_t from = std::max(pos, past_eof); from < pos + n)
      in_txn.push_back(Copy{dev_base + (from - fblk * kBlockSize), src + done + (from - pos), pos + n - from});
    t->data_pending = true;
    RETURN_IF_ERROR(MapExtent(fs_.space(), *t, rec, fblk, ext->start, ext->length));
    RevokeZeroPages(fs_, rec.ino, fblk, ext->length);
    done += n;
    RETURN_IF_ERROR(roll(kRollRoom));
  }
  if (done == 0 && !err.ok()) {
    t->tx.Abort();
    fs_.allocator()->EndTxn();
    return err;
  }
  SetSize(fs_, rec, std::max<uint64_t>(rec.size, off + done));
  rec.mtime = rec.ctime = ClockNow();
  rec.mode = ModeAfterKillPriv(rec.mode, rec.gid, PrivChange::kData);
  RETURN_IF_ERROR(fs_.store().Write(*t, rec));
  RETURN_IF_ERROR(fs_.CommitTxn(*t));
  for (const Copy& c : after_commit) RETURN_IF_ERROR(fs_.device()->CopyIn(c.dev_off, c.src, c.len, false));
  if (!after_commit.empty()) fs_.device()->Drain();
  return done;
}

Status FileIo::Truncate(Inode* ip, uint64_t len) {
  MetaWriteLock lk(fs_.meta_mu());
  Allocator::FreeingOp freeing(fs_.allocator());  // may use the reserve (alloc.h)
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  RETURN_IF_ERROR(freeing.Begin(*t));
  ASSIGN_OR_RETURN(InodeRec rec, fs_.store().ReadForUpdate(*t, ip->ino));
  if (S_ISDIR(rec.mode)) return Errno(EISDIR, "is a directory");
  if (!S_ISREG(rec.mode)) return Errno(EINVAL, "not a regular file");
  if (len > kMaxFileSize) return Errno(EFBIG, "file too large");
  if (len > rec.size && rec.size % kBlockSize)
    RETURN_IF_ERROR(fs_.cow().ZeroMapped(*t, rec, rec.size, RoundUp(rec.size)));
  SetSize(fs_, rec, len);
  rec.mtime = rec.ctime = ClockNow();
  rec.mode = ModeAfterKillPriv(rec.mode, rec.gid, PrivChange::kData);
  RETURN_IF_ERROR(fs_.store().Write(*t, rec));
  // Free whole blocks past the new EOF, a bounded number per transaction.
  bool done = false;
  while (!done) {
    RETURN_IF_ERROR(UnmapRange(fs_.space(), *t, rec, RoundUp(len) / kBlockSize, UINT64_MAX / 2, kExtentsPerTxn, &done));
    RETURN_IF_ERROR(fs_.store().Write(*t, rec));
    RETURN_IF_ERROR(fs_.CommitTxn(*t));
    if (!done) {
      ASSIGN_OR_RETURN(t, fs_.BeginTxn());
      ASSIGN_OR_RETURN(rec, fs_.store().ReadForUpdate(*t, ip->ino));
    }
  }
  return Status::Ok();
}

Status FileIo::Fallocate(Inode* ip, int mode, uint64_t off, uint64_t len) {
  const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if (mode & ~known) return Errno(EOPNOTSUPP, "unsupported fallocate mode");
  if (len == 0) return Errno(EINVAL, "length must be positive");
  if (off > kMaxFileSize || len > kMaxFileSize - off) return Errno(EFBIG, "file too large");
  bool punch = mode & FALLOC_FL_PUNCH_HOLE, zero = mode & FALLOC_FL_ZERO_RANGE;
  if (punch && !(mode & FALLOC_FL_KEEP_SIZE)) return Errno(EOPNOTSUPP, "punch hole needs keep-size");
  if (punch && zero) return Errno(EOPNOTSUPP, "punch hole and zero range are exclusive");
  MetaWriteLock lk(fs_.meta_mu());
  Allocator::FreeingOp freeing(fs_.allocator());  // a punch may use the reserve (alloc.h)
  if (!punch) freeing.Cancel();
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  if (punch) RETURN_IF_ERROR(freeing.Begin(*t));
  ASSIGN_OR_RETURN(InodeRec rec, fs_.store().ReadForUpdate(*t, ip->ino));
  if (S_ISDIR(rec.mode)) return Errno(EISDIR, "is a directory");
  if (!S_ISREG(rec.mode)) return Errno(ENODEV, "not a regular file");
  rec.mode = ModeAfterKillPriv(rec.mode, rec.gid, PrivChange::kData);  // written with the change
  uint64_t end = off + len;
  // Zeroes [a, b) of already-mapped blocks in place (shared ones copied first).
  auto zero_mapped = [&](uint64_t a, uint64_t b) { return fs_.cow().ZeroMapped(*t, rec, a, b); };
  if (punch) {
    uint64_t first_full = RoundUp(off) / kBlockSize, end_full = end / kBlockSize;
    // The partial edges: [off, head_end) and [tail_start, end) (empty when aligned).
    uint64_t head_end = std::min(end, RoundUp(off)), tail_start = std::max(off, end_full * kBlockSize);
    // Both edges private first: an ENOSPC copying the second must not find the
    // first already zeroed.
    RETURN_IF_ERROR(fs_.cow().UnshareRange(*t, rec, off, head_end));
    RETURN_IF_ERROR(fs_.cow().UnshareRange(*t, rec, tail_start, end));
    RETURN_IF_ERROR(zero_mapped(off, head_end));
    RETURN_IF_ERROR(zero_mapped(tail_start, end));
    bool done = first_full >= end_full;
    while (!done) {
      RETURN_IF_ERROR(UnmapRange(fs_.space(), *t, rec, first_full, end_full, kExtentsPerTxn, &done));
      RETURN_IF_ERROR(fs_.store().Write(*t, rec));
      if (!done) RETURN_IF_ERROR(fs_.RollIfNeeded(*t, t->tx.journal()->max_blocks_per_txn()));
    }
    rec.mtime = rec.ctime = ClockNow();
    RETURN_IF_ERROR(fs_.store().Write(*t, rec));
    return fs_.CommitTxn(*t);
  }
  // ZERO_RANGE zeroes what is already mapped only once every hole of the
  // range is allocated: an ENOSPC part-way must leave the file's data intact.
  std::vector<std::pair<uint64_t, uint64_t>> zero_later;
  for (uint64_t a = off; zero && a < end;) {
    ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(t->tx, rec, a / kBlockSize));
    if (!e.mapped) {
      if (e.hole_end == UINT64_MAX) break;
      a = std::max(a, e.hole_end * kBlockSize);
      continue;
    }
    uint64_t ext_end = std::min(end, (e.ext.file_block + e.ext.length) * kBlockSize);
    zero_later.emplace_back(a, ext_end);
    a = ext_end;
  }
  if (end > rec.size && rec.size % kBlockSize && !(mode & FALLOC_FL_KEEP_SIZE))
    RETURN_IF_ERROR(zero_mapped(rec.size, RoundUp(rec.size)));
  // Allocate zeroed blocks for every hole in the range.
  uint64_t fblk = off / kBlockSize, last = (end + kBlockSize - 1) / kBlockSize;
  Status err;
  while (fblk < last) {
    ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(t->tx, rec, fblk));
    if (e.mapped) {
      fblk = e.ext.file_block + e.ext.length;
      continue;
    }
    uint64_t stop = std::min(last, e.hole_end);
    if (fs_.allocator()->freed_in_txn()) {  // as in Pwrite: no data allocation after a free
      RETURN_IF_ERROR(fs_.store().Write(*t, rec));
      RETURN_IF_ERROR(fs_.RollIfNeeded(*t, SIZE_MAX));
    }
    auto ext = fs_.allocator()->AllocData(*t, stop - fblk, 0);
    if (!ext.has_value()) {
      err = ext.error();
      break;
    }
    RETURN_IF_ERROR(fs_.device()->Fill(ext->start * kBlockSize, 0, ext->length * kBlockSize, false));
    t->data_pending = true;
    RETURN_IF_ERROR(MapExtent(fs_.space(), *t, rec, fblk, ext->start, ext->length));
    RevokeZeroPages(fs_, rec.ino, fblk, ext->length);
    fblk += ext->length;
    if (t->tx.room() < kRollRoom) {
      RETURN_IF_ERROR(fs_.store().Write(*t, rec));
      RETURN_IF_ERROR(fs_.RollIfNeeded(*t, kRollRoom));
    }
  }
  // Every shared block to be zeroed is copied before any byte is zeroed.
  if (err.ok())
    for (auto [a, b] : zero_later) {
      err = fs_.cow().UnshareRange(*t, rec, a, b);
      if (!err.ok()) break;
    }
  if (err.ok())
    for (auto [a, b] : zero_later) RETURN_IF_ERROR(zero_mapped(a, b));
  if (err.ok() && !(mode & FALLOC_FL_KEEP_SIZE) && end > rec.size) SetSize(fs_, rec, end);
  rec.ctime = ClockNow();
  if (zero) rec.mtime = rec.ctime;
  RETURN_IF_ERROR(fs_.store().Write(*t, rec));
  RETURN_IF_ERROR(fs_.CommitTxn(*t));
  return err;
}

Status FileIo::Fsync(Inode* ip) {
  MetaWriteLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  if (fs_.read_only()) return Status::Ok();
  return fs_.store().FlushLazyTimes(ip);
}

Result<Stat> FileIo::StatInode(Inode* ip) {
  MetaReadLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  std::lock_guard<std::mutex> g(ip->mu);
  return StatFromRecord(ip->rec);
}

Result<std::vector<FileExtent>> FileIo::Fiemap(Inode* ip) { return fs_.reflink().SharedExtents(ip); }

Status FileIo::StampOverwrite(Inode* ip) {
  MetaReadLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLiveAndWritable());
  std::lock_guard<std::mutex> g(ip->mu);
  StampOverwriteLocked(fs_, ip);
  return Status::Ok();
}

}  // namespace udax
