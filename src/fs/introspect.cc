// fs/introspect.cc — what a program may read about a mounted filesystem
// beyond POSIX, for the public Filesystem::GetStats and QueryRmap: the
// journal's and the device's counters, and the owners of device blocks (the
// rmap records, converted to the public BlockOwner in bytes). Both read under
// meta_mu_ shared, so they see committed state only.
#include "fs/fs_impl.h"
#include "space/rmap.h"

namespace udax {

Result<FsStats> FsImpl::GetStats() {
  MetaReadLock lk(meta_mu_);
  RETURN_IF_ERROR(CheckLive());
  Transaction tx(journal_.get(), true);
  ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
  const auto* root = reinterpret_cast<const media::RootBlock*>(rb);
  FsStats s;
  s.commits = journal_->commits();
  s.checkpoints = journal_->checkpoints();
  s.fences = dev_->fence_count();
  s.fences_per_commit = Journal::kFencesPerCommit;
  s.max_txn_blocks = journal_->max_blocks_per_txn();
  s.last_commit_blocks = journal_->last_commit_blocks();
  s.free_list_blocks = root->freelist_count;
  s.free_list_low = Allocator::kFreeListLow;
  s.free_list_high = Allocator::kFreeListHigh;
  s.data_start = data_start();
  return s;
}

Result<std::vector<BlockOwner>> FsImpl::BlockOwners(uint64_t device_offset, uint64_t len) {
  if (len == 0 || device_offset + len < device_offset)
    return Errno(EINVAL, "rmap query: empty or wrapping range");
  const uint64_t first = device_offset / kBlockSize, last = (device_offset + len - 1) / kBlockSize;
  ASSIGN_OR_RETURN(std::vector<media::RmapRec> recs, QueryRmap(first, last - first + 1));
  std::vector<BlockOwner> out;
  out.reserve(recs.size());
  for (const media::RmapRec& r : recs) {
    BlockOwner o;
    o.device_offset = r.start * kBlockSize;
    o.length = uint64_t{r.length} * kBlockSize;
    if (r.owner & media::kOwnMetaBit) {
      o.kind = BlockOwner::Kind::kMetadata;
      o.metadata = RmapMetaName(r.owner);
    } else {
      o.kind = (r.flags & media::kRmapTreeBlock) ? BlockOwner::Kind::kFileMetadata : BlockOwner::Kind::kFileData;
      o.ino = r.owner;
      if (o.kind == BlockOwner::Kind::kFileData) o.file_offset = r.offset * kBlockSize;
    }
    out.push_back(o);
  }
  return out;
}

}  // namespace udax
