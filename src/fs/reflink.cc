// fs/reflink.cc — Reflink: clone, dedupe and the shared-extent view (see
// reflink.h).
#include "fs/reflink.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "fs/fs_impl.h"
#include "space/bmap.h"
#include "space/refcount.h"
#include "space/rmap.h"

namespace udax {

using media::InodeRec;

namespace {

constexpr size_t kMinRoom = 24;  // log slots one extent's remap may need

Status TooLarge() {
  return Errno(E2BIG, "reflink range too large for one transaction; clone it in smaller pieces");
}

// Linux's remap checks (generic_remap_file_range_prep / generic_remap_checks).
Status CheckRemap(const InodeRec& src, const InodeRec& dst, uint64_t src_off, uint64_t* len,
                  uint64_t dst_off, bool dedupe) {
  if (S_ISDIR(src.mode) || S_ISDIR(dst.mode)) return Errno(EISDIR, "is a directory");
  if (!S_ISREG(src.mode) || !S_ISREG(dst.mode)) return Errno(EINVAL, "not a regular file");
  if (src_off > src.size) return Errno(EINVAL, "source offset beyond end of file");
  if (*len == 0) *len = src.size - src_off;
  if (dedupe) {
    if (dst_off > dst.size) return Errno(EINVAL, "destination offset beyond end of file");
    *len = std::min({*len, src.size - src_off, dst.size - dst_off});
  }
  if (src_off + *len > src.size || src_off + *len < src_off) return Errno(EINVAL, "range beyond end of file");
  if (dst_off > kMaxFileSize || *len > kMaxFileSize - dst_off) return Errno(EFBIG, "file too large");
  if (src_off % kBlockSize || dst_off % kBlockSize) return Errno(EINVAL, "offsets must be block-aligned");
  bool to_src_eof = src_off + *len == src.size;
  if (*len % kBlockSize) {
    if (!to_src_eof) return Errno(EINVAL, "length must be block-aligned unless it reaches the source's end");
    // A partial last block may only land at or past the destination's EOF.
    if (dst_off + *len < dst.size) return Errno(EINVAL, "unaligned length would clone into the middle of the destination");
  }
  if (src.ino == dst.ino) {
    uint64_t a = src_off, b = dst_off, n = (*len + kBlockSize - 1) / kBlockSize * kBlockSize;
    if (a < b + n && b < a + n) return Errno(EINVAL, "overlapping ranges in one file");
  }
  return Status::Ok();
}

}  // namespace

// Maps src blocks [sb, sb+n) into dst at db (dst range already a hole); the
// destination's mappings drop the zero pages they showed over the hole.
static Status ShareBlocks(FsImpl& fs, FsTxn& t, InodeRec& src, InodeRec& dst, uint64_t sb,
                          uint64_t n, uint64_t db) {
  std::vector<media::BmapRec> exts;
  {
    // Source extents overlapping [sb, sb+n).
    uint64_t pos = sb;
    while (pos < sb + n) {
      ASSIGN_OR_RETURN(ExtentOrHole e, LookupExtent(t.tx, src, pos));
      if (!e.mapped) {
        if (e.hole_end == UINT64_MAX) break;
        pos = e.hole_end;
        continue;
      }
      uint64_t lo = pos, hi = std::min(sb + n, e.ext.file_block + e.ext.length);
      exts.push_back(media::BmapRec{lo, e.ext.start_block + (lo - e.ext.file_block),
                                    static_cast<uint32_t>(hi - lo), 0});
      pos = hi;
    }
  }
  for (const auto& e : exts) {
    if (t.tx.room() < kMinRoom) return TooLarge();
    // Between extents no B+tree operation is in progress: top the node free
    // list up, so a large clone is bounded by the log, not by the list.
    RETURN_IF_ERROR(fs.allocator()->FixFreeList(t));
    uint64_t dst_blk = db + (e.file_block - sb);
    RETURN_IF_ERROR(MapExtent(fs.space(), t, dst, dst_blk, e.start_block, e.length));
    fs.inodes().RevokeMappings(dst.ino, dst_blk * kBlockSize, uint64_t{e.length} * kBlockSize,
                               InvalidateReason::kTruncate, /*notify=*/false);
    std::vector<BlockRange> none;
    RETURN_IF_ERROR(RefcountAdjust(fs.allocator(), t.tx, e.start_block, e.length, +1, &none));
  }
  if (!exts.empty()) {
    src.flags |= media::kInodeFlagReflinked;
    dst.flags |= media::kInodeFlagReflinked;
  }
  return Status::Ok();
}

static Status Remap(FsImpl& fs, FsTxn& t, InodeRec& src, InodeRec& dst, uint64_t src_off,
                    uint64_t len, uint64_t dst_off) {
  uint64_t sb = src_off / kBlockSize, db = dst_off / kBlockSize;
  uint64_t n = (len + kBlockSize - 1) / kBlockSize;
  if (n == 0) return Status::Ok();
  bool done = false;
  while (!done) {
    if (t.tx.room() < kMinRoom) return TooLarge();
    RETURN_IF_ERROR(fs.allocator()->FixFreeList(t));
    RETURN_IF_ERROR(UnmapRange(fs.space(), t, dst, db, db + n, 8, &done));
  }
  RETURN_IF_ERROR(ShareBlocks(fs, t, src, dst, sb, n, db));
  // The source's blocks are shared now: its mappings refault read-only.
  fs.inodes().RevokeMappings(src.ino, src_off, n * kBlockSize, InvalidateReason::kCopyOnWrite, false);
  return Status::Ok();
}

Status Reflink::CloneRange(Inode* dip, Inode* sip, uint64_t src_off, uint64_t len, uint64_t dst_off) {
  MetaWriteLock lk(fs_.meta_mu());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(InodeRec src, fs_.store().ReadForUpdate(*t, sip->ino));
  ASSIGN_OR_RETURN(InodeRec dst, fs_.store().ReadForUpdate(*t, dip->ino));
  RETURN_IF_ERROR(CheckRemap(src, dst, src_off, &len, dst_off, false));
  if (len == 0) return Status::Ok();
  bool same = src.ino == dst.ino;
  InodeRec& d = same ? src : dst;
  // Stale bytes past the destination's EOF in its block must read as zero
  // once the file grows over them.
  if (dst_off > d.size && d.size % kBlockSize)
    RETURN_IF_ERROR(fs_.cow().ZeroMapped(*t, d, d.size, (d.size / kBlockSize + 1) * kBlockSize));
  RETURN_IF_ERROR(Remap(fs_, *t, src, d, src_off, len, dst_off));
  uint64_t new_size = std::max<uint64_t>(d.size, dst_off + len);
  fs_.inodes().RevokeSizeChange(d.ino, d.size, new_size);
  d.size = new_size;
  d.mtime = d.ctime = ClockNow();
  RETURN_IF_ERROR(fs_.store().Write(*t, d));
  if (!same) RETURN_IF_ERROR(fs_.store().Write(*t, src));
  return fs_.CommitTxn(*t);
}

Result<uint64_t> Reflink::DedupeRange(Inode* dip, Inode* sip, uint64_t src_off, uint64_t len,
                                     uint64_t dst_off) {
  MetaWriteLock lk(fs_.meta_mu());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(InodeRec src, fs_.store().ReadForUpdate(*t, sip->ino));
  ASSIGN_OR_RETURN(InodeRec dst, fs_.store().ReadForUpdate(*t, dip->ino));
  RETURN_IF_ERROR(CheckRemap(src, dst, src_off, &len, dst_off, true));
  if (len == 0) return uint64_t{0};
  // Compare first (holes read as zero), a block at a time — except where
  // both sides are holes, which are equal without reading: a sparse range
  // costs its extents, not its length.
  std::vector<uint8_t> a(kBlockSize), b(kBlockSize);
  auto read = [&](const ExtentOrHole& e, uint64_t pos, uint8_t* out, uint64_t n) -> Status {
    if (!e.mapped) {
      std::memset(out, 0, n);
      return Status::Ok();
    }
    return fs_.device()->CopyOut(out, e.ext.start_block * kBlockSize + (pos - e.ext.file_block * kBlockSize), n);
  };
  auto hole_left = [](const ExtentOrHole& e, uint64_t pos) {
    return e.hole_end == UINT64_MAX ? UINT64_MAX : e.hole_end * kBlockSize - pos;
  };
  for (uint64_t done = 0; done < len;) {
    uint64_t sp = src_off + done, dp = dst_off + done;
    ASSIGN_OR_RETURN(ExtentOrHole es, LookupExtent(t->tx, src, sp / kBlockSize));
    ASSIGN_OR_RETURN(ExtentOrHole ed, LookupExtent(t->tx, dst, dp / kBlockSize));
    if (!es.mapped && !ed.mapped) {
      done += std::min({len - done, hole_left(es, sp), hole_left(ed, dp)});
      continue;
    }
    uint64_t n = std::min<uint64_t>(kBlockSize, len - done);
    RETURN_IF_ERROR(read(es, sp, a.data(), n));
    RETURN_IF_ERROR(read(ed, dp, b.data(), n));
    if (std::memcmp(a.data(), b.data(), n) != 0) return Errno(EBADE, "contents differ; nothing deduplicated");
    done += n;
  }
  bool same = src.ino == dst.ino;
  InodeRec& d = same ? src : dst;
  RETURN_IF_ERROR(Remap(fs_, *t, src, d, src_off, len, dst_off));
  RETURN_IF_ERROR(fs_.store().Write(*t, d));
  if (!same) RETURN_IF_ERROR(fs_.store().Write(*t, src));
  RETURN_IF_ERROR(fs_.CommitTxn(*t));
  return len;
}

Result<std::vector<FileExtent>> Reflink::SharedExtents(Inode* ip) {
  MetaReadLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  InodeRec rec;
  {
    std::lock_guard<std::mutex> g(ip->mu);
    rec = ip->rec;
  }
  std::vector<FileExtent> out;
  if (S_ISDIR(rec.mode)) return out;
  Transaction tx(fs_.journal(), true);
  ASSIGN_OR_RETURN(const uint8_t* rbp, tx.Read(media::kRootBlockNo, media::kRootMagic));
  media::RootBlock root = *reinterpret_cast<const media::RootBlock*>(rbp);
  std::vector<media::BmapRec> exts;
  RETURN_IF_ERROR(ListExtents(tx, rec, &exts));
  for (const auto& e : exts) {
    uint64_t dev = e.start_block, end = e.start_block + e.length;
    while (dev < end) {
      uint64_t run_end;
      ASSIGN_OR_RETURN(bool shared, SharedRun(tx, root, dev, end, &run_end));
      out.push_back(FileExtent{(e.file_block + (dev - e.start_block)) * kBlockSize, dev * kBlockSize,
                               (run_end - dev) * kBlockSize, shared ? kExtentShared : 0u});
      dev = run_end;
    }
  }
  return out;
}

}  // namespace udax
