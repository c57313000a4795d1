// tests/hostile_image_test.cc — crafted images: a valid image made by mkfs
// and operations, then one field of one on-media record changed and its
// block's crc re-computed, so only the record checks (media/records.cc) stand
// between the field and its use. For every field with a limit (docs/format.md
// "Limits"): nothing crashes, the access fails with EUCLEAN naming the block
// and the field, the rest of the filesystem still works, and fsck reports the
// record (also when the mount fails and fsck checks the raw image).
// The findings of issue 12 are here by name: a symlink whose inline length is
// past its slot (Readlink copied past the record), a symlink size of 2^40 or
// 2 GiB (allocated before any check), a file size above 64 TiB and an empty
// symlink (fsck called them clean).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "space/dir.h"
#include "udax/check.h"
#include "test_util.h"

namespace udax {
namespace {

using namespace udax::testutil;
using media::BmapRec;
using media::DirRec;
using media::InodeRec;
using media::kBlockSize;

constexpr uint64_t kDevBytes = 16 * kMiB;
constexpr uint64_t kDevBlocks = kDevBytes / kBlockSize;
// Enough inodes that the inode tree has several leaves: the crafted records
// (created between two halves of them) share no leaf with the root
// directory's inode, nor with the last leaf, where new inodes go. A record
// that fails its check makes its whole leaf unreadable (docs/format.md
// "Limits"), so "the rest of the filesystem" is what lies in other blocks.
constexpr int kFillerFiles = 40;

// `st` is EUCLEAN and its message names `bno` and `field`.
::testing::AssertionResult IsCorruptionOf(const Status& st, uint64_t bno, const std::string& field) {
  if (st.err() != EUCLEAN) return ::testing::AssertionFailure() << "expected EUCLEAN, got " << st.ToString();
  const std::string& m = st.message();
  if (m.find("block " + std::to_string(bno) + ":") == std::string::npos || m.find(field) == std::string::npos)
    return ::testing::AssertionFailure() << "message does not name block " << bno << " and '" << field << "': " << m;
  return ::testing::AssertionSuccess();
}

class HostileImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dev_.path();
    MkfsOptions o;
    o.size = kDevBytes;
    ASSERT_OK(Filesystem::Mkfs(path_, o));
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSERT_OK(fs->Mkdir("/d"));
    data_ = Pattern(5 * kBlockSize + 10, 3);
    ASSERT_OK(WriteWhole(*fs, "/g", data_));
    for (int i = 0; i < kFillerFiles / 2; i++) ASSERT_OK(WriteWhole(*fs, "/d/filler" + std::to_string(i), Bytes("x")));
    ASSERT_OK(fs->Symlink("target", "/short"));
    ASSERT_OK(fs->Symlink(std::string(200, 'L'), "/long"));
    ASSERT_OK(WriteWhole(*fs, "/file", Bytes("file")));
    ASSERT_OK(fs->Mkdir("/e"));
    ASSERT_OK(WriteWhole(*fs, "/e/victim", Bytes("v")));
    ASSERT_OK(WriteWhole(*fs, "/ext", Pattern(5 * kBlockSize, 9)));
    for (int i = kFillerFiles / 2; i < kFillerFiles; i++)
      ASSERT_OK(WriteWhole(*fs, "/d/filler" + std::to_string(i), Bytes("x")));
    const std::string last_filler = "/d/filler" + std::to_string(kFillerFiles - 1);
    for (const std::string& p : {std::string("/"), std::string("/d"), std::string("/g"), std::string("/e"),
                                 std::string("/short"), std::string("/long"), std::string("/file"),
                                 std::string("/e/victim"), std::string("/ext"), last_filler}) {
      ASSIGN_OR_FAIL(Stat st, fs->GetLstat(p));
      ino_[p] = st.ino;
    }
    ASSERT_OK(fs->Unmount());
    media::RootBlock root = ReadRootBlock(path_);
    auto leaf = [&](const std::string& p) { return LeafFor(path_, root.inodes, media::kInodeMagic, ino_[p]); };
    root_leaf_ = leaf("/");
    // The crafted inodes are in leaves of their own: not the root's (and
    // /g's), nor the last one (where new inodes go).
    for (const char* p : {"/short", "/long", "/file"}) {
      EXPECT_NE(leaf(p), root_leaf_) << p;
      EXPECT_NE(leaf(p), leaf("/g")) << p;
      EXPECT_NE(leaf(p), leaf(last_filler)) << p;
    }
  }

  // The rest of the filesystem works: other files read back, new files are
  // made, directories list; the filesystem unmounts.
  void ExpectRestWorks(Filesystem& fs) {
    ASSIGN_OR_FAIL(auto back, ReadWhole(fs, "/g"));
    EXPECT_TRUE(back == data_);
    EXPECT_OK(WriteWhole(fs, "/d/new", Bytes("still works")));
    EXPECT_OK(fs.GetStat("/d/filler0"));
    EXPECT_OK(fs.ReadDir("/d"));
  }

  // Fsck (with and without recovery) reports a problem naming `bno` and `field`.
  void ExpectFsckReports(uint64_t bno, const std::string& field) {
    for (bool recover : {true, false}) {
      auto r = Fsck(path_, FsckOptions{.recover = recover});
      ASSERT_TRUE(r.has_value()) << r.error().ToString();
      std::string hits = ProblemsMatching(*r, "block " + std::to_string(bno) + ":");
      EXPECT_NE(hits.find(field), std::string::npos)
          << "recover=" << recover << ": fsck does not report '" << field << "' in block " << bno << ":"
          << JoinProblems(*r);
    }
  }

  TempDevice dev_;
  std::string path_;
  std::vector<uint8_t> data_;
  std::map<std::string, uint64_t> ino_;
  uint64_t root_leaf_ = 0;
};

// ---- inode records -----------------------------------------------------------------

struct InodeCase {
  const char* name;
  const char* path;   // whose record is changed
  const char* field;  // the message must name it
  std::function<void(InodeRec*)> edit;
};

std::vector<InodeCase> InodeCases() {
  return {
      // Issue 12, finding 1: Readlink copied inline_len bytes from a 96-byte slot.
      {"symlink_inline_len_past_slot", "/short", "inline_len", [](InodeRec* r) { r->inline_len = 4000; }},
      {"symlink_inline_len_not_size", "/short", "inline_len", [](InodeRec* r) { r->inline_len = 50; }},
      // Finding 2: the size was allocated before anything was checked.
      {"symlink_size_2_pow_40", "/long", "size", [](InodeRec* r) { r->size = 1ull << 40; }},
      {"symlink_size_2_gib", "/long", "size", [](InodeRec* r) { r->size = 2ull << 30; }},
      {"symlink_size_4096", "/long", "size", [](InodeRec* r) { r->size = 4096; }},
      // Finding 3: fsck called these clean.
      {"symlink_size_zero", "/short", "size", [](InodeRec* r) { r->size = 0; r->inline_len = 0; }},
      {"file_size_past_64_tib", "/file", "size", [](InodeRec* r) { r->size = (1ull << 46) + 1; }},
      {"file_size_huge", "/file", "size", [](InodeRec* r) { r->size = ~0ull; }},
      {"mode_unknown_type", "/file", "mode", [](InodeRec* r) { r->mode = S_IFIFO | 0644; }},
      {"mode_stray_bits", "/file", "mode", [](InodeRec* r) { r->mode |= 1u << 20; }},
      {"nblocks_past_device", "/file", "nblocks", [](InodeRec* r) { r->nblocks = kDevBlocks + 1; }},
      {"mtime_nsec", "/file", "mtime nsec", [](InodeRec* r) { r->mtime.nsec = 1000000000; }},
      {"data_root_too_deep", "/ext", "data tree root", [](InodeRec* r) { r->data.levels = 17; }},
      {"data_root_past_device", "/ext", "data tree root", [](InodeRec* r) { r->data.block = kDevBlocks + 5; }},
      {"data_root_without_block", "/ext", "data tree root", [](InodeRec* r) { r->data.block = 0; }},
      {"unknown_flags", "/file", "flags", [](InodeRec* r) { r->flags |= 0x80; }},
      {"file_inline_len_past_slot", "/file", "inline_len", [](InodeRec* r) { r->inline_len = 97; }},
  };
}

class InodeFieldTest : public HostileImageTest, public ::testing::WithParamInterface<int> {};

TEST_P(InodeFieldTest, RefusedNamedAndReported) {
  const InodeCase c = InodeCases()[GetParam()];
  uint64_t bno = EditInodeRec(path_, ino_[c.path], c.edit);
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    EXPECT_TRUE(IsCorruptionOf(fs->GetLstat(c.path).error(), bno, c.field));
    EXPECT_TRUE(IsCorruptionOf(fs->Open(c.path, O_RDONLY | O_NOFOLLOW).error(), bno, c.field));
    if (std::string(c.path) == "/short" || std::string(c.path) == "/long") {
      EXPECT_TRUE(IsCorruptionOf(fs->Readlink(c.path).error(), bno, c.field));
    }
    ExpectRestWorks(*fs);
    EXPECT_OK(fs->Unmount());
  }
  ExpectFsckReports(bno, c.field);
}

INSTANTIATE_TEST_SUITE_P(Fields, InodeFieldTest, ::testing::Range(0, static_cast<int>(InodeCases().size())),
                         [](const auto& info) { return std::string(InodeCases()[info.param].name); });

// The record that fails is the only one refused: fsck reports every bad
// record — two in one leaf, one in another — and checks every other record.
TEST_F(HostileImageTest, FsckReportsEveryBadRecordOfALeaf) {
  uint64_t b1 = EditInodeRec(path_, ino_["/short"], [](InodeRec* r) { r->inline_len = 4000; });
  uint64_t b2 = EditInodeRec(path_, ino_["/long"], [](InodeRec* r) { r->size = 1ull << 40; });
  uint64_t b3 = EditInodeRec(path_, ino_["/file"], [](InodeRec* r) { r->size = (1ull << 46) + 1; });
  ASSERT_EQ(b1, b2);
  for (bool recover : {true, false}) {
    auto r = Fsck(path_, FsckOptions{.recover = recover});
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    for (auto [ino_path, bno] : {std::pair{"/short", b1}, {"/long", b2}, {"/file", b3}})
      EXPECT_NE(ProblemsMatching(*r, "block " + std::to_string(bno) + ":")
                    .find("inode " + std::to_string(ino_[ino_path]) + ":"),
                std::string::npos)
          << ino_path << " not reported:" << JoinProblems(*r);
    // The good records of those leaves were checked: /ext's extents are
    // claimed and /e's entries name existing inodes; only the blocks of the
    // skipped records (/long's and /file's extent-map node and data block)
    // are unaccounted for.
    EXPECT_NE(ProblemsMatching(*r, "4 blocks are neither free nor used"), "") << JoinProblems(*r);
    EXPECT_EQ(ProblemsMatching(*r, "names missing inode " + std::to_string(ino_["/e/victim"])), "");
  }
}

// The bad record shares the root directory's leaf: the mount fails (naming
// the block and field), and fsck checks the raw image and reports it.
TEST_F(HostileImageTest, MountFailsOnTheRootLeafAndFsckStillReports) {
  uint64_t bno = EditInodeRec(path_, ino_["/d"], [](InodeRec* r) { r->size = ~0ull; });
  ASSERT_EQ(bno, root_leaf_);
  auto m = Filesystem::Mount(path_);
  ASSERT_FALSE(m.has_value());
  EXPECT_TRUE(IsCorruptionOf(m.error(), bno, "size"));
  auto r = Fsck(path_);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  bool noted = false;
  for (const auto& n : r->notes) noted |= n.find("mount failed") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_NE(ProblemsMatching(*r, "block " + std::to_string(bno) + ":").find("size"), std::string::npos)
      << JoinProblems(*r);
  // Only that record: the root and the rest of the leaf were checked.
  EXPECT_EQ(ProblemsMatching(*r, "root directory"), "") << JoinProblems(*r);
}

// ---- directory entries ---------------------------------------------------------------

struct DirCase {
  const char* name;
  const char* field;
  std::function<void(DirRec*)> edit;
};

std::vector<DirCase> DirCases() {
  return {
      {"name_len_zero", "name_len", [](DirRec* r) { r->name_len = 0; }},
      {"name_with_slash", "name contains", [](DirRec* r) { r->name[1] = '/'; }},
      {"name_with_nul", "name contains", [](DirRec* r) { r->name[1] = '\0'; }},
      {"name_dot", "'.'", [](DirRec* r) { r->name_len = 1; r->name[0] = '.'; }},
      {"unknown_type", "type", [](DirRec* r) { r->type = 9; }},
      {"ino_zero", "ino is 0", [](DirRec* r) { r->ino = 0; }},
      {"name_not_its_hash", "hash", [](DirRec* r) { r->name[0] = 'W'; }},
  };
}

class DirFieldTest : public HostileImageTest, public ::testing::WithParamInterface<int> {};

TEST_P(DirFieldTest, RefusedNamedAndReported) {
  const DirCase c = DirCases()[GetParam()];
  media::InodeRec dir = ReadInodeRec(path_, ino_["/e"]);
  uint64_t bno = EditLeafRecords(
      path_, dir.data, media::kDirMagic, NameHash("victim"),
      [](const uint8_t* p) { return std::string_view(reinterpret_cast<const DirRec*>(p)->name, 6) == "victim"; },
      [&](uint8_t* p) { c.edit(reinterpret_cast<DirRec*>(p)); });
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    EXPECT_TRUE(IsCorruptionOf(fs->ReadDir("/e").error(), bno, c.field));
    EXPECT_TRUE(IsCorruptionOf(fs->GetStat("/e/victim").error(), bno, c.field));
    ExpectRestWorks(*fs);
    EXPECT_OK(fs->Unmount());
  }
  ExpectFsckReports(bno, c.field);
}

INSTANTIATE_TEST_SUITE_P(Fields, DirFieldTest, ::testing::Range(0, static_cast<int>(DirCases().size())),
                         [](const auto& info) { return std::string(DirCases()[info.param].name); });

// ---- extent records -----------------------------------------------------------------

struct BmapCase {
  const char* name;
  const char* field;
  std::function<void(BmapRec*)> edit;
};

std::vector<BmapCase> BmapCases() {
  return {
      {"length_zero", "length", [](BmapRec* r) { r->length = 0; }},
      {"length_past_max", "length", [](BmapRec* r) { r->length = media::kMaxExtentBlocks + 1; }},
      {"start_past_device", "outside the device", [](BmapRec* r) { r->start_block = kDevBlocks; }},
      {"start_at_superblock", "outside the device", [](BmapRec* r) { r->start_block = 0; }},
      {"end_wraps", "outside the device", [](BmapRec* r) { r->start_block = ~0ull - 1; }},
      {"end_past_max_file_size", "maximum file size", [](BmapRec* r) { r->file_block = media::kMaxFileBlocks - 2; }},
      {"unknown_flags", "flags", [](BmapRec* r) { r->flags = 1; }},
  };
}

class BmapFieldTest : public HostileImageTest, public ::testing::WithParamInterface<int> {};

TEST_P(BmapFieldTest, RefusedNamedAndReported) {
  const BmapCase c = BmapCases()[GetParam()];
  media::InodeRec rec = ReadInodeRec(path_, ino_["/ext"]);
  uint64_t bno = EditLeafRecords(
      path_, rec.data, media::kBmapMagic, 0, [](const uint8_t*) { return true; },
      [&](uint8_t* p) { c.edit(reinterpret_cast<BmapRec*>(p)); });
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    EXPECT_TRUE(IsCorruptionOf(ReadWhole(*fs, "/ext").error(), bno, c.field));
    EXPECT_TRUE(IsCorruptionOf(fs->Truncate("/ext", 0), bno, c.field));
    ExpectRestWorks(*fs);
    EXPECT_OK(fs->Unmount());
  }
  ExpectFsckReports(bno, c.field);
}

INSTANTIATE_TEST_SUITE_P(Fields, BmapFieldTest, ::testing::Range(0, static_cast<int>(BmapCases().size())),
                         [](const auto& info) { return std::string(BmapCases()[info.param].name); });

// ---- root block, free space, orphans, superblock -----------------------------------

struct RootCase {
  const char* name;
  const char* field;
  std::function<void(media::RootBlock*)> edit;
};

std::vector<RootCase> RootCases() {
  return {
      {"free_blocks_past_device", "free_blocks", [](media::RootBlock* r) { r->free_blocks = kDevBlocks + 1; }},
      {"inode_root_too_deep", "inodes tree root", [](media::RootBlock* r) { r->inodes.levels = 17; }},
      {"free_root_past_device", "free_bno tree root", [](media::RootBlock* r) { r->free_bno.block = kDevBlocks; }},
      {"rmap_root_without_levels", "rmap tree root", [](media::RootBlock* r) { r->rmap.levels = 0; }},
  };
}

class RootFieldTest : public HostileImageTest, public ::testing::WithParamInterface<int> {};

TEST_P(RootFieldTest, MountRefusesAndFsckReports) {
  const RootCase c = RootCases()[GetParam()];
  EditBlock(path_, media::kRootBlockNo, [&](uint8_t* b) { c.edit(reinterpret_cast<media::RootBlock*>(b)); });
  auto m = Filesystem::Mount(path_);
  ASSERT_FALSE(m.has_value());
  EXPECT_TRUE(IsCorruptionOf(m.error(), media::kRootBlockNo, c.field));
  EXPECT_TRUE(IsCorruptionOf(ReadInfo(path_).error(), media::kRootBlockNo, c.field));
  ExpectFsckReports(media::kRootBlockNo, c.field);
}

INSTANTIATE_TEST_SUITE_P(Fields, RootFieldTest, ::testing::Range(0, static_cast<int>(RootCases().size())),
                         [](const auto& info) { return std::string(RootCases()[info.param].name); });

TEST_F(HostileImageTest, FreeExtentOutsideTheDevice) {
  media::RootBlock root = ReadRootBlock(path_);
  uint64_t bno = EditLeafRecords(
      path_, root.free_bno, media::kFreeBnoMagic, ~0ull, [](const uint8_t*) { return true; },
      [](uint8_t* p) { reinterpret_cast<media::FreeBnoRec*>(p)->length = kDevBlocks; });
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    EXPECT_TRUE(IsCorruptionOf(WriteWhole(*fs, "/big", Pattern(100 * kBlockSize, 1)), bno, "outside the device"));
    ASSIGN_OR_FAIL(auto back, ReadWhole(*fs, "/g"));
    EXPECT_TRUE(back == data_);
    fs->Unmount().IgnoreError();
  }
  ExpectFsckReports(bno, "outside the device");
}

TEST_F(HostileImageTest, OrphanRecordOfInodeZero) {
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSIGN_OR_FAIL(File f, fs->Open("/file", O_RDWR));
    ASSERT_OK(fs->Unlink("/file"));
    ASSERT_OK(fs->Sync());
    CrashForTesting(*fs);
  }
  media::RootBlock root = ReadRootBlock(path_);
  ASSERT_NE(root.orphans.block, 0u);
  uint64_t bno = EditLeafRecords(
      path_, root.orphans, media::kOrphanMagic, 0, [](const uint8_t*) { return true; },
      [](uint8_t* p) { reinterpret_cast<media::OrphanRec*>(p)->ino = 0; });
  auto m = Filesystem::Mount(path_);
  ASSERT_FALSE(m.has_value());
  EXPECT_TRUE(IsCorruptionOf(m.error(), bno, "orphan ino is 0"));
  ExpectFsckReports(bno, "orphan ino is 0");
}

TEST_F(HostileImageTest, RefcountRecordBelowTwo) {
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSERT_OK(WriteWhole(*fs, "/clone", {}));
    ASSIGN_OR_FAIL(File src, fs->Open("/ext", O_RDONLY));
    ASSIGN_OR_FAIL(File dst, fs->Open("/clone", O_RDWR));
    ASSERT_OK(dst.CloneRange(src, 0, 5 * kBlockSize, 0));
    ASSERT_OK(src.Close());
    ASSERT_OK(dst.Close());
    ASSERT_OK(fs->Unmount());
  }
  const media::RootBlock root = ReadRootBlock(path_);
  ASSERT_NE(root.refcount.block, 0u);
  uint64_t bno = EditLeafRecords(
      path_, root.refcount, media::kRefcountMagic, 0, [](const uint8_t*) { return true; },
      [](uint8_t* p) { reinterpret_cast<media::RefcountRec*>(p)->refcount = 1; });
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    EXPECT_TRUE(IsCorruptionOf(fs->Unlink("/clone"), bno, "refcount 1"));
    ExpectRestWorks(*fs);
    fs->Unmount().IgnoreError();
  }
  ExpectFsckReports(bno, "refcount 1");
}

TEST_F(HostileImageTest, RmapRecordOfAnUnknownOwner) {
  const media::RootBlock root = ReadRootBlock(path_);
  media::InodeRec ext = ReadInodeRec(path_, ino_["/ext"]);
  ASSERT_EQ(ext.data.levels, 1u);
  auto leaf = ReadImageBlock(path_, ext.data.block);
  const uint64_t ext_start = reinterpret_cast<const BmapRec*>(leaf.data() + sizeof(media::BtreeNodeHeader))->start_block;
  uint64_t bno = EditLeafRecords(
      path_, root.rmap, media::kRmapMagic, ext_start,
      [&](const uint8_t* p) { return reinterpret_cast<const media::RmapRec*>(p)->owner == ino_["/ext"]; },
      [](uint8_t* p) { reinterpret_cast<media::RmapRec*>(p)->owner = media::kOwnMetaBit | 99; });
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    EXPECT_TRUE(IsCorruptionOf(fs->Unlink("/ext"), bno, "owner"));
    ASSIGN_OR_FAIL(auto back, ReadWhole(*fs, "/g"));  // what does not change the rmap works
    EXPECT_TRUE(back == data_);
    fs->Unmount().IgnoreError();
  }
  ExpectFsckReports(bno, "owner");
}

// A superblock whose block count, times the block size, wraps past 2^64 to a
// size that fits the device: refused (the product was checked, not the count).
TEST_F(HostileImageTest, SuperblockBlockCountThatWraps) {
  for (uint64_t bno : {uint64_t{0}, kDevBlocks - 1})
    EditBlock(path_, bno, [](uint8_t* b) { reinterpret_cast<media::Superblock*>(b)->total_blocks = (1ull << 52) + 16; });
  auto m = Filesystem::Mount(path_);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().err(), EUCLEAN) << m.error().ToString();
  EXPECT_NE(m.error().message().find("filesystem size"), std::string::npos) << m.error().message();
  EXPECT_EQ(ReadInfo(path_).error().err(), EUCLEAN);
  auto r = Fsck(path_);
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(ProblemsMatching(*r, "filesystem size"), "") << JoinProblems(*r);
}

}  // namespace
}  // namespace udax
