// fs/fs_txn.h — FsTxn: a writing transaction of the filesystem — the space
// layer's SpaceTxn (journal transaction + root block image) plus the inode
// records it wrote and the data it left undrained.
//
// Begun by FsImpl::BeginTxn under meta_mu_ exclusive (one writing FsTxn at a
// time) and committed by FsImpl::CommitTxn, which applies `inodes` to the
// in-core inodes. An FsTxn dropped uncommitted is aborted: the allocator's
// per-transaction state is reset.
#pragma once

#include <map>

#include "fs/inode.h"
#include "media/format.h"
#include "space/alloc.h"
#include "space/space_txn.h"

namespace udax {

// Extents a freeing loop (truncate, punch, inode reclaim) unmaps per
// transaction before it commits and starts the next.
inline constexpr int kExtentsPerTxn = 32;

class FsTxn : public SpaceTxn {
 public:
  FsTxn(Journal* journal, Allocator* alloc) : SpaceTxn(journal), alloc_(alloc) {}
  ~FsTxn() {
    if (tx.dirty()) alloc_->EndTxn();
  }
  std::map<uint64_t, media::InodeRec> inodes;  // records written, applied to in-core inodes on commit
  bool data_pending = false;  // data written with nodrain stores before commit
  // The operation's time: one clock read however many inodes it stamps (as
  // the kernel's current_time per system call).
  media::DiskTime Now() {
    if (!have_now_) {
      now_ = ClockNow();
      have_now_ = true;
    }
    return now_;
  }

 private:
  Allocator* alloc_;
  media::DiskTime now_{};
  bool have_now_ = false;
};

}  // namespace udax
