// fs/failure.cc — FailureHandler: removal and memory failure (see failure.h).
#include "fs/failure.h"

#include <sys/stat.h>

#include <cstring>
#include <map>

#include "fs/fs_impl.h"
#include "space/rmap.h"

namespace udax {

namespace {

struct FileHit {
  uint64_t ino, off, len;
};

}  // namespace

void FailureHandler::NotifyFailure(uint64_t off, uint64_t len, FailureFlags flags) {
  if (flags == FailureFlags::kPreRemove) {
    MetaWriteLock lk(fs_.meta_mu());
    fs_.Shutdown(Errno(ENODEV, "filesystem shut down: device removed"), InvalidateReason::kRemoved);
    return;
  }
  uint64_t first = off / kBlockSize, end = (off + len + kBlockSize - 1) / kBlockSize;
  MemoryFailure(first, end - first).IgnoreError();  // a failure to record it shuts the fs down
}

Status FailureHandler::MemoryFailure(uint64_t start, uint64_t n) {
  MetaWriteLock lk(fs_.meta_mu());
  // No operation is inside device memory now (writers and readers both hold
  // meta_mu_): the failed pages can be taken away. Faults on mappings of them
  // are excluded too; those mappings are revoked below.
  fs_.device()->ProtectPoisoned();
  if (!fs_.mounted() || fs_.shut_down()) return fs_.CheckLive();
  auto metadata_lost = [&](uint64_t b, const std::string& what) {
    Status why = Errno(EIO, "filesystem shut down: memory failure in metadata block " + std::to_string(b) +
                                " (" + what + ")");
    fs_.Shutdown(why, InvalidateReason::kMemoryFailure);
    return why;
  };
  // 1. Who owns each failed block (rmap), classified. Static metadata needs
  // no lookup (and the lookup itself reads metadata that may have failed).
  for (uint64_t b = start; b < start + n; b++)
    if (b < fs_.data_start() || b >= fs_.data_end()) return metadata_lost(b, "superblock, root block or journal");
  std::vector<FileHit> hits;
  std::vector<uint64_t> retire;  // free blocks (free trees or free list)
  {
    Transaction tx(fs_.journal(), true);
    auto rb = tx.Read(media::kRootBlockNo, media::kRootMagic);
    if (!rb.has_value()) return metadata_lost(media::kRootBlockNo, rb.error().message());
    media::RootBlock root;
    std::memcpy(&root, *rb, sizeof root);
    auto recs = RmapQuery(tx, start, n);  // fails when an rmap node is the failed block
    if (!recs.has_value()) return metadata_lost(start, "rmap tree: " + recs.error().message());
    std::vector<bool> owned(n, false);
    std::map<uint64_t, uint32_t> modes;
    for (const auto& r : *recs) {
      uint64_t lo = std::max(r.start, start), hi = std::min(r.start + r.length, start + n);
      if (lo >= hi) continue;
      for (uint64_t b = lo; b < hi; b++) owned[b - start] = true;
      if (r.owner == media::kOwnBad) continue;
      if (r.owner == media::kOwnAg) {
        for (uint64_t b = lo; b < hi; b++) {
          if (FreeListIndex(root, b) < 0) return metadata_lost(b, "free-space, rmap or refcount tree");
          retire.push_back(b);
        }
        continue;
      }
      if (r.owner & media::kOwnMetaBit) return metadata_lost(lo, RmapMetaName(r.owner));
      if (r.flags & media::kRmapTreeBlock)
        return metadata_lost(lo, "extent map or directory tree of inode " + std::to_string(r.owner));
      if (!modes.count(r.owner)) {
        auto in = fs_.store().Read(tx, r.owner);
        if (!in.has_value()) return metadata_lost(lo, "inode " + std::to_string(r.owner) + " unreadable");
        modes[r.owner] = in->mode;
      }
      if (!S_ISREG(modes[r.owner]))
        return metadata_lost(lo, "directory or symlink block of inode " + std::to_string(r.owner));
      hits.push_back({r.owner, (r.offset + (lo - r.start)) * kBlockSize, (hi - lo) * kBlockSize});
    }
    for (uint64_t i = 0; i < n; i++)
      if (!owned[i]) retire.push_back(start + i);
  }
  // 2. Every mapping of every owner loses the range first (no program may
  // touch the memory again), then the program is told.
  for (const auto& h : hits) fs_.inodes().RevokeMappings(h.ino, h.off, h.len, InvalidateReason::kMemoryFailure, true);
  fs_.space()->bad_blocks().Add(start, n);  // reads and faults refuse the blocks from now on
  if (fs_.read_only()) return Status::Ok();  // recorded in core only
  // 3. The persistent record: the bad-block list, free blocks retired. It
  // must not fail for want of space: it may use the reserve (alloc.h).
  Allocator::FreeingOp freeing(fs_.allocator());
  auto t = fs_.BeginTxn();
  if (!t.has_value()) return t.error();
  Status st = freeing.Begin(**t);
  if (st.ok()) st = BadBlockList::AddToRoot((*t)->root, start, n);
  for (uint64_t b : retire) {
    if (!st.ok()) break;
    st = fs_.allocator()->Retire(**t, b);
  }
  if (st.ok()) st = fs_.CommitTxn(**t);
  if (!st.ok()) {
    fs_.Shutdown(Errno(EIO, "filesystem shut down: cannot record bad blocks: " + st.message()),
             InvalidateReason::kMemoryFailure);
    return st;
  }
  return Status::Ok();
}

}  // namespace udax
