// tests/dax_test.cc — DAX mappings: faults served in user space, MAP_SYNC
// semantics across a crash, invalidation on truncate/punch and of zero pages
// over filled holes, errors (SIGBUS
// beyond EOF, SIGSEGV through a read-only mapping, ENOSPC inside Guarded),
// handler chaining, many threads, fork, faults on a small alternate signal stack.
#include <fcntl.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <random>
#include <thread>

#include "dax/fault_service.h"
#include "test_util.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax {
namespace {

using testutil::kMiB;
using testutil::TempDevice;

class DaxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Death tests re-execute the binary: a fork()ed child would see its udax
    // mappings revoked (see docs/dax.md) and test that instead.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    ASSERT_OK(Filesystem::Mkfs(dev_.path(), MkfsOptions{.size = 64 * kMiB}));
    Mount();
  }
  void Mount() {
    ASSIGN_OR_FAIL(fs_, Filesystem::Mount(dev_.path()));
  }
  // Writes `big` until the device is full (creates stop at the reserve, so
  // make every other file first).
  void FillDevice(File& big) {
    std::vector<uint8_t> chunk(1 * kMiB, 0xee);
    for (uint64_t off = 0;; off += chunk.size()) {
      auto n = big.Pwrite(chunk.data(), chunk.size(), off);
      if (!n.has_value() || *n < chunk.size()) break;
    }
  }
  File Create(const std::string& path, uint64_t size) {
    auto f = fs_->Open(path, O_CREAT | O_RDWR, 0644);
    EXPECT_TRUE(f.has_value());
    if (size) {
      EXPECT_OK(f->Truncate(size));
    }
    return std::move(*f);
  }
  TempDevice dev_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(DaxTest, StoreThenReadThroughFileApi) {
  File f = Create("/a", 1 * kMiB);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 1 * kMiB, Prot::kReadWrite));
  ASSERT_NE(m.data(), nullptr);
  EXPECT_EQ(m.data()[12345], 0);  // read fault on a hole: zeroes
  std::memset(m.data() + 4096, 0x5a, 8192);  // write fault allocates
  ASSERT_OK(m.Persist(m.data() + 4096, 8192));
  std::vector<uint8_t> buf(8192);
  ASSIGN_OR_FAIL(size_t n, f.Pread(buf.data(), buf.size(), 4096));
  EXPECT_EQ(n, 8192u);
  EXPECT_EQ(testutil::FirstNot(buf.data(), n, 0x5a), -1);
  // And pwrite is visible through the mapping (same device blocks).
  std::vector<uint8_t> w(100, 0x77);
  ASSERT_OK(f.Pwrite(w.data(), w.size(), 4096 + 10));
  EXPECT_EQ(m.data()[4096 + 10], 0x77);
  EXPECT_EQ(m.data()[4096 + 9], 0x5a);
  // A pwrite into a hole the mapping had seen as zeroes is visible too.
  EXPECT_EQ(m.data()[512 * 1024], 0);
  ASSERT_OK(f.Pwrite(w.data(), w.size(), 512 * 1024));
  EXPECT_EQ(m.data()[512 * 1024], 0x77);
}

// As on Linux (a directory has no mmap): ENODEV, and nothing is mapped.
TEST_F(DaxTest, ADirectoryCannotBeMapped) {
  ASSERT_OK(fs_->Mkdir("/d"));
  ASSIGN_OR_FAIL(File d, fs_->Open("/d", O_RDONLY | O_DIRECTORY));
  EXPECT_ERRNO(d.Map(0, 4096, Prot::kRead), ENODEV);
}

TEST_F(DaxTest, TwoMappingsSeeTheSameBytes) {
  File f = Create("/a", 256 * 1024);
  ASSIGN_OR_FAIL(Mapping a, f.Map(0, 256 * 1024, Prot::kReadWrite));
  ASSIGN_OR_FAIL(Mapping b, f.Map(0, 256 * 1024, Prot::kRead));
  a.data()[100] = 42;
  EXPECT_EQ(b.data()[100], 42);
  EXPECT_NE(a.data(), b.data());
}

// A mapping that read a hole shows zero pages there. However the hole is
// filled — a write fault through another mapping, fallocate, a clone onto
// it — those zero pages are revoked, so the mapping sees the bytes written
// afterwards (fallocate and clone map blocks without writing through it).
TEST_F(DaxTest, ZeroPagesOverAHoleAreRevokedWhenTheHoleIsFilled) {
  File f = Create("/a", 1 * kMiB);
  ASSIGN_OR_FAIL(Mapping reader, f.Map(0, 1 * kMiB, Prot::kRead));
  ASSIGN_OR_FAIL(Mapping writer, f.Map(0, 1 * kMiB, Prot::kReadWrite));
  for (uint64_t off : {0u, 256u * 1024, 512u * 1024}) EXPECT_EQ(reader.data()[off + 7], 0);
  // A write fault into the hole, through the other mapping.
  writer.data()[7] = 0x31;
  EXPECT_EQ(reader.data()[7], 0x31);
  // fallocate maps zeroed blocks; an overwrite of them then takes the fast
  // path, which revokes nothing.
  ASSERT_OK(f.Fallocate(0, 256 * 1024, 64 * 1024));
  uint8_t v = 0x32;
  ASSERT_OK(f.Pwrite(&v, 1, 256 * 1024 + 7));
  EXPECT_EQ(reader.data()[256 * 1024 + 7], 0x32);
  // A clone of another file's blocks onto the hole.
  File src = Create("/src", 0);
  std::vector<uint8_t> block(4096, 0x33);
  ASSERT_OK(src.Pwrite(block.data(), block.size(), 0));
  ASSERT_OK(f.CloneRange(src, 0, 4096, 512 * 1024));
  EXPECT_EQ(reader.data()[512 * 1024 + 7], 0x33);
}

TEST_F(DaxTest, HoleWriteFaultSurvivesCrashWithoutMsync) {
  {
    File f = Create("/a", 1 * kMiB);
    ASSIGN_OR_FAIL(Mapping m, f.Map(0, 1 * kMiB, Prot::kReadWrite));
    std::memset(m.data() + 200 * 1024, 0xc3, 4096);
    ASSERT_OK(m.Persist(m.data() + 200 * 1024, 4096));
    CrashForTesting(*fs_);
  }
  fs_.reset();
  Mount();
  ASSIGN_OR_FAIL(auto data, testutil::ReadWhole(*fs_, "/a"));
  ASSERT_EQ(data.size(), 1 * kMiB);
  EXPECT_EQ(testutil::FirstNot(data.data() + 200 * 1024, 4096, 0xc3), -1);
  EXPECT_EQ(testutil::FirstNot(data.data(), 200 * 1024, 0), -1);
  ASSERT_OK(fs_->Unmount());
  ASSIGN_OR_FAIL(auto rep, Fsck(dev_.path()));
  EXPECT_TRUE(rep.clean()) << testutil::JoinProblems(rep);
}

TEST_F(DaxTest, AccessBeyondEofIsAnErrorInGuarded) {
  File f = Create("/a", 4096 + 10);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 64 * 1024, Prot::kReadWrite));
  uint8_t v = 1;
  EXPECT_OK(Guarded([&] { v = m.data()[4096 + 100]; }));  // inside the EOF page: zeroes
  EXPECT_EQ(v, 0);
  Status st = Guarded([&] { v = m.data()[3 * 4096]; });
  EXPECT_EQ(st.err(), EFAULT) << st.ToString();
  // Twice: the second access hits the SIGBUS page, still an error.
  st = Guarded([&] { m.data()[3 * 4096] = 1; });
  EXPECT_EQ(st.err(), EFAULT) << st.ToString();
  // Growing the file makes the page usable.
  ASSERT_OK(f.Truncate(64 * 1024));
  EXPECT_OK(Guarded([&] { m.data()[3 * 4096] = 9; }));
  EXPECT_EQ(m.data()[3 * 4096], 9);
}

TEST_F(DaxTest, BeyondEofKillsWithSigbusUnguarded) {
  File f = Create("/a", 4096);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 64 * 1024, Prot::kReadWrite));
  EXPECT_EXIT({ volatile uint8_t x = m.data()[8192]; (void)x; }, ::testing::KilledBySignal(SIGBUS), "");
}

TEST_F(DaxTest, ReadOnlyMappingStoreIsSigsegv) {
  File f = Create("/a", 4096);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 4096, Prot::kRead));
  EXPECT_EQ(m.data()[0], 0);
  EXPECT_EXIT({ m.data()[0] = 1; }, ::testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(DaxTest, NullDereferenceStillDies) {
  File f = Create("/a", 4096);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 4096, Prot::kRead));  // handlers installed
  // Address 16: a NULL-struct-member access (UBSan would stop a literal nullptr store first).
  EXPECT_EXIT({ volatile int* p = reinterpret_cast<int*>(16); *p = 1; }, ::testing::KilledBySignal(SIGSEGV), "");
}

sigjmp_buf g_own_jb;
void OwnHandler(int) { siglongjmp(g_own_jb, 1); }

// Runs in a re-executed child ("threadsafe" death test) so that the
// program's handler is installed before udax installs its own, as in a real
// program that sets up its handlers at start.
TEST_F(DaxTest, ProgramsOwnSegvHandlerStillRuns) {
  EXPECT_EXIT(
      {
        struct sigaction sa = {};
        sa.sa_handler = OwnHandler;
        sigaction(SIGSEGV, &sa, nullptr);
        File f = Create("/b", 4096);
        auto m = f.Map(0, 4096, Prot::kReadWrite);
        if (!m.has_value()) _exit(2);
        m->data()[0] = 1;  // served by udax, not by OwnHandler
        if (sigsetjmp(g_own_jb, 1) == 0) {
          volatile int* p = reinterpret_cast<int*>(16);
          *p = 1;
          _exit(3);
        }
        _exit(m->data()[0] == 1 ? 0 : 4);  // the program's handler ran
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(DaxTest, TruncateInvalidatesAndCallbackRuns) {
  File f = Create("/a", 1 * kMiB);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 1 * kMiB, Prot::kReadWrite));
  std::memset(m.data(), 0x11, 1 * kMiB);
  std::vector<std::tuple<uint64_t, uint64_t, InvalidateReason>> calls;
  m.OnInvalidate([&](uint64_t, uint64_t off, uint64_t len, InvalidateReason r) { calls.emplace_back(off, len, r); });
  ASSERT_OK(f.Truncate(8192));
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(std::get<0>(calls[0]), 8192u);
  EXPECT_EQ(std::get<2>(calls[0]), InvalidateReason::kTruncate);
  uint64_t reported = 0;  // each page reported once, not twice
  for (const auto& c : calls) reported += std::get<1>(c);
  EXPECT_EQ(reported, 1 * kMiB - 8192);
  EXPECT_EQ(Guarded([&] { m.data()[16384] = 1; }).err(), EFAULT);
  EXPECT_EQ(m.data()[8191], 0x11);
  ASSERT_OK(f.Truncate(1 * kMiB));
  EXPECT_EQ(m.data()[16384], 0);  // refault sees zeroes, not the old bytes
}

TEST_F(DaxTest, PunchInvalidatesAndRefaultSeesZeroes) {
  File f = Create("/a", 256 * 1024);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 256 * 1024, Prot::kReadWrite));
  std::memset(m.data(), 0x22, 256 * 1024);
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 * 1024, 64 * 1024));
  EXPECT_EQ(m.data()[64 * 1024], 0);
  EXPECT_EQ(m.data()[128 * 1024 - 1], 0);
  EXPECT_EQ(m.data()[128 * 1024], 0x22);
  EXPECT_EQ(m.data()[64 * 1024 - 1], 0x22);
}

TEST_F(DaxTest, FullDeviceWriteFaultIsEnospcInGuarded) {
  File big = Create("/big", 0);
  File f = Create("/a", 0);  // before the device is full: creates stop at the reserve
  FillDevice(big);
  ASSERT_OK(f.Truncate(4 * kMiB));
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 4 * kMiB, Prot::kReadWrite));
  Status st = Guarded([&] {
    for (size_t i = 0; i < 4 * kMiB; i += 4096) m.data()[i] = 1;
  });
  EXPECT_EQ(st.err(), ENOSPC) << st.ToString();
  f = File();
  m = Mapping();
  big = File();
  ASSERT_OK(fs_->Unmount());
  ASSIGN_OR_FAIL(auto rep, Fsck(dev_.path()));
  EXPECT_TRUE(rep.clean()) << testutil::JoinProblems(rep);
}

TEST_F(DaxTest, BadArguments) {
  File f = Create("/a", 4096);
  EXPECT_ERRNO(f.Map(100, 4096, Prot::kRead), EINVAL);
  EXPECT_ERRNO(f.Map(0, 0, Prot::kRead), EINVAL);
  EXPECT_ERRNO(f.Map(0, 4096, static_cast<Prot>(8)), EINVAL);
  EXPECT_ERRNO(f.Map(kMaxFileSize, 4096, Prot::kRead), EINVAL);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 4096, Prot::kRead));
  EXPECT_OK(m.Unmap());
  EXPECT_ERRNO(m.Unmap(), EINVAL);
  EXPECT_ERRNO(m.Persist(nullptr, 1), EINVAL);
  ASSIGN_OR_FAIL(auto ro, fs_->Open("/a", O_RDONLY));
  EXPECT_ERRNO(ro.Map(0, 4096, Prot::kReadWrite), EACCES);
}

TEST_F(DaxTest, MappingOutlivesItsFileHandle) {
  Mapping m;
  {
    File f = Create("/a", 8192);
    ASSIGN_OR_FAIL(m, f.Map(0, 8192, Prot::kReadWrite));
  }
  m.data()[5] = 5;
  ASSIGN_OR_FAIL(auto data, testutil::ReadWhole(*fs_, "/a"));
  EXPECT_EQ(data[5], 5);
}

TEST_F(DaxTest, EightThreadsRandomLoadsAndStoresMatchModel) {
  constexpr size_t kSize = 4 * kMiB;
  File f = Create("/a", kSize);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, kSize, Prot::kReadWrite));
  // Each thread owns the bytes i with i % 8 == t: the model is exact.
  std::vector<std::thread> threads;
  std::vector<std::vector<uint8_t>> models(8, std::vector<uint8_t>(kSize / 8, 0));
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      for (int i = 0; i < 20000; i++) {
        size_t slot = rng() % (kSize / 8);
        size_t idx = slot * 8 + t;
        if (rng() % 2) {
          uint8_t v = static_cast<uint8_t>(rng());
          m.data()[idx] = v;
          models[t][slot] = v;
        } else if (m.data()[idx] != models[t][slot]) {
          mismatches++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  ASSIGN_OR_FAIL(auto data, testutil::ReadWhole(*fs_, "/a"));
  for (size_t i = 0; i < kSize; i++) ASSERT_EQ(data[i], models[i % 8][i / 8]) << i;
}

TEST_F(DaxTest, ForkedChildGetsCleanErrorNotParentMemory) {
  File f = Create("/a", 8192);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 8192, Prot::kReadWrite));
  m.data()[0] = 7;
  pid_t pid = fork();
  if (pid == 0) {
    uint8_t v = 0;
    Status st = Guarded([&] { v = m.data()[0]; });
    _exit(st.err() == ENODEV && v == 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(m.data()[0], 7);  // the parent's mapping is untouched
}

}  // namespace
}  // namespace udax

namespace udax {
namespace {

// udax copying into / out of a buffer that is itself a udax mapping (a hole
// in it, even): the faults are taken before udax holds its lock.
TEST_F(DaxTest, MappingAsBufferOfReadAndWrite) {
  File src = Create("/src", 64 * 1024);
  std::vector<uint8_t> pat(64 * 1024);
  for (size_t i = 0; i < pat.size(); i++) pat[i] = static_cast<uint8_t>(i * 7);
  ASSERT_OK(src.Pwrite(pat.data(), pat.size(), 0));
  File dst = Create("/dst", 64 * 1024);  // all hole
  ASSIGN_OR_FAIL(Mapping dm, dst.Map(0, 64 * 1024, Prot::kReadWrite));
  ASSIGN_OR_FAIL(size_t n, src.Pread(dm.data(), 64 * 1024, 0));  // fills dst's holes
  EXPECT_EQ(n, 64 * 1024u);
  EXPECT_EQ(std::memcmp(dm.data(), pat.data(), pat.size()), 0);
  File third = Create("/third", 0);
  ASSERT_OK(third.Pwrite(dm.data(), 64 * 1024, 0));  // source is a mapping
  ASSIGN_OR_FAIL(auto back, testutil::ReadWhole(*fs_, "/third"));
  EXPECT_EQ(back, pat);
}

}  // namespace
}  // namespace udax

namespace udax {
namespace {

// Many threads first-touch the same holes at once: exactly one allocation per
// block, every store lands.
TEST_F(DaxTest, ThreadsFaultTheSameHolesConcurrently) {
  constexpr size_t kSize = 2 * kMiB;
  File f = Create("/a", kSize);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, kSize, Prot::kReadWrite));
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++)
    threads.emplace_back([&, t] {
      for (size_t page = 0; page < kSize / 4096; page++) m.data()[page * 4096 + t] = static_cast<uint8_t>(t + 1);
    });
  for (auto& th : threads) th.join();
  ASSIGN_OR_FAIL(auto st, f.GetStat());
  EXPECT_EQ(st.blocks * 512, kSize);  // every block allocated once, none twice
  ASSIGN_OR_FAIL(auto data, testutil::ReadWhole(*fs_, "/a"));
  for (size_t page = 0; page < kSize / 4096; page++)
    for (int t = 0; t < 8; t++) ASSERT_EQ(data[page * 4096 + t], t + 1) << page;
}

// Stores race with truncates: each access either lands or fails cleanly
// (EFAULT past EOF) — never a crash, never a store into a freed block.
TEST_F(DaxTest, ThreadsStoreWhileAnotherTruncates) {
  constexpr size_t kSize = 1 * kMiB;
  File f = Create("/a", kSize);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, kSize, Prot::kReadWrite));
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, efault{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++)
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!stop.load()) {
        size_t off = rng() % kSize;
        Status st = Guarded([&] { m.data()[off] = 0xab; });
        if (st.ok()) ok++;
        else if (st.err() == EFAULT) efault++;
        else other++;
      }
    });
  for (int i = 0; i < 200; i++) {
    ASSERT_OK(f.Truncate(i % 2 ? kSize : 64 * 1024));
    // Let the stores interleave with the truncates (and make sure some land).
    while (ok.load() < i / 4) std::this_thread::yield();
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);
  f = File();
  m = Mapping();
  ASSERT_OK(fs_->Unmount());
  ASSIGN_OR_FAIL(auto rep, Fsck(dev_.path()));
  EXPECT_TRUE(rep.clean()) << testutil::JoinProblems(rep);
}

}  // namespace
}  // namespace udax

namespace udax {
namespace {

// A small alternate signal stack for the calling thread, as runtimes give
// every thread (SIGSTKSZ-sized): 16 KiB with a PROT_NONE guard page below, so
// an overflow is a clean crash of the test, not silent corruption.
// (AltStack(n) for another size; its bytes start as kPaint, so Used() tells
// how deep the handlers went.)
class AltStack {
 public:
  static constexpr uint8_t kPaint = 0xa5;
  explicit AltStack(size_t size) : size_(size) {
    base_ = static_cast<uint8_t*>(mmap(nullptr, kGuard + size_, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(base_, MAP_FAILED);
    EXPECT_EQ(mprotect(base_, kGuard, PROT_NONE), 0);
    std::memset(base_ + kGuard, kPaint, size_);
    stack_t ss = {};
    ss.ss_sp = base_ + kGuard;
    ss.ss_size = size_;
    EXPECT_EQ(sigaltstack(&ss, &old_), 0);
  }
  ~AltStack() {
    sigaltstack(&old_, nullptr);  // ASan frees the stack it gave the thread at exit
    munmap(base_, kGuard + size_);
  }
  bool Contains(const void* p) const { return p >= base_ + kGuard && p < base_ + kGuard + size_; }
  size_t Used() const {
    size_t untouched = 0;
    while (untouched < size_ && base_[kGuard + untouched] == kPaint) untouched++;
    return size_ - untouched;
  }

 private:
  static constexpr size_t kGuard = 4096;
  size_t size_;
  uint8_t* base_ = nullptr;
  stack_t old_ = {};
};
constexpr size_t kSmallAltStack = 16 * 1024;

// Runs `fn` in a new thread whose signal handlers run on an alternate stack
// of `size` bytes; returns how much of it they used.
size_t OnThreadWithAltStack(const std::function<void()>& fn, size_t size = kSmallAltStack) {
  size_t used = 0;
  std::thread([&] {
    AltStack alt(size);
    fn();
    used = alt.Used();
  }).join();
  return used;
}
void OnThreadWithSmallAltStack(const std::function<void()>& fn) { OnThreadWithAltStack(fn); }

TEST_F(DaxTest, SmallAltStackWriteFaultsIntoHolesAndReadFaults) {
  File f = Create("/a", 1 * kMiB);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 1 * kMiB, Prot::kReadWrite));
  Status st;
  uint8_t seen = 0xff;
  OnThreadWithSmallAltStack([&] {
    st = Guarded([&] {
      seen = m.data()[700 * 1024];              // read fault on a hole: zero pages
      std::memset(m.data(), 0x3c, 256 * 1024);  // write faults allocate (transactions)
    });
  });
  ASSERT_OK(st);
  EXPECT_EQ(seen, 0);
  ASSIGN_OR_FAIL(auto data, testutil::ReadWhole(*fs_, "/a"));
  EXPECT_EQ(testutil::FirstNot(data.data(), 256 * 1024, 0x3c), -1);
  EXPECT_EQ(testutil::FirstNot(data.data() + 256 * 1024, data.size() - 256 * 1024, 0), -1);
}

TEST_F(DaxTest, SmallAltStackWriteFaultsOntoSharedBlocks) {
  auto pat = testutil::Pattern(256 * 1024, 12);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/src", pat));
  File src = Create("/src", 0);
  File f = Create("/a", 0);
  ASSERT_OK(f.Clone(src));
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, pat.size(), Prot::kReadWrite));
  Status st;
  uint8_t seen = 0;
  OnThreadWithSmallAltStack([&] {
    st = Guarded([&] {
      seen = m.data()[200 * 1024];                 // read fault: shared block, read-only
      for (size_t i = 0; i < 128 * 1024; i += 4096) m.data()[i] = 0xa5;  // stores copy each block
    });
  });
  ASSERT_OK(st);
  EXPECT_EQ(seen, pat[200 * 1024]);
  ASSIGN_OR_FAIL(auto data, testutil::ReadWhole(*fs_, "/a"));
  auto want = pat;
  for (size_t i = 0; i < 128 * 1024; i += 4096) want[i] = 0xa5;
  EXPECT_EQ(data, want);
  ASSIGN_OR_FAIL(auto orig, testutil::ReadWhole(*fs_, "/src"));
  EXPECT_EQ(orig, pat);  // the source keeps its bytes
}

TEST_F(DaxTest, SmallAltStackFullDeviceIsEnospcInGuarded) {
  File big = Create("/big", 0);
  File f = Create("/a", 0);  // before the device is full: creates stop at the reserve
  FillDevice(big);
  ASSERT_OK(f.Truncate(4 * kMiB));
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 4 * kMiB, Prot::kReadWrite));
  Status st;
  OnThreadWithSmallAltStack([&] {
    st = Guarded([&] {
      for (size_t i = 0; i < 4 * kMiB; i += 4096) m.data()[i] = 1;
    });
  });
  EXPECT_EQ(st.err(), ENOSPC) << st.ToString();
}

TEST_F(DaxTest, SmallAltStackRemovedDeviceIsEnodevInGuarded) {
  File f = Create("/a", 256 * 1024);
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 256 * 1024, Prot::kReadWrite));
  ASSERT_OK(fs_->RemoveDevice());
  Status read_st, write_st;
  OnThreadWithSmallAltStack([&] {
    read_st = Guarded([&] { volatile uint8_t x = m.data()[0]; (void)x; });
    write_st = Guarded([&] { m.data()[8192] = 1; });
  });
  EXPECT_EQ(read_st.err(), ENODEV) << read_st.ToString();
  EXPECT_EQ(write_st.err(), ENODEV) << write_st.ToString();
}

// An alternate stack of kFaultStackNeed serves faults in the handler; what
// they use there (the measurement behind kFaultStackNeed) stays well below it.
TEST_F(DaxTest, FaultsServedOnAnAltStackFitInKFaultStackNeed) {
  auto pat = testutil::Pattern(256 * 1024, 5);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/src", pat));
  File src = Create("/src", 0);
  File f = Create("/a", 0);
  ASSERT_OK(f.Clone(src));
  ASSERT_OK(f.Truncate(1 * kMiB));
  ASSIGN_OR_FAIL(Mapping m, f.Map(0, 1 * kMiB, Prot::kReadWrite));
  Status st;
  size_t used = OnThreadWithAltStack(
      [&] {
        st = Guarded([&] {
          volatile uint8_t x = m.data()[800 * 1024];  // read fault on a hole
          (void)x;
          m.data()[512 * 1024] = 1;  // write fault into a hole: a transaction
          m.data()[4096] = 2;        // onto a shared block: copy-on-write
        });
      },
      kFaultStackNeed);
  ASSERT_OK(st);
  EXPECT_EQ(m.data()[4096], 2);
  printf("stack used by faults on a %zu KiB alternate stack: %zu KiB\n", kFaultStackNeed >> 10, used >> 10);
  EXPECT_GT(used, 4096u);  // they did run there (inline)
  EXPECT_LT(used, kFaultStackNeed / 2);
}

// The program's own SIGSEGV handler (SA_ONSTACK, installed before udax) still
// gets a real stack overflow, on its small alternate stack, in a thread whose
// udax faults were served meanwhile.
AltStack* g_alt = nullptr;
void OverflowHandler(int, siginfo_t*, void*) {
  _exit(g_alt && g_alt->Contains(__builtin_frame_address(0)) ? 0 : 5);
}
volatile bool g_recurse = true;  // (read at run time: no infinite-recursion warning)
[[gnu::noinline]] int Recurse(int depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(depth);
  return g_recurse ? Recurse(depth + 1) + pad[0] : 0;
}

TEST_F(DaxTest, ProgramsStackOverflowHandlerRunsOnItsAltStack) {
  EXPECT_EXIT(
      {
        struct sigaction sa = {};
        sa.sa_sigaction = OverflowHandler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigaction(SIGSEGV, &sa, nullptr);
        File f = Create("/b", 64 * 1024);
        auto m = f.Map(0, 64 * 1024, Prot::kReadWrite);
        if (!m.has_value()) _exit(2);
        AltStack alt(kSmallAltStack);
        g_alt = &alt;
        m->data()[0] = 1;  // served by udax (a transaction), not by OverflowHandler
        if (m->data()[0] != 1) _exit(3);
        Recurse(0);
        _exit(4);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace udax
