// space/space_txn.h — SpaceTxn: what the space layer needs of a writing
// transaction — the journal transaction and its image of the root block (the
// free-space, rmap, refcount, inode and orphan tree roots, the counters and
// the node free list).
//
// The filesystem's transaction (fs/ FsTxn) derives from it, so fs code passes
// its `t` straight to the allocator, the extent maps and the directories.
//
// Invariant: while the transaction is open, `root` points into the
// transaction's writable copy of media::kRootBlockNo (set by whoever begins
// it; nullptr once it committed).
#pragma once

#include "journal/journal.h"
#include "media/format.h"

namespace udax {

struct SpaceTxn {
  explicit SpaceTxn(Journal* journal) : tx(journal) {}
  Transaction tx;
  media::RootBlock* root = nullptr;  // the transaction's image of the root block
};

}  // namespace udax
