// tests/fuzz/make_corpus.cc — builds the fuzzer's seed corpus: real 4 MiB
// images made through the public API, each written in the compact input
// encoding (fuzz_image.h) as OUTDIR/<name>.bin. Between them the seeds hold
// every record kind and every state an image can be found in: files with
// several extents, sparse files, multi-level directory, inode, extent-map
// and rmap trees, inline and block symlinks, hard links, shared extents
// (refcount records), a dirty journal with revokes, a journal that wrapped
// (tiny log), an orphan left by a crash, the bad-block list, and the older
// whole-image journal form.
//
// Usage: fuzz_make_corpus OUTDIR. The committed tests/fuzz/corpus/ was made
// by it; the ctest fuzz_make_corpus runs it into a scratch directory and
// replays the result, so it keeps working as the format changes. Each seed is
// checked to decode back to its image (exit status 1 otherwise).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "fs/test_access.h"
#include "udax/check.h"
#include "fuzz_image.h"
#include "media/verify.h"
#include "udax/fs.h"

namespace udax::fuzz {
namespace {

using media::kBlockSize;

// Any failure while building a seed ends the program: a seed must be real.
void Check(const Status& s, const char* expr, int line) {
  if (s.ok()) return;
  std::fprintf(stderr, "make_corpus.cc:%d: %s -> %s\n", line, expr, s.ToString().c_str());
  std::exit(1);
}
template <typename T>
void Check(const Result<T>& r, const char* expr, int line) {
  Check(r.error(), expr, line);
}
#define CHECK_OK(expr) Check((expr), #expr, __LINE__)

// Bytes that differ per file and offset, nonzero (a run the encoding keeps).
std::vector<uint8_t> Bytes(size_t len, uint64_t seed) {
  std::vector<uint8_t> v(len);
  for (size_t i = 0; i < len; i++) v[i] = static_cast<uint8_t>(1 + (seed * 31 + i) % 251);
  return v;
}

// A short nonzero stamp at `off` (allocates the block, keeps the seed small).
void Stamp(File& f, uint64_t off, uint64_t seed, size_t len = 16) {
  auto b = Bytes(len, seed);
  CHECK_OK(f.Pwrite(b.data(), b.size(), off));
}

File Create(Filesystem& fs, const std::string& path) {
  auto f = fs.Open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
  CHECK_OK(f);
  return std::move(f).value();
}

// ---- the seeds -------------------------------------------------------------------

// Directories three deep, a file of four extents with holes, a sparse file, a
// file with a partial last block, inline and block symlinks, a hard link.
void Tree(Filesystem& fs) {
  CHECK_OK(fs.Mkdir("/a"));
  CHECK_OK(fs.Mkdir("/a/b"));
  CHECK_OK(fs.Mkdir("/a/b/c", 0700));
  {
    File f = Create(fs, "/a/f");
    for (uint64_t i = 0; i < 4; i++) Stamp(f, i * 2 * kBlockSize, i);
  }
  {
    File f = Create(fs, "/a/b/sparse");
    CHECK_OK(f.Truncate(1 << 20));
    Stamp(f, 512 * 1024 + 100, 7);
  }
  {
    File f = Create(fs, "/a/tail");
    Stamp(f, 0, 8, 5000);
  }
  CHECK_OK(fs.Symlink("f", "/a/short"));
  std::string long_target = "..";
  while (long_target.size() < 300) long_target += "/.";
  CHECK_OK(fs.Symlink(long_target + "/f", "/a/b/long"));
  CHECK_OK(fs.Link("/a/f", "/a/b/c/hard"));
  CHECK_OK(fs.Chmod("/a/tail", 0600));
}

// A directory of 40 entries (a two-level entry tree, and inode tree), and a
// file of 200 one-block extents (two-level extent map and rmap trees).
void BigDir(Filesystem& fs) {
  CHECK_OK(fs.Mkdir("/big"));
  for (int i = 0; i < 40; i++) {
    File f = Create(fs, "/big/entry-with-a-longish-name-" + std::to_string(i));
    if (i % 8 == 0) Stamp(f, 0, i);
  }
  File f = Create(fs, "/ext");
  for (uint64_t i = 0; i < 200; i++) Stamp(f, i * 2 * kBlockSize, i, 4);
}

// Shared extents: a whole clone, a partial clone at another offset, a
// copy-on-write overwrite of a shared block, and a dedupe.
void Reflink(Filesystem& fs) {
  CHECK_OK(fs.Mkdir("/r"));
  File src = Create(fs, "/r/src");
  for (uint64_t i = 0; i < 8; i++) Stamp(src, i * kBlockSize, i);
  File full = Create(fs, "/r/full");
  CHECK_OK(full.Clone(src));
  File part = Create(fs, "/r/part");
  CHECK_OK(part.CloneRange(src, 2 * kBlockSize, 2 * kBlockSize, 3 * kBlockSize));
  Stamp(full, 5 * kBlockSize + 7, 99);  // CoW
  File dup = Create(fs, "/r/dup");
  for (uint64_t i = 0; i < 2; i++) Stamp(dup, i * kBlockSize, i);
  CHECK_OK(dup.Truncate(2 * kBlockSize));
  CHECK_OK(dup.DedupeRange(src, 0, 2 * kBlockSize, 0));
}

// Work after the last checkpoint, then a power cut: the homes are stale and
// the journal chain (with revokes of freed tree nodes) holds the truth.
void DirtyJournal(Filesystem& fs) {
  CHECK_OK(fs.Mkdir("/gone"));
  for (int i = 0; i < 20; i++) Create(fs, "/gone/f" + std::to_string(i));
  CHECK_OK(fs.Sync());  // checkpoint: the removals below free written-home nodes
  for (int i = 0; i < 20; i++) CHECK_OK(fs.Unlink("/gone/f" + std::to_string(i)));
  CHECK_OK(fs.Rmdir("/gone"));
  CHECK_OK(fs.Mkdir("/kept"));
  File f = Create(fs, "/kept/file");
  Stamp(f, 0, 1);
  Stamp(f, 3 * kBlockSize, 2);
  CHECK_OK(fs.Rename("/kept/file", "/kept/renamed"));
  CHECK_OK(fs.Symlink("renamed", "/kept/ln"));
  CrashForTesting(fs);
}

// A file unlinked while open, then a power cut: mount must reclaim it.
void Orphan(Filesystem& fs) {
  File keep = Create(fs, "/keep");
  Stamp(keep, 0, 3);
  File f = Create(fs, "/doomed");
  for (uint64_t i = 0; i < 3; i++) Stamp(f, i * kBlockSize, i);
  CHECK_OK(fs.Unlink("/doomed"));
  CrashForTesting(fs);
}

// The bad-block list: a failed block held by a file, and a retired free one.
void BadBlocks(Filesystem& fs) {
  File f = Create(fs, "/bad");
  for (uint64_t i = 0; i < 4; i++) Stamp(f, i * kBlockSize, i);
  CHECK_OK(f.Fsync());
  auto ext = f.Fiemap();
  CHECK_OK(ext);
  CHECK_OK(fs.InjectPoison(ext->front().device_offset + kBlockSize, kBlockSize));
  CHECK_OK(fs.InjectPoison((kFuzzDeviceBlocks - 8) * kBlockSize, kBlockSize));
}

// A journal of 8 blocks that wrapped (checkpoints on a full log), left dirty.
void SmallLog(Filesystem& fs) {
  CHECK_OK(fs.Mkdir("/s"));
  for (int i = 0; i < 60; i++) {
    File f = Create(fs, "/s/n" + std::to_string(i));
    if (i % 3 == 0) Stamp(f, 0, i);
    if (i % 4 == 0) CHECK_OK(fs.Unlink("/s/n" + std::to_string(i)));
  }
  CrashForTesting(fs);
}

// ---- images and their encoding ---------------------------------------------------

SparseImage ReadImageFile(const std::string& path) {
  SparseImage img;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) std::exit(1);
  std::vector<uint8_t> b(kBlockSize);
  for (uint64_t bno = 0; bno < kFuzzDeviceBlocks; bno++) {
    if (::pread(fd, b.data(), kBlockSize, static_cast<off_t>(bno * kBlockSize)) != kBlockSize) std::exit(1);
    bool zero = true;
    for (uint8_t c : b) zero = zero && c == 0;
    if (!zero) std::memcpy(img.Block(bno), b.data(), kBlockSize);
  }
  ::close(fd);
  return img;
}

// Zeroes the log after the end of its live chain (records of one generation
// with consecutive seqs from the start; none in a cleanly unmounted image):
// recovery never reads those bytes, and they would be most of a seed.
void TrimDeadLog(SparseImage& img) {
  const auto* sb = reinterpret_cast<const media::Superblock*>(img.Block(0));
  const uint64_t log_bytes = uint64_t{sb->log_blocks} * kBlockSize;
  auto at = [&](uint64_t off) { return img.Block(sb->log_start + off / kBlockSize) + off % kBlockSize; };
  uint64_t end = 0;
  const media::LogRecordHeader* first = nullptr;
  for (uint64_t seq = 0; end + sizeof(media::LogRecordHeader) <= log_bytes; seq++) {
    const auto* r = reinterpret_cast<const media::LogRecordHeader*>(at(end));
    if (r->magic != media::kLogRecordMagic || r->len == 0 || r->len > log_bytes - end) break;
    if (first && (r->generation != first->generation || r->seq != first->seq + seq)) break;
    if (!first) first = r;
    end += r->len;
  }
  for (uint64_t off = end; off < log_bytes; off += media::kLineSize) std::memset(at(off), 0, media::kLineSize);
  for (uint64_t bno = sb->log_start; bno < sb->log_start + sb->log_blocks; bno++) img.DropIfZero(bno);
}

// The older journal form (one LogHeader, whole images): a committed but not
// checkpointed transaction that changes the root block, as an older udax
// left it after a crash; the superblock predates the line log feature.
void MakeWholeImageLog(SparseImage& img) {
  uint8_t* sb = img.Block(0);
  reinterpret_cast<media::Superblock*>(sb)->features_incompat &= ~media::kFeatureIncompatLineLog;
  std::memcpy(img.Block(kFuzzDeviceBlocks - 1), sb, kBlockSize);
  uint8_t* root_image = img.Block(media::kLogStart + 1);
  std::memcpy(root_image, img.Block(media::kRootBlockNo), kBlockSize);
  reinterpret_cast<media::RootBlock*>(root_image)->next_ino += 5;
  auto* h = reinterpret_cast<media::LogHeader*>(img.Block(media::kLogStart));
  h->hdr.magic = media::kLogMagic;
  h->hdr.blkno = media::kLogStart;
  h->seq = 7;
  h->nblocks = 1;
  h->reserved = 1;  // the crc covers each image's own crc
  h->homes[0] = media::kRootBlockNo;
  Reseal(img);  // the image's crc, then the header's
}

bool SameImage(const SparseImage& a, const SparseImage& b) {
  static const uint8_t zero[kBlockSize] = {};
  for (uint64_t bno = 0; bno < kFuzzDeviceBlocks; bno++) {
    const uint8_t* x = a.Find(bno);
    const uint8_t* y = b.Find(bno);
    if (std::memcmp(x ? x : zero, y ? y : zero, kBlockSize) != 0) return false;
  }
  return true;
}

// The journal holds committed transactions (a cleanly unmounted image has
// zeroes at the start of its log): a record, or the older whole-image header.
bool NeedsReplay(const SparseImage& img) {
  const auto* sb = reinterpret_cast<const media::Superblock*>(img.Find(0));
  const uint8_t* head = sb ? img.Find(sb->log_start) : nullptr;
  if (!head) return false;
  uint32_t magic;
  std::memcpy(&magic, head, sizeof magic);
  return magic == media::kLogRecordMagic || magic == media::kLogMagic;
}

struct Seed {
  const char* name;
  uint32_t log_blocks;
  std::function<void(Filesystem&)> build;  // empty: mkfs only
  std::function<void(SparseImage&)> edit;  // applied to the image afterwards
  bool dirty;                               // the journal must need replay
};

int MakeSeed(const Seed& seed, const std::string& outdir) {
  const std::string dev = "/dev/shm/udax_fuzz_seed_" + std::to_string(getpid()) + ".img";
  ::unlink(dev.c_str());
  MkfsOptions mo;
  mo.size = kFuzzDeviceBytes;
  mo.log_blocks = seed.log_blocks;
  CHECK_OK(Filesystem::Mkfs(dev, mo));
  if (seed.build) {
    auto fs = Filesystem::Mount(dev);
    CHECK_OK(fs);
    seed.build(**fs);
    (*fs)->Unmount().IgnoreError();  // after CrashForTesting: "not mounted"
  }
  SparseImage img = ReadImageFile(dev);
  ::unlink(dev.c_str());
  TrimDeadLog(img);
  if (seed.edit) seed.edit(img);
  const std::vector<uint8_t> bytes = Encode(img, 0, 0xff);
  if (!SameImage(Decode(bytes.data(), bytes.size()).image, img)) {
    std::fprintf(stderr, "seed %s does not decode to its image\n", seed.name);
    return 1;
  }
  // A seed is a real image: fsck (after its replay and orphan reclaim) finds
  // nothing wrong with what the encoding decodes to.
  {
    const int fd = ::open(dev.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    const bool written = fd >= 0 && WriteImage(Decode(bytes.data(), bytes.size()).image, fd);
    if (fd >= 0) ::close(fd);
    if (!written) return 1;
    if (seed.dirty != NeedsReplay(img)) {
      std::fprintf(stderr, "seed %s: the journal %s replay\n", seed.name, seed.dirty ? "needs no" : "needs");
      return 1;
    }
    auto report = Fsck(dev);
    ::unlink(dev.c_str());
    CHECK_OK(report);
    for (const auto& n : report->notes) std::printf("%s: fsck: %s\n", seed.name, n.c_str());
    if (!report->clean()) {
      for (const auto& p : report->problems) std::fprintf(stderr, "%s: fsck: %s\n", seed.name, p.c_str());
      return 1;
    }
  }
  const std::string out = outdir + "/" + seed.name + ".bin";
  std::ofstream(out, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                             static_cast<std::streamsize>(bytes.size()));
  std::printf("%s: %zu blocks, %zu bytes\n", out.c_str(), img.blocks().size(), bytes.size());
  return 0;
}

}  // namespace
}  // namespace udax::fuzz

int main(int argc, char** argv) {
  using namespace udax::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const Seed seeds[] = {
      {"empty", 0, nullptr, nullptr, false},
      {"tree", 0, Tree, nullptr, false},
      {"bigdir", 0, BigDir, nullptr, false},
      {"reflink", 0, Reflink, nullptr, false},
      {"dirty_journal", 0, DirtyJournal, nullptr, true},
      {"orphan", 0, Orphan, nullptr, true},
      {"badblocks", 0, BadBlocks, nullptr, false},
      {"small_log", 8, SmallLog, nullptr, true},
      {"whole_image_log", 0, Tree, MakeWholeImageLog, true},
  };
  int status = 0;
  for (const Seed& s : seeds) status |= MakeSeed(s, argv[1]);
  return status;
}
