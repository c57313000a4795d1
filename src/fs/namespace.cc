// fs/namespace.cc — Namespace: path walk and namespace operations (see
// namespace.h).
#include "fs/namespace.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>
#include <vector>

#include "fs/caller.h"
#include "fs/fs_impl.h"
#include "space/bmap.h"
#include "space/dir.h"

namespace udax {

using media::InodeRec;

namespace {

constexpr int kMaxSymlinkFollows = 40;

// An empty text is a path only with an `at` (AT_EMPTY_PATH).
Status CheckPath(const PathAt& path) {
  if (path.text.empty() && path.at == 0) return Errno(ENOENT, "empty path");
  if (path.text.size() >= kMaxPathLen) return Errno(ENAMETOOLONG, "path too long");
  if (path.text.find('\0') != std::string_view::npos) return Errno(EINVAL, "path contains a NUL byte");
  return Status::Ok();
}

// Appends the components of `path` to `stack` last first, so that popping
// the back yields them in order (a symlink's target goes on top of the rest).
void PushComponents(std::string_view path, std::vector<std::string>* stack) {
  size_t j = path.size();
  while (j > 0) {
    size_t i = path.rfind('/', j - 1);
    size_t start = i == std::string_view::npos ? 0 : i + 1;
    if (j > start) stack->emplace_back(path.substr(start, j - start));
    if (i == std::string_view::npos) break;
    j = i;
  }
}

uint32_t TypeOf(const InodeRec& r) { return r.mode & S_IFMT; }

Stat ToStat(const InodeRec& r) {
  Stat s;
  s.ino = r.ino;
  s.mode = r.mode;
  s.nlink = r.nlink;
  s.uid = r.uid;
  s.gid = r.gid;
  s.size = r.size;
  s.blocks = r.nblocks * (media::kBlockSize / 512);
  s.atime = FromDisk(r.atime);
  s.mtime = FromDisk(r.mtime);
  s.ctime = FromDisk(r.ctime);
  s.btime = FromDisk(r.btime);
  return s;
}

}  // namespace

Stat StatFromRecord(const InodeRec& r) { return ToStat(r); }

Result<InodeRec> Namespace::Walk(Transaction& tx, const PathAt& path, bool follow_last) {
  RETURN_IF_ERROR(CheckPath(path));
  ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
  uint64_t root_ino = reinterpret_cast<const media::RootBlock*>(rb)->root_ino;
  bool from_root = path.at == 0 || (!path.text.empty() && path.text[0] == '/');
  InodeRec cur;
  if (from_root) {
    ASSIGN_OR_RETURN(cur, fs_.store().Read(tx, root_ino));
  } else {
    // An inode named by number: gone (ENOENT) once its last link and last
    // open handle are; an inode number is never reused.
    ASSIGN_OR_RETURN(cur, fs_.store().Read(tx, path.at));
    if (!path.text.empty() && !S_ISDIR(cur.mode)) return Errno(ENOTDIR, "not a directory");
  }
  std::vector<std::string> comps;  // a stack: the next component is at the back
  comps.reserve(8);
  PushComponents(path.text, &comps);
  bool trailing_slash = !path.text.empty() && path.text.back() == '/';
  int follows = 0;
  while (!comps.empty()) {
    std::string name = std::move(comps.back());
    comps.pop_back();
    if (!S_ISDIR(cur.mode)) return Errno(ENOTDIR, "not a directory");
    if (name.size() > kMaxNameLen) return Errno(ENAMETOOLONG, "file name too long");
    if (name == ".") continue;
    if (name == "..") {
      ASSIGN_OR_RETURN(cur, fs_.store().Read(tx, cur.parent));
      continue;
    }
    DirHit hit;
    ASSIGN_OR_RETURN(bool found, DirLookup(tx, cur, name, &hit));
    if (!found) return Errno(ENOENT, "no such file or directory");
    ASSIGN_OR_RETURN(InodeRec next, fs_.store().Read(tx, hit.ino));
    bool last = comps.empty();
    if (S_ISLNK(next.mode) && (!last || follow_last || trailing_slash)) {
      if (++follows > kMaxSymlinkFollows) return Errno(ELOOP, "too many levels of symbolic links");
      ASSIGN_OR_RETURN(std::string target, ReadSymlink(tx, next));
      if (target.empty()) return Errno(ENOENT, "empty symbolic link");
      PushComponents(target, &comps);
      if (target[0] == '/') {
        ASSIGN_OR_RETURN(cur, fs_.store().Read(tx, root_ino));
      }
      continue;
    }
    cur = next;
  }
  if (trailing_slash && !S_ISDIR(cur.mode)) return Errno(ENOTDIR, "not a directory");
  return cur;
}

Result<Namespace::ParentAndName> Namespace::WalkParent(Transaction& tx, const PathAt& path) {
  RETURN_IF_ERROR(CheckPath(path));
  std::string_view text = path.text;
  if (text.empty()) return Errno(ENOENT, "no name in the directory given");
  size_t end = text.find_last_not_of('/');
  if (end == std::string_view::npos) return Errno(EBUSY, "the root directory cannot be removed or renamed");
  size_t slash = text.rfind('/', end);
  size_t name_start = slash == std::string_view::npos ? 0 : slash + 1;
  ParentAndName out;
  out.name = std::string(text.substr(name_start, end - name_start + 1));
  out.trailing_slash = end + 1 < text.size();
  if (out.name.size() > kMaxNameLen) return Errno(ENAMETOOLONG, "file name too long");
  if (out.name == "." || out.name == "..") return Errno(EINVAL, "invalid final path component");
  // The directory part; a bare name is in `at` (the root when there is none).
  PathAt dir = slash != std::string_view::npos ? PathAt(path.at, text.substr(0, slash + 1))
               : path.at != 0                  ? PathAt(path.at, std::string_view())
                                               : PathAt("/");
  ASSIGN_OR_RETURN(out.parent, Walk(tx, dir, true));
  if (!S_ISDIR(out.parent.mode)) return Errno(ENOTDIR, "not a directory");
  // A removed directory (reachable only through an `at`) takes no names.
  if (out.parent.nlink == 0) return Errno(ENOENT, "directory has been removed");
  return out;
}

static_assert(media::kMaxSymlinkLen == kMaxPathLen - 1, "the public target limit is the format's");

// The record passed the verifier's checks (media/records.cc), which bound
// size and inline_len; they are checked again here, where they size a copy.
Result<std::string> Namespace::ReadSymlink(Transaction& tx, const InodeRec& rec) {
  if (!S_ISLNK(rec.mode)) return Errno(EINVAL, "not a symbolic link");
  if (rec.size == 0 || rec.size > media::kMaxSymlinkLen ||
      (rec.size <= media::kInodeInlineMax && rec.inline_len != rec.size))
    return Errno(EUCLEAN, "metadata corruption: symbolic link inode " + std::to_string(rec.ino) + " has size " +
                              std::to_string(rec.size) + " and inline_len " + std::to_string(rec.inline_len));
  if (rec.size <= media::kInodeInlineMax)
    return std::string(reinterpret_cast<const char*>(rec.inline_data), rec.inline_len);
  std::string out(rec.size, '\0');
  uint64_t done = 0;
  while (done < rec.size) {
    ASSIGN_OR_RETURN(ExtentOrHole lk, LookupExtent(tx, rec, done / media::kBlockSize));
    if (!lk.mapped) return Errno(EUCLEAN, "symbolic link target has a hole");
    uint64_t dev_off = lk.ext.start_block * media::kBlockSize + done % media::kBlockSize;
    uint64_t n = std::min<uint64_t>(rec.size - done, (lk.ext.file_block + lk.ext.length) * media::kBlockSize - done);
    RETURN_IF_ERROR(fs_.device()->CopyOut(out.data() + done, dev_off, n));
    done += n;
  }
  return out;
}

// A target longer than the inline area lives in one data block (targets are
// shorter than kMaxPathLen = one block). The block is allocated and filled
// before anything else in the transaction can free a block (see Allocator).
Status Namespace::WriteSymlinkTarget(FsTxn& t, InodeRec& rec, const std::string& target,
                                  const BlockRange& block) {
  rec.size = target.size();
  if (target.size() <= media::kInodeInlineMax) {
    rec.inline_len = static_cast<uint16_t>(target.size());
    std::memcpy(rec.inline_data, target.data(), target.size());
    return Status::Ok();
  }
  return MapExtent(fs_.space(), t, rec, 0, block.start, 1);
}

Status Namespace::DropLink(FsTxn& t, uint64_t ino, bool* reclaim_now) {
  *reclaim_now = false;
  ASSIGN_OR_RETURN(InodeRec rec, fs_.store().ReadForUpdate(t, ino));
  if (S_ISDIR(rec.mode)) {
    rec.nlink = 0;
  } else if (rec.nlink > 0) {
    rec.nlink--;
  }
  rec.ctime = t.Now();
  bool in_core = fs_.inodes().Find(ino) != nullptr;
  // The last link of a file that nobody has open and that owns no blocks (no
  // data, no extent-map node): delete the inode in this same transaction — no
  // orphan record, no second transaction (ReclaimInode would free nothing).
  if (rec.nlink == 0 && !S_ISDIR(rec.mode) && !in_core && rec.nblocks == 0 &&
      rec.data.levels == 0)
    return fs_.store().Delete(t, ino);
  RETURN_IF_ERROR(fs_.store().Write(t, rec));
  if (rec.nlink == 0) {
    RETURN_IF_ERROR(fs_.store().AddOrphan(t, ino));
    *reclaim_now = !in_core;
  }
  return Status::Ok();
}

Result<Namespace::ParentAndName> Namespace::WalkToNewName(Transaction& tx, const PathAt& path) {
  ASSIGN_OR_RETURN(ParentAndName pn, WalkParent(tx, path));
  DirHit hit;
  ASSIGN_OR_RETURN(bool found, DirLookup(tx, pn.parent, pn.name, &hit));
  if (found) return Errno(EEXIST, "file exists");
  return pn;
}

Status Namespace::AddEntry(FsTxn& t, const ParentAndName& pn, uint64_t ino, uint32_t type,
                        const DirHit* absent) {
  ASSIGN_OR_RETURN(InodeRec parent, fs_.store().ReadForUpdate(t, pn.parent.ino));
  RETURN_IF_ERROR(DirAdd(fs_.space(), t, parent, pn.name, ino, type, absent));
  if (S_ISDIR(type)) parent.nlink++;  // the new directory's ".."
  parent.mtime = parent.ctime = t.Now();
  return fs_.store().Write(t, parent);
}

Result<std::shared_ptr<Inode>> Namespace::Open(const PathAt& path, int flags, uint32_t mode) {
  MetaWriteLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  int acc = flags & O_ACCMODE;
  bool wants_write = acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC);
  if ((flags & O_CREAT) || wants_write) RETURN_IF_ERROR(fs_.CheckLiveAndWritable());
  Transaction rtx(fs_.journal(), true);
  InodeRec rec;
  if (flags & O_CREAT) {
    ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
    ASSIGN_OR_RETURN(ParentAndName pn, WalkParent(t->tx, path));
    DirHit hit;
    ASSIGN_OR_RETURN(bool found, DirLookup(t->tx, pn.parent, pn.name, &hit));
    if (found) {
      if (flags & O_EXCL) return Errno(EEXIST, "file exists");
      ASSIGN_OR_RETURN(rec, Walk(t->tx, path, !(flags & O_NOFOLLOW)));
    } else {
      if (pn.trailing_slash) return Errno(EISDIR, "is a directory");
      RETURN_IF_ERROR(fs_.allocator()->CheckSpaceToAdd(*t));
      ASSIGN_OR_RETURN(rec, fs_.store().Create(*t, S_IFREG | (mode & 07777), pn.parent.ino));
      RETURN_IF_ERROR(AddEntry(*t, pn, rec.ino, S_IFREG, &hit));
      RETURN_IF_ERROR(fs_.CommitTxn(*t));
    }
  } else {
    ASSIGN_OR_RETURN(rec, Walk(rtx, path, !(flags & O_NOFOLLOW)));
  }
  if (S_ISLNK(rec.mode)) return Errno(ELOOP, "is a symbolic link (O_NOFOLLOW)");
  if (S_ISDIR(rec.mode) && wants_write) return Errno(EISDIR, "is a directory");
  if ((flags & O_DIRECTORY) && !S_ISDIR(rec.mode)) return Errno(ENOTDIR, "not a directory");
  auto ip = fs_.store().Open(rec);
  if ((flags & O_TRUNC) && S_ISREG(rec.mode) && rec.size > 0) {
    lk.unlock();
    if (Status st = fs_.files().Truncate(ip.get(), 0); !st.ok()) {
      fs_.store().Release(ip.get());
      return st;
    }
  }
  return ip;
}

Status Namespace::Mkdir(const PathAt& path, uint32_t mode) {
  MetaWriteLock lk(fs_.meta_mu());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(ParentAndName pn, WalkToNewName(t->tx, path));
  RETURN_IF_ERROR(fs_.allocator()->CheckSpaceToAdd(*t));
  ASSIGN_OR_RETURN(InodeRec rec, fs_.store().Create(*t, S_IFDIR | (mode & 07777), pn.parent.ino));
  RETURN_IF_ERROR(AddEntry(*t, pn, rec.ino, S_IFDIR));
  return fs_.CommitTxn(*t);
}

Status Namespace::Rmdir(const PathAt& path) {
  MetaWriteLock lk(fs_.meta_mu());
  Allocator::FreeingOp freeing(fs_.allocator());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  RETURN_IF_ERROR(freeing.Begin(*t));
  ASSIGN_OR_RETURN(ParentAndName pn, WalkParent(t->tx, path));
  DirHit hit;
  ASSIGN_OR_RETURN(bool found, DirLookup(t->tx, pn.parent, pn.name, &hit));
  if (!found) return Errno(ENOENT, "no such file or directory");
  ASSIGN_OR_RETURN(InodeRec victim, fs_.store().ReadForUpdate(*t, hit.ino));
  if (!S_ISDIR(victim.mode)) return Errno(ENOTDIR, "not a directory");
  if (victim.dir_entries != 0) return Errno(ENOTEMPTY, "directory not empty");
  ASSIGN_OR_RETURN(InodeRec parent, fs_.store().ReadForUpdate(*t, pn.parent.ino));
  RETURN_IF_ERROR(DirRemove(fs_.space(), *t, parent, pn.name));
  parent.nlink--;
  parent.mtime = parent.ctime = t->Now();
  RETURN_IF_ERROR(fs_.store().Write(*t, parent));
  bool reclaim;
  RETURN_IF_ERROR(DropLink(*t, victim.ino, &reclaim));
  RETURN_IF_ERROR(fs_.CommitTxn(*t));
  return reclaim ? fs_.store().Reclaim(victim.ino) : Status::Ok();
}

Status Namespace::Unlink(const PathAt& path) {
  MetaWriteLock lk(fs_.meta_mu());
  Allocator::FreeingOp freeing(fs_.allocator());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  RETURN_IF_ERROR(freeing.Begin(*t));
  auto walked = WalkParent(t->tx, path);
  if (!walked.has_value() && walked.error().err() == EBUSY) return Errno(EISDIR, "is a directory");
  ASSIGN_OR_RETURN(ParentAndName pn, std::move(walked));
  DirHit hit;
  ASSIGN_OR_RETURN(bool found, DirLookup(t->tx, pn.parent, pn.name, &hit));
  if (!found) return Errno(ENOENT, "no such file or directory");
  if (S_ISDIR(hit.type)) return Errno(EISDIR, "is a directory");
  if (pn.trailing_slash) return Errno(ENOTDIR, "not a directory");
  ASSIGN_OR_RETURN(InodeRec parent, fs_.store().ReadForUpdate(*t, pn.parent.ino));
  RETURN_IF_ERROR(DirRemove(fs_.space(), *t, parent, pn.name, &hit));
  parent.mtime = parent.ctime = t->Now();
  RETURN_IF_ERROR(fs_.store().Write(*t, parent));
  bool reclaim;
  RETURN_IF_ERROR(DropLink(*t, hit.ino, &reclaim));
  RETURN_IF_ERROR(fs_.CommitTxn(*t));
  return reclaim ? fs_.store().Reclaim(hit.ino) : Status::Ok();
}

Status Namespace::Link(const PathAt& existing, const PathAt& new_path) {
  MetaWriteLock lk(fs_.meta_mu());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(InodeRec src, Walk(t->tx, existing, false));
  if (S_ISDIR(src.mode)) return Errno(EPERM, "hard links to directories are not allowed");
  // An unlinked file (reachable only by inode number) is on the orphan list,
  // to be reclaimed at its last close: it cannot be given a name again.
  if (src.nlink == 0) return Errno(ENOENT, "file has been removed");
  if (src.nlink >= 65000) return Errno(EMLINK, "too many links");
  ASSIGN_OR_RETURN(ParentAndName pn, WalkParent(t->tx, new_path));
  RETURN_IF_ERROR(fs_.allocator()->CheckSpaceToAdd(*t));
  RETURN_IF_ERROR(AddEntry(*t, pn, src.ino, TypeOf(src)));
  ASSIGN_OR_RETURN(src, fs_.store().ReadForUpdate(*t, src.ino));
  src.nlink++;
  src.ctime = t->Now();
  RETURN_IF_ERROR(fs_.store().Write(*t, src));
  return fs_.CommitTxn(*t);
}

Status Namespace::Symlink(const std::string& target, const PathAt& path) {
  if (target.empty()) return Errno(ENOENT, "empty symbolic link target");
  if (target.size() >= kMaxPathLen) return Errno(ENAMETOOLONG, "symbolic link target too long");
  MetaWriteLock lk(fs_.meta_mu());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(ParentAndName pn, WalkToNewName(t->tx, path));
  RETURN_IF_ERROR(fs_.allocator()->CheckSpaceToAdd(*t));
  static_assert(kMaxPathLen <= media::kBlockSize, "a symlink target fits one block");
  BlockRange block;
  if (target.size() > media::kInodeInlineMax) {
    ASSIGN_OR_RETURN(block, fs_.allocator()->AllocData(*t, 1, 0));
    RETURN_IF_ERROR(fs_.device()->Fill(block.start * media::kBlockSize, 0, media::kBlockSize, false));
    RETURN_IF_ERROR(fs_.device()->CopyIn(block.start * media::kBlockSize, target.data(), target.size(), false));
    t->data_pending = true;
  }
  ASSIGN_OR_RETURN(InodeRec rec, fs_.store().Create(*t, S_IFLNK | 0777, pn.parent.ino));
  RETURN_IF_ERROR(WriteSymlinkTarget(*t, rec, target, block));
  RETURN_IF_ERROR(fs_.store().Write(*t, rec));
  RETURN_IF_ERROR(AddEntry(*t, pn, rec.ino, S_IFLNK));
  return fs_.CommitTxn(*t);
}

Result<std::string> Namespace::Readlink(const PathAt& path) {
  MetaReadLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  Transaction tx(fs_.journal(), true);
  ASSIGN_OR_RETURN(InodeRec rec, Walk(tx, path, false));
  return ReadSymlink(tx, rec);
}

Status Namespace::Rename(const PathAt& from, const PathAt& to) {
  MetaWriteLock lk(fs_.meta_mu());
  Allocator::FreeingOp freeing(fs_.allocator());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(ParentAndName src_pn, WalkParent(t->tx, from));
  ASSIGN_OR_RETURN(ParentAndName dst_pn, WalkParent(t->tx, to));
  DirHit src_hit, dst_hit;
  ASSIGN_OR_RETURN(bool src_found, DirLookup(t->tx, src_pn.parent, src_pn.name, &src_hit));
  if (!src_found) return Errno(ENOENT, "no such file or directory");
  ASSIGN_OR_RETURN(bool dst_found, DirLookup(t->tx, dst_pn.parent, dst_pn.name, &dst_hit));
  bool src_dir = S_ISDIR(src_hit.type);
  if ((src_pn.trailing_slash || dst_pn.trailing_slash) && !src_dir)
    return Errno(ENOTDIR, "not a directory");
  if (dst_found && dst_hit.ino == src_hit.ino) return Status::Ok();  // same file: nothing to do
  // Over an existing name it frees (may use the reserve); to a new name it adds one.
  if (dst_found) {
    RETURN_IF_ERROR(freeing.Begin(*t));
  } else {
    freeing.Cancel();
    RETURN_IF_ERROR(fs_.allocator()->CheckSpaceToAdd(*t));
  }
  if (src_dir) {
    // Refuse to move a directory into its own subtree.
    uint64_t cur = dst_pn.parent.ino;
    for (int depth = 0;; depth++) {
      if (cur == src_hit.ino) return Errno(EINVAL, "cannot move a directory into itself");
      ASSIGN_OR_RETURN(InodeRec r, fs_.store().ReadForUpdate(*t, cur));
      if (r.parent == cur || depth > 100000) break;
      cur = r.parent;
    }
  }
  bool reclaim = false;
  uint64_t victim = 0;
  if (dst_found) {
    ASSIGN_OR_RETURN(InodeRec dst, fs_.store().ReadForUpdate(*t, dst_hit.ino));
    if (src_dir && !S_ISDIR(dst.mode)) return Errno(ENOTDIR, "not a directory");
    if (!src_dir && S_ISDIR(dst.mode)) return Errno(EISDIR, "is a directory");
    if (S_ISDIR(dst.mode) && dst.dir_entries != 0) return Errno(ENOTEMPTY, "directory not empty");
    ASSIGN_OR_RETURN(InodeRec dparent, fs_.store().ReadForUpdate(*t, dst_pn.parent.ino));
    RETURN_IF_ERROR(DirReplace(fs_.space(), *t, dparent, dst_pn.name, src_hit.ino, src_hit.type));
    if (S_ISDIR(dst.mode)) dparent.nlink--;
    RETURN_IF_ERROR(fs_.store().Write(*t, dparent));
    victim = dst.ino;
    RETURN_IF_ERROR(DropLink(*t, victim, &reclaim));
  } else {
    ASSIGN_OR_RETURN(InodeRec dparent, fs_.store().ReadForUpdate(*t, dst_pn.parent.ino));
    RETURN_IF_ERROR(DirAdd(fs_.space(), *t, dparent, dst_pn.name, src_hit.ino, src_hit.type));
    RETURN_IF_ERROR(fs_.store().Write(*t, dparent));
  }
  {
    ASSIGN_OR_RETURN(InodeRec sparent, fs_.store().ReadForUpdate(*t, src_pn.parent.ino));
    RETURN_IF_ERROR(DirRemove(fs_.space(), *t, sparent, src_pn.name));
    if (src_dir && src_pn.parent.ino != dst_pn.parent.ino) sparent.nlink--;
    sparent.mtime = sparent.ctime = t->Now();
    RETURN_IF_ERROR(fs_.store().Write(*t, sparent));
  }
  ASSIGN_OR_RETURN(InodeRec dparent, fs_.store().ReadForUpdate(*t, dst_pn.parent.ino));
  if (src_dir && src_pn.parent.ino != dst_pn.parent.ino) dparent.nlink++;
  dparent.mtime = dparent.ctime = t->Now();
  RETURN_IF_ERROR(fs_.store().Write(*t, dparent));
  ASSIGN_OR_RETURN(InodeRec moved, fs_.store().ReadForUpdate(*t, src_hit.ino));
  if (src_dir) moved.parent = dst_pn.parent.ino;
  moved.ctime = t->Now();
  RETURN_IF_ERROR(fs_.store().Write(*t, moved));
  RETURN_IF_ERROR(fs_.CommitTxn(*t));
  return reclaim ? fs_.store().Reclaim(victim) : Status::Ok();
}

Result<Stat> Namespace::GetStat(const PathAt& path, bool follow) {
  MetaReadLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  Transaction tx(fs_.journal(), true);
  ASSIGN_OR_RETURN(InodeRec rec, Walk(tx, path, follow));
  return ToStat(rec);
}

template <typename Fn>
Status Namespace::ChangeInode(const PathAt& path, bool follow, Fn&& change) {
  MetaWriteLock lk(fs_.meta_mu());
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  ASSIGN_OR_RETURN(InodeRec rec, Walk(t->tx, path, follow));
  RETURN_IF_ERROR(change(rec));
  rec.ctime = t->Now();
  RETURN_IF_ERROR(fs_.store().Write(*t, rec));
  return fs_.CommitTxn(*t);
}

Status Namespace::Chmod(const PathAt& path, uint32_t mode) {
  return ChangeInode(path, true, [&](InodeRec& r) {
    r.mode = (r.mode & S_IFMT) | (mode & 07777);
    return Status::Ok();
  });
}

Status Namespace::Chown(const PathAt& path, uint32_t uid, uint32_t gid, bool follow) {
  return ChangeInode(path, follow, [&](InodeRec& r) {
    r.mode = ModeAfterKillPriv(r.mode, r.gid, PrivChange::kOwner);  // by the old group
    if (uid != UINT32_MAX) r.uid = uid;
    if (gid != UINT32_MAX) r.gid = gid;
    return Status::Ok();
  });
}

Status Namespace::Utimens(const PathAt& path, Timespec atime, Timespec mtime, bool follow) {
  if (atime.nsec >= 1000000000 || mtime.nsec >= 1000000000)
    return Errno(EINVAL, "nanoseconds out of range");
  return ChangeInode(path, follow, [&](InodeRec& r) {
    r.atime = ToDisk(atime);
    r.mtime = ToDisk(mtime);
    return Status::Ok();
  });
}

Result<std::vector<DirEntry>> Namespace::ReadDir(const PathAt& path) {
  MetaReadLock lk(fs_.meta_mu());
  RETURN_IF_ERROR(fs_.CheckLive());
  Transaction tx(fs_.journal(), true);
  ASSIGN_OR_RETURN(InodeRec dir, Walk(tx, path, true));
  if (!S_ISDIR(dir.mode)) return Errno(ENOTDIR, "not a directory");
  std::vector<DirEntry> out;
  RETURN_IF_ERROR(DirList(tx, dir, [&](const media::DirRec& r) {
    out.push_back(DirEntry{std::string(r.name, r.name_len), r.ino, static_cast<uint32_t>(r.type) << 12});
    return true;
  }));
  return out;
}

Status Namespace::TruncatePath(const PathAt& path, uint64_t len) {
  std::shared_ptr<Inode> ip;
  {
    MetaWriteLock lk(fs_.meta_mu());
    RETURN_IF_ERROR(fs_.CheckLiveAndWritable());
    Transaction tx(fs_.journal(), true);
    ASSIGN_OR_RETURN(InodeRec rec, Walk(tx, path, true));
    ip = fs_.store().Open(rec);
  }
  Status st = fs_.files().Truncate(ip.get(), len);
  fs_.store().Release(ip.get());
  return st;
}


}  // namespace udax
