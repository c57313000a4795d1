// tests/failure_test.cc — device removal and memory failure (docs/failure.md):
// removal in the seed's order (refuse new work, drain, shut down, revoke every
// mapping, take the memory away), its errors, and poison on shared, unshared,
// free and metadata blocks with the outcome each must have, persistently.
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "fs/fs_impl.h"
#include "dax/memory_failure.h"
#include "space/rmap.h"
#include "test_util.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax {
namespace {

using testutil::kMiB;
using testutil::PagePerms;
using testutil::Pattern;
using testutil::TempDevice;

using Events = testutil::InvalidateLog;

class FailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(Filesystem::Mkfs(dev_.path(), MkfsOptions{.size = 64 * kMiB}));
    ASSIGN_OR_FAIL(fs_, Filesystem::Mount(dev_.path()));
  }
  // Unmounts (whatever state the fs is in), checks the image, mounts again.
  void Reattach() {
    ASSERT_OK(fs_->Unmount());
    fs_.reset();
    ASSIGN_OR_FAIL(auto rep, Fsck(dev_.path()));
    ASSERT_TRUE(rep.clean()) << testutil::JoinProblems(rep);
    last_fsck_ = rep;
    ASSIGN_OR_FAIL(fs_, Filesystem::Mount(dev_.path()));
  }
  File Open(const std::string& p, int flags = O_CREAT | O_RDWR) {
    auto f = fs_->Open(p, flags, 0644);
    EXPECT_TRUE(f.has_value()) << p << ": " << f.error().ToString();
    return f.has_value() ? std::move(*f) : File();
  }
  // Device byte offset of file block `fblk` of `f`.
  uint64_t DeviceOffset(File& f, uint64_t fblk) {
    auto ext = f.Fiemap();
    EXPECT_TRUE(ext.has_value());
    for (const auto& e : *ext)
      if (fblk * kBlockSize >= e.file_offset && fblk * kBlockSize < e.file_offset + e.length)
        return e.device_offset + (fblk * kBlockSize - e.file_offset);
    ADD_FAILURE() << "file block " << fblk << " is not mapped";
    return 0;
  }
  std::vector<media::RmapRec> Owners(uint64_t dev_off) {
    auto r = ImplOf(*fs_)->QueryRmap(dev_off / kBlockSize, 1);
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? *r : std::vector<media::RmapRec>{};
  }
  TempDevice dev_;
  std::unique_ptr<Filesystem> fs_;
  FsckReport last_fsck_;
};

// ---- removal ----------------------------------------------------------------

TEST_F(FailureTest, RemoveRevokesEveryMappingThenEveryOperationFails) {
  auto data = Pattern(256 * 1024, 7);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a");
  File b = Open("/b");
  ASSERT_OK(b.Pwrite(data.data(), 8192, 0));
  Events ev;
  ASSIGN_OR_FAIL(Mapping ma, a.Map(0, data.size(), Prot::kReadWrite));
  ASSIGN_OR_FAIL(Mapping mb, b.Map(0, 8192, Prot::kRead));
  ma.OnInvalidate(ev.Callback());
  mb.OnInvalidate(ev.Callback());
  ma.data()[10] = 0x5a;  // a committed store through DAX (MAP_SYNC: durable after Persist)
  ASSERT_OK(ma.Persist(ma.data() + 10, 1));
  EXPECT_EQ(mb.data()[0], data[0]);
  uint8_t* dev_base = ImplOf(*fs_)->device()->Range(0, 4096)->data();

  ASSERT_OK(fs_->RemoveDevice());

  auto got = ev.Take();
  ASSERT_EQ(got.size(), 2u);
  for (const auto& e : got) {
    EXPECT_EQ(e.why, InvalidateReason::kRemoved);
    EXPECT_EQ(e.off, 0u);
    EXPECT_EQ(e.len, e.ino == a.ino() ? data.size() : 8192u);
  }
  // The device memory is really gone (stale pointers fault), and so is every mapped page.
  EXPECT_EQ(PagePerms(dev_base), "---p");
  EXPECT_EQ(PagePerms(ma.data()), "---p");
  Status st = Guarded([&] { volatile uint8_t x = ma.data()[0]; (void)x; });
  EXPECT_EQ(st.err(), ENODEV) << st.ToString();
  st = Guarded([&] { volatile uint8_t x = mb.data()[4096]; (void)x; });
  EXPECT_EQ(st.err(), ENODEV) << st.ToString();
  st = Guarded([&] { ma.data()[100] = 1; });
  EXPECT_EQ(st.err(), ENODEV) << st.ToString();
  // Every later operation: ENODEV, the documented message.
  auto o = fs_->Open("/a", O_RDONLY);
  ASSERT_FALSE(o.has_value());
  EXPECT_EQ(o.error().err(), ENODEV);
  EXPECT_NE(o.error().message().find("filesystem shut down: device removed"), std::string::npos) << o.error().ToString();
  uint8_t buf[16];
  EXPECT_ERRNO(a.Pread(buf, sizeof buf, 0), ENODEV);
  EXPECT_ERRNO(a.Pwrite(buf, sizeof buf, 0), ENODEV);
  EXPECT_ERRNO(a.Map(0, 4096, Prot::kRead), ENODEV);
  EXPECT_ERRNO(a.Fsync(), ENODEV);
  EXPECT_ERRNO(fs_->Mkdir("/d"), ENODEV);
  EXPECT_ERRNO(fs_->GetStatFs(), ENODEV);
  EXPECT_ERRNO(ma.Persist(ma.data(), 1), ENODEV);
  Status poison = fs_->InjectPoison(0, 4096);
  EXPECT_EQ(poison.err(), ENODEV);
  EXPECT_NE(poison.message().find("filesystem shut down: device removed"), std::string::npos) << poison.ToString();
  // Removing twice is a clear error; unmount succeeds; then removal has nothing to remove.
  EXPECT_ERRNO(fs_->RemoveDevice(), ENODEV);
  EXPECT_OK(ma.Unmap());
  EXPECT_OK(a.Close());
  EXPECT_OK(fs_->Unmount());
  EXPECT_ERRNO(fs_->RemoveDevice(), ENODEV);
  mb = Mapping();
  b = File();
  fs_.reset();

  // Re-attach: everything committed before the removal is there.
  ASSIGN_OR_FAIL(auto rep, Fsck(dev_.path()));
  EXPECT_TRUE(rep.clean()) << testutil::JoinProblems(rep);
  ASSIGN_OR_FAIL(fs_, Filesystem::Mount(dev_.path()));
  auto want = data;
  want[10] = 0x5a;
  ASSIGN_OR_FAIL(auto now, testutil::ReadWhole(*fs_, "/a"));
  EXPECT_EQ(now, want);
}

TEST_F(FailureTest, StaleAccessAfterRemovalFaultsInsteadOfReadingOldMemory) {
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", Pattern(8192, 1)));
  File a = Open("/a");
  ASSIGN_OR_FAIL(Mapping m, a.Map(0, 8192, Prot::kRead));
  volatile uint8_t first = m.data()[0];
  (void)first;
  const uint8_t* dev_base = ImplOf(*fs_)->device()->Range(0, 4096)->data();
  ASSERT_OK(fs_->RemoveDevice());
  // Outside Guarded the program gets the kernel's SIGBUS on its mapping...
  EXPECT_EXIT({ volatile uint8_t x = m.data()[0]; (void)x; }, ::testing::KilledBySignal(SIGBUS), "");
  // ...and memory udax itself used is gone: a stale pointer crashes.
  EXPECT_EXIT({ volatile uint8_t x = dev_base[0]; (void)x; }, ::testing::KilledBySignal(SIGSEGV), "");
}

TEST_F(FailureTest, RemovalWaitsForOperationsInFlightWithinItsBound) {
  PmemDevice* dev = ImplOf(*fs_)->device();
  std::optional<DeviceRef> held;
  std::thread op([&] {
    auto r = dev->TryRef();  // an operation in progress
    ASSERT_TRUE(r.has_value());
    held.emplace(std::move(*r));
  });
  op.join();
  // The reference belongs to "another thread": the removal waits its bound and says so.
  Status st = dev->Remove(/*drain_timeout_ms=*/50);
  EXPECT_EQ(st.err(), ETIMEDOUT) << st.ToString();
  EXPECT_EQ(dev->state(), DeviceState::kDying);
  EXPECT_ERRNO(fs_->Mkdir("/x"), ENODEV);  // new work is refused meanwhile
  held.reset();                            // the operation ends
  EXPECT_OK(dev->Remove(50));              // a second call completes the removal
  EXPECT_EQ(dev->state(), DeviceState::kDead);
}

TEST_F(FailureTest, RemoveFromInsideAnOperationIsRefused) {
  PmemDevice* dev = ImplOf(*fs_)->device();
  ASSIGN_OR_FAIL(DeviceRef ref, dev->TryRef());
  EXPECT_ERRNO(dev->Remove(), EDEADLK);
  ref.Release();
  EXPECT_EQ(dev->state(), DeviceState::kLive);
  EXPECT_OK(fs_->Mkdir("/still-works"));
}

// ---- memory failure -----------------------------------------------------------

TEST_F(FailureTest, PoisonOnASharedBlockTellsEverySharerAndReadsGiveEio) {
  auto data = Pattern(64 * 1024, 3);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a");
  File b = Open("/b");
  ASSERT_OK(b.Clone(a));
  Events ev;
  ASSIGN_OR_FAIL(Mapping ma, a.Map(0, data.size(), Prot::kReadWrite));
  ASSIGN_OR_FAIL(Mapping mb, b.Map(0, data.size(), Prot::kRead));
  ma.OnInvalidate(ev.Callback());
  mb.OnInvalidate(ev.Callback());
  EXPECT_EQ(ma.data()[5 * 4096], data[5 * 4096]);
  EXPECT_EQ(mb.data()[5 * 4096], data[5 * 4096]);
  uint64_t bad = DeviceOffset(a, 5);
  ASSERT_EQ(bad, DeviceOffset(b, 5));

  ASSERT_OK(fs_->InjectPoison(bad, 4096));

  auto got = ev.Take();
  ASSERT_EQ(got.size(), 2u);
  std::set<uint64_t> told;
  for (const auto& e : got) {
    EXPECT_EQ(e.why, InvalidateReason::kMemoryFailure);
    EXPECT_EQ(e.off, 5 * 4096u);
    EXPECT_EQ(e.len, 4096u);
    told.insert(e.ino);
  }
  EXPECT_EQ(told, (std::set<uint64_t>{a.ino(), b.ino()}));
  // read() of the range: EIO; a read that starts before it stops short.
  std::vector<uint8_t> buf(8192);
  EXPECT_ERRNO(a.Pread(buf.data(), 4096, 5 * 4096), EIO);
  EXPECT_ERRNO(b.Pread(buf.data(), 100, 5 * 4096 + 7), EIO);
  ASSIGN_OR_FAIL(size_t n, a.Pread(buf.data(), 8192, 4 * 4096));
  EXPECT_EQ(n, 4096u);
  // DAX: the page is an error inside Guarded; every other page still works.
  Status st = Guarded([&] { volatile uint8_t x = ma.data()[5 * 4096 + 1]; (void)x; });
  EXPECT_EQ(st.err(), EIO) << st.ToString();
  EXPECT_EQ(ma.data()[4 * 4096], data[4 * 4096]);
  EXPECT_EQ(mb.data()[6 * 4096], data[6 * 4096]);
  ma.data()[0] = 0x77;  // a store elsewhere: copy-on-write as usual
  EXPECT_EQ(mb.data()[0], data[0]);
  // A partial overwrite cannot replace a failed block; a whole-block one can.
  EXPECT_ERRNO(a.Pwrite(buf.data(), 10, 5 * 4096), EIO);
  auto fresh = Pattern(4096, 99);
  ASSERT_OK(a.Pwrite(fresh.data(), 4096, 5 * 4096));
  ASSIGN_OR_FAIL(n, a.Pread(buf.data(), 4096, 5 * 4096));
  EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + 4096), fresh);
  EXPECT_NE(DeviceOffset(a, 5), bad);
  EXPECT_ERRNO(b.Pread(buf.data(), 4096, 5 * 4096), EIO);  // b still holds the failed block
  ASSIGN_OR_FAIL(auto list, fs_->BadBlocks());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0], std::make_pair(bad, uint64_t{4096}));

  // Persistent: after remount the block is still listed and still refused.
  ma = Mapping();
  mb = Mapping();
  a = File();
  b = File();
  Reattach();
  EXPECT_EQ(last_fsck_.bad_blocks, 1u);
  b = Open("/b");
  EXPECT_ERRNO(b.Pread(buf.data(), 4096, 5 * 4096), EIO);
  ASSIGN_OR_FAIL(list, fs_->BadBlocks());
  EXPECT_EQ(list.size(), 1u);
  // Punching it gives b a hole; nobody holds the block any more: it is retired, never free.
  ASSERT_OK(b.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5 * 4096, 4096));
  ASSIGN_OR_FAIL(n, b.Pread(buf.data(), 4096, 5 * 4096));
  EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + 4096), std::vector<uint8_t>(4096, 0));
  auto owners = Owners(bad);
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(owners[0].owner, media::kOwnBad);
  b = File();
  Reattach();
  EXPECT_EQ(last_fsck_.bad_blocks, 1u);
}

TEST_F(FailureTest, PoisonOnAnUnsharedBlockTellsOnlyItsFile) {
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", Pattern(16384, 1)));
  ASSERT_OK(testutil::WriteWhole(*fs_, "/c", Pattern(16384, 2)));
  File a = Open("/a"), c = Open("/c");
  Events ev;
  ASSIGN_OR_FAIL(Mapping ma, a.Map(0, 16384, Prot::kRead));
  ASSIGN_OR_FAIL(Mapping mc, c.Map(0, 16384, Prot::kRead));
  ma.OnInvalidate(ev.Callback());
  mc.OnInvalidate(ev.Callback());
  ASSERT_OK(fs_->InjectPoison(DeviceOffset(a, 2), 4096));
  auto got = ev.Take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ino, a.ino());
  EXPECT_EQ(got[0].off, 2 * 4096u);
  EXPECT_EQ(got[0].why, InvalidateReason::kMemoryFailure);
  ASSIGN_OR_FAIL(auto cdata, testutil::ReadWhole(*fs_, "/c"));
  EXPECT_EQ(cdata, Pattern(16384, 2));
  // Deleting the file retires the block instead of freeing it.
  uint64_t bad = DeviceOffset(a, 2);
  ma = Mapping();
  a = File();
  ASSERT_OK(fs_->Unlink("/a"));
  auto owners = Owners(bad);
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(owners[0].owner, media::kOwnBad);
  mc = Mapping();
  c = File();
  Reattach();
}

// Sync (Persist) holds a device reference while it flushes; a fault in the
// flush (a failed block, a page past EOF) inside the caller's Guarded used to
// jump past its release: the reference leaked, and removal then waited for
// it until its timeout (found by the device's reference-count contract).
TEST_F(FailureTest, SyncThatFaultsInsideGuardedReleasesItsDeviceReference) {
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", Pattern(16384, 1)));
  File a = Open("/a");
  ASSIGN_OR_FAIL(Mapping m, a.Map(0, 16384, Prot::kReadWrite));
  ASSERT_OK(fs_->InjectPoison(DeviceOffset(a, 2), 4096));
  Status st = Guarded([&] { EXPECT_ERRNO(m.Sync(), EIO); });
  EXPECT_OK(st);
  EXPECT_EQ(PmemDevice::thread_refs(), 0);
  // The same past EOF.
  ASSIGN_OR_FAIL(Mapping past, a.Map(0, 16384, Prot::kReadWrite));
  ASSERT_OK(a.Truncate(4096));
  st = Guarded([&] { EXPECT_ERRNO(past.Sync(), EFAULT); });
  EXPECT_OK(st);
  EXPECT_EQ(PmemDevice::thread_refs(), 0);
  EXPECT_OK(ImplOf(*fs_)->device()->Remove(/*drain_timeout_ms=*/50)) << "no reference is left behind";
}

// Pread reuses an open inode's last extent (Inode::last_ext): replacing a
// failed block by a whole-block overwrite changes the extent map, and the
// next read through the same handle must see the new block, not EIO.
TEST_F(FailureTest, ReadAfterReplacingAFailedBlockSeesTheNewBlock) {
  const auto data = Pattern(16 * 4096, 1);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a");
  std::vector<uint8_t> got(4096);
  ASSERT_OK(a.Pread(got.data(), 4096, 3 * 4096));  // caches a's extent
  uint64_t bad = DeviceOffset(a, 3);
  ASSERT_OK(fs_->InjectPoison(bad, 4096));
  EXPECT_ERRNO(a.Pread(got.data(), 4096, 3 * 4096), EIO);
  auto x = Pattern(4096, 2);
  ASSERT_OK(a.Pwrite(x.data(), 4096, 3 * 4096));
  EXPECT_NE(DeviceOffset(a, 3), bad);
  ASSERT_OK(a.Pread(got.data(), 4096, 3 * 4096));
  EXPECT_EQ(got, x);
  ASSERT_OK(a.Pread(got.data(), 4096, 2 * 4096));
  EXPECT_EQ(got, std::vector<uint8_t>(data.begin() + 2 * 4096, data.begin() + 3 * 4096));
  a = File();
  Reattach();
}

TEST_F(FailureTest, PoisonOnAFreeBlockRetiresItSilentlyForGood) {
  ASSIGN_OR_FAIL(StatFs before, fs_->GetStatFs());
  // A free block well inside the data area (the fs is empty).
  uint64_t blk = ImplOf(*fs_)->total_blocks() - 100;
  ASSERT_TRUE(Owners(blk * kBlockSize).empty());
  ASSERT_OK(fs_->InjectPoison(blk * kBlockSize, 4096));
  auto owners = Owners(blk * kBlockSize);
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(owners[0].owner, media::kOwnBad);
  ASSIGN_OR_FAIL(StatFs after, fs_->GetStatFs());
  EXPECT_EQ(after.free_blocks, before.free_blocks - 1);
  Reattach();
  // Fill the device: the block is never handed out.
  File f = Open("/fill");
  auto chunk = Pattern(1 * kMiB, 5);
  uint64_t off = 0;
  while (true) {
    auto n = f.Pwrite(chunk.data(), chunk.size(), off);
    if (!n.has_value()) {
      EXPECT_EQ(n.error().err(), ENOSPC);
      break;
    }
    off += *n;
  }
  ASSIGN_OR_FAIL(auto ext, f.Fiemap());
  for (const auto& e : ext)
    EXPECT_FALSE(blk * kBlockSize >= e.device_offset && blk * kBlockSize < e.device_offset + e.length);
  f = File();
  Reattach();
  EXPECT_EQ(last_fsck_.bad_blocks, 1u);
}

TEST_F(FailureTest, PoisonOnMetadataShutsTheFilesystemDown) {
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", Pattern(8192, 1)));
  File a = Open("/a");
  Events ev;
  ASSIGN_OR_FAIL(Mapping m, a.Map(0, 8192, Prot::kRead));
  m.OnInvalidate(ev.Callback());
  // The root block (metadata owner "static").
  ASSERT_OK(fs_->InjectPoison(media::kRootBlockNo * kBlockSize, 4096));
  auto got = ev.Take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].why, InvalidateReason::kMemoryFailure);
  auto o = fs_->Open("/a", O_RDONLY);
  ASSERT_FALSE(o.has_value());
  EXPECT_EQ(o.error().err(), EIO);
  EXPECT_NE(o.error().message().find("filesystem shut down: memory failure in metadata block"), std::string::npos)
      << o.error().ToString();
  uint8_t buf[8];
  EXPECT_ERRNO(a.Pwrite(buf, 8, 0), EIO);  // no further writes
  m = Mapping();
  a = File();
  // The emulated memory is healthy again once re-attached: recovery mounts it.
  Reattach();
  ASSIGN_OR_FAIL(auto back, testutil::ReadWhole(*fs_, "/a"));
  EXPECT_EQ(back, Pattern(8192, 1));
}

TEST_F(FailureTest, PoisonOnAJournalBlockShutsDownAndRemountRecovers) {
  ASSERT_OK(fs_->Mkdir("/d"));
  ASSERT_OK(fs_->InjectPoison(media::kLogStart * kBlockSize, 4096));
  EXPECT_ERRNO(fs_->Mkdir("/e"), EIO);
  Reattach();
  ASSIGN_OR_FAIL(Stat st, fs_->GetStat("/d"));
  EXPECT_TRUE(S_ISDIR(st.mode));
}

// What the kernel does on a machine check in device memory: SIGBUS with
// BUS_MCEERR_AR (the access hit it) or BUS_MCEERR_AO (found by a scrubber).
// Sent here to ourselves with that si_code and address (allowed within one
// process), it takes the same path a real one would.
void RaiseMemoryFailure(const void* addr, int code) {
  siginfo_t si = {};
  si.si_signo = SIGBUS;
  si.si_code = code;
  si.si_addr = const_cast<void*>(addr);
  syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGBUS, &si);
}

TEST_F(FailureTest, MachineCheckSigbusIsRoutedLikeInjectedPoison) {
  auto data = Pattern(32768, 4);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a"), b = Open("/b");
  ASSERT_OK(b.Clone(a));
  Events ev;
  ASSIGN_OR_FAIL(Mapping ma, a.Map(0, data.size(), Prot::kRead));
  ASSIGN_OR_FAIL(Mapping mb, b.Map(0, data.size(), Prot::kRead));
  ma.OnInvalidate(ev.Callback());
  mb.OnInvalidate(ev.Callback());
  EXPECT_EQ(ma.data()[3 * 4096], data[3 * 4096]);
  uint64_t bad = DeviceOffset(a, 3);
  // Action required, inside Guarded: the access fails with EIO...
  Status st = Guarded([&] { RaiseMemoryFailure(ma.data() + 3 * 4096 + 12, BUS_MCEERR_AR); });
  EXPECT_EQ(st.err(), EIO) << st.ToString();
  // ...and the routing thread tells both sharers, through the rmap.
  ASSERT_TRUE(WaitMemoryFailureRouted(5000));
  auto got = ev.Take();
  ASSERT_EQ(got.size(), 2u);
  for (const auto& e : got) {
    EXPECT_EQ(e.why, InvalidateReason::kMemoryFailure);
    EXPECT_EQ(e.off, 3 * 4096u);
  }
  ASSIGN_OR_FAIL(auto list, fs_->BadBlocks());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].first, bad);
  // Action optional (the program was not touching it): routed, the program runs on.
  RaiseMemoryFailure(mb.data() + 6 * 4096, BUS_MCEERR_AO);
  ASSERT_TRUE(WaitMemoryFailureRouted(5000));
  got = ev.Take();
  EXPECT_EQ(got.size(), 2u);
  ASSIGN_OR_FAIL(list, fs_->BadBlocks());
  EXPECT_EQ(list.size(), 2u);
  uint8_t buf[8];
  EXPECT_ERRNO(a.Pread(buf, 8, 6 * 4096), EIO);
  EXPECT_EQ(ma.data()[4 * 4096], data[4 * 4096]);
}

// Poison arriving while other threads read and write the same blocks through
// write()/read(): they finish or get EIO — the emulated memory is taken away
// only once no operation is inside it (never a crash).
TEST_F(FailureTest, ConcurrentReadersAndWritersSurvivePoisonOfTheirBlocks) {
  constexpr uint64_t kBlocks = 64;
  auto data = Pattern(kBlocks * 4096, 6);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a");
  std::vector<uint64_t> dev(kBlocks);
  for (uint64_t b = 0; b < kBlocks; b++) dev[b] = DeviceOffset(a, b);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0}, eio{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> buf(4096);
      for (uint64_t i = 0; !stop.load(); i++) {
        uint64_t b = (i * 7 + t) % kBlocks;
        Status st = (t == 0) ? a.Pwrite(data.data() + b * 4096, 4096, b * 4096).status()
                             : a.Pread(buf.data(), 4096, b * 4096).status();
        (st.ok() ? ok : st.err() == EIO ? eio : other)++;
      }
    });
  }
  for (uint64_t b = 1; b < kBlocks; b += 4) {
    ASSERT_OK(fs_->InjectPoison(dev[b], 4096));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_GT(ok.load(), 0u);
  EXPECT_GT(eio.load(), 0u);
  EXPECT_EQ(other.load(), 0u);
  // Each failed block reads EIO — unless the writer's whole-block overwrite
  // gave the file a fresh one, which then holds what it wrote.
  std::vector<uint8_t> buf(4096);
  for (uint64_t b = 1; b < kBlocks; b += 4) {
    auto r = a.Pread(buf.data(), 4096, b * 4096);
    if (r.has_value()) {
      EXPECT_NE(DeviceOffset(a, b), dev[b]) << "block " << b << " reads from failed memory";
      EXPECT_TRUE(std::equal(buf.begin(), buf.end(), data.begin() + b * 4096)) << "block " << b;
    } else {
      EXPECT_EQ(r.error().err(), EIO) << r.error().ToString();
    }
  }
  ASSIGN_OR_FAIL(auto list, fs_->BadBlocks());
  uint64_t listed = 0;
  for (auto [off, len] : list) listed += len / 4096;
  EXPECT_EQ(listed, kBlocks / 4);
}

TEST_F(FailureTest, BadPoisonRangesAreClearErrors) {
  uint64_t size = ImplOf(*fs_)->device()->size();
  EXPECT_ERRNO(fs_->InjectPoison(size, 4096), EINVAL);         // past the end
  EXPECT_ERRNO(fs_->InjectPoison(size - 4096, 8192), EINVAL);  // runs past the end
  EXPECT_ERRNO(fs_->InjectPoison(100, 4096), EINVAL);          // unaligned offset
  EXPECT_ERRNO(fs_->InjectPoison(8192, 100), EINVAL);          // unaligned length
  EXPECT_ERRNO(fs_->InjectPoison(8192, 0), EINVAL);            // empty
  ASSIGN_OR_FAIL(auto list, fs_->BadBlocks());
  EXPECT_TRUE(list.empty());
  EXPECT_OK(fs_->Mkdir("/fine"));
}

}  // namespace
}  // namespace udax
