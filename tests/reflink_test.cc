// tests/reflink_test.cc — reflink (clone/dedupe), copy-on-write through
// write() and through DAX mappings, rmap/refcount exactness (fsck cross-
// checks after every step), errors as Linux gives them, and atomicity of a
// clone at every crash point.
#include <fcntl.h>
#include <linux/falloc.h>

#include <set>
#include <thread>

#include "fs/fs_impl.h"
#include "test_util.h"
#include "testing/crash_recorder.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax {
namespace {

using testutil::kMiB;
using testutil::Pattern;
using testutil::TempDevice;

class ReflinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(Filesystem::Mkfs(dev_.path(), MkfsOptions{.size = 64 * kMiB}));
    Remount(false);
  }
  void Remount(bool unmount_first = true) {
    if (unmount_first) {
      ASSERT_OK(fs_->Unmount());
      fs_.reset();
      ASSIGN_OR_FAIL(auto rep, Fsck(dev_.path()));
      ASSERT_TRUE(rep.clean()) << testutil::JoinProblems(rep);
    }
    ASSIGN_OR_FAIL(fs_, Filesystem::Mount(dev_.path()));
  }
  File Open(const std::string& p, int flags = O_CREAT | O_RDWR) {
    auto f = fs_->Open(p, flags, 0644);
    EXPECT_TRUE(f.has_value()) << p;
    return std::move(*f);
  }
  std::vector<uint8_t> Read(const std::string& p) {
    auto r = testutil::ReadWhole(*fs_, p);
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? *r : std::vector<uint8_t>{};
  }
  uint64_t FreeBlocks() { return fs_->GetStatFs()->free_blocks; }
  // Free blocks in the free-space trees plus the node free list (statfs
  // leaves the free list out; it floats between its marks).
  uint64_t AllFree() {
    Transaction tx(ImplOf(*fs_)->journal(), true);
    auto rb = tx.Read(media::kRootBlockNo, media::kRootMagic);
    EXPECT_TRUE(rb.has_value());
    const auto* root = reinterpret_cast<const media::RootBlock*>(*rb);
    return root->free_blocks + root->freelist_count;
  }
  TempDevice dev_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_F(ReflinkTest, CloneSharesBlocksAndCowKeepsTheOtherFileIntact) {
  auto data = Pattern(1 * kMiB, 1);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  uint64_t free_before = FreeBlocks();
  {
    File a = Open("/a", O_RDWR), b = Open("/b");
    ASSERT_OK(b.Clone(a));
    EXPECT_EQ(FreeBlocks(), free_before);  // no data copied
    ASSIGN_OR_FAIL(auto ext, b.Fiemap());
    ASSERT_FALSE(ext.empty());
    for (auto& e : ext) EXPECT_TRUE(e.flags & kExtentShared);
    // Overwrite 10 bytes in the middle of b: one block is copied.
    std::vector<uint8_t> w(10, 0xee);
    ASSERT_OK(b.Pwrite(w.data(), w.size(), 300000));
    EXPECT_EQ(FreeBlocks(), free_before - 1);
  }
  EXPECT_EQ(Read("/a"), data);
  auto want = data;
  std::fill(want.begin() + 300000, want.begin() + 300010, 0xee);
  EXPECT_EQ(Read("/b"), want);
  Remount();
  EXPECT_EQ(Read("/a"), data);
  EXPECT_EQ(Read("/b"), want);
}

// Pread/Pwrite reuse an open inode's last extent (Inode::last_ext). A clone
// over the cached range and a copy-on-write of a cached shared block both
// change the extent map: the handle must then read and write the new blocks.
TEST_F(ReflinkTest, CachedExtentFollowsCloneAndCow) {
  constexpr uint64_t kB = kBlockSize, n = 32;
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", Pattern(n * kB, 1)));
  auto cdata = Pattern(n * kB, 2);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/c", cdata));
  File a = Open("/a", O_RDWR), c = Open("/c", O_RDWR);
  auto read_a = [&](uint64_t blk) {
    std::vector<uint8_t> got(kB);
    auto r = a.Pread(got.data(), kB, blk * kB);
    EXPECT_TRUE(r.has_value() && *r == kB);
    return got;
  };
  auto block_of = [&](const std::vector<uint8_t>& v, uint64_t blk) {
    return std::vector<uint8_t>(v.begin() + blk * kB, v.begin() + (blk + 1) * kB);
  };
  // Warm the cache with an overwrite and a read (a shares nothing yet).
  auto x = Pattern(kB, 3);
  ASSERT_OK(a.Pwrite(x.data(), kB, 4 * kB));
  EXPECT_EQ(read_a(4), x);
  // Clone /c over all of /a: a's old blocks are freed; reads see c's bytes.
  ASSERT_OK(a.CloneRange(c, 0, n * kB, 0));
  EXPECT_EQ(read_a(4), block_of(cdata, 4)) << "read a block the clone replaced";
  // A write copies the shared block; the next read must see the copy, and /c
  // keeps its bytes.
  EXPECT_EQ(read_a(7), block_of(cdata, 7));  // caches the shared extent
  auto y = Pattern(kB, 4);
  ASSERT_OK(a.Pwrite(y.data(), kB, 7 * kB));
  EXPECT_EQ(read_a(7), y) << "read the shared block instead of the copy";
  ASSERT_OK(a.Pwrite(y.data(), kB, 8 * kB));
  EXPECT_EQ(read_a(8), y);
  EXPECT_EQ(Read("/c"), cdata);
  auto want = cdata;
  std::copy(y.begin(), y.end(), want.begin() + 7 * kB);
  std::copy(y.begin(), y.end(), want.begin() + 8 * kB);
  a = File();
  c = File();
  EXPECT_EQ(Read("/a"), want);
  Remount();
  EXPECT_EQ(Read("/a"), want);
  EXPECT_EQ(Read("/c"), cdata);
}

TEST_F(ReflinkTest, RmapListsEveryOwnerOfASharedBlock) {
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", Pattern(64 * 1024, 2)));
  File a = Open("/a", O_RDWR), b = Open("/b"), c = Open("/c");
  ASSERT_OK(b.Clone(a));
  ASSERT_OK(c.CloneRange(a, 16384, 8192, 4096));
  ASSIGN_OR_FAIL(auto ext, a.Fiemap());
  uint64_t blk = (ext[0].device_offset + 16384) / 4096;
  ASSIGN_OR_FAIL(auto owners, ImplOf(*fs_)->QueryRmap(blk, 1));
  std::set<uint64_t> inos;
  for (auto& r : owners) inos.insert(r.owner);
  EXPECT_EQ(inos, (std::set<uint64_t>{a.ino(), b.ino(), c.ino()}));
  // A metadata block has a metadata owner.
  ASSIGN_OR_FAIL(auto meta, ImplOf(*fs_)->QueryRmap(0, 1));
  ASSERT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta[0].owner, media::kOwnStatic);
}

TEST_F(ReflinkTest, UnlinkInAnyOrderReturnsAllSpace) {
  for (int order = 0; order < 2; order++) {
    ASSERT_OK(testutil::GiveRootItsLeaf(*fs_));
    uint64_t free0 = AllFree();
    ASSERT_OK(testutil::WriteWhole(*fs_, "/a", Pattern(512 * 1024, 3)));
    {
      File a = Open("/a", O_RDWR), b = Open("/b");
      ASSERT_OK(b.Clone(a));
      std::vector<uint8_t> w(8192, 1);
      ASSERT_OK(b.Pwrite(w.data(), w.size(), 4096));  // CoW 2 blocks
      ASSERT_OK(a.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 65536));
    }
    ASSERT_OK(fs_->Unlink(order ? "/a" : "/b"));
    Remount();
    ASSERT_OK(fs_->Unlink(order ? "/b" : "/a"));
    Remount();
    // Free trees + node free list together: exactly what we started with.
    EXPECT_EQ(AllFree(), free0);
  }
}

// Found by the differential test: a dedupe over terabytes of holes compared
// them a block at a time (hours). Holes on both sides are equal unread.
TEST_F(ReflinkTest, DedupeOverAHugeSparseRangeCostsItsExtentsNotItsLength) {
  constexpr uint64_t kHuge = 16ull << 40;  // 16 TiB, almost all holes
  auto data = Pattern(8192, 4);
  File a = Open("/a"), b = Open("/b");
  for (File* f : {&a, &b}) {
    ASSERT_OK(f->Pwrite(data.data(), data.size(), 0));
    ASSERT_OK(f->Pwrite(data.data(), data.size(), kHuge / 2));
    ASSERT_OK(f->Truncate(kHuge));
  }
  ASSIGN_OR_FAIL(uint64_t n, b.DedupeRange(a, 0, kHuge, 0));
  EXPECT_EQ(n, kHuge);
  ASSIGN_OR_FAIL(auto ext, b.Fiemap());
  for (const auto& e : ext) EXPECT_TRUE(e.flags & kExtentShared) << e.file_offset;
  // A difference far inside the holes is still found.
  uint8_t x = 1;
  ASSERT_OK(b.Pwrite(&x, 1, kHuge / 4));
  EXPECT_ERRNO(b.DedupeRange(a, 0, kHuge, 0), EBADE);
}

// Found by the differential test: punching (or zeroing) a range whose head
// block is private and whose tail block is shared, on a full device, zeroed
// the head in place and then failed to copy the tail (ENOSPC): the error said
// nothing happened, but the head was gone. Now both edges are made private
// before any byte is zeroed.
TEST_F(ReflinkTest, PunchOrZeroThatCannotCopyItsSharedTailChangesNothing) {
  auto data = Pattern(3 * 4096, 8);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a", O_RDWR), b = Open("/b");
  ASSERT_OK(b.Clone(a));
  ASSERT_OK(a.Pwrite(data.data(), 4096, 0));  // block 0 private again, blocks 1-2 shared
  File fill = Open("/fill");
  auto chunk = Pattern(1 * kMiB, 2);
  for (uint64_t off = 0;; off += chunk.size()) {
    auto n = fill.Pwrite(chunk.data(), chunk.size(), off);
    if (!n.has_value() || *n < chunk.size()) break;
  }
  for (int mode : {FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE}) {
    SCOPED_TRACE(mode);
    EXPECT_ERRNO(a.Fallocate(mode, 100, 2 * 4096), ENOSPC);
    EXPECT_EQ(Read("/a"), data) << "a failed operation changed the file";
  }
  EXPECT_EQ(Read("/b"), data);
}

TEST_F(ReflinkTest, DedupeSharesEqualRangesOnly) {
  auto data = Pattern(128 * 1024, 4);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  ASSERT_OK(testutil::WriteWhole(*fs_, "/b", data));
  uint64_t free0 = FreeBlocks();
  File a = Open("/a", O_RDWR), b = Open("/b", O_RDWR);
  ASSIGN_OR_FAIL(uint64_t n, b.DedupeRange(a, 0, 128 * 1024, 0));
  EXPECT_EQ(n, 128 * 1024u);
  EXPECT_EQ(FreeBlocks(), free0 + 32);
  std::vector<uint8_t> w(1, 9);
  ASSERT_OK(b.Pwrite(w.data(), 1, 0));
  EXPECT_ERRNO(b.DedupeRange(a, 0, 4096, 0), EBADE);
  EXPECT_EQ(Read("/a"), data);
}

TEST_F(ReflinkTest, ErrorsAsLinux) {
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", Pattern(10000, 5)));
  File a = Open("/a", O_RDWR), b = Open("/b");
  EXPECT_ERRNO(b.CloneRange(a, 100, 4096, 0), EINVAL);     // misaligned source
  EXPECT_ERRNO(b.CloneRange(a, 0, 4096, 100), EINVAL);     // misaligned destination
  EXPECT_ERRNO(b.CloneRange(a, 0, 100, 0), EINVAL);        // misaligned length, not to EOF
  EXPECT_ERRNO(b.CloneRange(a, 8192, 8192, 0), EINVAL);    // past EOF
  EXPECT_ERRNO(a.CloneRange(a, 0, 8192, 4096), EINVAL);    // overlap in one file
  EXPECT_OK(b.CloneRange(a, 8192, 0, 0));                  // to EOF, unaligned tail
  ASSIGN_OR_FAIL(auto st, b.GetStat());
  EXPECT_EQ(st.size, 10000u - 8192);
  EXPECT_OK(a.CloneRange(a, 0, 4096, 12288));              // same file, no overlap
  ASSIGN_OR_FAIL(st, a.GetStat());
  EXPECT_EQ(st.size, 16384u);
  ASSERT_OK(fs_->Mkdir("/d"));
  File d = Open("/d", O_RDONLY);
  EXPECT_ERRNO(d.CloneRange(a, 0, 4096, 0), EISDIR);
  File ro = Open("/a", O_RDONLY);
  EXPECT_ERRNO(ro.CloneRange(a, 0, 4096, 0), EBADF);
  TempDevice other;
  ASSERT_OK(Filesystem::Mkfs(other.path(), MkfsOptions{.size = 16 * kMiB}));
  ASSIGN_OR_FAIL(auto ofs, Filesystem::Mount(other.path()));
  ASSIGN_OR_FAIL(File x, ofs->Open("/x", O_CREAT | O_RDWR));
  EXPECT_ERRNO(x.CloneRange(a, 0, 4096, 0), EXDEV);
}

TEST_F(ReflinkTest, DaxStoreIntoSharedBlockCopiesAndOthersKeepOldBytes) {
  auto data = Pattern(256 * 1024, 6);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a", O_RDWR), b = Open("/b");
  ASSERT_OK(b.Clone(a));
  ASSIGN_OR_FAIL(Mapping ma, a.Map(0, 256 * 1024, Prot::kReadWrite));
  ASSIGN_OR_FAIL(Mapping mb, b.Map(0, 256 * 1024, Prot::kReadWrite));
  std::vector<InvalidateReason> reasons;
  mb.OnInvalidate([&](uint64_t, uint64_t, uint64_t, InvalidateReason r) { reasons.push_back(r); });
  EXPECT_EQ(mb.data()[5000], data[5000]);  // read through the shared block
  mb.data()[5000] = static_cast<uint8_t>(data[5000] + 1);  // store: CoW
  EXPECT_EQ(ma.data()[5000], data[5000]);  // the other sharer sees the old byte
  EXPECT_EQ(mb.data()[5000], static_cast<uint8_t>(data[5000] + 1));
  EXPECT_EQ(mb.data()[5001], data[5001]);  // the rest of the block was copied
  ASSERT_FALSE(reasons.empty());
  EXPECT_EQ(reasons[0], InvalidateReason::kCopyOnWrite);
  ma = Mapping();
  mb = Mapping();
  EXPECT_EQ(Read("/a"), data);
}

TEST_F(ReflinkTest, ThreadsStoringIntoOneSharedPageMakeOneCopy) {
  auto data = Pattern(64 * 1024, 7);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a", O_RDWR), b = Open("/b");
  ASSERT_OK(b.Clone(a));
  uint64_t free0 = FreeBlocks();
  ASSIGN_OR_FAIL(Mapping mb, b.Map(0, 64 * 1024, Prot::kReadWrite));
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++)
    threads.emplace_back([&, t] { mb.data()[100 + t] = static_cast<uint8_t>(0xa0 + t); });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; t++) EXPECT_EQ(mb.data()[100 + t], 0xa0 + t);  // no lost store
  // Exactly one copy of the 64 KiB CoW window.
  EXPECT_EQ(free0 - FreeBlocks(), 16u);
  mb = Mapping();
  EXPECT_EQ(Read("/a"), data);
}

TEST_F(ReflinkTest, EnospcDuringCowFailsCleanly) {
  auto data = Pattern(4 * kMiB, 8);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  File a = Open("/a", O_RDWR), b = Open("/b");
  ASSERT_OK(b.Clone(a));
  {
    File fill = Open("/fill");
    std::vector<uint8_t> chunk(1 * kMiB, 1);
    for (uint64_t off = 0;; off += chunk.size()) {
      auto n = fill.Pwrite(chunk.data(), chunk.size(), off);
      if (!n.has_value() || *n < chunk.size()) break;
    }
  }
  std::vector<uint8_t> w(4 * kMiB, 0x33);
  auto n = b.Pwrite(w.data(), w.size(), 0);
  EXPECT_TRUE(!n.has_value() || *n < w.size());
  EXPECT_EQ(Read("/a"), data);
  auto bb = Read("/b");
  size_t written = n.has_value() ? *n : 0;
  for (size_t i = 0; i < bb.size(); i++) ASSERT_EQ(bb[i], i < written ? 0x33 : data[i]) << i;
  a = File();
  b = File();
  Remount();
}

// A clone is one transaction: at every fence the destination is either
// untouched or a full clone, and fsck (with rmap/refcount checks) is clean.
TEST_F(ReflinkTest, CloneIsAtomicAtEveryCrashPoint) {
  auto data = Pattern(40 * 32768, 9);
  {
    File a = Open("/a");
    for (int i = 0; i < 40; i++) {  // many extents: write every other 16 KiB piece first
      ASSERT_OK(a.Pwrite(data.data() + i * 32768, 16384, i * 32768));
      ASSERT_OK(testutil::WriteWhole(*fs_, "/spacer" + std::to_string(i), Pattern(4096, i)));
    }
    for (int i = 0; i < 40; i++) ASSERT_OK(a.Pwrite(data.data() + i * 32768 + 16384, 16384, i * 32768 + 16384));
  }
  auto old_b = Pattern(100000, 10);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/b", old_b));
  testing::CrashRecorder rec(ImplOf(*fs_)->device());
  ASSERT_OK(rec.Start());
  ImplOf(*fs_)->device()->SetPersistObserver(&rec);
  {
    File a = Open("/a", O_RDWR), b = Open("/b", O_RDWR);
    ASSERT_OK(b.Clone(a));
  }
  ImplOf(*fs_)->device()->SetPersistObserver(nullptr);
  uint64_t done_fence = rec.fences();
  CrashForTesting(*fs_);
  fs_.reset();
  TempDevice img("crash");
  int old_seen = 0, new_seen = 0;
  for (uint64_t k = 0; k <= done_fence; k++) {
    ASSERT_OK(rec.WriteImage(k, img.path()));
    {
      ASSIGN_OR_FAIL(auto cfs, Filesystem::Mount(img.path()));
      ASSIGN_OR_FAIL(auto b, testutil::ReadWhole(*cfs, "/b"));
      if (b == old_b) old_seen++;
      else if (b == data) new_seen++;
      else {
        size_t i = 0;
        while (i < std::min(b.size(), data.size()) && b[i] == data[i]) i++;
        FAIL() << "fence " << k << " of " << done_fence << ": /b (size " << b.size()
               << ") is neither the old file nor the clone; first difference with the clone at " << i;
      }
      ASSERT_OK(cfs->Unmount());
    }
    ASSIGN_OR_FAIL(auto rep, Fsck(img.path()));
    ASSERT_TRUE(rep.clean()) << "fence " << k << testutil::JoinProblems(rep);
  }
  EXPECT_GT(old_seen, 0);
  EXPECT_GT(new_seen, 0);
}

// Copy-on-write through write() and through a DAX store, cut at every
// fence: the other sharer never changes, the writer's blocks are old or new,
// and fsck (rmap + refcount cross-checks) is clean.
TEST_F(ReflinkTest, CowIsCrashSafeAtEveryFence) {
  auto data = Pattern(256 * 1024, 11);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/a", data));
  {
    File a = Open("/a", O_RDWR), b = Open("/b");
    ASSERT_OK(b.Clone(a));
  }
  testing::CrashRecorder rec(ImplOf(*fs_)->device());
  ASSERT_OK(rec.Start());
  ImplOf(*fs_)->device()->SetPersistObserver(&rec);
  std::vector<uint8_t> w(3 * 4096 + 100, 0x5c);
  {
    File b = Open("/b", O_RDWR);
    ASSERT_OK(b.Pwrite(w.data(), w.size(), 4096 + 50));  // CoW through write()
    ASSIGN_OR_FAIL(Mapping m, b.Map(0, 256 * 1024, Prot::kReadWrite));
    m.data()[200 * 1024] = 0x77;  // CoW through a DAX fault
    ASSERT_OK(m.Persist(m.data() + 200 * 1024, 1));
  }
  ImplOf(*fs_)->device()->SetPersistObserver(nullptr);
  uint64_t fences = rec.fences();
  CrashForTesting(*fs_);
  fs_.reset();
  auto want = data;
  std::fill(want.begin() + 4096 + 50, want.begin() + 4096 + 50 + w.size(), 0x5c);
  want[200 * 1024] = 0x77;
  TempDevice img("crash");
  for (uint64_t k = 0; k <= fences; k++) {
    ASSERT_OK(rec.WriteImage(k, img.path()));
    {
      ASSIGN_OR_FAIL(auto cfs, Filesystem::Mount(img.path()));
      ASSIGN_OR_FAIL(auto a, testutil::ReadWhole(*cfs, "/a"));
      ASSERT_EQ(a, data) << "fence " << k << ": the other sharer changed";
      ASSIGN_OR_FAIL(auto b, testutil::ReadWhole(*cfs, "/b"));
      ASSERT_EQ(b.size(), data.size());
      for (size_t blk = 0; blk < b.size() / 4096; blk++) {
        bool old_ok = std::equal(b.begin() + blk * 4096, b.begin() + (blk + 1) * 4096, data.begin() + blk * 4096);
        bool new_ok = std::equal(b.begin() + blk * 4096, b.begin() + (blk + 1) * 4096, want.begin() + blk * 4096);
        ASSERT_TRUE(old_ok || new_ok) << "fence " << k << ": block " << blk << " torn";
      }
      if (k == fences) {
        ASSERT_EQ(b, want);
      }
      ASSERT_OK(cfs->Unmount());
    }
    ASSIGN_OR_FAIL(auto rep, Fsck(img.path()));
    ASSERT_TRUE(rep.clean()) << "fence " << k << testutil::JoinProblems(rep);
  }
}

}  // namespace
}  // namespace udax
