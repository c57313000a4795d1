// fuse/fuse_ops.cc — the FUSE operations: each libfuse3 low-level request is
// one call of udax's public API (include/udax/fs.h) on an inode number or a
// name in a directory (PathAt), its Status turned into the reply's errno.
// Owns the mapping between FUSE's view (node ids, struct stat,
// fuse_file_info) and udax's (inode numbers, udax::Stat, udax::File).
//
// Invariants:
//  * a FUSE node id is the udax inode number, except the root (FUSE_ROOT_ID
//    both ways); udax never reuses an inode number, so generation 0 is
//    exact and a stale node id gives ENOENT, never another file (so file
//    handles — export support, lookups of "." — survive remounts). The
//    server keeps no per-node state: forget has nothing to drop;
//  * fi->fh of an open file is a heap udax::File (open/create → release);
//    of an open directory a heap DirHandle holding the directory open
//    (opendir → releasedir: a removed one is an orphan meanwhile); each is
//    registered in FuseContext while the kernel holds it, so that the ones
//    left when the session ends are closed (CloseAllHandles);
//  * an unlinked open file is udax's orphan, reached by its inode number
//    until the last release; a killed server leaves it on udax's orphan
//    list, reclaimed by the next mount;
//  * setattr never follows a symlink (Lchown, Lutimens on the inode itself);
//  * a new inode is given the caller's fsuid/fsgid when they differ from
//    the udax mount's owner (one more transaction, only then);
//  * requests that may kill setuid/setgid (write, setattr, fallocate,
//    copy_file_range) run as the requesting process (CallerScope);
//  * the kernel's page cache is exact: a direct write drops its range
//    before the reply (InvalidatePages).
#include "fuse/fuse_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "udax/fs.h"
#include "udax/fuse_ioctl.h"

namespace udax::fusefs {
namespace {

constexpr double kAttrTimeout = 1.0;  // every change goes through this mount

FuseContext* Ctx(fuse_req_t req) { return static_cast<FuseContext*>(fuse_req_userdata(req)); }
Filesystem& Fs(fuse_req_t req) { return *Ctx(req)->fs; }
File& FileOf(fuse_file_info* fi) { return *reinterpret_cast<File*>(fi->fh); }

uint64_t InoOf(fuse_req_t req, fuse_ino_t node) { return node == FUSE_ROOT_ID ? Ctx(req)->root_ino : node; }
fuse_ino_t NodeOf(fuse_req_t req, uint64_t ino) { return ino == Ctx(req)->root_ino ? FUSE_ROOT_ID : ino; }
PathAt Self(fuse_req_t req, fuse_ino_t node) { return PathAt(InoOf(req, node), std::string_view()); }
PathAt Child(fuse_req_t req, fuse_ino_t parent, const char* name) { return PathAt(InoOf(req, parent), name); }

// Replies with the failure's errno; the serious ones (a device gone, failed
// memory, damaged metadata) also go to the log with udax's message.
// A removed device or a shut-down filesystem fails every request after it:
// that is logged once.
void ReplyError(fuse_req_t req, const char* op, const Status& st) {
  int e = st.err();
  bool gone = e == ENODEV || e == ESHUTDOWN;
  if ((gone && !Ctx(req)->logged_gone.exchange(true)) || e == EIO || e == EUCLEAN)
    fuse_log(FUSE_LOG_ERR, "udax: %s: %s\n", op, st.ToString().c_str());
  fuse_reply_err(req, e);
}
void ReplyStatus(fuse_req_t req, const char* op, const Status& st) {
  if (st.ok()) fuse_reply_err(req, 0);
  else ReplyError(req, op, st);
}

// The requesting process as udax's Caller: its fsuid/fsgid from the request;
// CAP_FSETID and supplementary groups read from /proc only when a file with
// setuid/setgid bits asks (the kernel passes neither).
bool PidHasFsetid(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  char line[256];
  unsigned long long caps = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "CapEff: %llx", &caps) == 1) break;
  std::fclose(f);
  return caps & (1ULL << 4);  // CAP_FSETID
}
bool ReqInGroup(fuse_req_t req, uint32_t gid) {
  gid_t groups[64];
  int n = fuse_req_getgroups(req, 64, groups);
  for (int i = 0; i < n && i < 64; i++)
    if (groups[i] == gid) return true;
  return false;
}
Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  Caller who;
  who.uid = c->uid;
  who.gid = c->gid;
  pid_t pid = c->pid;
  who.has_fsetid = [pid] { return PidHasFsetid(pid); };
  who.in_group = [req](uint32_t gid) { return ReqInGroup(req, gid); };
  return who;
}

// After an operation acting for `who`: when udax cleared setuid/setgid, the
// kernel's cached attributes of the node are stale (the kernel does not
// expect the mode to change under a write); drop them. Attributes only, no
// pages: safe inside the request.
void AfterKillPriv(fuse_req_t req, fuse_ino_t node, const Caller& who) {
  if (who.privs_killed) fuse_lowlevel_notify_inval_inode(Ctx(req)->se, node, -1, 0);
}

// Bytes [off, +len) of `node` changed behind the kernel's page cache (a
// direct write): drop those pages before the reply, so a buffered read that
// starts after the write returns reads the new bytes. (Punch, zero range and
// copy_file_range need none: the kernel truncates its pages after the reply.)
// The kernel invalidates before a direct write, not after an asynchronous
// one completes: a read in between refills the cache with the old bytes.
// Never for a buffered write (the kernel holds those pages locked while it
// waits for the reply), nor in a single-threaded session: the pages may be
// locked by a read waiting behind this request.
void InvalidatePages(fuse_req_t req, fuse_ino_t node, off_t off, uint64_t len) {
  if (len == 0) return;
  int rc = fuse_lowlevel_notify_inval_inode(Ctx(req)->se, node, off, static_cast<off_t>(len));
  if (rc != 0 && rc != -ENOENT)  // ENOENT: the kernel holds no pages of it
    fuse_log(FUSE_LOG_ERR, "udax: cannot drop the kernel's cached pages of inode %llu: %s\n",
             static_cast<unsigned long long>(node), std::strerror(-rc));
}

void ToTimespec(const Timespec& t, struct timespec* out) {
  out->tv_sec = t.sec;
  out->tv_nsec = t.nsec;
}

struct stat ToStatBuf(const Stat& s) {
  struct stat st {};
  st.st_ino = s.ino;
  st.st_mode = s.mode;
  st.st_nlink = s.nlink;
  st.st_uid = s.uid;
  st.st_gid = s.gid;
  st.st_size = static_cast<off_t>(s.size);
  st.st_blocks = static_cast<blkcnt_t>(s.blocks);
  st.st_blksize = s.blksize;
  ToTimespec(s.atime, &st.st_atim);
  ToTimespec(s.mtime, &st.st_mtim);
  ToTimespec(s.ctime, &st.st_ctim);
  return st;
}

// The reply entry for the inode `s` describes; a new inode (created) is
// first given to a caller that is not the mount's owner.
Result<fuse_entry_param> EntryFor(fuse_req_t req, Stat s, bool created) {
  const fuse_ctx* c = fuse_req_ctx(req);
  if (created && (c->uid != Ctx(req)->owner_uid || c->gid != Ctx(req)->owner_gid)) {
    RETURN_IF_ERROR(Fs(req).Lchown(PathAt(s.ino, std::string_view()), c->uid, c->gid));
    s.uid = c->uid;
    s.gid = c->gid;
  }
  fuse_entry_param e{};
  e.ino = NodeOf(req, s.ino);
  e.attr = ToStatBuf(s);
  e.attr_timeout = e.entry_timeout = kAttrTimeout;
  return e;
}

// The entry `name` in `parent` now names (after a create, or for lookup).
Result<fuse_entry_param> EntryOf(fuse_req_t req, fuse_ino_t parent, const char* name, bool created) {
  ASSIGN_OR_RETURN(Stat s, Fs(req).GetLstat(Child(req, parent, name)));
  return EntryFor(req, s, created);
}

void ReplyEntry(fuse_req_t req, const char* op, fuse_ino_t parent, const char* name, bool created) {
  Result<fuse_entry_param> e = EntryOf(req, parent, name, created);
  if (!e) return ReplyError(req, op, e.error());
  fuse_reply_entry(req, &*e);
}

void ReplyAttr(fuse_req_t req, const char* op, const Result<Stat>& s) {
  if (!s) return ReplyError(req, op, s.error());
  struct stat st = ToStatBuf(*s);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

void Init(void* userdata, fuse_conn_info* conn) {
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;  // write-through: durable at return
  if (conn->capable & FUSE_CAP_IOCTL_DIR) conn->want |= FUSE_CAP_IOCTL_DIR;  // udax ioctls on directories too
  // Every write passes through this mount, so the kernel's page cache is
  // never stale: a changed mtime need not drop it.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // File handles (name_to_handle_at, NFS): the kernel turns a handle back
  // into an inode by looking up "." in its node id (and ".." for a parent);
  // node ids are inode numbers, never reused, so generation 0 is exact.
  if (conn->capable & FUSE_CAP_EXPORT_SUPPORT) conn->want |= FUSE_CAP_EXPORT_SUPPORT;
  // setuid/setgid are killed by udax (write, truncate, fallocate, chown:
  // Linux's current rule, for the requesting process), not by the kernel.
  if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV) conn->want |= FUSE_CAP_HANDLE_KILLPRIV;
}

// The kernel also looks up "." in any node (a file handle being opened:
// the node itself, file or directory) and ".." in a directory (its parent,
// to connect a handle's dentry) — only with export support.
void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (std::strcmp(name, ".") != 0) return ReplyEntry(req, "lookup", parent, name, false);
  Result<Stat> s = Fs(req).GetLstat(Self(req, parent));
  Result<fuse_entry_param> e = s ? EntryFor(req, *s, false) : Result<fuse_entry_param>(s.error());
  if (!e) return ReplyError(req, "lookup", e.error());
  fuse_reply_entry(req, &*e);
}

void Forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
void ForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  ReplyAttr(req, "getattr", fi ? FileOf(fi).GetStat() : Fs(req).GetLstat(Self(req, ino)));
}

Timespec Now() {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return Timespec{t.tv_sec, static_cast<uint32_t>(t.tv_nsec)};
}
Timespec FromTimespec(const struct timespec& t) { return Timespec{t.tv_sec, static_cast<uint32_t>(t.tv_nsec)}; }

// The changes in the order chmod, chown, truncate, utimens; each commits on
// its own (the kernel sends one kind at a time, except utimes' two times).
Status SetAttr(fuse_req_t req, fuse_ino_t ino, const struct stat& a, int to_set, fuse_file_info* fi) {
  Filesystem& fs = Fs(req);
  PathAt self = Self(req, ino);
  if (to_set & FUSE_SET_ATTR_MODE) RETURN_IF_ERROR(fs.Chmod(self, a.st_mode));
  if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
    RETURN_IF_ERROR(fs.Lchown(self, (to_set & FUSE_SET_ATTR_UID) ? a.st_uid : UINT32_MAX,
                              (to_set & FUSE_SET_ATTR_GID) ? a.st_gid : UINT32_MAX));
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (a.st_size < 0) return Status::Error(EINVAL, "negative size");
    auto len = static_cast<uint64_t>(a.st_size);
    RETURN_IF_ERROR(fi ? FileOf(fi).Truncate(len) : fs.Truncate(self, len));
  }
  int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW;
  if (to_set & times) {
    ASSIGN_OR_RETURN(Stat cur, fs.GetLstat(self));
    Timespec now = Now();
    Timespec at = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? now
                  : (to_set & FUSE_SET_ATTR_ATIME)   ? FromTimespec(a.st_atim)
                                                     : cur.atime;
    Timespec mt = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now
                  : (to_set & FUSE_SET_ATTR_MTIME)   ? FromTimespec(a.st_mtim)
                                                     : cur.mtime;
    RETURN_IF_ERROR(fs.Lutimens(self, at, mt));
  }
  return Status::Ok();
}

void SetAttrOp(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Caller who = CallerOf(req);
  CallerScope as(who);  // truncate and chown kill setuid/setgid for the caller
  Status st = SetAttr(req, ino, *attr, to_set, fi);
  if (!st.ok()) return ReplyError(req, "setattr", st);
  ReplyAttr(req, "setattr", Fs(req).GetLstat(Self(req, ino)));
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  Result<std::string> t = Fs(req).Readlink(Self(req, ino));
  if (!t) return ReplyError(req, "readlink", t.error());
  fuse_reply_readlink(req, t->c_str());
}

void MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
  if (!S_ISREG(mode)) return (void)fuse_reply_err(req, EPERM);  // no device nodes, FIFOs, sockets
  Result<File> f = Fs(req).Open(Child(req, parent, name), O_CREAT | O_EXCL | O_WRONLY, mode & 07777);
  if (!f) return ReplyError(req, "mknod", f.error());
  Status st = f->Close();
  if (!st.ok()) return ReplyError(req, "mknod", st);
  ReplyEntry(req, "mknod", parent, name, true);
}

void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Status st = Fs(req).Mkdir(Child(req, parent, name), mode & 07777);
  if (!st.ok()) return ReplyError(req, "mkdir", st);
  ReplyEntry(req, "mkdir", parent, name, true);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, "unlink", Fs(req).Unlink(Child(req, parent, name)));
}

void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, "rmdir", Fs(req).Rmdir(Child(req, parent, name)));
}

void SymLink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  Status st = Fs(req).Symlink(target, Child(req, parent, name));
  if (!st.ok()) return ReplyError(req, "symlink", st);
  ReplyEntry(req, "symlink", parent, name, true);
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  if (flags & ~RENAME_NOREPLACE) return (void)fuse_reply_err(req, EINVAL);  // EXCHANGE, WHITEOUT
  if (flags & RENAME_NOREPLACE) {
    // The kernel holds both directories' locks across the request, so
    // nothing creates `newname` between this check and the rename.
    Result<Stat> t = Fs(req).GetLstat(Child(req, newparent, newname));
    if (t) return (void)fuse_reply_err(req, EEXIST);
    if (t.error().err() != ENOENT) return ReplyError(req, "rename", t.error());
  }
  ReplyStatus(req, "rename", Fs(req).Rename(Child(req, parent, name), Child(req, newparent, newname)));
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Status st = Fs(req).Link(Self(req, ino), Child(req, newparent, newname));
  if (!st.ok()) return ReplyError(req, "link", st);
  ReplyEntry(req, "link", newparent, newname, false);
}

// Registers (or forgets) a handle the kernel holds.
void TrackIn(std::unordered_set<void*>& set, std::mutex& mu, void* h, bool held) {
  std::lock_guard<std::mutex> g(mu);
  if (held) set.insert(h);
  else set.erase(h);
}
void Track(fuse_req_t req, File* f, bool held) { TrackIn(Ctx(req)->open_files, Ctx(req)->handles_mu, f, held); }

// The open(2) flags udax acts on; the kernel has checked and applied the rest.
int OpenFlags(int flags) { return flags & (O_ACCMODE | O_APPEND | O_TRUNC); }

// What the kernel may skip for a file opened through this mount: the page
// cache it holds stays valid from one open to the next (every write to the
// device passes through this mount: the server holds the device
// exclusively), and close needs no FLUSH request (writes are durable when
// they return; there is nothing to flush).
// Except when the next read is to update atime (relatime after a change,
// strictatime): then the cache is dropped so that the read reaches udax.
void SetOpenReplyFlags(fuse_file_info* fi, const File& f) {
  fi->keep_cache = !f.AtimeUpdateDue();
  fi->noflush = 1;
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Result<File> f = Fs(req).Open(Self(req, ino), OpenFlags(fi->flags));
  if (!f) return ReplyError(req, "open", f.error());
  auto file = std::make_unique<File>(std::move(*f));
  fi->fh = reinterpret_cast<uint64_t>(file.get());
  SetOpenReplyFlags(fi, *file);
  Track(req, file.get(), true);
  if (fuse_reply_open(req, fi) == 0) return (void)file.release();
  Track(req, file.get(), false);  // interrupted: no release will come
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Result<File> f = Fs(req).Open(Child(req, parent, name), OpenFlags(fi->flags) | O_CREAT | (fi->flags & O_EXCL),
                                mode & 07777);
  if (!f) return ReplyError(req, "create", f.error());
  auto file = std::make_unique<File>(std::move(*f));
  Result<Stat> st = file->GetStat();  // the file itself: no second lookup of the name
  if (!st) return ReplyError(req, "create", st.error());
  Result<fuse_entry_param> e = EntryFor(req, *st, true);
  if (!e) return ReplyError(req, "create", e.error());
  fi->fh = reinterpret_cast<uint64_t>(file.get());
  SetOpenReplyFlags(fi, *file);
  Track(req, file.get(), true);
  if (fuse_reply_create(req, &*e, fi) == 0) return (void)file.release();
  Track(req, file.get(), false);  // interrupted: no release will come
}

void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) return (void)fuse_reply_err(req, EINVAL);
  std::unique_ptr<char[]> buf(new char[size]);
  Result<size_t> n = FileOf(fi).Pread(buf.get(), size, static_cast<uint64_t>(off));
  if (!n) return ReplyError(req, "read", n.error());
  fuse_reply_buf(req, buf.get(), *n);
}

void Write(fuse_req_t req, fuse_ino_t node, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) return (void)fuse_reply_err(req, EINVAL);
  Caller who = CallerOf(req);
  CallerScope as(who);
  Result<size_t> n = FileOf(fi).Pwrite(buf, size, static_cast<uint64_t>(off));
  AfterKillPriv(req, node, who);
  if (!n) return ReplyError(req, "write", n.error());
  if ((fi->flags & O_DIRECT) && !Ctx(req)->single_threaded) InvalidatePages(req, node, off, *n);
  fuse_reply_write(req, *n);
}

void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  std::unique_ptr<File> f(&FileOf(fi));
  Track(req, f.get(), false);
  fi->fh = 0;
  ReplyStatus(req, "release", f->Close());
}

void Fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  File& f = FileOf(fi);
  ReplyStatus(req, "fsync", datasync ? f.Fdatasync() : f.Fsync());
}

// An open directory: its entries as read at opendir, and again whenever
// reading starts over (offset 0: rewinddir sees the directory as it is).
// Offset k is the k-th entry of ".", "..", then the names.
// The directory itself is held open (a udax File), as the kernel holds an
// open directory's inode: removed or replaced by rename while open, it is
// udax's orphan (nlink 0, fstat works) until releasedir, and a killed server
// leaves it on the orphan list for the next mount to reclaim.
struct DirHandle {
  File dir;
  std::vector<DirEntry> entries;
};

void TrackDir(fuse_req_t req, DirHandle* d, bool held) {
  TrackIn(Ctx(req)->open_dirs, Ctx(req)->handles_mu, d, held);
}

Status Fill(fuse_req_t req, fuse_ino_t ino, DirHandle* d) {
  Filesystem& fs = Fs(req);
  ASSIGN_OR_RETURN(std::vector<DirEntry> names, fs.ReadDir(Self(req, ino)));
  ASSIGN_OR_RETURN(Stat parent, fs.GetLstat(PathAt(InoOf(req, ino), "..")));
  d->entries.clear();
  d->entries.reserve(names.size() + 2);
  d->entries.push_back(DirEntry{".", InoOf(req, ino), S_IFDIR});
  d->entries.push_back(DirEntry{"..", parent.ino, S_IFDIR});
  for (DirEntry& e : names) d->entries.push_back(std::move(e));
  return Status::Ok();
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto d = std::make_unique<DirHandle>();
  Result<File> dir = Fs(req).Open(Self(req, ino), O_RDONLY | O_DIRECTORY);
  if (!dir) return ReplyError(req, "opendir", dir.error());
  d->dir = std::move(*dir);
  Status st = Fill(req, ino, d.get());
  if (!st.ok()) return ReplyError(req, "opendir", st);
  fi->fh = reinterpret_cast<uint64_t>(d.get());
  TrackDir(req, d.get(), true);
  if (fuse_reply_open(req, fi) == 0) return (void)d.release();
  TrackDir(req, d.get(), false);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  auto* d = reinterpret_cast<DirHandle*>(fi->fh);
  if (off == 0) {
    Status st = Fill(req, ino, d);
    if (!st.ok()) return ReplyError(req, "readdir", st);
  }
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(std::max<off_t>(off, 0)); i < d->entries.size(); i++) {
    const DirEntry& e = d->entries[i];
    struct stat st {};
    st.st_ino = e.ino;
    st.st_mode = e.type;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st,
                                    static_cast<off_t>(i + 1));
    if (need > size - used) break;  // full: the kernel asks again from i
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  std::unique_ptr<DirHandle> d(reinterpret_cast<DirHandle*>(fi->fh));
  TrackDir(req, d.get(), false);
  fi->fh = 0;
  ReplyStatus(req, "releasedir", d->dir.Close());  // (a removed directory is freed here)
}

void FsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, 0);  // namespace changes are durable when they return
}

void StatFsOp(fuse_req_t req, fuse_ino_t) {
  Result<StatFs> s = Fs(req).GetStatFs();
  if (!s) return ReplyError(req, "statfs", s.error());
  struct statvfs out {};
  out.f_bsize = out.f_frsize = s->block_size;
  out.f_blocks = s->total_blocks;
  out.f_bfree = out.f_bavail = s->free_blocks;
  out.f_files = s->total_inodes;
  out.f_ffree = out.f_favail = s->total_inodes - s->used_inodes;
  out.f_namemax = s->max_name_len;
  fuse_reply_statfs(req, &out);
}

void Fallocate(fuse_req_t req, fuse_ino_t node, int mode, off_t off, off_t len, fuse_file_info* fi) {
  if (off < 0 || len <= 0) return (void)fuse_reply_err(req, EINVAL);
  Caller who = CallerOf(req);
  CallerScope as(who);
  Status st = FileOf(fi).Fallocate(mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len));
  AfterKillPriv(req, node, who);
  ReplyStatus(req, "fallocate", st);
}

// copy_file_range: a reflink when the range is block aligned (or runs to the
// source's end of file, over the destination's end), else a copy.
Result<uint64_t> CopyRange(File& src, uint64_t in, File& dst, uint64_t out, uint64_t size) {
  ASSIGN_OR_RETURN(Stat ss, src.GetStat());
  ASSIGN_OR_RETURN(Stat ds, dst.GetStat());
  if (in >= ss.size) return uint64_t{0};
  uint64_t len = std::min<uint64_t>(size, ss.size - in);
  bool aligned = in % kBlockSize == 0 && out % kBlockSize == 0;
  bool whole_blocks = len % kBlockSize == 0 || (in + len == ss.size && out + len >= ds.size);
  if (aligned && whole_blocks && ss.ino != ds.ino) {
    Status st = dst.CloneRange(src, in, len, out);
    if (st.ok()) return len;
    if (st.err() != EINVAL && st.err() != E2BIG) return st;
  }
  std::vector<char> buf(std::min<uint64_t>(len, 1 << 20));
  uint64_t done = 0;
  while (done < len) {
    Result<size_t> r = src.Pread(buf.data(), std::min<uint64_t>(buf.size(), len - done), in + done);
    if (!r) return done ? Result<uint64_t>(done) : r.error();
    if (*r == 0) break;
    Result<size_t> w = dst.Pwrite(buf.data(), *r, out + done);
    if (!w) return done ? Result<uint64_t>(done) : w.error();
    done += *w;
    if (*w < *r) break;
  }
  return done;
}

void CopyFileRange(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t node_out,
                   off_t off_out, fuse_file_info* fi_out, size_t len, int flags) {
  if (flags != 0 || off_in < 0 || off_out < 0) return (void)fuse_reply_err(req, EINVAL);
  Caller who = CallerOf(req);
  CallerScope as(who);
  Result<uint64_t> n = CopyRange(FileOf(fi_in), static_cast<uint64_t>(off_in), FileOf(fi_out),
                                 static_cast<uint64_t>(off_out), len);
  AfterKillPriv(req, node_out, who);
  if (!n) return ReplyError(req, "copy_file_range", n.error());
  fuse_reply_write(req, *n);
}

// SEEK_DATA / SEEK_HOLE (the kernel answers the other whences itself), from
// the file's extent map: allocated blocks are data, the rest up to EOF is
// hole, and EOF is a hole. ENXIO at or past EOF.
Result<uint64_t> SeekDataOrHole(File& f, uint64_t off, int whence) {
  ASSIGN_OR_RETURN(Stat st, f.GetStat());
  if (off >= st.size) return Status::Error(ENXIO, "offset at or past end of file");
  ASSIGN_OR_RETURN(std::vector<FileExtent> extents, f.Fiemap());
  uint64_t pos = off;
  for (const FileExtent& e : extents) {  // in file order
    uint64_t end = e.file_offset + e.length;
    if (end <= pos) continue;
    if (whence == SEEK_DATA) return std::max(pos, e.file_offset);
    if (e.file_offset > pos) break;  // pos is in a hole
    pos = end;                       // data up to here; a hole may follow
  }
  if (whence == SEEK_DATA) return Status::Error(ENXIO, "no data after the offset");
  return std::min(pos, st.size);
}

void Lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return (void)fuse_reply_err(req, EINVAL);
  if (off < 0) return (void)fuse_reply_err(req, ENXIO);  // as Linux: no data or hole before 0
  Result<uint64_t> pos = SeekDataOrHole(FileOf(fi), static_cast<uint64_t>(off), whence);
  if (!pos) return ReplyError(req, "lseek", pos.error());
  fuse_reply_lseek(req, static_cast<off_t>(*pos));
}

// udax/fuse_ioctl.h: the failure paths, for root and the mount's owner.
void Ioctl(fuse_req_t req, fuse_ino_t, unsigned int cmd, void*, fuse_file_info*, unsigned flags, const void* in,
           size_t in_size, size_t) {
  if (flags & FUSE_IOCTL_COMPAT) return (void)fuse_reply_err(req, ENOSYS);
  const fuse_ctx* c = fuse_req_ctx(req);
  if (c->uid != 0 && c->uid != Ctx(req)->owner_uid) return (void)fuse_reply_err(req, EPERM);
  Status st;
  if (cmd == UDAX_IOC_REMOVE_DEVICE) {
    fuse_log(FUSE_LOG_ERR, "udax: removing the device (UDAX_IOC_REMOVE_DEVICE from pid %d)\n", c->pid);
    st = Fs(req).RemoveDevice();
  } else if (cmd == UDAX_IOC_INJECT_POISON && in_size == sizeof(udax_ioc_range)) {
    udax_ioc_range r;
    std::memcpy(&r, in, sizeof r);
    st = Fs(req).InjectPoison(r.offset, r.length);
  } else {
    return (void)fuse_reply_err(req, ENOTTY);
  }
  if (!st.ok()) return ReplyError(req, "ioctl", st);
  fuse_reply_ioctl(req, 0, nullptr, 0);
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.setattr = SetAttrOp;
  ops.readlink = ReadLink;
  ops.mknod = MkNod;
  ops.mkdir = MkDir;
  ops.unlink = Unlink;
  ops.rmdir = RmDir;
  ops.symlink = SymLink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  ops.statfs = StatFsOp;
  ops.create = Create;
  ops.fallocate = Fallocate;
  ops.copy_file_range = CopyFileRange;
  ops.ioctl = Ioctl;
  ops.lseek = Lseek;
  return ops;
}

}  // namespace

void CloseAllHandles(FuseContext* ctx) {
  std::lock_guard<std::mutex> g(ctx->handles_mu);
  for (void* f : ctx->open_files) {
    std::unique_ptr<File> file(static_cast<File*>(f));
    file->Close().IgnoreError();  // (an unlinked file's space is freed here)
  }
  for (void* d : ctx->open_dirs) {
    std::unique_ptr<DirHandle> dir(static_cast<DirHandle*>(d));
    dir->dir.Close().IgnoreError();  // (a removed directory is freed here)
  }
  ctx->open_files.clear();
  ctx->open_dirs.clear();
}

const fuse_lowlevel_ops& UdaxOperations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

}  // namespace udax::fusefs
