// tests/full_device_test.cc — a full device: adding operations (create, mkdir,
// symlink, link, rename to a new name, write, clone, DAX hole faults) stop at
// the reserve with ENOSPC and change nothing; freeing ones (unlink, rmdir,
// rename over a name, truncate, punch) always work. Each test fills a small
// device with one kind of object, then removes every object and expects fsck
// clean and the free space of the empty filesystem back.
#include <fcntl.h>
#include <linux/falloc.h>

#include "test_util.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax {
namespace {

using testutil::kMiB;

constexpr uint64_t kBlock = media::kBlockSize;

class FullDeviceTest : public testutil::FsFixture {
 protected:
  uint64_t DeviceBytes() const override { return 16 * kMiB; }

  void SetUp() override {
    FsFixture::SetUp();
    ASSERT_OK(testutil::GiveRootItsLeaf(fs()));
    empty_free_ = AllFreeBlocks();
  }

  // Free blocks in the free-space trees (what the reserve is counted in).
  uint64_t TreeFreeBlocks() {
    Transaction tx(ImplOf(*fs_)->journal(), true);
    auto rb = tx.Read(media::kRootBlockNo, media::kRootMagic);
    EXPECT_TRUE(rb.has_value()) << rb.error().ToString();
    return rb.has_value() ? reinterpret_cast<const media::RootBlock*>(*rb)->free_blocks : 0;
  }
  // The device is full for adding operations, and they left the reserve alone.
  void ExpectFullWithReserveIntact() {
    EXPECT_EQ(FreeBlocks(), 0u);
    EXPECT_GE(TreeFreeBlocks(), Allocator::kReserveBlocks);
  }
  // Every adding operation fails with ENOSPC and leaves no name behind.
  void ExpectAddingOperationsRefused(const std::string& existing_file) {
    EXPECT_ERRNO(fs().Open("/new-file", O_CREAT | O_RDWR, 0644), ENOSPC);
    EXPECT_ERRNO(fs().Mkdir("/new-dir"), ENOSPC);
    EXPECT_ERRNO(fs().Symlink(std::string(200, 's'), "/new-long-link"), ENOSPC);
    EXPECT_ERRNO(fs().Symlink("short", "/new-link"), ENOSPC);
    EXPECT_ERRNO(fs().Link(existing_file, "/new-hardlink"), ENOSPC);
    EXPECT_ERRNO(fs().Rename(existing_file, "/new-name"), ENOSPC);
    for (const char* p : {"/new-file", "/new-dir", "/new-long-link", "/new-link", "/new-hardlink", "/new-name"})
      EXPECT_ERRNO(fs().GetLstat(p), ENOENT) << p;
    EXPECT_OK(fs().GetLstat(existing_file));
  }
  // After everything is removed: fsck clean and every block free again.
  void ExpectEmptyAgain() {
    ASSERT_NO_FATAL_FAILURE(ExpectFsckClean());
    ASSIGN_OR_FAIL(auto names, fs().ReadDir("/"));
    EXPECT_TRUE(names.empty()) << names.size() << " names left in /";
    EXPECT_EQ(AllFreeBlocks(), empty_free_);
  }

  uint64_t empty_free_ = 0;
};

std::string Name(const char* prefix, int i) { return prefix + std::to_string(i); }

// The case: many tiny files (empty and one-block ones, which eat only
// metadata: inode, directory and rmap tree nodes) until a create fails.
TEST_F(FullDeviceTest, ManyTinyFilesThenRemoveEvery) {
  std::vector<uint8_t> tiny = testutil::Pattern(100, 1);
  int n = 0;
  for (;; n++) {
    auto f = fs().Open(Name("/f", n), O_CREAT | O_EXCL | O_RDWR, 0644);
    if (!f.has_value()) {
      ASSERT_EQ(f.error().err(), ENOSPC) << f.error().ToString();
      break;
    }
    if (n % 2) {
      auto w = f->Pwrite(tiny.data(), tiny.size(), 0);
      if (!w.has_value()) {
        ASSERT_EQ(w.error().err(), ENOSPC) << w.error().ToString();
      }
    }
    ASSERT_OK(f->Close());
  }
  ASSERT_GT(n, 1000);
  EXPECT_ERRNO(fs().GetStat(Name("/f", n)), ENOENT);  // the failed create left nothing
  ExpectFullWithReserveIntact();
  ExpectAddingOperationsRefused("/f0");
  // Freeing operations on the full device: rename over a name, truncate, punch.
  ASSERT_OK(fs().Rename("/f1", "/f0"));
  ASSERT_OK(fs().Truncate("/f3", 0));
  {
    ASSIGN_OR_FAIL(File f, fs().Open("/f5", O_RDWR));
    ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, kBlock));
  }
  ASSERT_OK(fs().Unlink("/f0"));
  for (int i = 2; i < n; i++) ASSERT_OK(fs().Unlink(Name("/f", i))) << i;
  ExpectEmptyAgain();
}

// One big file written until the device is full: a short write, then ENOSPC.
TEST_F(FullDeviceTest, OneBigFileThenRemoveIt) {
  ASSIGN_OR_FAIL(File f, fs().Open("/big", O_CREAT | O_RDWR, 0644));
  std::vector<uint8_t> chunk = testutil::Pattern(1 * kMiB, 2);
  uint64_t off = 0;
  for (;;) {
    ASSIGN_OR_FAIL(size_t n, f.Pwrite(chunk.data(), chunk.size(), off));
    off += n;
    if (n < chunk.size()) break;
  }
  // The next write reports the real error.
  EXPECT_ERRNO(f.Pwrite(chunk.data(), chunk.size(), off), ENOSPC);
  ASSIGN_OR_FAIL(Stat st, f.GetStat());
  EXPECT_EQ(st.size, off);
  ExpectFullWithReserveIntact();
  ExpectAddingOperationsRefused("/big");
  // Punch in the middle of the extent (splits it) and truncate mid-block.
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100 * kBlock + 7, 3 * kBlock));
  ASSERT_OK(f.Truncate(off - 12345));
  ASSERT_OK(f.Close());
  ASSERT_OK(fs().Unlink("/big"));
  ExpectEmptyAgain();
}

// A huge directory (long names: the entry tree grows fastest) until ENOSPC.
TEST_F(FullDeviceTest, HugeDirectoryThenRemoveEveryEntry) {
  ASSERT_OK(fs().Mkdir("/d"));
  std::string pad(240, 'n');
  int n = 0;
  for (;; n++) {
    Status st = fs().Symlink("t", "/d/" + pad + std::to_string(n));
    if (!st.ok()) {
      ASSERT_EQ(st.err(), ENOSPC) << st.ToString();
      break;
    }
  }
  ASSERT_GT(n, 500);
  ExpectFullWithReserveIntact();
  ExpectAddingOperationsRefused("/d/" + pad + "0");
  for (int i = 0; i < n; i++) ASSERT_OK(fs().Unlink("/d/" + pad + std::to_string(i))) << i;
  ASSERT_OK(fs().Rmdir("/d"));
  ExpectEmptyAgain();
}

// Reflinked files: one source, then clones of single blocks at every other
// offset (a refcount, rmap and extent-map record each) until ENOSPC; then
// punches in the middle of shared extents, which split records.
TEST_F(FullDeviceTest, ReflinkedFilesThenRemoveEvery) {
  constexpr uint64_t kSrcBlocks = 64;
  ASSERT_OK(testutil::WriteWhole(fs(), "/src", testutil::Pattern(kSrcBlocks * kBlock, 3)));
  ASSIGN_OR_FAIL(File src, fs().Open("/src", O_RDWR));
  int files = 0;
  bool full = false;
  while (!full) {
    std::string name = Name("/c", files++);
    auto c = fs().Open(name, O_CREAT | O_EXCL | O_RDWR, 0644);
    if (!c.has_value()) {
      ASSERT_EQ(c.error().err(), ENOSPC) << c.error().ToString();
      files--;
      break;
    }
    ASSERT_OK(c->Clone(src));  // a whole-file clone, punched below
    for (uint64_t b = 0; b < kSrcBlocks; b += 2) {
      Status st = c->CloneRange(src, b * kBlock, kBlock, (kSrcBlocks + 1 + b) * kBlock);
      if (!st.ok()) {
        ASSERT_EQ(st.err(), ENOSPC) << st.ToString();
        full = true;
        break;
      }
    }
    ASSERT_OK(c->Close());
  }
  ASSERT_GT(files, 2);
  EXPECT_GE(TreeFreeBlocks(), Allocator::kReserveBlocks);
  ExpectAddingOperationsRefused("/src");
  // Whole-block punches split shared extents (rmap, refcount, extent map)
  // and always work; a partial one needs a private copy of the block (data,
  // never from the reserve): ENOSPC, and the file is unchanged.
  const int kPunch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  for (int i = 0; i < files; i++) {
    ASSIGN_OR_FAIL(File c, fs().Open(Name("/c", i), O_RDWR));
    ASSERT_OK(c.Fallocate(kPunch, 10 * kBlock, kBlock)) << i;
    ASSERT_OK(c.Fallocate(kPunch, 30 * kBlock, 2 * kBlock)) << i;
  }
  {
    ASSIGN_OR_FAIL(File c, fs().Open("/c0", O_RDWR));
    EXPECT_ERRNO(c.Fallocate(kPunch, 20 * kBlock + 100, 200), ENOSPC);
    std::vector<uint8_t> got(kBlock);
    ASSIGN_OR_FAIL(size_t n, c.Pread(got.data(), kBlock, 20 * kBlock));
    ASSERT_EQ(n, kBlock);
    auto want = testutil::Pattern(kSrcBlocks * kBlock, 3);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin() + 20 * kBlock));
  }
  ASSERT_OK(src.Close());
  ASSERT_OK(fs().Unlink("/src"));
  for (int i = 0; i < files; i++) ASSERT_OK(fs().Unlink(Name("/c", i))) << i;
  ExpectEmptyAgain();
}

// DAX hole faults on a full device: the program gets ENOSPC inside Guarded,
// and the faults never take the reserve.
TEST_F(FullDeviceTest, DaxHoleFaultsThenRemoveEvery) {
  int n = 0;
  std::vector<Mapping> maps;
  std::vector<File> files;
  for (;; n++) {
    auto f = fs().Open(Name("/m", n), O_CREAT | O_RDWR, 0644);
    ASSERT_TRUE(f.has_value()) << f.error().ToString();
    ASSERT_OK(f->Truncate(1 * kMiB));
    ASSIGN_OR_FAIL(Mapping m, f->Map(0, 1 * kMiB, Prot::kReadWrite));
    Status st = Guarded([&] {
      for (uint64_t i = 0; i < 1 * kMiB; i += kBlock) m.data()[i] = 0x5a;
    });
    maps.push_back(std::move(m));
    files.push_back(std::move(*f));
    if (!st.ok()) {
      ASSERT_EQ(st.err(), ENOSPC) << st.ToString();
      break;
    }
  }
  ASSERT_GT(n, 4);
  ExpectFullWithReserveIntact();
  ExpectAddingOperationsRefused("/m0");
  maps.clear();
  files.clear();
  for (int i = 0; i <= n; i++) ASSERT_OK(fs().Unlink(Name("/m", i))) << i;
  ExpectEmptyAgain();
}

}  // namespace
}  // namespace udax
