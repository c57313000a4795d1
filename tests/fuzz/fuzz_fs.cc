// tests/fuzz/fuzz_fs.cc — the libFuzzer target over every path that reads an
// image. One input (fuzz_image.h: a sparse, re-sealed 4 MiB image plus two
// option bytes) goes, through the public API only, through:
//   mount (superblock choice, journal replay, bad-block list, orphan reclaim),
//   a walk that stats every inode and reads every file, directory and link
//   (the first files also through a DAX mapping),
//   a few writes picked by the input's `ops` byte (allocating writes, mkdir,
//   symlinks, rename, overwrite / CoW, truncate, punch, clone and dedupe,
//   stores through a DAX mapping, link / unlink, an unlinked-while-open file,
//   sync),
//   unmount, then fsck (which mounts again to replay and reclaim, then checks).
// Every result is allowed to be an error: the harness looks for crashes,
// hangs, leaks and sanitizer reports, never for a particular outcome.
//
// Each input gets its own memfd, opened by the filesystem through
// /proc/self/fd/N, closed at the end: nothing outlives one input. The
// function is also the regression replayer's (replay_main.cc), built without
// libFuzzer.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "udax/check.h"
#include "fuzz_image.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax::fuzz {
namespace {

// Bounds that keep one input fast whatever the image claims.
constexpr int kMaxDepth = 8;
constexpr int kMaxVisits = 256;
constexpr uint64_t kMaxReadPerFile = 256 * 1024;
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxMappedFiles = 4;
constexpr uint64_t kMapPages = 4;

// What the walk found, for the writes to work on.
struct Found {
  std::string file, symlink, dir;  // absolute paths (first of each kind)
  int visits = 0;
  size_t mapped = 0;  // files loaded through DAX
  bool dax = true;
};

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

void ReadFile(Filesystem& fs, const PathAt& at) {
  auto f = fs.Open(at, O_RDONLY);
  if (!f.has_value()) return;
  auto st = f->GetStat();
  f->Fiemap().error().IgnoreError();
  if (st.has_value()) {
    std::vector<uint8_t> buf(kReadChunk);
    for (uint64_t off = 0; off < std::min<uint64_t>(st->size, kMaxReadPerFile); off += kReadChunk)
      if (!f->Pread(buf.data(), buf.size(), off).has_value()) break;
    // The far end of a large (or claimed-large) file: another extent lookup.
    if (st->size > kMaxReadPerFile) f->Pread(buf.data(), 4096, st->size - 4096).error().IgnoreError();
  }
  f->Close().IgnoreError();
}

// Loads one byte of each of the first pages of the file through a DAX
// mapping (the fault handler maps the extents the image names). A SIGBUS —
// past EOF, a failed block — ends the loads with an error, never a crash.
void LoadMapped(Filesystem& fs, const PathAt& at) {
  auto f = fs.Open(at, O_RDONLY);
  if (!f.has_value()) return;
  if (auto st = f->GetStat(); st.has_value() && st->size > 0) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(st->size, kMapPages * 4096));
    if (auto m = f->Map(0, len, Prot::kRead); m.has_value()) {
      volatile uint8_t sink = 0;
      Guarded([&] {
        for (size_t off = 0; off < len; off += 4096) sink = sink + m->data()[off];
      }).IgnoreError();
    }
  }
  f->Close().IgnoreError();
}

// Stores through a read-write mapping of the file: write faults allocate
// holes and copy shared blocks (CoW); past EOF they get SIGBUS. Then Sync,
// inside Guarded too: flushing a failed block (the bad-block list) is a
// SIGBUS as a load from it is.
void StoreMapped(File& f) {
  auto m = f.Map(0, kMapPages * 4096, Prot::kReadWrite);
  if (!m.has_value()) return;
  Guarded([&] {
    for (size_t off = 0; off < m->size(); off += 4096) m->data()[off] = 0x5a;
  }).IgnoreError();
  Guarded([&] { m->Sync().IgnoreError(); }).IgnoreError();
}

// Visits every entry of directory `ino` (named `path`) and below.
void Walk(Filesystem& fs, uint64_t ino, const std::string& path, int depth, Found& found) {
  auto entries = fs.ReadDir(PathAt(ino, ""));
  if (!entries.has_value()) return;
  for (const DirEntry& e : *entries) {
    if (++found.visits > kMaxVisits) return;
    const PathAt at(ino, e.name);
    auto st = fs.GetLstat(at);
    if (!st.has_value()) continue;
    const std::string child = Join(path, e.name);
    if (S_ISDIR(st->mode)) {
      if (found.dir.empty()) found.dir = child;
      if (depth < kMaxDepth) Walk(fs, st->ino, child, depth + 1, found);
    } else if (S_ISREG(st->mode)) {
      if (found.file.empty()) found.file = child;
      ReadFile(fs, at);
      if (found.dax && found.mapped++ < kMaxMappedFiles) LoadMapped(fs, at);
    } else if (S_ISLNK(st->mode)) {
      if (found.symlink.empty()) found.symlink = child;
      fs.Readlink(at).error().IgnoreError();
      fs.GetStat(at).error().IgnoreError();  // follows it
    }
  }
}

Status WriteAt(Filesystem& fs, const std::string& path, uint64_t off, size_t len, int flags) {
  auto f = fs.Open(path, O_RDWR | flags, 0644);
  if (!f.has_value()) return f.error();
  std::vector<uint8_t> data(len);
  for (size_t i = 0; i < len; i++) data[i] = static_cast<uint8_t>(i * 7 + off);
  auto n = f->Pwrite(data.data(), data.size(), off);
  if (!n.has_value()) return n.error();
  return f->Close();
}

// The writes the `ops` bits ask for. Each may fail; none may crash.
void Writes(Filesystem& fs, uint8_t ops, const Found& found) {
  if (ops & 1) {  // an allocating write, then an extension
    WriteAt(fs, "/fz.new", 0, 3 * 4096 + 100, O_CREAT).IgnoreError();
    WriteAt(fs, "/fz.new", 9 * 4096, 10, 0).IgnoreError();
  }
  if (ops & 2) {  // namespace: a directory, an inline and a block symlink, rename
    fs.Mkdir("/fz.dir").IgnoreError();
    fs.Symlink("short", "/fz.dir/ln").IgnoreError();
    fs.Symlink(std::string(200, 'x'), "/fz.dir/long").IgnoreError();
    fs.Rename("/fz.new", "/fz.dir/moved").IgnoreError();
  }
  if ((ops & 4) && !found.file.empty()) {  // an existing file: overwrite (CoW if shared), grow, shrink, punch
    if (auto f = fs.Open(found.file, O_RDWR); f.has_value()) {
      const char bytes[] = "fuzz";
      f->Pwrite(bytes, sizeof bytes, 1).error().IgnoreError();
      if (auto st = f->GetStat(); st.has_value()) {
        f->Pwrite(bytes, sizeof bytes, st->size).error().IgnoreError();
        f->Truncate(st->size / 2).IgnoreError();
      }
      f->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096).IgnoreError();
      f->Fallocate(0, 4096, 8192).IgnoreError();
      if (found.dax) StoreMapped(*f);
      f->Close().IgnoreError();
    }
  }
  if ((ops & 8) && !found.file.empty()) {  // reflink: clone, then dedupe
    auto src = fs.Open(found.file, O_RDONLY);
    auto dst = fs.Open("/fz.clone", O_CREAT | O_RDWR, 0644);
    if (src.has_value() && dst.has_value()) {
      dst->Clone(*src).IgnoreError();
      dst->DedupeRange(*src, 0, 4096, 0).error().IgnoreError();
    }
  }
  if (ops & 16) {  // links and removals of what the walk found
    if (!found.file.empty()) {
      fs.Link(found.file, "/fz.link").IgnoreError();
      fs.Unlink(found.file).IgnoreError();
    }
    if (!found.symlink.empty()) fs.Unlink(found.symlink).IgnoreError();
    if (!found.dir.empty()) {
      fs.Rmdir(found.dir).IgnoreError();
      fs.Rename(found.dir, "/fz.moved").IgnoreError();
    }
  }
  if (ops & 32) {  // an orphan: written after its last name is gone
    auto f = fs.Open("/fz.orphan", O_CREAT | O_RDWR, 0644);
    if (f.has_value()) {
      fs.Unlink("/fz.orphan").IgnoreError();
      const char bytes[] = "orphan";
      f->Pwrite(bytes, sizeof bytes, 8192).error().IgnoreError();
      f->Close().IgnoreError();
    }
  }
  if (ops & 64) fs.Sync().IgnoreError();
  if ((ops & 128) && !found.file.empty()) {  // attributes
    fs.Chmod(found.file, 0600).IgnoreError();
    fs.Chown(found.file, 1, 1).IgnoreError();
    fs.Utimens(found.file, Timespec{1, 2}, Timespec{3, 4}).IgnoreError();
    fs.Truncate(found.file, 1 << 20).IgnoreError();
  }
}

void RunOne(const DecodedInput& in, const std::string& device) {
  MountOptions mo;
  mo.read_only = in.flags & kFlagReadOnly;
  if (auto m = Filesystem::Mount(device, mo); m.has_value()) {
    Filesystem& fs = **m;
    fs.GetStatFs().error().IgnoreError();
    fs.BadBlocks().error().IgnoreError();
    Found found;
    found.dax = !(in.flags & kFlagNoDax);
    if (auto root = fs.GetStat("/"); root.has_value()) Walk(fs, root->ino, "/", 0, found);
    if (!mo.read_only && !(in.flags & kFlagNoWrites)) Writes(fs, in.ops, found);
    fs.Unmount().IgnoreError();
  }
  if (!(in.flags & kFlagNoFsck)) Fsck(device).error().IgnoreError();
}

}  // namespace
}  // namespace udax::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace udax::fuzz;
  const DecodedInput in = Decode(data, size);
  const int fd = ::memfd_create("udax-fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (WriteImage(in.image, fd)) RunOne(in, "/proc/self/fd/" + std::to_string(fd));
  ::close(fd);
  return 0;
}
