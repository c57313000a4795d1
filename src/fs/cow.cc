// fs/cow.cc — CopyOnWrite: writes over shared or failed blocks (see cow.h).
#include "fs/cow.h"

#include <vector>

#include "fs/fs_impl.h"
#include "space/bmap.h"
#include "space/refcount.h"

namespace udax {


Result<uint64_t> CopyOnWrite::CowBlocks(FsTxn& t, media::InodeRec& rec, uint64_t fblk, uint64_t n, bool copy) {
  ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(t.tx, rec, fblk));
  if (!e.mapped) return Errno(EIO, "internal error: copy-on-write of a hole");
  uint64_t old_dev = e.ext.start_block + (fblk - e.ext.file_block);
  n = std::min<uint64_t>(n, e.ext.file_block + e.ext.length - fblk);
  ASSIGN_OR_RETURN(BlockRange fresh, fs_.allocator()->AllocData(t, n, 0));
  if (copy) {
    ASSIGN_OR_RETURN(auto old, fs_.device()->Range(old_dev * kBlockSize, fresh.length * kBlockSize));
    RETURN_IF_ERROR(fs_.device()->CopyIn(fresh.start * kBlockSize, old.data(), fresh.length * kBlockSize, false));
  } else {
    RETURN_IF_ERROR(fs_.device()->Fill(fresh.start * kBlockSize, 0, fresh.length * kBlockSize, false));
  }
  t.data_pending = true;
  bool done = false;
  while (!done)
    RETURN_IF_ERROR(UnmapRange(fs_.space(), t, rec, fblk, fblk + fresh.length, 1 << 20, &done,
                               copy ? InvalidateReason::kCopyOnWrite : InvalidateReason::kMemoryFailure));
  RETURN_IF_ERROR(MapExtent(fs_.space(), t, rec, fblk, fresh.start, fresh.length));
  return fresh.length;
}

Result<size_t> CopyOnWrite::WriteMapped(FsTxn& t, media::InodeRec& rec, const ExtentOrHole& e,
                                   const uint8_t* src, size_t len, uint64_t pos) {
  uint64_t fblk = pos / kBlockSize, in_blk = pos % kBlockSize;
  uint64_t dev_b = e.ext.start_block + (fblk - e.ext.file_block);
  uint64_t ext_dev_end = e.ext.start_block + e.ext.length;
  if (fs_.bad_blocks().any()) {
    uint64_t first_bad = fs_.bad_blocks().FirstBad(dev_b, ext_dev_end);
    if (first_bad == dev_b) return OverwriteBad(t, rec, src, len, pos, fs_.bad_blocks().BadRunEnd(dev_b, ext_dev_end) - dev_b);
    ext_dev_end = first_bad;  // write up to the failed block
  }
  uint64_t run_end = ext_dev_end;
  bool shared = false;
  if (rec.flags & media::kInodeFlagReflinked) {
    ASSIGN_OR_RETURN(shared, SharedRun(t.tx, dev_b, ext_dev_end, &run_end));
  }
  if (shared) {
    uint64_t want = std::min<uint64_t>(run_end - dev_b, (in_blk + len + kBlockSize - 1) / kBlockSize);
    ASSIGN_OR_RETURN(uint64_t copied, CowBlocks(t, rec, fblk, want));
    ASSIGN_OR_RETURN(ExtentOrHole now, LookupExtent(t.tx, rec, fblk));
    dev_b = now.ext.start_block + (fblk - now.ext.file_block);
    run_end = dev_b + copied;
  }
  uint64_t n = std::min<uint64_t>(len, (run_end - dev_b) * kBlockSize - in_blk);
  RETURN_IF_ERROR(fs_.device()->CopyIn(dev_b * kBlockSize + in_blk, src, n, false));
  t.data_pending = true;
  return n;
}

Result<size_t> CopyOnWrite::OverwriteBad(FsTxn& t, media::InodeRec& rec, const uint8_t* src, size_t len,
                                    uint64_t pos, uint64_t bad_run) {
  uint64_t fblk = pos / kBlockSize;
  if (pos % kBlockSize || len < kBlockSize)
    return Errno(EIO, "memory failure: file block " + std::to_string(fblk) +
                          " is poisoned (overwrite whole blocks, or punch the range, to replace it)");
  ASSIGN_OR_RETURN(uint64_t got, CowBlocks(t, rec, fblk, std::min<uint64_t>(bad_run, len / kBlockSize), false));
  ASSIGN_OR_RETURN(ExtentOrHole now, LookupExtent(t.tx, rec, fblk));
  uint64_t dev_b = now.ext.start_block + (fblk - now.ext.file_block);
  RETURN_IF_ERROR(fs_.device()->CopyIn(dev_b * kBlockSize, src, got * kBlockSize, false));
  return got * kBlockSize;
}

Status CopyOnWrite::UnshareRange(FsTxn& t, media::InodeRec& rec, uint64_t a, uint64_t b) {
  if (!(rec.flags & media::kInodeFlagReflinked)) return Status::Ok();
  uint64_t fblk = a / kBlockSize, end = (b + kBlockSize - 1) / kBlockSize;
  while (fblk < end) {
    ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(t.tx, rec, fblk));
    if (!e.mapped) {
      if (e.hole_end == UINT64_MAX) return Status::Ok();
      fblk = std::max(fblk + 1, e.hole_end);
      continue;
    }
    uint64_t dev_b = e.ext.start_block + (fblk - e.ext.file_block);
    uint64_t limit = e.ext.start_block + std::min<uint64_t>(e.ext.length, end - e.ext.file_block);
    uint64_t run_end;
    ASSIGN_OR_RETURN(bool shared, SharedRun(t.tx, dev_b, limit, &run_end));
    if (!shared) {
      fblk += run_end - dev_b;
      continue;
    }
    if (fs_.allocator()->freed_in_txn()) {  // a copy allocates: no data after a free in one transaction
      RETURN_IF_ERROR(fs_.store().Write(t, rec));
      RETURN_IF_ERROR(fs_.RollIfNeeded(t, SIZE_MAX));
    }
    ASSIGN_OR_RETURN(uint64_t copied, CowBlocks(t, rec, fblk, run_end - dev_b));
    fblk += copied;
  }
  return Status::Ok();
}

Status CopyOnWrite::ZeroMapped(FsTxn& t, media::InodeRec& rec, uint64_t a, uint64_t b) {
  while (a < b) {
    ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(t.tx, rec, a / kBlockSize));
    if (!e.mapped) {
      if (e.hole_end == UINT64_MAX) return Status::Ok();
      a = std::max(a, e.hole_end * kBlockSize);
      continue;
    }
    if (((rec.flags & media::kInodeFlagReflinked) || fs_.bad_blocks().any()) && fs_.allocator()->freed_in_txn()) {
      // A copy below may allocate; no data after a free in one transaction.
      RETURN_IF_ERROR(fs_.store().Write(t, rec));
      RETURN_IF_ERROR(fs_.RollIfNeeded(t, SIZE_MAX));
    }
    // WriteMapped copies shared blocks first, then writes (zeroes) in place.
    static const std::vector<uint8_t> zeroes(64 * 1024, 0);
    uint64_t want = std::min<uint64_t>(b - a, zeroes.size());
    ASSIGN_OR_RETURN(size_t n, WriteMapped(t, rec, e, zeroes.data(), want, a));
    a += n;
  }
  return Status::Ok();
}

}  // namespace udax
