// fs/namespace.h — Namespace: path resolution (the kernel's namei) and the
// namespace operations: open/create, mkdir, rmdir, unlink, rename, link,
// symlink, readlink, stat, chmod/chown/utimens, truncate by path, readdir.
//
// Space: operations that add a name (create, mkdir, symlink, link, rename to
// a new name) check CheckSpaceToAdd before they change anything and never
// take the reserve; unlink, rmdir and rename over an existing name run as an
// Allocator::FreeingOp and may (see space/alloc.h).
//
// Locking: every changing operation runs under meta_mu_ exclusive in one
// transaction (unlink of a file's last link may add rolling transactions
// that free its blocks; the inode sits on the orphan list meanwhile, so a
// crash between them is repaired at mount); lookups take it shared. The
// Walk* helpers expect the caller to hold it. Directory inode records are
// re-read from the transaction before each change (ReadForUpdate), so an
// operation touching one directory twice (rename within a directory) never
// works on a stale copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fs/fs_txn.h"
#include "media/format.h"
#include "space/alloc.h"
#include "udax/fs.h"

namespace udax {

class FsImpl;
struct DirHit;

// The public Stat of an inode record.
Stat StatFromRecord(const media::InodeRec& r);

class Namespace {
 public:
  explicit Namespace(FsImpl& fs) : fs_(fs) {}

  // The opened in-core inode, with one reference for the caller (released
  // with InodeStore::Release).
  Result<std::shared_ptr<Inode>> Open(const PathAt& path, int flags, uint32_t mode);
  Status Mkdir(const PathAt& path, uint32_t mode);
  Status Rmdir(const PathAt& path);
  Status Unlink(const PathAt& path);
  Status Rename(const PathAt& from, const PathAt& to);
  Status Link(const PathAt& existing, const PathAt& new_path);
  Status Symlink(const std::string& target, const PathAt& path);
  Result<std::string> Readlink(const PathAt& path);
  Result<Stat> GetStat(const PathAt& path, bool follow);
  Status Chmod(const PathAt& path, uint32_t mode);
  // follow: a final symlink is followed (chown, utimensat) or changed
  // itself (lchown, AT_SYMLINK_NOFOLLOW).
  Status Chown(const PathAt& path, uint32_t uid, uint32_t gid, bool follow);
  Status Utimens(const PathAt& path, Timespec atime, Timespec mtime, bool follow);
  Status TruncatePath(const PathAt& path, uint64_t len);
  Result<std::vector<DirEntry>> ReadDir(const PathAt& path);

  // ---- path resolution; callers hold meta_mu_ ----
  // The inode `path` names; follows symlinks (the final one when follow_last).
  Result<media::InodeRec> Walk(Transaction& tx, const PathAt& path, bool follow_last);
  struct ParentAndName {
    media::InodeRec parent;
    std::string name;
    bool trailing_slash = false;
  };
  // The directory that holds the final component, and that component.
  Result<ParentAndName> WalkParent(Transaction& tx, const PathAt& path);
  // As WalkParent, for a name about to be created: EEXIST when it exists.
  Result<ParentAndName> WalkToNewName(Transaction& tx, const PathAt& path);

 private:
  // Adds the entry pn.name -> ino (of S_IF* `type`) to pn.parent, counting a
  // subdirectory's ".." link and touching the parent's mtime/ctime.
  // `absent`: a DirLookup of pn.name in this transaction that found it absent (dir.h).
  Status AddEntry(FsTxn& t, const ParentAndName& pn, uint64_t ino, uint32_t type,
                  const DirHit* absent = nullptr);
  // Drops one link of `ino` (already removed from its directory): orphan it,
  // and free it at once when nobody has it open.
  Status DropLink(FsTxn& t, uint64_t ino, bool* reclaim_now);
  Result<std::string> ReadSymlink(Transaction& tx, const media::InodeRec& rec);
  Status WriteSymlinkTarget(FsTxn& t, media::InodeRec& rec, const std::string& target,
                            const BlockRange& block);
  // Walks `path` and applies `change` to its record in one transaction.
  template <typename Fn>
  Status ChangeInode(const PathAt& path, bool follow, Fn&& change);

  FsImpl& fs_;
};

}  // namespace udax
