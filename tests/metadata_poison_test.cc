// tests/metadata_poison_test.cc — memory failure at every metadata block in
// turn. A workload (files, directories, a big directory, a fragmented file,
// reflinks, an orphan) leaves an image; the rmap names every metadata block
// it touched. For each one, in a fresh copy of the image: mount, poison that
// block, expect a clean shutdown (EIO naming the block) — or, when mounting
// freed the block (the orphan's), its retirement — then unmount, remount,
// fsck clean, and every file's bytes intact (a metadata block holds none).
#include <fcntl.h>
#include <linux/falloc.h>

#include <map>
#include <set>

#include "test_util.h"
#include "udax/fs.h"

namespace udax {
namespace {

using testutil::kMiB;
using testutil::Pattern;

constexpr uint64_t kBlock = media::kBlockSize;
constexpr uint64_t kDevBytes = 8 * kMiB;

bool IsMetadata(const media::RmapRec& r) {
  if (r.owner == media::kOwnBad) return false;
  return (r.owner & media::kOwnMetaBit) || (r.flags & media::kRmapTreeBlock);
}

// Blocks on the node free list are kOwnAg in the rmap but free.
bool OnFreeList(Filesystem& fs, uint64_t b) {
  Transaction tx(ImplOf(fs)->journal(), true);
  auto rb = tx.Read(media::kRootBlockNo, media::kRootMagic);
  EXPECT_TRUE(rb.has_value());
  return rb.has_value() && FreeListIndex(*reinterpret_cast<const media::RootBlock*>(*rb), b) >= 0;
}

class MetadataPoisonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(Filesystem::Mkfs(dev_.path(), MkfsOptions{.size = kDevBytes}));
    ASSERT_NO_FATAL_FAILURE(RunWorkload());
    image_ = testutil::ReadImage(dev_.path(), 0, kDevBytes);
  }

  void Put(Filesystem& fs, const std::string& path, std::vector<uint8_t> data) {
    ASSERT_OK(testutil::WriteWhole(fs, path, data));
    files_[path] = std::move(data);
  }

  // Leaves the image crashed with an orphan (an unlinked file still open).
  void RunWorkload() {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(dev_.path()));
    ASSERT_OK(fs->Mkdir("/d"));
    ASSERT_OK(fs->Mkdir("/d/e"));
    Put(*fs, "/a", Pattern(40 * kBlock, 1));
    Put(*fs, "/d/e/small", Pattern(100, 2));
    ASSERT_OK(fs->Symlink(std::string(300, 'l'), "/d/longlink"));  // a symlink block
    // A big directory: an entry tree of several levels.
    ASSERT_OK(fs->Mkdir("/big"));
    for (int i = 0; i < 400; i++)
      ASSERT_OK(testutil::WriteWhole(*fs, "/big/" + std::string(100, 'x') + std::to_string(i), {}));
    // A fragmented file: an extent map of more than one level.
    {
      std::vector<uint8_t> frag(400 * kBlock, 0);
      ASSIGN_OR_FAIL(File f, fs->Open("/frag", O_CREAT | O_RDWR, 0644));
      for (uint64_t b = 0; b < 400; b += 2) {
        auto blk = Pattern(kBlock, 100 + b);
        ASSERT_OK(f.Pwrite(blk.data(), kBlock, b * kBlock));
        std::copy(blk.begin(), blk.end(), frag.begin() + b * kBlock);
      }
      ASSERT_OK(f.Close());
      frag.resize(399 * kBlock);  // ends with the last block written
      files_["/frag"] = frag;
    }
    // Reflinks: a whole clone and single-block clones (refcount records).
    {
      ASSIGN_OR_FAIL(File a, fs->Open("/a", O_RDWR));
      ASSIGN_OR_FAIL(File b, fs->Open("/d/b", O_CREAT | O_RDWR, 0644));
      ASSERT_OK(b.Clone(a));
      std::vector<uint8_t> bdata = files_["/a"];
      for (uint64_t i = 0; i < 40; i += 3) {
        ASSERT_OK(b.CloneRange(a, i * kBlock, kBlock, (41 + i) * kBlock));
        bdata.resize((42 + i) * kBlock);
        std::copy(files_["/a"].begin() + i * kBlock, files_["/a"].begin() + (i + 1) * kBlock,
                  bdata.begin() + (41 + i) * kBlock);
      }
      files_["/d/b"] = bdata;
    }
    // The orphan: unlinked while open, then a crash (mount reclaims it).
    ASSIGN_OR_FAIL(File orphan, fs->Open("/orphan", O_CREAT | O_RDWR, 0644));
    auto odata = Pattern(300 * kBlock, 9);
    ASSERT_OK(orphan.Pwrite(odata.data(), odata.size(), 0));
    ASSERT_OK(fs->Unlink("/orphan"));
    // Every metadata block the workload touched, from the rmap: metadata
    // owners, extent-map and directory tree nodes, and the symlink's block
    // (file data of an inode that is not a regular file).
    ASSIGN_OR_FAIL(Stat link, fs->GetLstat("/d/longlink"));
    link_ino_ = link.ino;
    ASSIGN_OR_FAIL(auto recs, ImplOf(*fs)->QueryRmap(0, kDevBytes / kBlock));
    std::set<uint64_t> kinds;
    for (const auto& r : recs) {
      if (!IsMetadata(r) && r.owner != link.ino) continue;
      for (uint64_t b = r.start; b < r.start + r.length; b++) {
        if (OnFreeList(*fs, b)) continue;
        blocks_.insert(b);
        kinds.insert(r.flags & media::kRmapTreeBlock ? ~0ull : r.owner & media::kOwnMetaBit ? r.owner : 0);
      }
    }
    // static, AG trees, inode tree, orphan tree, tree nodes of inodes, the symlink block
    EXPECT_EQ(kinds.size(), 6u);
    CrashForTesting(*fs);
  }

  void ExpectEveryFileIntact(Filesystem& fs, uint64_t b) {
    for (const auto& [path, data] : files_) {
      auto back = testutil::ReadWhole(fs, path);
      ASSERT_TRUE(back.has_value()) << "block " << b << ": " << path << ": " << back.error().ToString();
      EXPECT_TRUE(*back == data) << "block " << b << ": " << path << " changed";
    }
    ASSIGN_OR_FAIL(auto names, fs.ReadDir("/big"));
    EXPECT_EQ(names.size(), 400u) << "block " << b;
    ASSIGN_OR_FAIL(std::string target, fs.Readlink("/d/longlink"));
    EXPECT_EQ(target, std::string(300, 'l')) << "block " << b;
  }

  // One run: a fresh copy of the image, block b poisoned once mounted.
  void PoisonOne(uint64_t b) {
    testutil::WriteImage(dev_.path(), 0, image_.data(), image_.size());
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(dev_.path()));
    // Mounting reclaimed the orphan: its blocks may be free now.
    ASSIGN_OR_FAIL(auto owners, ImplOf(*fs)->QueryRmap(b, 1));
    bool metadata = !OnFreeList(*fs, b) && std::any_of(owners.begin(), owners.end(), [&](const media::RmapRec& r) {
      return IsMetadata(r) || r.owner == link_ino_;
    });
    Status st = fs->InjectPoison(b * kBlock, kBlock);
    if (metadata) {
      EXPECT_TRUE(st.ok() || st.err() == EIO) << "block " << b << ": " << st.ToString();  // injected
      auto after = fs->GetStat("/a");
      ASSERT_FALSE(after.has_value()) << "block " << b << ": the filesystem is still up";
      EXPECT_EQ(after.error().err(), EIO) << after.error().ToString();
      EXPECT_NE(after.error().message().find("memory failure in metadata block " + std::to_string(b) + " "),
                std::string::npos)
          << "block " << b << ": " << after.error().message();
      EXPECT_ERRNO(fs->Mkdir("/after"), EIO);
    } else {
      EXPECT_OK(st) << "block " << b << " (free after the mount)";
      ExpectEveryFileIntact(*fs, b);
    }
    ASSERT_OK(fs->Unmount()) << "block " << b;
    fs.reset();
    // Re-attached, the emulated memory is healthy: recovery mounts it.
    {
      ASSIGN_OR_FAIL(auto again, Filesystem::Mount(dev_.path()));
      ExpectEveryFileIntact(*again, b);
      ASSERT_OK(again->Unmount()) << "block " << b;
    }
    ASSIGN_OR_FAIL(auto rep, Fsck(dev_.path()));
    EXPECT_TRUE(rep.clean()) << "block " << b << ":" << testutil::JoinProblems(rep);
  }

  testutil::TempDevice dev_;
  std::vector<uint8_t> image_;
  std::map<std::string, std::vector<uint8_t>> files_;
  std::set<uint64_t> blocks_;
  uint64_t link_ino_ = 0;
};

TEST_F(MetadataPoisonTest, EveryMetadataBlockInTurn) {
  // Every kind of metadata is in the set.
  ASSERT_GT(blocks_.size(), 40u);
  for (uint64_t b : blocks_) {
    SCOPED_TRACE("metadata block " + std::to_string(b));
    ASSERT_NO_FATAL_FAILURE(PoisonOne(b));
    if (HasFailure()) break;  // one block's story is enough to read
  }
  std::cout << blocks_.size() << " metadata blocks poisoned in turn\n";
}

}  // namespace
}  // namespace udax
