// fs/inode_store.h — InodeStore: inode records in the inode B+tree, the
// orphan list (unlinked inodes still to be freed), and an inode's life in
// core: open, lazy times, last close, reclaim.
//
// Inode numbers are never reused (root.next_ino only grows; 2^64 is enough),
// so a stale number can never name a different file. Only inodes with no
// links are ever reclaimed from the orphan list.
//
// Locking: the record calls (Read, ReadForUpdate, Write, Create, Delete,
// *Orphan) run under meta_mu_ (exclusive for the ones that take an FsTxn);
// Release and Reclaim* take or expect meta_mu_ exclusive as noted.
#pragma once

#include <cstdint>
#include <memory>

#include "fs/fs_txn.h"
#include "fs/inode.h"
#include "journal/journal.h"
#include "media/format.h"

namespace udax {

class FsImpl;

class InodeStore {
 public:
  explicit InodeStore(FsImpl& fs) : fs_(fs) {}

  // The record of `ino` as readers see it: the in-core copy (with lazy
  // times) when the inode is open, else the committed one in the tree.
  Result<media::InodeRec> Read(Transaction& tx, uint64_t ino);
  // The record as transaction `t` sees it (its own writes first): what an
  // operation reads before changing and writing it back.
  Result<media::InodeRec> ReadForUpdate(FsTxn& t, uint64_t ino);
  Status Write(FsTxn& t, const media::InodeRec& rec);
  Result<media::InodeRec> Create(FsTxn& t, uint32_t mode, uint64_t parent);
  Status Delete(FsTxn& t, uint64_t ino);
  Status AddOrphan(FsTxn& t, uint64_t ino);
  Status RemoveOrphan(FsTxn& t, uint64_t ino);

  // Opens the in-core inode of `rec` (one more reference); its atime rule
  // is checked afresh (a read tests only the flag). Under meta_mu_.
  std::shared_ptr<Inode> Open(const media::InodeRec& rec);
  // A File or Mapping let go of `ip` (takes meta_mu_ exclusive). The last
  // reference writes the lazy times, and frees an unlinked inode.
  void Release(Inode* ip);
  // Writes the in-core lazy timestamps in a transaction. meta_mu_ exclusive.
  Status FlushLazyTimes(Inode* ip);
  // A read happened: atime updated lazily when due. ip->mu not held.
  void TouchAtime(Inode* ip);

  // Frees every block of an unlinked inode and the inode itself (rolling
  // transactions; the orphan record covers a crash). meta_mu_ exclusive.
  Status Reclaim(uint64_t ino);
  // At mount: frees every orphan with no links; a record naming a linked or
  // missing inode is dropped (in a transaction) and reported through Note.
  Status ReclaimOrphans();

 private:
  FsImpl& fs_;
};

}  // namespace udax
