// tests/fs_badinput_test.cc — every kind of bad input: damaged metadata of
// each kind (superblocks, root block, journal header, inode / directory /
// extent-map / free-space / orphan B+tree nodes), structurally wrong blocks
// with valid checksums, garbage and truncated images, wrong magic, unknown
// feature bits, a busy device, mkfs over an existing filesystem, calls after
// unmount and on closed handles. Images are damaged with pwrite on the host
// file while unmounted. Nothing may crash; mount refuses (EUCLEAN) or the
// first access to the damaged block fails with EUCLEAN naming it; fsck lists it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "udax/check.h"
#include "test_util.h"
#include "util/crc32c.h"

namespace udax {
namespace {

using namespace udax::testutil;
using media::BtreeNodeHeader;
using media::BtreeRoot;
using media::kBlockSize;

constexpr uint64_t kDevBytes = 16 * kMiB;
constexpr uint64_t kDevBlocks = kDevBytes / kBlockSize;

// Superblock edit applied to both copies (block 0 and the last block).
void EditSuperblocks(const std::string& path, const std::function<void(media::Superblock*)>& edit) {
  for (uint64_t bno : {uint64_t{0}, kDevBlocks - 1})
    EditBlock(path, bno, [&](uint8_t* b) { edit(reinterpret_cast<media::Superblock*>(b)); });
}

// ---- fixture ------------------------------------------------------------------------

class BadImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dev_.path();
    MkfsOptions o;
    o.size = kDevBytes;
    ASSERT_OK(Filesystem::Mkfs(path_, o));
  }

  // A small populated filesystem; remembers inode numbers.
  void Populate() {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSERT_OK(fs->Mkdir("/d"));
    data_ = Pattern(5 * kBlockSize + 10, 3);
    ASSERT_OK(WriteWhole(*fs, "/d/f", data_));
    ASSERT_OK(WriteWhole(*fs, "/g", Bytes("gee")));
    root_ino_ = fs->GetStat("/")->ino;
    d_ino_ = fs->GetStat("/d")->ino;
    f_ino_ = fs->GetStat("/d/f")->ino;
    ASSERT_OK(fs->Unmount());
  }

  // Mount must fail with `err`; returns the message.
  std::string ExpectMountFails(int err) {
    auto m = Filesystem::Mount(path_);
    EXPECT_FALSE(m.has_value()) << "mount of a damaged image succeeded";
    if (m.has_value()) {
      (*m)->Unmount().IgnoreError();
      return "";
    }
    EXPECT_EQ(m.error().err(), err) << m.error().ToString();
    EXPECT_FALSE(m.error().message().empty());
    return m.error().message();
  }
  // Fsck must run and report problems; returns the report.
  FsckReport ExpectFsckDirty() {
    auto r = Fsck(path_);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    if (!r.has_value()) return {};
    EXPECT_FALSE(r->clean()) << "fsck found nothing wrong";
    // Checking again gives the same answer (fsck changes nothing it cannot fix).
    auto r2 = Fsck(path_, FsckOptions{.recover = false});
    EXPECT_TRUE(r2.has_value());
    if (r2.has_value()) {
      EXPECT_FALSE(r2->clean());
    }
    return *r;
  }
  void ExpectFsckClean() {
    auto r = Fsck(path_);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_TRUE(r->clean()) << JoinProblems(*r);
  }

  TempDevice dev_;
  std::string path_;
  std::vector<uint8_t> data_;
  uint64_t root_ino_ = 0, d_ino_ = 0, f_ino_ = 0;
};

// ---- superblocks ----------------------------------------------------------------------

TEST_F(BadImageTest, PrimarySuperblockDamagedFallsBackToSecondary) {
  Populate();
  FlipBytes(path_, 40, 8);  // total_blocks of the primary copy
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSIGN_OR_FAIL(auto back, ReadWhole(*fs, "/d/f"));
    EXPECT_TRUE(back == data_);
    ASSERT_OK(WriteWhole(*fs, "/new", Bytes("works")));
    ASSERT_OK(fs->Unmount());
  }
  FsckReport r = ExpectFsckDirty();
  EXPECT_NE(ProblemsMatching(r, "primary superblock"), "") << JoinProblems(r);
  EXPECT_EQ(r.problems.size(), 1u) << JoinProblems(r);
  // A wholly zeroed primary block behaves the same.
  WriteImageBlock(path_, 0, std::vector<uint8_t>(kBlockSize, 0));
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  EXPECT_EQ(ReadWhole(*fs, "/new")->size(), 5u);
}

TEST_F(BadImageTest, SecondarySuperblockDamaged) {
  Populate();
  FlipBytes(path_, (kDevBlocks - 1) * kBlockSize + 100, 4);
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  ASSERT_OK(fs->Unmount());
  FsckReport r = ExpectFsckDirty();
  EXPECT_NE(ProblemsMatching(r, "secondary superblock"), "") << JoinProblems(r);
}

TEST_F(BadImageTest, BothSuperblocksDamaged) {
  Populate();
  FlipBytes(path_, 16, 4);
  FlipBytes(path_, (kDevBlocks - 1) * kBlockSize + 16, 4);
  std::string msg = ExpectMountFails(EUCLEAN);
  EXPECT_NE(msg.find("superblock"), std::string::npos) << msg;
  FsckReport r = ExpectFsckDirty();
  EXPECT_NE(ProblemsMatching(r, "superblock"), "") << JoinProblems(r);
  EXPECT_FALSE(ReadInfo(path_).has_value());
}

TEST_F(BadImageTest, WrongMagic) {
  Populate();
  EditSuperblocks(path_, [](media::Superblock* sb) { sb->hdr.magic = media::Magic("XFSB"); });
  std::string msg = ExpectMountFails(EUCLEAN);
  EXPECT_NE(msg.find("magic"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a udax filesystem"), std::string::npos) << msg;
  ExpectFsckDirty();
  // mkfs does not take it for a udax filesystem, but it is data: -f only.
  Status st = Filesystem::Mkfs(path_, MkfsOptions{});
  EXPECT_EQ(st.err(), EEXIST) << st.ToString();
  EXPECT_NE(st.message().find("holds data that is not a udax filesystem"), std::string::npos) << st.message();
  EXPECT_OK(Filesystem::Mkfs(path_, MkfsOptions{.force = true}));
}

TEST_F(BadImageTest, BadGeometryWithValidCrc) {
  Populate();
  struct Edit {
    const char* what;
    std::function<void(media::Superblock*)> fn;
  } edits[] = {
      {"version", [](media::Superblock* sb) { sb->version = 99; }},
      {"block size", [](media::Superblock* sb) { sb->block_size = 8192; }},
      {"does not fit", [](media::Superblock* sb) { sb->total_blocks = kDevBlocks * 2; }},
      {"journal", [](media::Superblock* sb) { sb->log_blocks = 3; }},
      {"journal", [](media::Superblock* sb) { sb->log_blocks = static_cast<uint32_t>(kDevBlocks); }},
      {"root block", [](media::Superblock* sb) { sb->root_block = 7; }},
  };
  auto good0 = ReadImageBlock(path_, 0), good1 = ReadImageBlock(path_, kDevBlocks - 1);
  for (const auto& e : edits) {
    SCOPED_TRACE(e.what);
    EditSuperblocks(path_, e.fn);
    std::string msg = ExpectMountFails(EUCLEAN);
    EXPECT_NE(msg.find(e.what), std::string::npos) << msg;
    ExpectFsckDirty();
    WriteImageBlock(path_, 0, good0);
    WriteImageBlock(path_, kDevBlocks - 1, good1);
  }
  ExpectFsckClean();
}

// An image made before the journal wrote line records: a read-only mount
// leaves it alone; the first read-write mount marks it (incompat "linelog") before
// it writes any record, so an older udax refuses it instead of replaying an
// empty-looking log.
TEST_F(BadImageTest, FirstWritableMountMarksTheLineLogFeature) {
  Populate();
  auto features = [&] {
    media::Superblock sb;
    auto b = ReadImageBlock(path_, 0);
    std::memcpy(&sb, b.data(), sizeof sb);
    return sb.features_incompat;
  };
  ASSERT_NE(features() & media::kFeatureIncompatLineLog, 0u) << "mkfs sets it";
  EditSuperblocks(path_, [](media::Superblock* sb) { sb->features_incompat &= ~media::kFeatureIncompatLineLog; });
  {
    ASSIGN_OR_FAIL(auto ro, Filesystem::Mount(path_, MountOptions{.read_only = true}));
    EXPECT_TRUE(ro->GetStat("/d/f").has_value());
  }
  EXPECT_EQ(features() & media::kFeatureIncompatLineLog, 0u);
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    EXPECT_NE(features() & media::kFeatureIncompatLineLog, 0u);
    ASSERT_OK(fs->Mkdir("/new"));
    ASSERT_OK(fs->Unmount());
  }
  ExpectFsckClean();
  auto info = ReadInfo(path_);
  ASSERT_TRUE(info.has_value());
  EXPECT_NE(std::find(info->features.begin(), info->features.end(), "linelog"), info->features.end());
}

TEST_F(BadImageTest, UnknownIncompatFeatureRefused) {
  Populate();
  EditSuperblocks(path_, [](media::Superblock* sb) { sb->features_incompat |= 1ull << 17; });
  std::string msg = ExpectMountFails(EOPNOTSUPP);
  EXPECT_NE(msg.find("incompatible"), std::string::npos) << msg;
  EXPECT_NE(msg.find("20000"), std::string::npos) << "names the bit: " << msg;
  // Read-only is refused too.
  auto ro = Filesystem::Mount(path_, MountOptions{.read_only = true});
  EXPECT_FALSE(ro.has_value());
  if (!ro.has_value()) {
    EXPECT_EQ(ro.error().err(), EOPNOTSUPP);
  }
  // Only the primary copy with the bit: still refused (no silent fallback).
  EditSuperblocks(path_, [](media::Superblock* sb) { sb->features_incompat = media::kFeatureIncompatKnown; });
  EditBlock(path_, 0, [](uint8_t* b) {
    reinterpret_cast<media::Superblock*>(b)->features_incompat |= 1ull << 5;
  });
  ExpectMountFails(EOPNOTSUPP);
  EXPECT_FALSE(Fsck(path_).value().clean());
}

TEST_F(BadImageTest, UnknownRoCompatFeatureMountsReadOnly) {
  Populate();
  EditSuperblocks(path_, [](media::Superblock* sb) { sb->features_ro_compat |= 1ull << 3; });
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  // Reads work.
  ASSIGN_OR_FAIL(auto back, ReadWhole(*fs, "/d/f"));
  EXPECT_TRUE(back == data_);
  EXPECT_EQ(fs->ReadDir("/")->size(), 2u);
  // Every write fails with EROFS.
  EXPECT_ERRNO(fs->Open("/new", O_CREAT | O_RDWR), EROFS);
  EXPECT_ERRNO(fs->Open("/g", O_RDWR), EROFS);
  EXPECT_ERRNO(fs->Open("/g", O_WRONLY | O_TRUNC), EROFS);
  EXPECT_ERRNO(fs->Mkdir("/x"), EROFS);
  EXPECT_ERRNO(fs->Rmdir("/d"), EROFS);
  EXPECT_ERRNO(fs->Unlink("/g"), EROFS);
  EXPECT_ERRNO(fs->Rename("/g", "/h"), EROFS);
  EXPECT_ERRNO(fs->Link("/g", "/h"), EROFS);
  EXPECT_ERRNO(fs->Symlink("/g", "/h"), EROFS);
  EXPECT_ERRNO(fs->Chmod("/g", 0600), EROFS);
  EXPECT_ERRNO(fs->Chown("/g", 1, 1), EROFS);
  EXPECT_ERRNO(fs->Utimens("/g", {1, 1}, {2, 2}), EROFS);
  EXPECT_ERRNO(fs->Truncate("/g", 0), EROFS);
  {
    ASSIGN_OR_FAIL(File r, fs->Open("/g", O_RDONLY));
    char c[3];
    EXPECT_OK(r.Pread(c, 3, 0));
    EXPECT_OK(r.Fsync());
  }
  EXPECT_OK(fs->Sync());
  ASSERT_OK(fs->Unmount());
  // Nothing was written: the image still reads back the same.
  ASSIGN_OR_FAIL(auto fs2, Filesystem::Mount(path_, MountOptions{.read_only = true}));
  EXPECT_ERRNO(fs2->GetStat("/new"), ENOENT);
  // Unknown compat bits are ignored: read-write.
  ASSERT_OK(fs2->Unmount());
  EditSuperblocks(path_, [](media::Superblock* sb) {
    sb->features_ro_compat = 0;
    sb->features_compat = 1ull << 40;
  });
  ASSIGN_OR_FAIL(auto fs3, Filesystem::Mount(path_));
  EXPECT_OK(fs3->Mkdir("/rw"));
}

TEST_F(BadImageTest, ReadOnlyMountOption) {
  Populate();
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_, MountOptions{.read_only = true}));
  EXPECT_ERRNO(fs->Mkdir("/x"), EROFS);
  EXPECT_ERRNO(fs->Open("/x", O_CREAT | O_WRONLY), EROFS);
  ASSIGN_OR_FAIL(auto back, ReadWhole(*fs, "/d/f"));
  EXPECT_TRUE(back == data_);
  ASSERT_OK(fs->Unmount());
  // A dirty journal: a read-only mount replays it in memory only (see
  // readonly_test.cc for the image being left unchanged).
  {
    ASSIGN_OR_FAIL(auto rw, Filesystem::Mount(path_));
    ASSERT_OK(rw->Mkdir("/after"));
    CrashForTesting(*rw);
  }
  {
    ASSIGN_OR_FAIL(auto ro, Filesystem::Mount(path_, MountOptions{.read_only = true}));
    EXPECT_TRUE(ro->GetStat("/after").has_value());
  }
  ASSIGN_OR_FAIL(auto rw, Filesystem::Mount(path_));
  EXPECT_TRUE(rw->GetStat("/after").has_value());
}

// ---- root block and journal ------------------------------------------------------------

TEST_F(BadImageTest, RootBlockDamaged) {
  Populate();
  FlipBytes(path_, kBlockSize + 300, 2);
  std::string msg = ExpectMountFails(EUCLEAN);
  EXPECT_NE(msg.find("block 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("checksum"), std::string::npos) << msg;
  FsckReport r = ExpectFsckDirty();
  EXPECT_NE(ProblemsMatching(r, "root block"), "") << JoinProblems(r);
}

TEST_F(BadImageTest, RootBlockBadStructureWithValidCrc) {
  Populate();
  EditBlock(path_, 1, [](uint8_t* b) { reinterpret_cast<media::RootBlock*>(b)->freelist_count = 1000; });
  std::string msg = ExpectMountFails(EUCLEAN);
  EXPECT_NE(msg.find("free list"), std::string::npos) << msg;
  ExpectFsckDirty();
}

class JournalImageTest : public BadImageTest {
 protected:
  // Leaves a committed (and applied) transaction in the log: a crash after it.
  // rec_ holds the log's first record (the Mkdir's).
  // The log is checkpointed first, so the Mkdir's record is the log's first.
  void CrashWithCommittedLog() {
    Populate();
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSERT_OK(fs->Sync());
    ASSERT_OK(fs->Mkdir("/last"));
    CrashForTesting(*fs);
    media::LogRecordHeader h;
    auto first = ReadImage(path_, media::kLogStart * kBlockSize, sizeof h);
    std::memcpy(&h, first.data(), sizeof h);
    ASSERT_EQ(h.magic, media::kLogRecordMagic);
    ASSERT_GT(h.nblocks, 0u);
    rec_ = ReadImage(path_, media::kLogStart * kBlockSize, h.len);
    ASSERT_EQ(h.crc, RecordCrc()) << "test's crc model is out of date";
  }
  media::LogRecordHeader* Header() { return reinterpret_cast<media::LogRecordHeader*>(rec_.data()); }
  media::LogBlockDesc* Desc(uint32_t i) {
    return reinterpret_cast<media::LogBlockDesc*>(rec_.data() + sizeof(media::LogRecordHeader)) + i;
  }
  // The first descriptor that carries lines, and where its first line is.
  uint32_t FirstBlockWithLines(uint8_t** line) {
    uint64_t desc_end = sizeof(media::LogRecordHeader) + Header()->nblocks * sizeof(media::LogBlockDesc);
    uint8_t* p = rec_.data() + (desc_end + 63) / 64 * 64;
    for (uint32_t i = 0; i < Header()->nblocks; i++) {
      if (Desc(i)->line_mask) {
        *line = p;
        return i;
      }
    }
    ADD_FAILURE() << "no descriptor with lines";
    return 0;
  }
  uint32_t RecordCrc() {
    media::LogRecordHeader h = *Header();
    h.crc = 0;
    return Crc32cExtend(Crc32c(&h, sizeof h), rec_.data() + sizeof h, rec_.size() - sizeof h);
  }
  void WriteRecord(bool fix_crc) {
    if (fix_crc) Header()->crc = RecordCrc();
    WriteImage(path_, media::kLogStart * kBlockSize, rec_.data(), rec_.size());
  }
  std::vector<uint8_t> rec_;
};

TEST_F(JournalImageTest, CommittedLogReplaysCleanly) {
  CrashWithCommittedLog();
  auto info = ReadInfo(path_);
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  EXPECT_NE(info->journal_state.find("dirty"), std::string::npos) << info->journal_state;
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  EXPECT_TRUE(fs->GetStat("/last").has_value());
  ASSERT_OK(fs->Unmount());
  EXPECT_EQ(ReadInfo(path_)->journal_state, "clean");
  ExpectFsckClean();
}

TEST_F(JournalImageTest, HomeBlockOutsideMetadataAreaRefused) {
  CrashWithCommittedLog();
  for (uint64_t bad : {uint64_t{0}, uint64_t{media::kLogStart + 1}, kDevBlocks - 1, kDevBlocks + 100,
                       ~uint64_t{0}}) {
    SCOPED_TRACE(bad);
    std::vector<uint8_t> saved = rec_;
    Desc(0)->home = bad;
    WriteRecord(/*fix_crc=*/true);
    std::string msg = ExpectMountFails(EUCLEAN);
    EXPECT_NE(msg.find("journal"), std::string::npos) << msg;
    FsckReport r = ExpectFsckDirty();
    EXPECT_NE(ProblemsMatching(r, "journal"), "") << JoinProblems(r);
    rec_ = saved;
    WriteRecord(false);
  }
  ExpectFsckClean();
}

// A descriptor flag udax does not know: the record cannot be replayed as
// meant, so nothing is replayed and the mount refuses (it was ignored).
TEST_F(JournalImageTest, UnknownDescriptorFlagsRefused) {
  CrashWithCommittedLog();
  Desc(0)->flags |= 4;
  WriteRecord(/*fix_crc=*/true);
  std::string msg = ExpectMountFails(EUCLEAN);
  EXPECT_NE(msg.find("unknown descriptor flags"), std::string::npos) << msg;
  FsckReport r = ExpectFsckDirty();
  EXPECT_NE(ProblemsMatching(r, "unknown descriptor flags"), "") << JoinProblems(r);
}

// Replay checks the records of the blocks it rebuilds, not only their
// structure: the Mkdir's record, with the new directory's size made 2^50 in
// its line of the inode leaf (the record's crc fixed), is refused whole.
TEST_F(JournalImageTest, ReplayedRecordOutOfRangeRefused) {
  CrashWithCommittedLog();
  const uint64_t last_ino = ReadRootBlock(path_).next_ino;  // the home predates the Mkdir
  // An inode record j starts at byte 32 + 256 j of its leaf: in line 4 j at
  // offset 32, its size at offset 56 of the same line.
  uint64_t desc_end = sizeof(media::LogRecordHeader) + Header()->nblocks * sizeof(media::LogBlockDesc);
  uint8_t* line = rec_.data() + (desc_end + 63) / 64 * 64;
  bool edited = false;
  for (uint32_t i = 0; i < Header()->nblocks; i++) {
    for (uint64_t m = Desc(i)->line_mask; m; m &= m - 1, line += 64) {
      uint64_t ino;
      std::memcpy(&ino, line + 32, 8);
      if (std::countr_zero(m) % 4 == 0 && ino == last_ino) {
        uint64_t size = 1ull << 50;
        std::memcpy(line + 56, &size, 8);
        edited = true;
      }
    }
  }
  ASSERT_TRUE(edited) << "the new inode's record is not in the record's lines";
  WriteRecord(/*fix_crc=*/true);
  std::string msg = ExpectMountFails(EUCLEAN);
  EXPECT_NE(msg.find("does not verify"), std::string::npos) << msg;
  EXPECT_NE(msg.find("size " + std::to_string(1ull << 50)), std::string::npos) << msg;
  FsckReport r = ExpectFsckDirty();
  EXPECT_NE(ProblemsMatching(r, "does not verify"), "") << JoinProblems(r);
}

// A torn record never committed: the filesystem mounts as it was before it
// (its homes were checkpointed before the Mkdir, which only its record held).
TEST_F(JournalImageTest, TornHeaderIsNotReplayed) {
  CrashWithCommittedLog();
  Desc(0)->home ^= 0x40;  // crc no longer matches: the record never committed
  WriteRecord(/*fix_crc=*/false);
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  EXPECT_ERRNO(fs->GetStat("/last"), ENOENT);
  EXPECT_TRUE(fs->GetStat("/d/f").has_value());
  ASSERT_OK(fs->Unmount());
  ExpectFsckClean();
}

TEST_F(JournalImageTest, AbsurdBlockCountIsNotReplayed) {
  CrashWithCommittedLog();
  Header()->nblocks = 1u << 30;
  WriteRecord(/*fix_crc=*/false);
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  EXPECT_ERRNO(fs->GetStat("/last"), ENOENT);
  ASSERT_OK(fs->Unmount());
  ExpectFsckClean();
}

// A record whose crc matches but whose lines do not rebuild valid metadata
// for their home (crafted, or a bug that wrote it): here a descriptor that
// names a free block in the data area instead of its home. Replaying it would
// write metadata lines over that block. Mount must refuse, and the block must
// be left as it was.
TEST_F(JournalImageTest, SelfConsistentGarbageImageRefused) {
  CrashWithCommittedLog();
  uint8_t* line = nullptr;
  uint32_t i = FirstBlockWithLines(&line);
  const uint64_t target = kDevBlocks - 2;  // free: the filesystem is nearly empty
  auto before = ReadImageBlock(path_, target);
  Desc(i)->home = target;
  WriteRecord(/*fix_crc=*/true);
  auto m = Filesystem::Mount(path_);
  EXPECT_FALSE(m.has_value()) << "mounted after replaying a misdirected record";
  if (!m.has_value()) {
    EXPECT_EQ(m.error().err(), EUCLEAN) << m.error().ToString();
  }
  m = Status::Error(EIO, "dropped");
  EXPECT_TRUE(ReadImageBlock(path_, target) == before)
      << "replay wrote block " << target << " with lines that fail verification there";
}

// ---- B+tree nodes --------------------------------------------------------------------

struct NodeCase {
  const char* name;
  // Picks the block to damage (image unmounted, after Populate()).
  std::function<uint64_t(const std::string& path, uint64_t f_ino, uint64_t d_ino, uint64_t root_ino)> pick;
  // After a successful mount: an operation that must reach the damaged block.
  std::function<Status(Filesystem& fs)> access;
  bool mount_must_fail;
};

Status ReadF(Filesystem& fs) { return ReadWhole(fs, "/d/f").error(); }

std::vector<NodeCase> NodeCases() {
  return {
      {"inode_tree",
       [](const std::string& p, uint64_t, uint64_t, uint64_t root_ino) {
         return LeafFor(p, ReadRootBlock(p).inodes, media::kInodeMagic, root_ino);
       },
       nullptr, true},
      {"root_directory",
       [](const std::string& p, uint64_t, uint64_t, uint64_t root_ino) {
         return ReadInodeRec(p, root_ino).data.block;
       },
       [](Filesystem& fs) { return fs.GetStat("/g").error(); }, false},
      {"sub_directory",
       [](const std::string& p, uint64_t, uint64_t d_ino, uint64_t) {
         return ReadInodeRec(p, d_ino).data.block;
       },
       [](Filesystem& fs) { return fs.ReadDir("/d").error(); }, false},
      {"extent_map",
       [](const std::string& p, uint64_t f_ino, uint64_t, uint64_t) {
         return ReadInodeRec(p, f_ino).data.block;
       },
       ReadF, false},
      {"free_by_block",
       [](const std::string& p, uint64_t, uint64_t, uint64_t) { return ReadRootBlock(p).free_bno.block; },
       [](Filesystem& fs) { return WriteWhole(fs, "/new", Pattern(100 * kBlockSize, 1)); }, false},
      {"free_by_size",
       [](const std::string& p, uint64_t, uint64_t, uint64_t) { return ReadRootBlock(p).free_cnt.block; },
       [](Filesystem& fs) { return WriteWhole(fs, "/new", Pattern(100 * kBlockSize, 1)); }, false},
  };
}

class NodeDamageTest : public BadImageTest, public ::testing::WithParamInterface<int> {
 protected:
  const NodeCase& Case() {
    static const std::vector<NodeCase> cases = NodeCases();
    return cases[GetParam()];
  }
  void Run(const std::function<void(uint64_t bno)>& damage, const std::string& what) {
    Populate();
    const NodeCase& c = Case();
    uint64_t bno = c.pick(path_, f_ino_, d_ino_, root_ino_);
    ASSERT_GE(bno, media::kLogStart) << c.name;
    ASSERT_LT(bno, kDevBlocks - 1) << c.name;
    damage(bno);
    std::string bstr = "block " + std::to_string(bno);
    auto m = Filesystem::Mount(path_);
    if (c.mount_must_fail) {
      ASSERT_FALSE(m.has_value()) << c.name << ": mount succeeded";
    }
    if (m.has_value()) {
      ASSERT_TRUE(c.access) << c.name;
      Status st = c.access(**m);
      EXPECT_EQ(st.err(), EUCLEAN) << c.name << ": " << st.ToString();
      EXPECT_NE(st.message().find(bstr), std::string::npos) << st.message();
      EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
      // The filesystem keeps working for what does not touch the block, and
      // unmounts cleanly.
      EXPECT_TRUE((*m)->GetStat("/").has_value());
      EXPECT_OK((*m)->Unmount());
    } else {
      EXPECT_EQ(m.error().err(), EUCLEAN) << m.error().ToString();
      EXPECT_NE(m.error().message().find(bstr), std::string::npos) << m.error().message();
      EXPECT_NE(m.error().message().find(what), std::string::npos) << m.error().message();
    }
    FsckReport r = ExpectFsckDirty();
    EXPECT_NE(ProblemsMatching(r, bstr), "") << c.name << ":" << JoinProblems(r);
  }
};

TEST_P(NodeDamageTest, FlippedBytes) {
  Run([&](uint64_t bno) { FlipBytes(path_, bno * kBlockSize + 1000, 3); }, "checksum");
}

TEST_P(NodeDamageTest, TooManyRecordsWithValidCrc) {
  Run([&](uint64_t bno) {
    EditBlock(path_, bno, [](uint8_t* b) { reinterpret_cast<BtreeNodeHeader*>(b)->nrecs = 4000; });
  }, "too many records");
}

TEST_P(NodeDamageTest, WrongMagicWithValidCrc) {
  Run([&](uint64_t bno) {
    EditBlock(path_, bno, [](uint8_t* b) { reinterpret_cast<media::BlockHeader*>(b)->magic = media::kOrphanMagic; });
  }, "magic");
}

TEST_P(NodeDamageTest, MisdirectedBlockWithValidCrc) {
  Run([&](uint64_t bno) {
    EditBlock(path_, bno, [](uint8_t* b) { reinterpret_cast<media::BlockHeader*>(b)->blkno += 3; });
  }, "claims to be");
}

TEST_P(NodeDamageTest, ZeroedBlock) {
  Run([&](uint64_t bno) { WriteImageBlock(path_, bno, std::vector<uint8_t>(kBlockSize, 0)); }, "magic");
}

INSTANTIATE_TEST_SUITE_P(Kinds, NodeDamageTest, ::testing::Range(0, 6), [](const auto& info) {
  return std::string(NodeCases()[info.param].name);
});

TEST_F(BadImageTest, DirectoryKeysOutOfOrderWithValidCrc) {
  Populate();
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    for (int i = 0; i < 5; i++) ASSERT_OK(WriteWhole(*fs, "/d/e" + std::to_string(i), Bytes("x")));
    ASSERT_OK(fs->Unmount());
  }
  uint64_t bno = ReadInodeRec(path_, d_ino_).data.block;
  EditBlock(path_, bno, [](uint8_t* b) {
    auto* r0 = reinterpret_cast<media::DirRec*>(b + sizeof(BtreeNodeHeader));
    std::swap(r0[0], r0[1]);
  });
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  Status st = fs->ReadDir("/d").error();
  EXPECT_EQ(st.err(), EUCLEAN) << st.ToString();
  EXPECT_NE(st.message().find("out of order"), std::string::npos) << st.message();
  ASSERT_OK(fs->Unmount());
  ExpectFsckDirty();
}

// A directory entry naming an inode that does not exist.
TEST_F(BadImageTest, DanglingDirectoryEntry) {
  Populate();
  uint64_t bno = ReadInodeRec(path_, root_ino_).data.block;
  EditBlock(path_, bno, [&](uint8_t* b) {
    const auto* h = reinterpret_cast<BtreeNodeHeader*>(b);
    auto* recs = reinterpret_cast<media::DirRec*>(b + sizeof(BtreeNodeHeader));
    for (uint32_t i = 0; i < h->nrecs; i++)
      if (std::string(recs[i].name, recs[i].name_len) == "g") recs[i].ino = 999999;
  });
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  Status st = fs->GetStat("/g").error();
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.err() == EUCLEAN || st.err() == ENOENT) << st.ToString();
  EXPECT_EQ(fs->ReadDir("/")->size(), 2u);
  ASSERT_OK(fs->Unmount());
  FsckReport r = ExpectFsckDirty();
  EXPECT_NE(ProblemsMatching(r, "999999"), "") << JoinProblems(r);
}

// An extent record pointing at metadata (valid crc): reading or writing the
// file must not touch the superblock / root block / journal.
TEST_F(BadImageTest, ExtentPointingAtMetadata) {
  Populate();
  uint64_t bno = ReadInodeRec(path_, f_ino_).data.block;
  EditBlock(path_, bno, [&](uint8_t* b) {
    auto* e = reinterpret_cast<media::BmapRec*>(b + sizeof(BtreeNodeHeader));
    e[0].start_block = media::kRootBlockNo;
  });
  auto root_before = ReadImageBlock(path_, media::kRootBlockNo);
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    auto f = fs->Open("/d/f", O_RDWR);
    ASSERT_TRUE(f.has_value());
    char buf[16];
    Status rs = f->Pread(buf, sizeof buf, 0).error();
    EXPECT_EQ(rs.err(), EUCLEAN) << "read through an extent over the root block: " << rs.ToString();
    Status ws = f->Pwrite("clobber!", 8, 0).error();
    EXPECT_EQ(ws.err(), EUCLEAN) << "write through an extent over the root block: " << ws.ToString();
    ASSERT_OK(f->Close());
    fs->Unmount().IgnoreError();
  }
  auto root_after = ReadImageBlock(path_, media::kRootBlockNo);
  EXPECT_TRUE(std::memcmp(root_before.data() + 16, root_after.data() + 16, 64) == 0)
      << "file data was written over the root block";
  FsckReport r = ExpectFsckDirty();
  // The record check refuses the extent (a start block below the journal).
  EXPECT_NE(ProblemsMatching(r, "outside the device"), "") << JoinProblems(r);
}

TEST_F(BadImageTest, OrphanTreeDamaged) {
  Populate();
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSIGN_OR_FAIL(File f, fs->Open("/d/f", O_RDWR));
    ASSERT_OK(fs->Unlink("/d/f"));
    ASSERT_OK(fs->Sync());  // every block home: the log holds nothing to replay
    CrashForTesting(*fs);
  }
  uint64_t orphans_bno = ReadRootBlock(path_).orphans.block;
  ASSERT_NE(orphans_bno, 0u) << "the unlinked open file is on the orphan list";
  FlipBytes(path_, orphans_bno * kBlockSize + 500, 2);
  std::string msg = ExpectMountFails(EUCLEAN);
  EXPECT_NE(msg.find("block " + std::to_string(orphans_bno)), std::string::npos) << msg;
  ExpectFsckDirty();
}

// ---- whole-image garbage -----------------------------------------------------------

TEST(GarbageImageTest, RandomFilesOfManySizes) {
  std::mt19937_64 rng(7);
  for (uint64_t size : {uint64_t{0}, uint64_t{100}, uint64_t{4096}, uint64_t{65536},
                        uint64_t{4 * kMiB - 4096}, uint64_t{4 * kMiB}, uint64_t{16 * kMiB}}) {
    SCOPED_TRACE(size);
    TempDevice dev;
    {
      std::vector<uint8_t> g(size);
      for (auto& b : g) b = static_cast<uint8_t>(rng());
      int fd = ::open(dev.path().c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
      ASSERT_GE(fd, 0);
      if (size) {
        ASSERT_EQ(::write(fd, g.data(), g.size()), static_cast<ssize_t>(g.size()));
      }
      ::close(fd);
    }
    auto m = Filesystem::Mount(dev.path());
    ASSERT_FALSE(m.has_value());
    EXPECT_TRUE(m.error().err() == EUCLEAN || m.error().err() == EINVAL || m.error().err() == EIO)
        << m.error().ToString();
    EXPECT_FALSE(m.error().message().empty());
    auto r = Fsck(dev.path());
    if (r.has_value()) {
      EXPECT_FALSE(r->clean());
    }
    EXPECT_FALSE(ReadInfo(dev.path()).has_value());
    // The garbage is not mistaken for a filesystem by mkfs, nor clobbered
    // without -f: it is data.
    if (size >= 4 * kMiB) {
      Status st = Filesystem::Mkfs(dev.path(), MkfsOptions{});
      EXPECT_EQ(st.err(), EEXIST) << st.ToString();
      EXPECT_NE(st.message().find("holds data that is not a udax filesystem; -f overwrites it"), std::string::npos)
          << st.message();
      EXPECT_OK(Filesystem::Mkfs(dev.path(), MkfsOptions{.force = true}));
      EXPECT_OK(Filesystem::Mount(dev.path()));
    }
  }
}

TEST_F(BadImageTest, GarbageOverEverythingButTheSuperblocks) {
  Populate();
  std::mt19937_64 rng(11);
  for (uint64_t b = 1; b < kDevBlocks - 1; b++) {
    std::vector<uint8_t> g(kBlockSize);
    for (auto& c : g) c = static_cast<uint8_t>(rng());
    WriteImageBlock(path_, b, g);
  }
  ExpectMountFails(EUCLEAN);
  ExpectFsckDirty();
}

TEST_F(BadImageTest, TruncatedImage) {
  Populate();
  ASSERT_EQ(::truncate(path_.c_str(), kDevBytes / 2), 0);
  std::string msg = ExpectMountFails(EUCLEAN);
  EXPECT_NE(msg.find("does not fit"), std::string::npos) << msg;
  ExpectFsckDirty();
  // Truncated below the minimum size.
  ASSERT_EQ(::truncate(path_.c_str(), 64 * 1024), 0);
  ExpectMountFails(EUCLEAN);
  auto r = Fsck(path_);
  if (r.has_value()) {
    EXPECT_FALSE(r->clean());
  }
  // Truncated to nothing.
  ASSERT_EQ(::truncate(path_.c_str(), 0), 0);
  auto m = Filesystem::Mount(path_);
  EXPECT_FALSE(m.has_value());
}

TEST_F(BadImageTest, GrownImageStillMounts) {
  Populate();
  ASSERT_EQ(::truncate(path_.c_str(), kDevBytes + 3 * kMiB), 0);
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSIGN_OR_FAIL(auto back, ReadWhole(*fs, "/d/f"));
    EXPECT_TRUE(back == data_);
    ASSERT_OK(fs->Unmount());
  }
  ExpectFsckClean();
  // With the primary damaged too, the secondary (at the old end) is not found
  // (mount looks at the device's last block): refused, not misread.
  FlipBytes(path_, 16, 4);
  ExpectMountFails(EUCLEAN);
}

// ---- device use, mkfs -------------------------------------------------------------------

TEST_F(BadImageTest, DeviceBusy) {
  Populate();
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  auto second = Filesystem::Mount(path_);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().err(), EBUSY);
  EXPECT_NE(second.error().message().find("device busy"), std::string::npos) << second.error().message();
  EXPECT_ERRNO(Filesystem::Mount(path_, MountOptions{.read_only = true}), EBUSY);
  EXPECT_ERRNO(Filesystem::Mkfs(path_, MkfsOptions{.force = true}), EBUSY);
  EXPECT_ERRNO(Fsck(path_), EBUSY);
  // The mounted filesystem is unaffected.
  ASSIGN_OR_FAIL(auto back, ReadWhole(*fs, "/d/f"));
  EXPECT_TRUE(back == data_);
  ASSERT_OK(fs->Unmount());
  ASSIGN_OR_FAIL(auto again, Filesystem::Mount(path_));
  // After a crash the device is free again too.
  CrashForTesting(*again);
  EXPECT_OK(Filesystem::Mount(path_));
}

TEST_F(BadImageTest, MkfsOverExistingFilesystem) {
  Populate();
  MkfsOptions o;
  Status st = Filesystem::Mkfs(path_, o);
  EXPECT_EQ(st.err(), EEXIST) << st.ToString();
  o.size = kDevBytes;
  EXPECT_ERRNO(Filesystem::Mkfs(path_, o), EEXIST);
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    EXPECT_TRUE(fs->GetStat("/d/f").has_value()) << "refused mkfs changed nothing";
  }
  // Also found through the secondary superblock alone.
  FlipBytes(path_, 16, 4);
  EXPECT_ERRNO(Filesystem::Mkfs(path_, MkfsOptions{}), EEXIST);
  // Forced: a fresh, empty filesystem.
  ASSERT_OK(Filesystem::Mkfs(path_, MkfsOptions{.force = true}));
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  EXPECT_TRUE(fs->ReadDir("/")->empty());
  ASSERT_OK(fs->Unmount());
  ExpectFsckClean();
}

TEST(MkfsArgsTest, BadArguments) {
  TempDevice dev;
  EXPECT_ERRNO(Filesystem::Mkfs(dev.path(), MkfsOptions{}), EINVAL);  // missing, no size
  EXPECT_ERRNO(Filesystem::Mkfs(dev.path(), MkfsOptions{.size = 1 * kMiB}), EINVAL);
  EXPECT_ERRNO(Filesystem::Mkfs(dev.path(), MkfsOptions{.size = 4 * kMiB - 1}), EINVAL);
  EXPECT_ERRNO(Filesystem::Mount(dev.path()), ENOENT);
  EXPECT_ERRNO(Fsck(dev.path()), ENOENT);
  Status dir = Filesystem::Mkfs("/dev/shm", MkfsOptions{.size = 8 * kMiB});
  EXPECT_FALSE(dir.ok());
  auto mdir = Filesystem::Mount("/dev/shm");
  EXPECT_FALSE(mdir.has_value());
  EXPECT_ERRNO(Filesystem::Mkfs("/nonexistent-dir/x.img", MkfsOptions{.size = 8 * kMiB}), ENOENT);
  // The minimum size works; a size that is not a block multiple is rounded down.
  ASSERT_OK(Filesystem::Mkfs(dev.path(), MkfsOptions{.size = 4 * kMiB + 1000}));
  EXPECT_EQ(FileSize(dev.path()), 4 * kMiB);
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(dev.path()));
  ASSERT_OK(WriteWhole(*fs, "/x", Pattern(kMiB, 1)));
}

// ---- API misuse ------------------------------------------------------------------------

TEST_F(BadImageTest, CallsAfterUnmountFailCleanly) {
  Populate();
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  ASSIGN_OR_FAIL(File f, fs->Open("/d/f", O_RDWR));
  ASSERT_OK(fs->Unmount());
  EXPECT_ERRNO(fs->Unmount(), EINVAL);
  EXPECT_ERRNO(fs->Open("/g", O_RDONLY), ESHUTDOWN);
  EXPECT_ERRNO(fs->Open("/new", O_CREAT | O_RDWR), ESHUTDOWN);
  EXPECT_ERRNO(fs->Mkdir("/x"), ESHUTDOWN);
  EXPECT_ERRNO(fs->Rmdir("/d"), ESHUTDOWN);
  EXPECT_ERRNO(fs->Unlink("/g"), ESHUTDOWN);
  EXPECT_ERRNO(fs->Rename("/g", "/h"), ESHUTDOWN);
  EXPECT_ERRNO(fs->Link("/g", "/h"), ESHUTDOWN);
  EXPECT_ERRNO(fs->Symlink("/g", "/h"), ESHUTDOWN);
  EXPECT_ERRNO(fs->Readlink("/g"), ESHUTDOWN);
  EXPECT_ERRNO(fs->GetStat("/g"), ESHUTDOWN);
  EXPECT_ERRNO(fs->GetLstat("/g"), ESHUTDOWN);
  EXPECT_ERRNO(fs->Chmod("/g", 0), ESHUTDOWN);
  EXPECT_ERRNO(fs->Chown("/g", 0, 0), ESHUTDOWN);
  EXPECT_ERRNO(fs->Utimens("/g", {}, {}), ESHUTDOWN);
  EXPECT_ERRNO(fs->Truncate("/g", 0), ESHUTDOWN);
  EXPECT_ERRNO(fs->ReadDir("/"), ESHUTDOWN);
  EXPECT_ERRNO(fs->GetStatFs(), ESHUTDOWN);
  EXPECT_ERRNO(fs->Sync(), ESHUTDOWN);
  char buf[8];
  EXPECT_ERRNO(f.Pread(buf, 8, 0), ESHUTDOWN);
  EXPECT_ERRNO(f.Pwrite(buf, 8, 0), ESHUTDOWN);
  EXPECT_ERRNO(f.Pwrite(buf, 8, 1 << 20), ESHUTDOWN);
  EXPECT_ERRNO(f.Truncate(0), ESHUTDOWN);
  EXPECT_ERRNO(f.Fallocate(0, 0, 4096), ESHUTDOWN);
  EXPECT_ERRNO(f.Fsync(), ESHUTDOWN);
  EXPECT_ERRNO(f.GetStat(), ESHUTDOWN);
  EXPECT_ERRNO(f.Fiemap(), ESHUTDOWN);
  EXPECT_OK(f.Close());
  fs.reset();
  // Nothing above reached the device.
  ExpectFsckClean();
  ASSIGN_OR_FAIL(auto fs2, Filesystem::Mount(path_));
  EXPECT_ERRNO(fs2->GetStat("/x"), ENOENT);
  EXPECT_EQ(ReadWhole(*fs2, "/d/f")->size(), data_.size());
}

TEST_F(BadImageTest, CallsAfterCrashFailCleanly) {
  Populate();
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  ASSIGN_OR_FAIL(File f, fs->Open("/d/f", O_RDWR));
  CrashForTesting(*fs);
  EXPECT_ERRNO(fs->Mkdir("/x"), ESHUTDOWN);
  EXPECT_ERRNO(fs->GetStat("/"), ESHUTDOWN);
  EXPECT_ERRNO(f.Pwrite("x", 1, 0), ESHUTDOWN);
  char c;
  EXPECT_ERRNO(f.Pread(&c, 1, 0), ESHUTDOWN);
  EXPECT_ERRNO(fs->Unmount(), EINVAL);
}

TEST_F(BadImageTest, ClosedAndDefaultFileHandles) {
  Populate();
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  File none;
  EXPECT_FALSE(none.is_open());
  EXPECT_EQ(none.ino(), 0u);
  char buf[4];
  EXPECT_ERRNO(none.Pread(buf, 4, 0), EBADF);
  EXPECT_ERRNO(none.Pwrite(buf, 4, 0), EBADF);
  EXPECT_ERRNO(none.Read(buf, 4), EBADF);
  EXPECT_ERRNO(none.Write(buf, 4), EBADF);
  EXPECT_ERRNO(none.Seek(1), EBADF);
  EXPECT_ERRNO(none.Truncate(0), EBADF);
  EXPECT_ERRNO(none.Fallocate(0, 0, 1), EBADF);
  EXPECT_ERRNO(none.Fsync(), EBADF);
  EXPECT_ERRNO(none.Fdatasync(), EBADF);
  EXPECT_ERRNO(none.GetStat(), EBADF);
  EXPECT_ERRNO(none.Fiemap(), EBADF);
  EXPECT_OK(none.Close());
  ASSIGN_OR_FAIL(File f, fs->Open("/g", O_RDWR));
  ASSERT_OK(f.Close());
  EXPECT_FALSE(f.is_open());
  EXPECT_ERRNO(f.Pread(buf, 4, 0), EBADF);
  EXPECT_OK(f.Close());  // twice is fine
  // A moved-from handle is closed; the moved-to one works.
  ASSIGN_OR_FAIL(File a, fs->Open("/g", O_RDONLY));
  File b = std::move(a);
  EXPECT_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move)
  EXPECT_ERRNO(a.Pread(buf, 3, 0), EBADF);
  ASSIGN_OR_FAIL(size_t n, b.Pread(buf, 3, 0));
  EXPECT_EQ(n, 3u);
  // Directories cannot be read or written as files.
  ASSIGN_OR_FAIL(File d, fs->Open("/d", O_RDONLY));
  EXPECT_ERRNO(d.Pread(buf, 4, 0), EISDIR);
  // Zero-length operations.
  ASSIGN_OR_FAIL(File w, fs->Open("/g", O_RDWR));
  ASSIGN_OR_FAIL(size_t z, w.Pwrite(buf, 0, 1ull << 40));
  EXPECT_EQ(z, 0u);
  EXPECT_EQ(w.GetStat()->size, 3u) << "a zero-length write does not extend";
}

}  // namespace
}  // namespace udax

namespace udax {
namespace {

// MkfsOptions::log_blocks (udax mkfs -l) sizes the journal; values that cannot
// be a journal are refused before anything is written (it was ignored).
TEST(MkfsOptionsTest, LogBlocksIsHonouredOrRefused) {
  testutil::TempDevice dev("logblocks");
  ASSERT_OK(Filesystem::Mkfs(dev.path(), MkfsOptions{.size = 16 * testutil::kMiB, .log_blocks = 8}));
  auto info = ReadInfo(dev.path());
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  EXPECT_EQ(info->log_blocks, 8u);
  for (uint32_t bad : {1u, 7u, media::kLogMaxBlocks + 2, 100000u}) {
    SCOPED_TRACE(bad);
    Status st = Filesystem::Mkfs(dev.path(), MkfsOptions{.size = 16 * testutil::kMiB, .force = true, .log_blocks = bad});
    EXPECT_EQ(st.err(), EINVAL) << st.ToString();
    EXPECT_EQ(ReadInfo(dev.path())->log_blocks, 8u) << "the existing filesystem is untouched";
  }
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(dev.path()));
  ASSERT_OK(testutil::WriteWhole(*fs, "/f", testutil::Pattern(64 * 1024, 1)));
  ASSERT_OK(fs->Unmount());
}

}  // namespace
}  // namespace udax
