// tests/crash_sweep_test.cc — the exhaustive crash sweep: every sequence of
// one and of two operations drawn from the whole operation set, each run from
// the same small starting tree and cut at every crash state (fence, torn,
// reordered: testing/crash_check.h) — see docs/crash-testing.md.
//
// The starting tree (built once per process, saved as an image and a model):
//   /a   20000 bytes (EOF inside block 4)        handle "a"
//   /b   8192 bytes                               (no handle: unlink frees it)
//   /h   24576 bytes, blocks 0 2 4 written (holes 1 3 5), blocks 8 10
//        preallocated past EOF (KEEP_SIZE)        handle "h"
//   /d/  with /d/f (3000 bytes) and /d/sub/
//   /r1  16384 bytes; /r2 its clone (every block shared); /r3 a copy of its
//        bytes, not shared (dedupe target)        handles "r1" "r2" "r3"
//   /s   symlink to /a
// A two-operation sequence (A, B) checks only the states from A's return on:
// those before are the states of the one-operation sequence (A), checked there.
//
// The sequences are split into kShards test cases (ctest runs them in
// parallel); CrashTestShare() of them run (all in Release, 1/8 under ASan;
// $UDAX_CRASH_SHARE overrides). $UDAX_CRASH_SEQ=i,j runs one sequence alone
// (ops i then j, or "i" for one) to reproduce a failure.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "crash_env.h"
#include "testing/crash_run.h"

namespace udax::testing {
namespace {

constexpr uint64_t kDevSize = 4 << 20;  // the smallest mkfs allows
constexpr int kShards = 8;

struct SweepOp {
  const char* name;
  std::function<void(CrashRun&)> run;
};

const std::vector<SweepOp>& Ops() {
  constexpr uint64_t B = kModelBlock;
  static const std::vector<SweepOp> ops = {
      {"create", [](CrashRun& r) { r.Create("n", "/d/new", O_RDWR | O_CREAT | O_EXCL); }},
      {"mkdir", [](CrashRun& r) { r.Mkdir("/d/newdir"); }},
      {"write-sparse", [](CrashRun& r) { r.Write("a", 32768, 5000); }},
      {"overwrite", [](CrashRun& r) { r.Write("a", 1000, 3000); }},
      {"append", [](CrashRun& r) { r.Write("a", 20000, 6000); }},
      {"write-holes", [](CrashRun& r) { r.Write("h", B, 40000); }},  // several extents, past EOF
      {"truncate-down", [](CrashRun& r) { r.Ftruncate("a", 5000); }},
      {"truncate-up", [](CrashRun& r) { r.Ftruncate("a", 50000); }},
      {"truncate-path", [](CrashRun& r) { r.Truncate("/b", 100); }},
      {"punch", [](CrashRun& r) { r.Fallocate("a", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3000, 9000); }},
      {"zero", [](CrashRun& r) { r.Fallocate("a", FALLOC_FL_ZERO_RANGE, 5000, 6000); }},
      {"fallocate", [](CrashRun& r) { r.Fallocate("a", 0, 18000, 12000); }},
      {"fallocate-keep", [](CrashRun& r) { r.Fallocate("a", FALLOC_FL_KEEP_SIZE, 40000, 2 * B); }},
      {"link", [](CrashRun& r) { r.Link("/a", "/d/alink"); }},
      {"unlink", [](CrashRun& r) { r.Unlink("/b"); }},
      {"unlink-open", [](CrashRun& r) { r.Unlink("/a"); }},  // an orphan while its handle lives
      {"rmdir", [](CrashRun& r) { r.Rmdir("/d/sub"); }},
      {"rename", [](CrashRun& r) { r.Rename("/b", "/d/b2"); }},
      {"rename-replace", [](CrashRun& r) { r.Rename("/d/f", "/b"); }},  // frees /b
      {"rename-dir", [](CrashRun& r) { r.Rename("/d/sub", "/sub2"); }},
      {"rename-dir-tree", [](CrashRun& r) { r.Rename("/d", "/e"); }},
      {"symlink", [](CrashRun& r) { r.Symlink("/a", "/d/l"); }},
      {"symlink-long", [](CrashRun& r) { r.Symlink(std::string(300, 'x') + "/t", "/ll"); }},  // target in a block
      {"chmod", [](CrashRun& r) { r.Chmod("/a", 0600); }},
      {"clone", [](CrashRun& r) { r.Remap("a", "r1", 0, 2 * B, 0, false); }},
      {"dedupe", [](CrashRun& r) { r.Remap("r3", "r1", 0, 4 * B, 0, true); }},
      {"write-shared", [](CrashRun& r) { r.Write("r2", 100, 200); }},  // copy-on-write
      {"fsync", [](CrashRun& r) { r.Fsync("a"); }},
      {"dax-hole", [](CrashRun& r) { r.DaxStore("h", 3 * B + 100, 300); }},
      {"dax-shared", [](CrashRun& r) { r.DaxStore("r2", B + 50, 200); }},
  };
  return ops;
}

// The starting tree, built once per process.
struct StartTree {
  std::vector<uint8_t> image;
  FsModel model;
  std::string error;
};

const StartTree& Start() {
  static const StartTree start = [] {
    constexpr uint64_t B = kModelBlock;
    CrashRun r("sweep_start");
    r.Setup(kDevSize);
    r.Create("x", "/a");
    r.Write("x", 0, 20000);
    r.Close("x");
    r.Create("x", "/b");
    r.Write("x", 0, 8192);
    r.Close("x");
    r.Create("x", "/h");
    for (uint64_t blk : {0, 2, 4}) r.Write("x", blk * B, B);
    r.Ftruncate("x", 6 * B);
    for (uint64_t blk : {8, 10}) r.Fallocate("x", FALLOC_FL_KEEP_SIZE, blk * B, B);
    r.Close("x");
    r.Mkdir("/d");
    r.Mkdir("/d/sub");
    r.Create("x", "/d/f");
    r.Write("x", 0, 3000);
    r.Close("x");
    const std::string bytes = CrashPattern(777, 4 * B);
    r.Create("r1", "/r1");
    r.WriteData("r1", 0, bytes);
    r.Create("r2", "/r2");
    r.Remap("r2", "r1", 0, 0, 0, false);
    r.Close("r2");
    r.Close("r1");
    r.Create("r3", "/r3");
    r.WriteData("r3", 0, bytes);
    r.Close("r3");
    r.Symlink("/a", "/s");
    StartTree t;
    t.image = r.SaveImage();
    t.model = r.model();
    t.error = r.error();
    return t;
  }();
  return start;
}

// Runs ops `seq` (indices into Ops()) from the starting tree and checks their
// crash states; returns "" or the failures.
std::string RunSequence(const std::vector<size_t>& seq, CrashTally* tally) {
  const StartTree& start = Start();
  if (!start.error.empty()) return "building the starting tree: " + start.error;
  std::string name = "seq";
  for (size_t i : seq) name += std::string("_") + Ops()[i].name;
  CrashRun r(name);
  r.SetupFromImage(start.image, start.model);
  for (const char* h : {"a", "h", "r1", "r2", "r3"}) r.Create(h, std::string("/") + h, O_RDWR);
  r.StartRecording();
  for (size_t i : seq) Ops()[i].run(r);
  CrashCheckOptions opts;  // short workloads: more states per window
  opts.lines_alone = opts.lines_missing = 16;
  opts.random_subsets = 24;
  if (seq.size() > 1 && r.error().empty()) {
    // The states before the first operation returned are those of the
    // one-operation sequence: start at its done fence, without its state.
    opts.first_fence = r.recorder()->op_done_fence(0);
    opts.check_first_fence = false;
  }
  std::string err = r.Finish(opts);
  *tally += r.tally();
  return err;
}

// Every one- and two-operation sequence, numbered 0..n+n*n-1.
std::vector<size_t> Sequence(size_t index) {
  const size_t n = Ops().size();
  if (index < n) return {index};
  index -= n;
  return {index / n, index % n};
}

class CrashSweep : public ::testing::TestWithParam<int> {};

TEST_P(CrashSweep, EveryOneAndTwoOpSequence) {
  const size_t n = Ops().size();
  std::vector<size_t> picked;
  if (const char* one = getenv("UDAX_CRASH_SEQ"); one && *one) {
    if (GetParam() != 0) GTEST_SKIP() << "UDAX_CRASH_SEQ runs in shard 0";
    char* end = nullptr;
    size_t i = strtoul(one, &end, 10);
    picked.push_back(*end == ',' ? n + i * n + strtoul(end + 1, nullptr, 10) : i);
  } else {
    const size_t stride = static_cast<size_t>(std::lround(1 / std::max(CrashTestShare(), 1e-3)));
    for (size_t s = GetParam(), k = 0; s < n + n * n; s += kShards, k++)
      if (k % stride == 0) picked.push_back(s);
  }
  CrashTally tally;
  int failed = 0;
  for (size_t s : picked) {
    std::vector<size_t> seq = Sequence(s);
    std::string err = RunSequence(seq, &tally);
    if (err.empty()) continue;
    std::string repro = std::to_string(seq[0]) + (seq.size() > 1 ? "," + std::to_string(seq[1]) : "");
    ADD_FAILURE() << "UDAX_CRASH_SEQ=" << repro << "\n" << err;
    if (++failed >= 3) break;
  }
  printf("[ sweep    ] shard %d: %zu sequences, %lu states (%lu fence, %lu torn, %lu reordered, %lu duplicates skipped)\n",
         GetParam(), picked.size(), static_cast<unsigned long>(tally.total()), static_cast<unsigned long>(tally.fence),
         static_cast<unsigned long>(tally.torn), static_cast<unsigned long>(tally.reordered),
         static_cast<unsigned long>(tally.duplicates));
}

INSTANTIATE_TEST_SUITE_P(Shard, CrashSweep, ::testing::Range(0, kShards));

}  // namespace
}  // namespace udax::testing
