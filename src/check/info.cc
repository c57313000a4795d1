// check/info.cc — `udax info`: reads the superblock, root block and journal
// header of an unmounted device without changing anything.
#include "udax/check.h"

#include <cstdio>
#include <cstring>

#include "device/pmem_device.h"
#include "btree/btree.h"
#include "journal/journal.h"
#include "media/verify.h"

namespace udax {

Result<FsInfo> ReadInfo(const std::string& device) {
  ASSIGN_OR_RETURN(auto dev, PmemDevice::Open(device, DeviceOptions{.read_only = true}));
  FsInfo info;
  info.device_bytes = dev->size();
  if (dev->size() < 16 * media::kBlockSize) return Errno(EUCLEAN, "device too small to hold a udax filesystem");
  const auto* sb = reinterpret_cast<const media::Superblock*>(dev->BlockPtr(0, media::kBlockSize));
  RETURN_IF_ERROR(media::VerifySuperblock(*sb, dev->size()));
  info.block_size = sb->block_size;
  info.total_blocks = sb->total_blocks;
  info.size_bytes = sb->total_blocks * sb->block_size;
  info.log_blocks = sb->log_blocks;
  char uuid[40];
  const uint8_t* u = sb->uuid;
  snprintf(uuid, sizeof uuid, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  info.uuid = uuid;
  Journal journal(dev.get(), sb->log_start, sb->log_blocks, sb->total_blocks);
  ASSIGN_OR_RETURN(uint32_t pending, journal.Recover(/*read_only=*/true));
  info.journal_state = pending ? "dirty (" + std::to_string(pending) + " blocks to replay)" : "clean";
  info.fences_per_commit = Journal::kFencesPerCommit;
  Transaction tx(&journal, true);
  ASSIGN_OR_RETURN(const uint8_t* rbp, tx.Read(media::kRootBlockNo, media::kRootMagic));
  const auto* root = reinterpret_cast<const media::RootBlock*>(rbp);
  info.free_blocks = root->free_blocks;
  info.used_blocks = info.total_blocks - info.free_blocks;
  info.inode_count = root->inode_count;
  if (root->bad_count > media::kBadListMax)
    return Errno(EUCLEAN, "root block lists " + std::to_string(root->bad_count) + " bad extents (at most " +
                              std::to_string(media::kBadListMax) + ")");
  for (uint32_t i = 0; i < root->bad_count; i++) {
    const media::BadExtent& e = root->bad[i];
    if (e.length == 0 || e.start >= info.total_blocks || e.length > info.total_blocks - e.start)
      return Errno(EUCLEAN, "bad extent " + std::to_string(i) + " [" + std::to_string(e.start) + ", +" +
                                std::to_string(e.length) + ") is outside the filesystem");
    info.bad_extents.emplace_back(e.start * info.block_size, e.length * info.block_size);
    info.bad_blocks += e.length;
  }
  media::BtreeRoot refroot = root->refcount;
  Btree refs(&tx, *media::ShapeForMagic(media::kRefcountMagic), &refroot, 0, nullptr);
  RETURN_IF_ERROR(refs.Scan(nullptr, [&](const void* p) {
    info.shared_blocks += static_cast<const media::RefcountRec*>(p)->length;
    return true;
  }));
  if (sb->features_ro_compat & media::kFeatureRoCompatRmap) info.features.push_back("rmapbt");
  if (sb->features_incompat & media::kFeatureIncompatReflink) info.features.push_back("reflink");
  if (sb->features_incompat & media::kFeatureIncompatLineLog) info.features.push_back("linelog");
  return info;
}

}  // namespace udax
