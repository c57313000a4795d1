// fs/inode_table.h — InodeTable: the in-core inodes of a mounted filesystem
// (the kernel's inode hash), and revocation of their DAX mappings (the
// kernel's unmap_mapping_range).
//
// An in-core inode lives while a File or a Mapping holds a reference
// (Inode::open_count). Revocation walks the live mappings of in-core inodes
// only: an inode no one holds has no mapping.
//
// It is the space layer's RangeObserver: when UnmapRange takes blocks away
// from a file range, the range's mappings are revoked here before the blocks
// are freed (kill first, then reuse).
//
// Locking: mu_ (the table's mutex) is innermost (meta_lock.h). Find/Open/
// Reopen/Close may be called under meta_mu_ either way or, for Reopen and
// Find, without it; the Revoke* calls run with meta_mu_ exclusive held (or
// at unmount/shutdown, where no operation runs), which also excludes faults
// re-establishing a mapping.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "fs/inode.h"
#include "space/space.h"
#include "udax/types.h"

namespace udax {

class InodeTable : public RangeObserver {
 public:
  // The in-core inode of `ino`, or nullptr; takes no reference.
  std::shared_ptr<Inode> Find(uint64_t ino);
  // The in-core inode of rec.ino (created from `rec` if not in core), with
  // one more reference (open_count++).
  std::shared_ptr<Inode> Open(const media::InodeRec& rec);
  // One more reference to an inode already open (a Mapping of an open File);
  // nullptr when it is no longer in the table.
  std::shared_ptr<Inode> Reopen(Inode* ip);
  // Drops a reference; true when it was the last.
  bool Close(Inode* ip);
  // Removes `ino` from the table unless it was reopened meanwhile; true when
  // removed.
  bool EraseIfUnused(uint64_t ino);
  // A snapshot of the table.
  std::vector<std::shared_ptr<Inode>> Snapshot();

  // Returns [off, off+len) of `ino` to PROT_NONE in every mapping of it;
  // `notify`: tell the programs (on_invalidate). Caller holds meta_mu_.
  void RevokeMappings(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why, bool notify);
  // The size of `ino` changed: pages between the old and new EOF change
  // meaning (beyond-EOF <-> inside), so mappings must fault them again.
  void RevokeSizeChange(uint64_t ino, uint64_t old_size, uint64_t new_size);
  // Every live mapping of every in-core inode back to PROT_NONE.
  void RevokeAllMappings(InvalidateReason why, bool notify);

  // RangeObserver (space.h): the blocks behind a file range changed.
  void FileRangeChanged(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                        bool notify) override {
    RevokeMappings(ino, off, len, why, notify);
  }

 private:
  std::mutex mu_;  // the table and every Inode::open_count; innermost
  std::unordered_map<uint64_t, std::shared_ptr<Inode>> inodes_;
};

}  // namespace udax
