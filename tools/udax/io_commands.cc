// tools/udax/io_commands.cc — the commands of `udax io` and their table:
// file commands on the current file (open, pwrite, pread, fiemap, ...),
// namespace commands (mkdir, mv, ls, ...), host copies (put, get, cat) and
// control (crash, help, quit); the mapping commands' handlers are in
// io_mmap.cc. Output follows xfs_io where xfs_io has the command. The driver
// that calls these handlers is io_cmd.cc.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli.h"
#include "io.h"
#include "udax/fs.h"

namespace udax::cli {
namespace {

constexpr uint64_t kDefaultIoBufferSize = 64 * 1024;  // pread/pwrite -b default
constexpr uint64_t kMaxIoBufferSize = 64ULL << 20;
constexpr size_t kCopyBufferSize = 1 << 20;  // put/get/cat
constexpr uint8_t kDefaultSeed = 0xcd;

// ---- helpers ---------------------------------------------------------------

Status HostError(int err, const std::string& what) {
  return Status::Error(err, what + ": " + std::strerror(err));
}

// Library messages do not name the path; the CLI adds it: "/a/b: message".
Status AtPath(const std::string& path, const Status& st) { return st.Prefixed(path); }
template <typename T>
Result<T> AtPath(const std::string& path, Result<T> r) {
  if (r.has_value()) return r;
  return r.error().Prefixed(path);
}

// Writes all of buf at off: a short write is retried, so what stops it is
// the library's own error (ENOSPC on a full device, EIO only when media
// failed), reported with how much was written. *written counts the bytes.
Status WriteAll(File& f, const char* buf, size_t len, uint64_t off, uint64_t* written) {
  size_t done = 0;
  while (done < len) {
    Result<size_t> n = f.Pwrite(buf + done, len - done, off + done);
    if (!n.has_value()) {
      *written += done;
      return n.error();
    }
    if (*n == 0) {
      *written += done;
      return Status::Error(EIO, "internal error: a write made no progress");
    }
    done += *n;
  }
  *written += done;
  return Status::Ok();
}

// "short write to PATH: wrote N of M bytes: <why>", keeping why's errno.
Status ShortWrite(const std::string& path, uint64_t written, uint64_t total, const Status& why) {
  return why.Prefixed("short write to " + path + ": wrote " + std::to_string(written) + " of " +
                      std::to_string(total) + " bytes");
}

// off + len must not wrap around.
Status CheckRange(uint64_t off, uint64_t len) {
  if (off + len < off) return Status::Error(EINVAL, "offset + length overflows");
  return Status::Ok();
}

Status GetOffLen(const IoArgs& args, uint64_t* off, uint64_t* len) {
  RETURN_IF_ERROR(ParseNumber(args.operands[0], "offset", off));
  RETURN_IF_ERROR(ParseNumber(args.operands[1], "length", len));
  return CheckRange(*off, *len);
}

Status GetBufferSize(const IoArgs& args, uint64_t* bsize) {
  *bsize = kDefaultIoBufferSize;
  if (!args.Has('b')) return Status::Ok();
  RETURN_IF_ERROR(ParseNumber(args.Get('b'), "buffer size", bsize));
  if (*bsize == 0 || *bsize > kMaxIoBufferSize) {
    return Status::Error(EINVAL, "invalid buffer size '" + args.Get('b') + "'");
  }
  return Status::Ok();
}

// xfs_io's cvtstr(): "8 KiB", "1.500 MiB", "100.000000 bytes".
std::string HumanSize(double value) {
  static const struct {
    int shift;
    const char* unit;
  } kUnits[] = {{60, "EiB"}, {50, "PiB"}, {40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}};
  const bool precise = std::floor(value) == value;
  char buf[64];
  for (const auto& u : kUnits) {
    double scale = std::ldexp(1.0, u.shift);
    if (value >= scale) {
      std::snprintf(buf, sizeof(buf), precise ? "%.f %s" : "%.3f %s", value / scale, u.unit);
      return buf;
    }
  }
  std::snprintf(buf, sizeof(buf), "%f bytes", value);
  return buf;
}

// The second line of pread/pwrite, as xfs_io prints it.
void ReportTimes(uint64_t bytes, uint64_t ops, double secs) {
  double div = secs > 0 ? secs : 1e-9;
  std::printf("%s, %" PRIu64 " ops; %.4f sec (%s/sec and %.4f ops/sec)\n",
              HumanSize(static_cast<double>(bytes)).c_str(), ops, secs,
              HumanSize(static_cast<double>(bytes) / div).c_str(),
              static_cast<double>(ops) / div);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// xfs_io's dump_buffer(): 16 bytes a line, alphanumerics shown in the text.
void DumpBuffer(uint64_t offset, const unsigned char* p, size_t len) {
  for (size_t i = 0; i < len; i += 16) {
    size_t n = std::min<size_t>(16, len - i);
    std::printf("%08" PRIx64 ":  ", offset + i);
    for (size_t j = 0; j < n; j++) std::printf("%02x ", p[i + j]);
    std::printf(" ");
    for (size_t j = 0; j < n; j++) {
      unsigned char c = p[i + j];
      std::putchar(c < 0x80 && std::isalnum(c) ? c : '.');
    }
    std::printf("\n");
  }
}

namespace {

const char* TypeName(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symbolic link";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    default: return "unknown";
  }
}

// "drwxr-xr-x", as ls -l shows it.
std::string ModeString(uint32_t mode) {
  std::string s = "?---------";
  switch (mode & S_IFMT) {
    case S_IFREG: s[0] = '-'; break;
    case S_IFDIR: s[0] = 'd'; break;
    case S_IFLNK: s[0] = 'l'; break;
    case S_IFCHR: s[0] = 'c'; break;
    case S_IFBLK: s[0] = 'b'; break;
    case S_IFIFO: s[0] = 'p'; break;
    case S_IFSOCK: s[0] = 's'; break;
  }
  static const char kRwx[] = "rwxrwxrwx";
  for (int i = 0; i < 9; i++) {
    if (mode & (0400u >> i)) s[1 + i] = kRwx[i];
  }
  if (mode & S_ISUID) s[3] = (mode & S_IXUSR) ? 's' : 'S';
  if (mode & S_ISGID) s[6] = (mode & S_IXGRP) ? 's' : 'S';
  if (mode & S_ISVTX) s[9] = (mode & S_IXOTH) ? 't' : 'T';
  return s;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// Writes all of buf to a host stdio stream.
Status WriteHost(std::FILE* out, const char* buf, size_t len, const std::string& what) {
  if (len != 0 && std::fwrite(buf, 1, len, out) != len) return HostError(errno, what);
  return Status::Ok();
}

// Copies the whole udax file at `path` to `out`.
Status CopyOut(IoContext& ctx, const std::string& path, std::FILE* out, const std::string& what) {
  ASSIGN_OR_RETURN(File f, AtPath(path, ctx.fs->Open(path, O_RDONLY)));
  std::vector<char> buf(kCopyBufferSize);
  uint64_t off = 0;
  Status st;
  while (st.ok()) {
    Result<size_t> n = f.Pread(buf.data(), buf.size(), off);
    if (!n.has_value()) {
      st = AtPath(path, n.error());
      break;
    }
    if (*n == 0) break;
    st = WriteHost(out, buf.data(), *n, what);
    off += *n;
  }
  Status close_st = AtPath(path, f.Close());
  RETURN_IF_ERROR(st);
  return close_st;
}

// ---- file commands -------------------------------------------------------

Status CmdOpen(IoContext& ctx, const IoArgs& args) {
  int flags = args.Has('r') ? O_RDONLY : O_RDWR;
  if (args.Has('f')) flags |= O_CREAT;
  if (args.Has('t')) flags |= O_TRUNC;
  const std::string& path = args.operands[0];
  ASSIGN_OR_RETURN(File f, AtPath(path, ctx.fs->Open(path, flags, 0644)));
  Status close_st;
  if (ctx.file.is_open()) close_st = ctx.file.Close();
  ctx.file = std::move(f);
  ctx.path = path;
  ctx.writable = (flags & O_ACCMODE) != O_RDONLY;
  return close_st.Prefixed("closing the previous file");
}

Status CmdClose(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedFile());
  Status st = ctx.file.Close();
  ctx.file = File();
  ctx.path.clear();
  ctx.writable = false;
  return st;
}

Status CmdPwrite(IoContext& ctx, const IoArgs& args) {
  uint64_t off, len, bsize, seed = kDefaultSeed;
  RETURN_IF_ERROR(GetOffLen(args, &off, &len));
  RETURN_IF_ERROR(GetBufferSize(args, &bsize));
  if (args.Has('S')) {
    RETURN_IF_ERROR(ParseNumber(args.Get('S'), "seed", &seed));
    if (seed > 0xff) return Status::Error(EINVAL, "invalid seed '" + args.Get('S') + "'");
  }
  RETURN_IF_ERROR(ctx.NeedFile());
  std::vector<unsigned char> buf(std::min(bsize, std::max<uint64_t>(len, 1)),
                                 static_cast<unsigned char>(seed));
  auto start = std::chrono::steady_clock::now();
  uint64_t done = 0, ops = 0;
  while (done < len) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(buf.size(), len - done));
    Status st = WriteAll(ctx.file, reinterpret_cast<const char*>(buf.data()), chunk, off + done, &done);
    ops++;
    if (!st.ok()) return ShortWrite(ctx.path, done, len, st);
  }
  double secs = SecondsSince(start);
  if (args.Has('q')) return Status::Ok();
  std::printf("wrote %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", done, len, off);
  ReportTimes(done, ops, secs);
  return Status::Ok();
}

Status CmdPread(IoContext& ctx, const IoArgs& args) {
  uint64_t off, len, bsize;
  RETURN_IF_ERROR(GetOffLen(args, &off, &len));
  RETURN_IF_ERROR(GetBufferSize(args, &bsize));
  RETURN_IF_ERROR(ctx.NeedFile());
  std::vector<unsigned char> buf(std::min(bsize, std::max<uint64_t>(len, 1)));
  const bool verbose = args.Has('v');
  auto start = std::chrono::steady_clock::now();
  uint64_t done = 0, ops = 0;
  while (done < len) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(buf.size(), len - done));
    ASSIGN_OR_RETURN(size_t n, ctx.file.Pread(buf.data(), chunk, off + done));
    n = std::min(n, chunk);
    ops++;
    if (verbose) DumpBuffer(off + done, buf.data(), n);
    done += n;
    if (n < chunk) break;  // end of file
  }
  double secs = SecondsSince(start);
  if (args.Has('q')) return Status::Ok();
  std::printf("read %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", done, len, off);
  ReportTimes(done, ops, secs);
  return Status::Ok();
}

Status CmdTruncate(IoContext& ctx, const IoArgs& args) {
  uint64_t len;
  RETURN_IF_ERROR(ParseNumber(args.operands[0], "length", &len));
  RETURN_IF_ERROR(ctx.NeedFile());
  return ctx.file.Truncate(len);
}

Status Fallocate(IoContext& ctx, const IoArgs& args, int mode) {
  uint64_t off, len;
  RETURN_IF_ERROR(GetOffLen(args, &off, &len));
  RETURN_IF_ERROR(ctx.NeedFile());
  return ctx.file.Fallocate(mode, off, len);
}

Status CmdFalloc(IoContext& ctx, const IoArgs& args) {
  return Fallocate(ctx, args, args.Has('k') ? FALLOC_FL_KEEP_SIZE : 0);
}

Status CmdFpunch(IoContext& ctx, const IoArgs& args) {
  return Fallocate(ctx, args, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
}

Status CmdFzero(IoContext& ctx, const IoArgs& args) {
  return Fallocate(ctx, args, FALLOC_FL_ZERO_RANGE | (args.Has('k') ? FALLOC_FL_KEEP_SIZE : 0));
}

Status CmdFsync(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedFile());
  return ctx.file.Fsync();
}

Status CmdFdatasync(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedFile());
  return ctx.file.Fdatasync();
}

void PrintStat(const std::string& path, const Stat& st) {
  std::printf("fd.path = \"%s\"\n", path.c_str());
  std::printf("stat.ino = %" PRIu64 "\n", st.ino);
  std::printf("stat.type = %s\n", TypeName(st.mode));
  std::printf("stat.size = %" PRIu64 "\n", st.size);
  std::printf("stat.blocks = %" PRIu64 "\n", st.blocks);
  std::printf("stat.nlink = %u\n", st.nlink);
  std::printf("stat.mode = 0%o\n", st.mode);
  std::printf("stat.uid = %u\n", st.uid);
  std::printf("stat.gid = %u\n", st.gid);
  std::printf("stat.atime = %" PRId64 ".%09u\n", st.atime.sec, st.atime.nsec);
  std::printf("stat.mtime = %" PRId64 ".%09u\n", st.mtime.sec, st.mtime.nsec);
  std::printf("stat.ctime = %" PRId64 ".%09u\n", st.ctime.sec, st.ctime.nsec);
}

// `stat` shows the current file; `stat PATH` (an extension) any path, unfollowed.
Status CmdStat(IoContext& ctx, const IoArgs& args) {
  if (!args.operands.empty()) {
    ASSIGN_OR_RETURN(Stat st, AtPath(args.operands[0], ctx.fs->GetLstat(args.operands[0])));
    PrintStat(args.operands[0], st);
    return Status::Ok();
  }
  RETURN_IF_ERROR(ctx.NeedFile());
  ASSIGN_OR_RETURN(Stat st, ctx.file.GetStat());
  PrintStat(ctx.path, st);
  return Status::Ok();
}

// As xfs_io -c fiemap: extents and holes in 512-byte units, then the hole up
// to end of file.
Status CmdFiemap(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedFile());
  ASSIGN_OR_RETURN(std::vector<FileExtent> extents, ctx.file.Fiemap());
  ASSIGN_OR_RETURN(Stat st, ctx.file.GetStat());
  std::sort(extents.begin(), extents.end(), [](const FileExtent& a, const FileExtent& b) {
    return a.file_offset < b.file_offset;
  });
  std::printf("%s:\n", ctx.path.c_str());
  uint64_t index = 0;
  uint64_t next = 0;  // first 512-byte unit not yet printed
  for (const FileExtent& e : extents) {
    if (e.length == 0) continue;
    uint64_t first = e.file_offset / 512;
    uint64_t last = (e.file_offset + e.length - 1) / 512;
    if (first > next) {
      std::printf("\t%" PRIu64 ": [%" PRIu64 "..%" PRIu64 "]: hole\n", index++, next, first - 1);
    }
    uint64_t dev_first = e.device_offset / 512;
    std::printf("\t%" PRIu64 ": [%" PRIu64 "..%" PRIu64 "]: %" PRIu64 "..%" PRIu64 "%s\n", index++,
                first, last, dev_first, dev_first + (last - first),
                (e.flags & kExtentShared) ? " shared" : "");
    next = std::max(next, last + 1);
  }
  uint64_t eof = st.size / 512;
  if (next < eof) {
    std::printf("\t%" PRIu64 ": [%" PRIu64 "..%" PRIu64 "]: hole\n", index++, next, eof - 1);
  }
  return Status::Ok();
}

Status CmdStatfs(IoContext& ctx, const IoArgs& args) {
  ASSIGN_OR_RETURN(StatFs s, ctx.fs->GetStatFs());
  uint64_t free_inodes = s.total_inodes >= s.used_inodes ? s.total_inodes - s.used_inodes : 0;
  std::printf("statfs.f_bsize = %" PRIu64 "\n", s.block_size);
  std::printf("statfs.f_blocks = %" PRIu64 "\n", s.total_blocks);
  std::printf("statfs.f_bfree = %" PRIu64 "\n", s.free_blocks);
  std::printf("statfs.f_bavail = %" PRIu64 "\n", s.free_blocks);
  std::printf("statfs.f_files = %" PRIu64 "\n", s.total_inodes);
  std::printf("statfs.f_ffree = %" PRIu64 "\n", free_inodes);
  std::printf("statfs.f_namelen = %" PRIu64 "\n", s.max_name_len);
  return Status::Ok();
}

// ---- namespace commands ----------------------------------------------------

Status CmdMkdir(IoContext& ctx, const IoArgs& args) {
  uint64_t mode = 0755;
  if (args.Has('m')) {
    const std::string& m = args.Get('m');
    char* end = nullptr;
    errno = 0;
    mode = std::strtoull(m.c_str(), &end, 8);
    if (m.empty() || *end != '\0' || errno != 0 || mode > 07777) {
      return Status::Error(EINVAL, "invalid mode '" + m + "'");
    }
  }
  for (const std::string& path : args.operands) {
    RETURN_IF_ERROR(AtPath(path, ctx.fs->Mkdir(path, static_cast<uint32_t>(mode))));
  }
  return Status::Ok();
}

Status CmdRmdir(IoContext& ctx, const IoArgs& args) {
  for (const std::string& path : args.operands) {
    RETURN_IF_ERROR(AtPath(path, ctx.fs->Rmdir(path)));
  }
  return Status::Ok();
}

Status CmdRm(IoContext& ctx, const IoArgs& args) {
  for (const std::string& path : args.operands) {
    RETURN_IF_ERROR(AtPath(path, ctx.fs->Unlink(path)));
  }
  return Status::Ok();
}

Status CmdMv(IoContext& ctx, const IoArgs& args) {
  const std::string& from = args.operands[0];
  const std::string& to = args.operands[1];
  return AtPath(from + " -> " + to, ctx.fs->Rename(from, to));
}

Status CmdLn(IoContext& ctx, const IoArgs& args) {
  const std::string& from = args.operands[0];
  const std::string& to = args.operands[1];
  return AtPath(from + " -> " + to, ctx.fs->Link(from, to));
}

Status CmdSymlink(IoContext& ctx, const IoArgs& args) {
  return AtPath(args.operands[1], ctx.fs->Symlink(args.operands[0], args.operands[1]));
}

Status CmdReadlink(IoContext& ctx, const IoArgs& args) {
  ASSIGN_OR_RETURN(std::string target,
                   AtPath(args.operands[0], ctx.fs->Readlink(args.operands[0])));
  std::printf("%s\n", target.c_str());
  return Status::Ok();
}

struct LsEntry {
  std::string name;
  std::string path;
};

Status CmdLs(IoContext& ctx, const IoArgs& args) {
  const std::string dir = args.operands.empty() ? "/" : args.operands[0];
  std::vector<LsEntry> entries;
  Result<std::vector<DirEntry>> listing = ctx.fs->ReadDir(dir);
  if (listing.has_value()) {
    for (DirEntry& e : *listing) {
      if (e.name == "." || e.name == "..") continue;
      std::string path = JoinPath(dir, e.name);
      entries.push_back({std::move(e.name), std::move(path)});
    }
  } else if (listing.error().err() == ENOTDIR) {
    // Like ls, a non-directory lists itself.
    RETURN_IF_ERROR(AtPath(dir, ctx.fs->GetLstat(dir)).status());
    entries.push_back({dir, dir});
  } else {
    return AtPath(dir, listing.error());
  }
  std::sort(entries.begin(), entries.end(),
            [](const LsEntry& a, const LsEntry& b) { return a.name < b.name; });
  if (!args.Has('l')) {
    for (const LsEntry& e : entries) std::printf("%s\n", e.name.c_str());
    return Status::Ok();
  }
  struct Row {
    std::string mode, nlink, size, name;
  };
  std::vector<Row> rows;
  size_t nlink_w = 0, size_w = 0;
  Status first_error;
  for (const LsEntry& e : entries) {
    Result<Stat> st = ctx.fs->GetLstat(e.path);
    if (!st.has_value()) {
      // Keep listing the others; report the first failure.
      if (first_error.ok()) first_error = st.error().Prefixed(e.path);
      continue;
    }
    Row r{ModeString(st->mode), std::to_string(st->nlink), std::to_string(st->size), e.name};
    if ((st->mode & S_IFMT) == S_IFLNK) {
      Result<std::string> target = ctx.fs->Readlink(e.path);
      r.name += " -> " + (target.has_value() ? *target : std::string("?"));
      if (!target.has_value() && first_error.ok()) first_error = target.error().Prefixed(e.path);
    }
    nlink_w = std::max(nlink_w, r.nlink.size());
    size_w = std::max(size_w, r.size.size());
    rows.push_back(std::move(r));
  }
  for (const Row& r : rows) {
    std::printf("%s %*s %*s %s\n", r.mode.c_str(), static_cast<int>(nlink_w), r.nlink.c_str(),
                static_cast<int>(size_w), r.size.c_str(), r.name.c_str());
  }
  return first_error;
}

// ---- host copies -----------------------------------------------------------

Status CmdPut(IoContext& ctx, const IoArgs& args) {
  const std::string& local = args.operands[0];
  const std::string& path = args.operands[1];
  std::FILE* in = std::fopen(local.c_str(), "rb");
  if (in == nullptr) return HostError(errno, local);
  Result<File> opened = AtPath(path, ctx.fs->Open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
  if (!opened.has_value()) {
    std::fclose(in);
    return opened.error();
  }
  File f = std::move(opened).value();
  struct stat local_st {};
  uint64_t total = ::fstat(::fileno(in), &local_st) == 0 ? static_cast<uint64_t>(local_st.st_size) : 0;
  std::vector<char> buf(kCopyBufferSize);
  uint64_t off = 0;
  Status st;
  while (st.ok()) {
    size_t n = std::fread(buf.data(), 1, buf.size(), in);
    if (n > 0) {
      uint64_t written = off;
      st = WriteAll(f, buf.data(), n, off, &written);
      if (!st.ok()) st = ShortWrite(path, written, std::max(total, off + n), st);
      off += n;
    }
    if (n < buf.size()) {
      if (std::ferror(in)) st = HostError(EIO, local);
      break;
    }
  }
  std::fclose(in);
  Status close_st = AtPath(path, f.Close());
  RETURN_IF_ERROR(st);
  return close_st;
}

Status CmdGet(IoContext& ctx, const IoArgs& args) {
  const std::string& path = args.operands[0];
  const std::string& local = args.operands[1];
  // Check the source first so that a missing file leaves no empty host file.
  ASSIGN_OR_RETURN(Stat st, AtPath(path, ctx.fs->GetStat(path)));
  if ((st.mode & S_IFMT) == S_IFDIR) return Status::Error(EISDIR, path + ": is a directory");
  std::FILE* out = std::fopen(local.c_str(), "wb");
  if (out == nullptr) return HostError(errno, local);
  Status copy_st = CopyOut(ctx, path, out, local);
  int rc = std::fclose(out);
  RETURN_IF_ERROR(copy_st);
  if (rc != 0) return HostError(errno, local);
  return Status::Ok();
}

Status CmdCat(IoContext& ctx, const IoArgs& args) {
  std::fflush(stdout);
  Status st = CopyOut(ctx, args.operands[0], stdout, "stdout");
  std::fflush(stdout);
  return st;
}

// ---- device failure --------------------------------------------------------

// poison: a memory failure of device bytes [devoff, +len) (4 KiB aligned,
// inside the device). Mappings of the file data there print their
// "invalidate: ... reason=MemoryFailure" lines while it runs.
Status CmdPoison(IoContext& ctx, const IoArgs& args) {
  uint64_t off, len;
  RETURN_IF_ERROR(ParseNumber(args.operands[0], "device offset", &off));
  RETURN_IF_ERROR(ParseNumber(args.operands[1], "length", &len));
  RETURN_IF_ERROR(CheckRange(off, len));
  RETURN_IF_ERROR(ctx.fs->InjectPoison(off, len));
  std::printf("poisoned %" PRIu64 " bytes at device offset %" PRIu64 "\n", len, off);
  return Status::Ok();
}

// remove: takes the device away from under the mounted filesystem. Every
// mapping prints "invalidate: ... reason=Removed"; later commands fail with
// ENODEV "filesystem shut down: device removed".
Status CmdRemove(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.fs->RemoveDevice());
  std::printf("device removed\n");
  return Status::Ok();
}

// ---- control -----------------------------------------------------------------

Status CmdSync(IoContext& ctx, const IoArgs& args) { return ctx.fs->Sync(); }

// A power cut: nothing more reaches the device, the process ends at once —
// without Unmount, so no lazy state, checkpoint or clean mark is written (the
// kernel drops the mapping and the lock; the image is as a power cut left it,
// every returned operation being durable already).
[[noreturn]] Status CmdCrash(IoContext& ctx, const IoArgs& args) {
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(ctx.failed ? 1 : 0);
}

Status CmdHelp(IoContext& ctx, const IoArgs& args) {
  for (const IoCommand& cmd : IoCommands()) {
    if (!args.operands.empty() && args.operands[0] != cmd.name) continue;
    std::printf("%-44s %s\n", cmd.usage, cmd.help);
  }
  return Status::Ok();
}

Status CmdQuit(IoContext& ctx, const IoArgs& args) {
  ctx.quit = true;
  return Status::Ok();
}

constexpr IoCommand kCommands[] = {
    // name, options, min/max operands, usage, help, handler
    {"open", "frt", 1, 1, "open [-f] [-t] [-r] path",
     "open path as the current file (-f create, -t truncate, -r read-only)", CmdOpen},
    {"close", "", 0, 0, "close", "close the current file", CmdClose},
    {"pwrite", "S:b:q", 2, 2, "pwrite [-S seed] [-b bsize] [-q] off len",
     "write len bytes of seed (default 0xcd) at off", CmdPwrite},
    {"pread", "vb:q", 2, 2, "pread [-v] [-b bsize] [-q] off len",
     "read len bytes at off (-v: hexdump them)", CmdPread},
    {"truncate", "", 1, 1, "truncate len", "set the size of the current file", CmdTruncate},
    {"falloc", "k", 2, 2, "falloc [-k] off len", "allocate space (-k: keep the size)", CmdFalloc},
    {"fpunch", "", 2, 2, "fpunch off len", "punch a hole", CmdFpunch},
    {"fzero", "k", 2, 2, "fzero [-k] off len", "zero a range (-k: keep the size)", CmdFzero},
    {"fsync", "", 0, 0, "fsync", "fsync the current file", CmdFsync},
    {"fdatasync", "", 0, 0, "fdatasync", "fdatasync the current file", CmdFdatasync},
    {"mmap", "rwxSs:", 0, 2, "mmap [N] | [-r|-w|-rw] [-S] [off len]",
     "map a range of the current file (no args: list; N: select)", CmdMmap},
    {"mread", "frv", 0, 2, "mread [-f] [-r] [-v] [off len]",
     "load through the current mapping (-v/-f: hexdump)", CmdMread},
    {"mwrite", "rS:", 0, 2, "mwrite [-r] [-S seed] [off len]",
     "store seed (default 0x58 'X') through the mapping", CmdMwrite},
    {"msync", "ais", 0, 2, "msync [-a] [-i] [-s] [off len]",
     "persist a range of the current mapping", CmdMsync},
    {"munmap", "", 0, 0, "munmap", "unmap the current mapping, list the others", CmdMunmap},
    {"reflink", "", 1, 4, "reflink srcpath [soff doff len]",
     "share srcpath's blocks into the current file (whole file, or a range)", CmdReflink},
    {"dedupe", "", 4, 4, "dedupe srcpath soff doff len",
     "share equal ranges of srcpath and the current file", CmdDedupe},
    {"bmap", "", 0, 0, "bmap", "extents as FILE_OFFSET DEVICE_OFFSET LENGTH FLAGS (bytes)", CmdBmap},
    {"rmap", "", 1, 2, "rmap devoff [len]", "owners of device bytes [devoff, +len)", CmdRmap},
    {"poison", "", 2, 2, "poison devoff len",
     "memory failure of device bytes [devoff, +len) (4k aligned)", CmdPoison},
    {"remove", "", 0, 0, "remove", "remove the device (later commands fail: ENODEV)", CmdRemove},
    {"stat", "", 0, 1, "stat [path]", "show the current file's (or path's) attributes", CmdStat},
    {"fiemap", "", 0, 0, "fiemap", "show the current file's extents (512-byte units)",
     CmdFiemap},
    {"statfs", "", 0, 0, "statfs", "show filesystem statistics", CmdStatfs},
    {"mkdir", "m:", 1, -1, "mkdir [-m mode] path...", "create directories", CmdMkdir},
    {"rmdir", "", 1, -1, "rmdir path...", "remove empty directories", CmdRmdir},
    {"rm", "", 1, -1, "rm path...", "remove files", CmdRm},
    {"mv", "", 2, 2, "mv old new", "rename", CmdMv},
    {"ln", "", 2, 2, "ln old new", "make a hard link", CmdLn},
    {"symlink", "", 2, 2, "symlink target path", "make a symbolic link", CmdSymlink},
    {"readlink", "", 1, 1, "readlink path", "show a symbolic link's target", CmdReadlink},
    {"ls", "l", 0, 1, "ls [-l] [path]", "list a directory (default /)", CmdLs},
    {"put", "", 2, 2, "put local path", "copy a host file into udax", CmdPut},
    {"get", "", 2, 2, "get path local", "copy a udax file to the host", CmdGet},
    {"cat", "", 1, 1, "cat path", "write a file's bytes to stdout", CmdCat},
    {"sync", "", 0, 0, "sync", "sync the filesystem", CmdSync},
    {"crash", "", 0, 0, "crash", "exit at once without unmounting (a power cut)", CmdCrash},
    {"help", "", 0, 1, "help [command]", "list the commands", CmdHelp},
    {"quit", "", 0, 0, "quit", "stop running commands", CmdQuit},
};

}  // namespace

std::span<const IoCommand> IoCommands() { return kCommands; }

}  // namespace udax::cli
