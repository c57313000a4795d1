// fs/dax_fault.cc — DaxFaults: the filesystem half of a DAX fault (see
// dax_fault.h).
#include "fs/dax_fault.h"

#include <sys/stat.h>

#include <optional>

#include "fs/fs_impl.h"
#include "space/bmap.h"
#include "space/refcount.h"

namespace udax {

namespace {
constexpr uint64_t kHoleAllocWindow = 64 * 1024;  // blocks allocated by one write fault into a hole
uint64_t RoundUpPage(uint64_t v) { return (v + kPageSize - 1) / kPageSize * kPageSize; }

// The file range a write fault filled: mappings that show zero pages over it
// (read faults on the hole, in any mapping of the file) must fault again.
// Revoked once, after the commit and before the install — or, when the fault
// fails after part of the fill committed (a roll), on the way out.
class FilledHole {
 public:
  FilledHole(InodeTable& inodes, uint64_t ino) : inodes_(inodes), ino_(ino) {}
  ~FilledHole() { RevokeZeroPages(); }
  void Add(uint64_t off, uint64_t len) {
    if (len_ == 0) off_ = off;
    len_ = off + len - off_;  // the fill grows contiguously upwards
  }
  void RevokeZeroPages() {
    if (len_) inodes_.RevokeMappings(ino_, off_, len_, InvalidateReason::kTruncate, /*notify=*/false);
    len_ = 0;
  }

 private:
  InodeTable& inodes_;
  uint64_t ino_, off_ = 0, len_ = 0;
};
}  // namespace

Result<std::vector<std::pair<uint64_t, uint64_t>>> DaxFaults::DeviceRanges(Inode* ip, uint64_t off,
                                                                       uint64_t len) {
  std::optional<MetaReadLock> lk;
  if (tls_meta_lock_depth == 0) lk.emplace(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  media::InodeRec rec;
  {
    std::lock_guard<std::mutex> g(ip->mu);
    rec = ip->rec;
  }
  Transaction tx(fs_.journal(), true);
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t pos = off, end = off + len;
  while (pos < end) {
    ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(tx, rec, pos / kPageSize));
    if (!e.mapped) {
      if (e.hole_end == UINT64_MAX) break;
      pos = std::max(pos, e.hole_end * kPageSize);
      continue;
    }
    uint64_t ext_lo = e.ext.file_block * kPageSize, ext_hi = ext_lo + uint64_t{e.ext.length} * kPageSize;
    uint64_t n = std::min(end, ext_hi) - pos;
    out.emplace_back(e.ext.start_block * kPageSize + (pos - ext_lo), n);
    pos += n;
  }
  return out;
}

Status DaxFaults::LeaseRange(Inode* ip, uint64_t off, uint64_t len, size_t max_pieces,
                             const std::function<void(const LeaseView&)>& record) {
  std::optional<MetaReadLock> lk;
  if (tls_meta_lock_depth == 0) lk.emplace(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  media::InodeRec rec;
  {
    std::lock_guard<std::mutex> g(ip->mu);
    rec = ip->rec;
  }
  if (S_ISDIR(rec.mode)) return Errno(EISDIR, "is a directory");
  LeaseView v;
  v.size = rec.size;
  v.mode = rec.mode;
  v.atime_due = ip->atime_due.load(std::memory_order_relaxed);
  uint64_t end = len > rec.size || off > rec.size - len ? rec.size : off + len;
  const BadBlockList& bad = fs_.bad_blocks();
  Transaction tx(fs_.journal(), true);
  uint64_t pos = off;
  while (pos < end && v.pieces.size() < max_pieces) {
    ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(tx, rec, pos / kPageSize));
    LeasePiece p;
    p.file_off = pos;
    if (!e.mapped) {
      p.len = (e.hole_end == UINT64_MAX ? end : std::min(end, e.hole_end * kPageSize)) - pos;
    } else {
      uint64_t ext_lo = e.ext.file_block * kPageSize;
      uint64_t ext_hi = ext_lo + uint64_t{e.ext.length} * kPageSize;
      uint64_t dev_b = e.ext.start_block + (pos / kPageSize - e.ext.file_block);
      uint64_t ext_end_b = e.ext.start_block + e.ext.length;
      uint64_t piece_end = std::min(end, ext_hi);
      if (rec.flags & media::kInodeFlagReflinked) {
        uint64_t run_end;
        ASSIGN_OR_RETURN(p.shared, SharedRun(tx, dev_b, ext_end_b, &run_end));
        piece_end = std::min(piece_end, ext_lo + (run_end - e.ext.start_block) * kPageSize);
      }
      if (bad.any()) {  // stop before failed memory: the client reads it through the mount (EIO)
        uint64_t last_b = e.ext.start_block + (piece_end - 1) / kPageSize - e.ext.file_block;
        uint64_t first_bad = bad.FirstBad(dev_b, last_b + 1);
        if (first_bad == dev_b) break;
        piece_end = std::min(piece_end, ext_lo + (first_bad - e.ext.start_block) * kPageSize);
      }
      p.mapped = true;
      p.len = piece_end - pos;
      p.dev_off = e.ext.start_block * kPageSize + (pos - ext_lo);
    }
    v.pieces.push_back(p);
    pos += p.len;
  }
  record(v);
  return Status::Ok();
}

// The device range a fault at `off` installs from the mapped extent `e`:
// the whole extent (within [lo, hi)) when the file shares nothing; else,
// from the faulting page, the run of blocks that are all shared (installed
// read-only, so a store faults and copies) or all unshared. Failed blocks
// are never mapped: the piece stops short of them, and a fault on one is EIO.
static Result<InstallRange> MappedPiece(Transaction& tx, const media::InodeRec& rec,
                                             const ExtentOrHole& e, uint64_t off, uint64_t lo,
                                             uint64_t hi, bool may_write, const BadBlockList& bad,
                                             bool* shared) {
  uint64_t ext_lo = e.ext.file_block * kPageSize, ext_hi = ext_lo + uint64_t{e.ext.length} * kPageSize;
  InstallRange d;
  d.kind = InstallRange::kDevice;
  d.file_off = std::max(lo, ext_lo);
  uint64_t end = std::min(hi, ext_hi);
  *shared = false;
  if (rec.flags & media::kInodeFlagReflinked) {
    d.file_off = off / kPageSize * kPageSize;
    uint64_t dev_b = e.ext.start_block + (d.file_off - ext_lo) / kPageSize, run_end;
    ASSIGN_OR_RETURN(*shared, SharedRun(tx, dev_b, e.ext.start_block + e.ext.length, &run_end));
    end = std::min(end, d.file_off + (run_end - dev_b) * kPageSize);
  }
  if (bad.any()) {
    auto dev_block = [&](uint64_t file_off) { return e.ext.start_block + (file_off - ext_lo) / kPageSize; };
    uint64_t fault_b = dev_block(off / kPageSize * kPageSize);
    if (bad.Overlaps(fault_b, 1))
      return Errno(EIO, "memory failure: file offset " + std::to_string(off) + " is poisoned");
    uint64_t good_lo = bad.GoodRunStart(dev_block(d.file_off), fault_b);
    uint64_t good_hi = bad.FirstBad(fault_b, dev_block(end));
    d.file_off = ext_lo + (good_lo - e.ext.start_block) * kPageSize;
    end = ext_lo + (good_hi - e.ext.start_block) * kPageSize;
  }
  d.len = end - d.file_off;
  d.dev_off = e.ext.start_block * kPageSize + (d.file_off - ext_lo);
  d.writable = may_write && !*shared;
  return d;
}

Status DaxFaults::ResolveFault(Inode* ip, uint64_t off, bool write, bool may_write, uint64_t lo,
                        uint64_t hi, const std::function<Status(const InstallRange&)>& install) {
  // A fault taken while this thread already holds meta_mu_ (udax copying
  // to or from a user buffer that is itself a udax mapping) is served
  // without locking again; it cannot allocate (that needs the lock exclusive).
  bool nested = tls_meta_lock_depth > 0;
  // Pass 1 under the shared lock: mapped blocks (unless a store must copy a
  // shared block) and read faults on holes.
  {
    std::optional<MetaReadLock> lk;
    if (!nested) lk.emplace(fs_.meta_mu());
    RETURN_IF_ERROR(fs_.CheckLive());
    media::InodeRec rec;
    {
      std::lock_guard<std::mutex> g(ip->mu);
      rec = ip->rec;
    }
    uint64_t eof = RoundUpPage(rec.size);
    if (off >= eof) return Errno(EFAULT, "access beyond end of file");
    hi = std::min(hi, eof);
    Transaction tx(fs_.journal(), true);
    ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(tx, rec, off / kPageSize));
    if (e.mapped) {
      bool shared;
      ASSIGN_OR_RETURN(InstallRange d, MappedPiece(tx, rec, e, off, lo, hi, may_write, fs_.bad_blocks(), &shared));
      if (!(write && shared)) return install(d);
    } else if (!write) {
      InstallRange d;
      d.kind = InstallRange::kZero;
      d.file_off = std::max(lo, off / kPageSize * kPageSize);
      uint64_t hole_hi = e.hole_end == UINT64_MAX ? hi : std::min(hi, e.hole_end * kPageSize);
      // Only the hole itself, so a later write faults again to allocate.
      d.len = hole_hi - d.file_off;
      return install(d);
    }
  }
  // Pass 2: a store into a hole or a shared block — allocate (zeroed, or a
  // copy of the shared block) and commit before the store proceeds. Top-down:
  // space allocation and the extent map (space/), the commit (journal), then
  // the zero pages over the filled hole are revoked and install() maps the
  // blocks (dax/). (A copy-on-write revokes the replaced range inside
  // UnmapRange, through the space layer's RangeObserver — before the shared
  // blocks lose this file's reference.)
  if (nested) return Errno(EDEADLK, "write fault needing allocation while udax holds its lock");
  MetaWriteLock lk(fs_.meta_mu());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(media::InodeRec rec, fs_.store().ReadForUpdate(*t, ip->ino));
  uint64_t eof = RoundUpPage(rec.size);
  if (off >= eof) return Errno(EFAULT, "access beyond end of file");
  hi = std::min(hi, eof);
  ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(t->tx, rec, off / kPageSize));
  bool changed = false;
  FilledHole filled(fs_.inodes(), rec.ino);
  if (e.mapped) {
    bool shared;
    ASSIGN_OR_RETURN(InstallRange d, MappedPiece(t->tx, rec, e, off, lo, hi, may_write, fs_.bad_blocks(), &shared));
    if (shared) {  // another thread may have copied it meanwhile: re-checked under the lock
      uint64_t n = std::min<uint64_t>(d.len / kPageSize, kHoleAllocWindow / kPageSize);
      RETURN_IF_ERROR(fs_.cow().CowBlocks(*t, rec, off / kPageSize, n).status());
      changed = true;
    }
  } else {
    // Fill the hole inside an aligned window around the fault (bounded by
    // the mapping, EOF and the next extent); the allocator may return less
    // than asked, so loop until the faulting page is covered.
    uint64_t win_lo = std::max(lo, off / kHoleAllocWindow * kHoleAllocWindow);
    uint64_t win_hi = std::min(hi, win_lo + kHoleAllocWindow);
    if (e.hole_end != UINT64_MAX) win_hi = std::min(win_hi, e.hole_end * kPageSize);
    uint64_t fblk = off / kPageSize;
    uint64_t hint = 0;
    while (fblk * kPageSize > win_lo) {  // walk back to the start of the hole
      ASSIGN_OR_RETURN(ExtentOrHole prev, LookupExtent(t->tx, rec, fblk - 1));
      if (prev.mapped) {
        hint = prev.ext.start_block + (fblk - 1 - prev.ext.file_block) + 1;
        break;
      }
      fblk--;
    }
    while (fblk * kPageSize <= off) {
      if (fs_.allocator()->freed_in_txn()) {  // see Allocator: no data after a free in one transaction
        RETURN_IF_ERROR(fs_.store().Write(*t, rec));
        RETURN_IF_ERROR(fs_.RollIfNeeded(*t, SIZE_MAX));
      }
      ASSIGN_OR_RETURN(BlockRange ext, fs_.allocator()->AllocData(*t, (win_hi - fblk * kPageSize) / kPageSize, hint));
      RETURN_IF_ERROR(fs_.device()->Fill(ext.start * kPageSize, 0, ext.length * kPageSize, false));
      t->data_pending = true;
      RETURN_IF_ERROR(MapExtent(fs_.space(), *t, rec, fblk, ext.start, ext.length));
      filled.Add(fblk * kPageSize, ext.length * kPageSize);
      fblk += ext.length;
      hint = ext.start + ext.length;
    }
    changed = true;
  }
  if (changed) {
    RETURN_IF_ERROR(fs_.store().Write(*t, rec));
    RETURN_IF_ERROR(fs_.CommitTxn(*t));
  }
  filled.RevokeZeroPages();
  Transaction rtx(fs_.journal(), true);
  ASSIGN_OR_RETURN(e, LookupExtent(rtx, rec, off / kPageSize));
  if (!e.mapped) return Errno(EIO, "internal error: allocated block not found");
  bool shared;
  ASSIGN_OR_RETURN(InstallRange d, MappedPiece(rtx, rec, e, off, lo, hi, may_write, fs_.bad_blocks(), &shared));
  return install(d);
}

}  // namespace udax
