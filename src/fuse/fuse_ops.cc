// fuse/fuse_ops.cc — the FUSE operations: each libfuse3 high-level callback
// is one call of udax's public API (include/udax/fs.h), its Status turned into
// a negative errno. Owns the mapping between FUSE's view (paths, struct stat,
// fuse_file_info) and udax's (paths, udax::Stat, udax::File).
//
// Invariants:
//  * fi->fh of an open file is a heap udax::File, created by open/create and
//    deleted by release; operations on an open file use it, not the path;
//  * an open file that is unlinked is renamed by libfuse to .fuse_hiddenN in
//    its directory and unlinked at its last release (libfuse's default; the
//    path-based API has no name-less inodes, and with hard_remove fstat and
//    fchmod of such a file would fail). A path is never NULL here, but a
//    NULL one gets ESTALE rather than a crash;
//  * setattr operations never follow a final symlink: the kernel names the
//    inode it means (Lchown, Lutimens);
//  * a new inode is given the caller's fsuid/fsgid when they differ from
//    the udax mount's owner (one more transaction, only then).
#include "fuse/fuse_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "udax/fs.h"

namespace udax::fusefs {
namespace {

FuseContext* Ctx() { return static_cast<FuseContext*>(fuse_get_context()->private_data); }
Filesystem& Fs() { return *Ctx()->fs; }
File& FileOf(fuse_file_info* fi) { return *reinterpret_cast<File*>(fi->fh); }
// The open file behind fi, if fi is a file's (directories carry no handle).
File* HandleOf(fuse_file_info* fi) { return fi && fi->fh ? reinterpret_cast<File*>(fi->fh) : nullptr; }

// A failure the kernel only sees as an errno; the serious ones (a device
// gone, failed memory, damaged metadata) also go to the log with udax's
// message.
int Fail(const char* op, const char* path, const Status& st) {
  int e = st.err();
  if (e == EIO || e == ENODEV || e == ESHUTDOWN || e == EUCLEAN)
    fuse_log(FUSE_LOG_ERR, "udax: %s %s: %s\n", op, path ? path : "(open file)", st.ToString().c_str());
  return -e;
}
int Done(const char* op, const char* path, const Status& st) { return st.ok() ? 0 : Fail(op, path, st); }

void ToTimespec(const Timespec& t, struct timespec* out) {
  out->tv_sec = t.sec;
  out->tv_nsec = t.nsec;
}

void ToStatBuf(const Stat& s, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = s.ino;
  st->st_mode = s.mode;
  st->st_nlink = s.nlink;
  st->st_uid = s.uid;
  st->st_gid = s.gid;
  st->st_size = static_cast<off_t>(s.size);
  st->st_blocks = static_cast<blkcnt_t>(s.blocks);
  st->st_blksize = s.blksize;
  ToTimespec(s.atime, &st->st_atim);
  ToTimespec(s.mtime, &st->st_mtim);
  ToTimespec(s.ctime, &st->st_ctim);
}

// Gives a just-created inode to the calling process when it is not the udax
// mount's owner (the owner udax itself gave it).
int OwnNew(const char* op, const char* path) {
  const fuse_context* c = fuse_get_context();
  const FuseContext* ctx = Ctx();
  if (c->uid == ctx->owner_uid && c->gid == ctx->owner_gid) return 0;
  return Done(op, path, Fs().Lchown(path, c->uid, c->gid));
}

void* Init(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->use_ino = 1;        // st_ino is udax's inode number
  cfg->readdir_ino = 1;
  cfg->kernel_cache = 0;   // the page cache is dropped at open: always udax's bytes
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;  // write-through: durable at return
  return fuse_get_context()->private_data;
}

int GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
  File* f = HandleOf(fi);
  if (!f && !path) return -ESTALE;
  Result<Stat> s = f ? f->GetStat() : Fs().GetLstat(path);
  if (!s) return Fail("getattr", path, s.error());
  ToStatBuf(*s, st);
  return 0;
}

int ReadLink(const char* path, char* buf, size_t size) {
  Result<std::string> t = Fs().Readlink(path);
  if (!t) return Fail("readlink", path, t.error());
  if (size == 0) return -EINVAL;
  size_t n = std::min(size - 1, t->size());  // FUSE wants it NUL-terminated, truncated to fit
  std::memcpy(buf, t->data(), n);
  buf[n] = '\0';
  return 0;
}

int MkNod(const char* path, mode_t mode, dev_t) {
  if (!S_ISREG(mode)) return -EPERM;  // udax stores no device nodes, FIFOs or sockets
  Result<File> f = Fs().Open(path, O_CREAT | O_EXCL | O_WRONLY, mode & 07777);
  if (!f) return Fail("mknod", path, f.error());
  if (int e = Done("mknod", path, f->Close())) return e;
  return OwnNew("mknod", path);
}

int MkDir(const char* path, mode_t mode) {
  if (int e = Done("mkdir", path, Fs().Mkdir(path, mode & 07777))) return e;
  return OwnNew("mkdir", path);
}

int Unlink(const char* path) { return Done("unlink", path, Fs().Unlink(path)); }
int RmDir(const char* path) { return Done("rmdir", path, Fs().Rmdir(path)); }

int SymLink(const char* target, const char* path) {
  if (int e = Done("symlink", path, Fs().Symlink(target, path))) return e;
  return OwnNew("symlink", path);
}

int Rename(const char* from, const char* to, unsigned int flags) {
  if (flags & ~RENAME_NOREPLACE) return -EINVAL;  // RENAME_EXCHANGE, RENAME_WHITEOUT: not supported
  if (flags & RENAME_NOREPLACE) {
    // The kernel holds both directories' locks across the call, so nothing
    // can create `to` between this check and the rename.
    Result<Stat> t = Fs().GetLstat(to);
    if (t) return -EEXIST;
    if (t.error().err() != ENOENT) return Fail("rename", to, t.error());
  }
  return Done("rename", from, Fs().Rename(from, to));
}

int Link(const char* from, const char* to) { return Done("link", to, Fs().Link(from, to)); }

int ChMod(const char* path, mode_t mode, fuse_file_info*) {
  if (!path) return -ESTALE;
  return Done("chmod", path, Fs().Chmod(path, mode));
}

int ChOwn(const char* path, uid_t uid, gid_t gid, fuse_file_info*) {
  if (!path) return -ESTALE;
  return Done("chown", path, Fs().Lchown(path, uid, gid));  // (uid_t)-1 = UINT32_MAX: unchanged
}

int Truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (size < 0) return -EINVAL;
  auto len = static_cast<uint64_t>(size);
  File* f = HandleOf(fi);
  if (!f && !path) return -ESTALE;
  return Done("truncate", path, f ? f->Truncate(len) : Fs().Truncate(path, len));
}

// The open(2) flags udax acts on; the kernel has checked and applied the rest.
int OpenFlags(int flags) { return flags & (O_ACCMODE | O_APPEND | O_TRUNC); }

int Open(const char* path, fuse_file_info* fi) {
  Result<File> f = Fs().Open(path, OpenFlags(fi->flags));
  if (!f) return Fail("open", path, f.error());
  fi->fh = reinterpret_cast<uint64_t>(new File(std::move(*f)));
  return 0;
}

int Create(const char* path, mode_t mode, fuse_file_info* fi) {
  Result<File> f = Fs().Open(path, OpenFlags(fi->flags) | O_CREAT | (fi->flags & O_EXCL), mode & 07777);
  if (!f) return Fail("create", path, f.error());
  fi->fh = reinterpret_cast<uint64_t>(new File(std::move(*f)));
  return OwnNew("create", path);
}

int Read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) return -EINVAL;
  Result<size_t> n = FileOf(fi).Pread(buf, size, static_cast<uint64_t>(off));
  if (!n) return Fail("read", path, n.error());
  return static_cast<int>(*n);
}

int Write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) return -EINVAL;
  Result<size_t> n = FileOf(fi).Pwrite(buf, size, static_cast<uint64_t>(off));
  if (!n) return Fail("write", path, n.error());
  return static_cast<int>(*n);
}

int StatFsOp(const char* path, struct statvfs* out) {
  Result<StatFs> s = Fs().GetStatFs();
  if (!s) return Fail("statfs", path, s.error());
  std::memset(out, 0, sizeof *out);
  out->f_bsize = out->f_frsize = s->block_size;
  out->f_blocks = s->total_blocks;
  out->f_bfree = out->f_bavail = s->free_blocks;
  out->f_files = s->total_inodes;
  out->f_ffree = out->f_favail = s->total_inodes - s->used_inodes;
  out->f_namemax = s->max_name_len;
  return 0;
}

int Release(const char* path, fuse_file_info* fi) {
  std::unique_ptr<File> f(reinterpret_cast<File*>(fi->fh));
  fi->fh = 0;
  return Done("release", path, f->Close());
}

int Fsync(const char* path, int datasync, fuse_file_info* fi) {
  File& f = FileOf(fi);
  return Done("fsync", path, datasync ? f.Fdatasync() : f.Fsync());
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
            fuse_readdir_flags) {
  if (!path) return -ENOENT;  // removed while open: no entries
  Result<std::vector<DirEntry>> entries = Fs().ReadDir(path);
  if (!entries) return Fail("readdir", path, entries.error());
  // "." and ".." need their inode numbers: readdir(3) hides an entry of inode 0.
  std::string dir = path;
  std::string parent = dir.substr(0, std::max<size_t>(dir.rfind('/'), 1));
  struct stat st {};
  st.st_mode = S_IFDIR;
  for (auto [name, p] : {std::pair{".", &dir}, std::pair{"..", &parent}}) {
    Result<Stat> ds = Fs().GetLstat(*p);
    if (!ds) return Fail("readdir", p->c_str(), ds.error());
    st.st_ino = ds->ino;
    fill(buf, name, &st, 0, fuse_fill_dir_flags{});
  }
  for (const DirEntry& e : *entries) {
    st.st_ino = e.ino;
    st.st_mode = e.type;
    if (fill(buf, e.name.c_str(), &st, 0, fuse_fill_dir_flags{})) return -ENOMEM;
  }
  return 0;
}

// One utimensat time: UTIME_NOW and UTIME_OMIT resolved against `now` and
// the current value.
Timespec Resolve(const struct timespec& t, const Timespec& now, const Timespec& current) {
  if (t.tv_nsec == UTIME_NOW) return now;
  if (t.tv_nsec == UTIME_OMIT) return current;
  return Timespec{t.tv_sec, static_cast<uint32_t>(t.tv_nsec)};
}

int Utimens(const char* path, const struct timespec tv[2], fuse_file_info* fi) {
  if (!path) return -ESTALE;
  Result<Stat> cur = Fs().GetLstat(path);
  if (!cur) return Fail("utimens", path, cur.error());
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  Timespec now{rt.tv_sec, static_cast<uint32_t>(rt.tv_nsec)};
  Timespec at = tv ? Resolve(tv[0], now, cur->atime) : now;
  Timespec mt = tv ? Resolve(tv[1], now, cur->mtime) : now;
  return Done("utimens", path, Fs().Lutimens(path, at, mt));
}

int Fallocate(const char* path, int mode, off_t off, off_t len, fuse_file_info* fi) {
  if (off < 0 || len <= 0) return -EINVAL;
  return Done("fallocate", path, FileOf(fi).Fallocate(mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len)));
}

// copy_file_range: a reflink when the range is block aligned (or runs to the
// source's end of file, over the destination's end), else a copy.
ssize_t CopyFileRange(const char* path_in, fuse_file_info* fi_in, off_t off_in, const char* path_out,
                      fuse_file_info* fi_out, off_t off_out, size_t size, int flags) {
  if (flags != 0 || off_in < 0 || off_out < 0) return -EINVAL;
  File& src = FileOf(fi_in);
  File& dst = FileOf(fi_out);
  Result<Stat> ss = src.GetStat();
  if (!ss) return Fail("copy_file_range", path_in, ss.error());
  Result<Stat> ds = dst.GetStat();
  if (!ds) return Fail("copy_file_range", path_out, ds.error());
  auto in = static_cast<uint64_t>(off_in), out = static_cast<uint64_t>(off_out);
  if (in >= ss->size) return 0;
  uint64_t len = std::min<uint64_t>(size, ss->size - in);
  bool aligned = in % kBlockSize == 0 && out % kBlockSize == 0;
  bool whole_blocks = len % kBlockSize == 0 || (in + len == ss->size && out + len >= ds->size);
  if (aligned && whole_blocks && ss->ino != ds->ino) {
    Status st = dst.CloneRange(src, in, len, out);
    if (st.ok()) return static_cast<ssize_t>(len);
    if (st.err() != EINVAL && st.err() != E2BIG) return Fail("copy_file_range", path_out, st);
  }
  std::vector<char> buf(std::min<uint64_t>(len, 1 << 20));
  uint64_t done = 0;
  while (done < len) {
    Result<size_t> r = src.Pread(buf.data(), std::min<uint64_t>(buf.size(), len - done), in + done);
    if (!r) return done ? static_cast<ssize_t>(done) : Fail("copy_file_range", path_in, r.error());
    if (*r == 0) break;
    Result<size_t> w = dst.Pwrite(buf.data(), *r, out + done);
    if (!w) return done ? static_cast<ssize_t>(done) : Fail("copy_file_range", path_out, w.error());
    done += *w;
    if (*w < *r) break;
  }
  return static_cast<ssize_t>(done);
}

fuse_operations MakeOperations() {
  fuse_operations ops{};
  ops.init = Init;
  ops.getattr = GetAttr;
  ops.readlink = ReadLink;
  ops.mknod = MkNod;
  ops.mkdir = MkDir;
  ops.unlink = Unlink;
  ops.rmdir = RmDir;
  ops.symlink = SymLink;
  ops.rename = Rename;
  ops.link = Link;
  ops.chmod = ChMod;
  ops.chown = ChOwn;
  ops.truncate = Truncate;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.statfs = StatFsOp;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.readdir = ReadDir;
  ops.create = Create;
  ops.utimens = Utimens;
  ops.fallocate = Fallocate;
  ops.copy_file_range = CopyFileRange;
  return ops;
}

}  // namespace

const fuse_operations& UdaxOperations() {
  static const fuse_operations ops = MakeOperations();
  return ops;
}

}  // namespace udax::fusefs
