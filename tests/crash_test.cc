// tests/crash_test.cc — crash consistency of hand-written workloads: each
// runs once on a small device with a CrashRecorder watching every flush and
// fence (testing/crash_run.h); then every crash state — the image after each
// fence (sampled when there are too many), torn and reordered subsets of the
// writes in flight after it — is rebuilt, mounted (journal replay + orphan
// reclaim), compared with the model, unmounted and fsck-ed
// (testing/crash_check.h says what each state must show). The exhaustive
// sweep of every one- and two-operation sequence is crash_sweep_test.cc; see
// docs/crash-testing.md.
//
// On failure the workload, the fence, the kind of state and the operation in
// flight are printed; UDAX_CRASH_KEEP=1 keeps the failing image under /dev/shm.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "crash_env.h"
#include "fs/fs_impl.h"
#include "fs/test_access.h"
#include "testing/crash_run.h"
#include "udax/fs.h"

namespace udax::testing {
namespace {

constexpr uint64_t kDevSize = 4 << 20;        // the smallest mkfs allows: each state is cheap
constexpr uint64_t kRandomDevSize = 8 << 20;  // room for 400 random operations

std::string ShmPath(const std::string& tag) {
  return "/dev/shm/udax_crash_" + std::to_string(getpid()) + "_" + tag + ".img";
}

// Finish()es the run and prints what was checked.
void FinishAndReport(CrashRun& r, bool long_workload = false) {
  auto t0 = std::chrono::steady_clock::now();
  // Long workloads cut fewer states per fence window; under sanitizers every
  // workload does (CrashTestShare()).
  CrashCheckOptions opts;
  if (long_workload || CrashTestShare() < 1) {
    opts.torn_per_window = 2;
    opts.lines_alone = opts.lines_missing = 4;
    opts.random_subsets = 4;
  }
  EXPECT_EQ(r.Finish(opts), "");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const CrashTally& t = r.tally();
  printf("[ crash    ] %-12s %3zu ops, %4lu fences (%lu checkpoints), %5lu states (%lu fence, %lu torn, %lu reordered), %.1f s\n",
         r.name().c_str(), r.recorded_ops(), r.recorder() ? static_cast<unsigned long>(r.recorder()->fences()) : 0ul,
         static_cast<unsigned long>(r.checkpoints()), static_cast<unsigned long>(t.total()),
         static_cast<unsigned long>(t.fence), static_cast<unsigned long>(t.torn),
         static_cast<unsigned long>(t.reordered), secs);
}

// ---------------------------------------------------------------------------

TEST(CrashTest, CreateAndWrite) {
  CrashRun r("write");
  r.Setup();
  r.StartRecording();
  r.Create("a", "/a");
  r.Write("a", 0, 10000);           // extending, multi-block
  r.Write("a", 2000, 5000);         // overwrite in place
  r.Write("a", 8000, 20000);        // part overwrite, part extension
  r.Write("a", 28000, 100);         // extension inside the EOF block
  r.Write("a", 200000, 3 * 4096);   // sparse extension
  r.Write("a", 50000, 70000);       // fills part of the hole
  r.Create("b", "/b", O_RDWR | O_CREAT | O_EXCL);
  r.Write("b", 1 << 20, 64 << 10);  // sparse, 64 KiB in one call
  r.Write("b", 0, 256 << 10);       // 256 KiB in one call
  r.Close("a");
  r.Close("b");
  r.Create("c", "/c", O_RDWR | O_CREAT | O_TRUNC);
  r.Close("c");
  r.Create("a2", "/a", O_RDWR | O_TRUNC);  // truncating open
  r.Write("a2", 0, 5000);
  r.Close("a2");
  FinishAndReport(r);
}

TEST(CrashTest, Rename) {
  CrashRun r("rename");
  r.Setup();
  r.Create("h", "/a");
  r.Write("h", 0, 30000);
  r.Close("h");
  r.Create("h", "/b");
  r.Write("h", 0, 50000);
  r.Close("h");
  r.Mkdir("/d1");
  r.Mkdir("/d1/sub");
  r.Create("h", "/d1/x");
  r.Write("h", 0, 5000);
  r.Close("h");
  r.Mkdir("/d2");
  r.Mkdir("/e");
  r.StartRecording();
  r.Rename("/a", "/c");            // new name
  r.Rename("/c", "/b");            // replaces a file (its blocks are freed)
  r.Rename("/d1", "/d2/d1");       // moves a directory
  r.Rename("/d2/d1/x", "/x");      // file across directories
  r.Rename("/d2/d1", "/e");        // directory over an empty directory
  r.Rename("/e/sub", "/e/sub2");   // within one directory
  r.Rename("/x", "/e/sub2/x");
  r.Link("/b", "/e/b2");
  r.Rename("/b", "/e/b2");         // same inode: nothing happens
  r.Rename("/e", "/top");
  FinishAndReport(r);
}

TEST(CrashTest, Unlink) {
  CrashRun r("unlink");
  r.Setup();
  r.Create("h", "/small");
  r.Write("h", 0, 3000);
  r.Close("h");
  r.Fragmented("/big", 150);  // freeing rolls over several transactions
  r.Create("h", "/open");
  r.Write("h", 0, 40000);
  r.Close("h");
  r.StartRecording();
  r.Unlink("/small");
  r.Unlink("/big");
  r.Create("o", "/open", O_RDWR);
  r.Unlink("/open");               // still open: orphaned, not freed
  r.Write("o", 40000, 20000);      // writes to the orphan
  r.Close("o");                    // last close frees it
  FinishAndReport(r);
}

TEST(CrashTest, Truncate) {
  CrashRun r("truncate");
  r.Setup();
  r.Create("h", "/t");
  r.Write("h", 0, 200000);
  r.Close("h");
  r.Fragmented("/frag", 120);
  r.StartRecording();
  r.Truncate("/t", 100000);        // down, mid-block
  r.Truncate("/t", 300000);        // up: the old EOF block's tail must read as zeroes
  r.Create("t", "/t", O_RDWR);
  r.Ftruncate("t", 5000);
  r.Write("t", 9000, 100);         // extension past a truncated EOF
  r.Ftruncate("t", 0);
  r.Close("t");
  r.Truncate("/frag", 4096 * 3 + 10);  // frees ~117 extents, rolling
  r.Truncate("/frag", 0);
  r.Truncate("/frag", 1 << 20);
  FinishAndReport(r);
}

TEST(CrashTest, Fallocate) {
  CrashRun r("fallocate");
  r.Setup();
  r.Create("h", "/f");
  r.Write("h", 0, 64 << 10);
  r.Close("h");
  r.Fragmented("/p", 100);
  r.StartRecording();
  r.Create("f", "/f", O_RDWR);
  r.Fallocate("f", 0, 60000, 70000);                                        // extends the size
  r.Fallocate("f", FALLOC_FL_KEEP_SIZE, 200000, 50000);                     // past EOF, size kept
  r.Fallocate("f", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5000, 20000); // partial blocks + full
  r.Fallocate("f", FALLOC_FL_ZERO_RANGE, 30000, 10000);
  r.Fallocate("f", FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 120000, 100000);
  r.Fallocate("f", FALLOC_FL_ZERO_RANGE, 125000, 10000);                   // extends over allocated blocks
  r.Close("f");
  r.Create("p", "/p", O_RDWR);
  r.Fallocate("p", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 4096 * 190);  // rolling punch
  r.Fallocate("p", 0, 0, 4096 * 50);
  r.Close("p");
  FinishAndReport(r);
}

TEST(CrashTest, DirsAndLinks) {
  CrashRun r("dirs");
  r.Setup();
  r.StartRecording();
  r.Mkdir("/a");
  r.Mkdir("/a/b");
  r.Mkdir("/a/b/c");
  r.Create("f", "/a/b/c/f");
  r.Write("f", 0, 9000);
  r.Close("f");
  r.Symlink("/a/b", "/l");
  r.Symlink(std::string(300, 'x') + "/target", "/a/long");  // target in a data block
  r.Link("/a/b/c/f", "/hard");
  r.Link("/l", "/l2");              // a hard link to a symlink
  r.Chmod("/hard", 0600);
  r.Unlink("/a/b/c/f");             // nlink 2 -> 1
  r.Rmdir("/a/b/c");
  r.Rmdir("/a/b");
  r.Unlink("/l");
  r.Unlink("/a/long");
  r.Unlink("/hard");                // last link: freed
  for (int i = 0; i < 40; i++) r.Mkdir("/a/d" + std::to_string(i));  // directory tree grows
  for (int i = 0; i < 40; i += 2) r.Rmdir("/a/d" + std::to_string(i));
  FinishAndReport(r);
}

TEST(CrashTest, RollingWrite) {
  // A write that fills several holes past EOF (blocks preallocated with
  // KEEP_SIZE split it), so it allocates several extents and commits more
  // than one transaction.
  CrashRun r("rollwrite");
  r.Setup();
  r.Create("h", "/f");
  for (int i = 1; i < 12; i++) r.Fallocate("h", FALLOC_FL_KEEP_SIZE, uint64_t(4 * i) * kModelBlock, kModelBlock);
  r.StartRecording();
  r.Write("h", 0, 50 * kModelBlock);
  r.Close("h");
  FinishAndReport(r);
}

// A write into blocks preallocated past EOF (one transaction): until the
// commit that extends the size, those blocks must still read as zeroes —
// a crash in between leaves them past EOF, where a later extension shows them.
TEST(CrashTest, WriteIntoPreallocatedBlocks) {
  CrashRun r("prealloc");
  r.Setup(kDevSize);
  r.Create("h", "/f");
  r.Write("h", 0, 1000);
  r.Fallocate("h", FALLOC_FL_KEEP_SIZE, kModelBlock, 3 * kModelBlock);
  r.StartRecording();
  r.Write("h", 2 * kModelBlock, 2 * kModelBlock);  // past EOF, into preallocated blocks
  r.Write("h", 1000, 3 * kModelBlock);             // over the EOF block and the rest
  r.Ftruncate("h", 6 * kModelBlock);
  FinishAndReport(r);
}

// The durability contract for lazy timestamps: an overwrite's mtime/ctime
// reach the device at fsync, at the last close, at unmount — and survive a
// crash after any of those.
TEST(CrashTest, LazyTimesPersistAtFsyncAndClose) {
  std::string dev = ShmPath("times");
  ::unlink(dev.c_str());
  ASSERT_TRUE(Filesystem::Mkfs(dev, {.size = kDevSize}).ok());
  std::string data = CrashPattern(1, 8192);
  Stat after_fsync, after_close;
  {
    auto fs = Filesystem::Mount(dev).value();
    auto f = fs->Open("/f", O_RDWR | O_CREAT).value();
    ASSERT_TRUE(f.Pwrite(data.data(), data.size(), 0).has_value());
    auto g = fs->Open("/g", O_RDWR | O_CREAT).value();
    ASSERT_TRUE(g.Pwrite(data.data(), data.size(), 0).has_value());
    usleep(20000);
    ASSERT_TRUE(f.Pwrite(data.data(), 100, 10).has_value());  // overwrite: lazy times
    ASSERT_TRUE(f.Fsync().ok());
    after_fsync = *f.GetStat();
    ASSERT_TRUE(g.Pwrite(data.data(), 100, 10).has_value());
    after_close = *g.GetStat();
    ASSERT_TRUE(g.Close().ok());
    CrashForTesting(*fs);
  }
  auto fs = Filesystem::Mount(dev).value();
  Stat f = *fs->GetStat("/f"), g = *fs->GetStat("/g");
  EXPECT_EQ(f.mtime, after_fsync.mtime) << "mtime lost although fsync returned";
  EXPECT_EQ(f.ctime, after_fsync.ctime);
  EXPECT_EQ(g.mtime, after_close.mtime) << "mtime lost although the last close returned";
  EXPECT_EQ(g.ctime, after_close.ctime);
  ASSERT_TRUE(fs->Unmount().ok());
  ::unlink(dev.c_str());
}

// `n` random operations on a small namespace (errors included: they must
// match the model and change nothing).
void RandomOps(CrashRun& r, uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t k) { return rng() % k; };
  auto name = [&] {
    static const char* kDirs[] = {"/", "/d/", "/d/e/", "/x/"};
    return std::string(kDirs[pick(4)]) + static_cast<char>('a' + pick(4));
  };
  auto existing = [&] {
    const auto& paths = r.model().PathsById();
    auto it = paths.begin();
    std::advance(it, pick(paths.size()));
    return it->second;
  };
  const char* kHandles[] = {"h0", "h1", "h2"};
  for (int i = 0; i < n && r.error().empty(); i++) {
    std::string h = kHandles[pick(3)];
    switch (pick(12)) {
      case 0:
      case 1:
        if (r.HasHandle(h)) r.Close(h);
        else r.Create(h, pick(3) ? name() : existing(), O_RDWR | O_CREAT);
        break;
      case 2:
      case 3:
      case 4:
        if (r.HasHandle(h)) {
          uint64_t size = r.HandleSize(h);
          uint64_t off = pick(3) ? pick(size + 1) : pick(256 << 10);
          r.Write(h, off, 1 + pick(pick(4) ? 9000 : 100000));
        }
        break;
      case 5:
        if (r.HasHandle(h)) {
          uint64_t size = r.HandleSize(h);
          if (pick(2)) r.Ftruncate(h, pick(size + 1));
          else r.Fallocate(h, std::vector<int>{0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE}[pick(4)],
                           pick(size + 8192), 1 + pick(40000));
        }
        break;
      case 6: r.Mkdir(name()); break;
      case 7: r.Rmdir(existing()); break;
      case 8: r.Unlink(existing()); break;
      case 9: r.Rename(existing(), pick(2) ? name() : existing()); break;
      case 10: r.Link(existing(), name()); break;
      case 11: r.Symlink(pick(2) ? existing() : std::string(200, 's'), name()); break;
    }
  }
}

// One random workload on a fresh filesystem (three directories to start
// from), cut at every fence; returns the journal checkpoints it made.
uint64_t RandomRun(const std::string& name, uint64_t seed, int ops, uint32_t log_blocks) {
  CrashRun r(name);
  r.Setup(kRandomDevSize, log_blocks);
  r.Mkdir("/d");
  r.Mkdir("/d/e");
  r.Mkdir("/x");
  r.StartRecording();
  RandomOps(r, seed, ops);
  FinishAndReport(r, /*long_workload=*/true);
  return r.checkpoints();
}

// One test case per seed: ctest runs them in parallel.
class CrashRandom : public ::testing::TestWithParam<int> {};
class CrashCheckpoints : public ::testing::TestWithParam<int> {};

// A log of the smallest size (8 blocks): the journal checkpoints every few
// operations, so power is also cut inside checkpoints (home blocks half
// written, the log's start cleared or not) and right after the log wraps.
TEST_P(CrashCheckpoints, RandomWorkload) {
  uint64_t s = 142 + GetParam();
  uint64_t checkpoints = RandomRun("ckpt" + std::to_string(s), s, 250, /*log_blocks=*/8);
  if (::testing::Test::HasFailure()) return;
  EXPECT_GE(checkpoints, 1u) << "the workload should fill the log";
}

TEST_P(CrashRandom, Workload) {
  uint64_t seed = getenv("UDAX_CRASH_SEED") ? strtoull(getenv("UDAX_CRASH_SEED"), nullptr, 0) : 42;
  uint64_t s = seed + GetParam();
  SCOPED_TRACE("UDAX_CRASH_SEED=" + std::to_string(s));
  RandomRun("random" + std::to_string(s), s, 400, /*log_blocks=*/0);
}

INSTANTIATE_TEST_SUITE_P(Seed, CrashCheckpoints, ::testing::Range(0, 3));
INSTANTIATE_TEST_SUITE_P(Seed, CrashRandom, ::testing::Range(0, 6));

}  // namespace
}  // namespace udax::testing
