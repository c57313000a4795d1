// tests/readonly_test.cc — read-only really is read-only, and recovery never
// destroys a linked file:
//  * a read-only mount (and fsck -n, info) opens the device read-only with a
//    shared lock: any number at once, none beside a read-write user and no
//    read-write user beside them (EBUSY "device busy");
//  * every write through a read-only mount is EROFS, and the image's bytes
//    are unchanged afterwards — also for a dirty journal, which a read-only
//    mount and fsck -n replay in memory only;
//  * an orphan record naming a linked (or missing) inode frees nothing: a
//    read-write mount drops the record and reports it, fsck reports it.
// Images are compared byte for byte before and after (16 MiB each).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "udax/check.h"
#include "test_util.h"

namespace udax {
namespace {

using namespace udax::testutil;
using media::kBlockSize;

constexpr uint64_t kDevBytes = 16 * kMiB;

bool Contains(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

class ReadOnlyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dev_.path();
    ASSERT_OK(Filesystem::Mkfs(path_, MkfsOptions{.size = kDevBytes}));
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSERT_OK(fs->Mkdir("/d"));
    data_ = Pattern(5 * kBlockSize + 10, 7);
    ASSERT_OK(WriteWhole(*fs, "/d/f", data_));
    d_ino_ = fs->GetStat("/d")->ino;
    f_ino_ = fs->GetStat("/d/f")->ino;
    ASSERT_OK(fs->Unmount());
  }

  std::vector<uint8_t> Image() { return ReadImage(path_, 0, kDevBytes); }

  // The committed state the tests build: /d/f, and whatever they add.
  void ExpectContent(Filesystem& fs) {
    ASSIGN_OR_FAIL(auto back, ReadWhole(fs, "/d/f"));
    EXPECT_TRUE(back == data_);
  }

  // Adds orphan records for `inos` (linked or not) in a committed
  // transaction: each record well-formed, its block's crc valid.
  void AddStaleOrphans(std::initializer_list<uint64_t> inos) {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    FsImpl* impl = ImplOf(*fs);
    {
      MetaWriteLock lk(impl->meta_mu());
      ASSIGN_OR_FAIL(auto t, impl->BeginTxn());
      for (uint64_t ino : inos) ASSERT_OK(impl->store().AddOrphan(*t, ino));
      ASSERT_OK(impl->CommitTxn(*t));
    }
    ASSERT_OK(fs->Unmount());
  }

  TempDevice dev_;
  std::string path_;
  std::vector<uint8_t> data_;
  uint64_t d_ino_ = 0, f_ino_ = 0;
};

// ---- recovery never destroys a linked file ------------------------------------

TEST_F(ReadOnlyTest, OrphanRecordForLinkedFileFreesNothingAtMount) {
  AddStaleOrphans({f_ino_});
  std::vector<std::string> notes;
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_, MountOptions{.on_note = [&](const std::string& n) {
                                                    notes.push_back(n);
                                                  }}));
    ExpectContent(*fs);
    ASSIGN_OR_FAIL(Stat st, fs->GetStat("/d/f"));
    EXPECT_EQ(st.nlink, 1u);
    ASSERT_OK(fs->Unmount());
  }
  EXPECT_TRUE(Contains(notes, "orphan record names inode " + std::to_string(f_ino_) + ", which has 1 link"))
      << "the mount reports the stale record (" << notes.size() << " notes)";
  // The record is gone (dropped in a transaction); the file stays.
  ASSIGN_OR_FAIL(FsckReport r, Fsck(path_));
  EXPECT_TRUE(r.clean()) << JoinProblems(r);
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  ExpectContent(*fs);
}

TEST_F(ReadOnlyTest, FsckReportsOrphanRecordForLinkedFileAndKeepsIt) {
  AddStaleOrphans({f_ino_});
  const std::string want = "orphan record names inode " + std::to_string(f_ino_) + ", which has 1 link";
  // -n: reported, nothing written.
  auto before = Image();
  ASSIGN_OR_FAIL(FsckReport n, Fsck(path_, FsckOptions{.recover = false}));
  EXPECT_TRUE(Contains(n.problems, want)) << JoinProblems(n);
  EXPECT_TRUE(Image() == before) << "fsck -n wrote to the image";
  // With recovery: reported as what recovery repaired; the file survives it.
  ASSIGN_OR_FAIL(FsckReport r, Fsck(path_));
  EXPECT_TRUE(Contains(r.problems, "recovery: " + want)) << JoinProblems(r);
  EXPECT_EQ(r.files, 1u);
  ASSIGN_OR_FAIL(FsckReport again, Fsck(path_));
  EXPECT_TRUE(again.clean()) << JoinProblems(again);
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  ExpectContent(*fs);
}

TEST_F(ReadOnlyTest, OrphanRecordForLinkedDirectoryOrMissingInodeFreesNothing) {
  AddStaleOrphans({d_ino_, 999999});
  ASSIGN_OR_FAIL(FsckReport n, Fsck(path_, FsckOptions{.recover = false}));
  EXPECT_TRUE(Contains(n.problems, "orphan record names inode " + std::to_string(d_ino_) + ", which has 2 links"))
      << JoinProblems(n);
  EXPECT_TRUE(Contains(n.problems, "orphan record names inode 999999, which does not exist")) << JoinProblems(n);
  std::vector<std::string> notes;
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_, MountOptions{.on_note = [&](const std::string& s) {
                                                    notes.push_back(s);
                                                  }}));
    ExpectContent(*fs);
    EXPECT_TRUE(fs->GetStat("/d").has_value());
  }
  EXPECT_EQ(notes.size(), 2u);
  ASSIGN_OR_FAIL(FsckReport r, Fsck(path_));
  EXPECT_TRUE(r.clean()) << JoinProblems(r);
}

// A real orphan (unlinked while open, then a crash) is still reclaimed.
TEST_F(ReadOnlyTest, UnlinkedOrphanIsStillReclaimed) {
  uint64_t free_before;
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    free_before = fs->GetStatFs()->free_blocks;
    ASSERT_OK(WriteWhole(*fs, "/big", Pattern(64 * kBlockSize, 9)));
    ASSIGN_OR_FAIL(File f, fs->Open("/big", O_RDONLY));
    ASSERT_OK(fs->Unlink("/big"));
    CrashForTesting(*fs);
  }
  // fsck -n sees the orphan as it is: unlinked, owning its blocks; no leak.
  auto before = Image();
  ASSIGN_OR_FAIL(FsckReport n, Fsck(path_, FsckOptions{.recover = false}));
  EXPECT_TRUE(n.clean()) << JoinProblems(n);
  EXPECT_TRUE(Contains(n.notes, "1 orphan inode(s)")) << n.notes.size();
  EXPECT_TRUE(Image() == before);
  std::vector<std::string> notes;
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_, MountOptions{.on_note = [&](const std::string& s) {
                                                  notes.push_back(s);
                                                }}));
  EXPECT_TRUE(notes.empty());
  EXPECT_EQ(fs->GetStatFs()->free_blocks, free_before);
  ExpectContent(*fs);
}

// ---- shared and exclusive opens ---------------------------------------------------

TEST_F(ReadOnlyTest, ReadersShareTheDeviceAndExcludeAWriter) {
  const MountOptions ro{.read_only = true};
  ASSIGN_OR_FAIL(auto a, Filesystem::Mount(path_, ro));
  ASSIGN_OR_FAIL(auto b, Filesystem::Mount(path_, ro));
  ExpectContent(*a);
  ExpectContent(*b);
  ASSIGN_OR_FAIL(FsckReport n, Fsck(path_, FsckOptions{.recover = false}));
  EXPECT_TRUE(n.clean()) << JoinProblems(n);
  EXPECT_TRUE(ReadInfo(path_).has_value());
  // A writer is refused while any reader holds the device.
  auto rw = Filesystem::Mount(path_);
  ASSERT_FALSE(rw.has_value());
  EXPECT_EQ(rw.error().err(), EBUSY);
  EXPECT_NE(rw.error().message().find("device busy"), std::string::npos) << rw.error().ToString();
  EXPECT_ERRNO(Fsck(path_), EBUSY);
  EXPECT_ERRNO(Filesystem::Mkfs(path_, MkfsOptions{.force = true}), EBUSY);
  ASSERT_OK(a->Unmount());
  EXPECT_ERRNO(Filesystem::Mount(path_), EBUSY);
  ASSERT_OK(b->Unmount());
  // And readers are refused while the writer holds it.
  ASSIGN_OR_FAIL(auto w, Filesystem::Mount(path_));
  auto r = Filesystem::Mount(path_, ro);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().err(), EBUSY);
  EXPECT_NE(r.error().message().find("device busy"), std::string::npos) << r.error().ToString();
  EXPECT_ERRNO(Fsck(path_, FsckOptions{.recover = false}), EBUSY);
  EXPECT_ERRNO(ReadInfo(path_), EBUSY);
}

// ---- nothing written ----------------------------------------------------------------

TEST_F(ReadOnlyTest, EveryWriteIsRefusedAndTheImageUnchanged) {
  auto before = Image();
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_, MountOptions{.read_only = true}));
    EXPECT_ERRNO(fs->Mkdir("/x"), EROFS);
    EXPECT_ERRNO(fs->Open("/x", O_CREAT | O_WRONLY), EROFS);
    EXPECT_ERRNO(fs->Open("/d/f", O_RDWR), EROFS);
    EXPECT_ERRNO(fs->Open("/d/f", O_RDONLY | O_TRUNC), EROFS);
    EXPECT_ERRNO(fs->Unlink("/d/f"), EROFS);
    EXPECT_ERRNO(fs->Rename("/d/f", "/g"), EROFS);
    EXPECT_ERRNO(fs->Link("/d/f", "/g"), EROFS);
    EXPECT_ERRNO(fs->Symlink("/d/f", "/s"), EROFS);
    EXPECT_ERRNO(fs->Chmod("/d/f", 0600), EROFS);
    EXPECT_ERRNO(fs->Truncate("/d/f", 0), EROFS);
    EXPECT_ERRNO(fs->Rmdir("/d"), EROFS);
    EXPECT_ERRNO(fs->Utimens("/d/f", Timespec{1, 0}, Timespec{1, 0}), EROFS);
    // Reads work, through read() and a DAX mapping (read-only).
    ASSIGN_OR_FAIL(File f, fs->Open("/d/f", O_RDONLY));
    EXPECT_ERRNO(f.Map(0, 2 * kBlockSize, Prot::kReadWrite), EACCES);
    ASSIGN_OR_FAIL(Mapping m, f.Map(0, 2 * kBlockSize, Prot::kRead));
    EXPECT_EQ(std::memcmp(m.data(), data_.data(), 2 * kBlockSize), 0);
    EXPECT_OK(f.Fsync());
    EXPECT_OK(fs->Sync());
    ASSERT_OK(f.Close());
    ExpectContent(*fs);
    ASSERT_OK(fs->Unmount());
  }
  EXPECT_TRUE(Image() == before) << "a read-only mount wrote to the image";
}

// A crash after commits, before any checkpoint: the journal holds the only
// copy of the last changes. Read-only users see them and write nothing.
TEST_F(ReadOnlyTest, DirtyJournalIsReplayedInMemoryOnly) {
  const std::vector<uint8_t> more = Pattern(3 * kBlockSize, 11);
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSERT_OK(fs->Mkdir("/after"));
    ASSERT_OK(WriteWhole(*fs, "/after/more", more));
    ASSERT_OK(fs->Rename("/d/f", "/after/f"));
    CrashForTesting(*fs);
  }
  ASSIGN_OR_FAIL(FsInfo info, ReadInfo(path_));
  ASSERT_EQ(info.journal_state.rfind("dirty", 0), 0u) << info.journal_state;
  auto before = Image();
  {
    ASSIGN_OR_FAIL(auto a, Filesystem::Mount(path_, MountOptions{.read_only = true}));
    ASSIGN_OR_FAIL(auto b, Filesystem::Mount(path_, MountOptions{.read_only = true}));
    for (Filesystem* fs : {a.get(), b.get()}) {
      ASSIGN_OR_FAIL(auto f, ReadWhole(*fs, "/after/f"));
      EXPECT_TRUE(f == data_);
      ASSIGN_OR_FAIL(auto m, ReadWhole(*fs, "/after/more"));
      EXPECT_TRUE(m == more);
      EXPECT_ERRNO(fs->GetStat("/d/f"), ENOENT);
    }
    ASSIGN_OR_FAIL(FsckReport n, Fsck(path_, FsckOptions{.recover = false}));
    EXPECT_TRUE(n.clean()) << JoinProblems(n);
    EXPECT_TRUE(Contains(n.notes, "checked as replayed")) << n.notes.size();
    EXPECT_EQ(n.files, 2u);
    ASSERT_OK(a->Unmount());
  }
  EXPECT_TRUE(Image() == before) << "a read-only user wrote to the image";
  // The journal was left for the read-write mount, which sees everything.
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
  ASSIGN_OR_FAIL(auto f, ReadWhole(*fs, "/after/f"));
  EXPECT_TRUE(f == data_);
  ASSIGN_OR_FAIL(auto m, ReadWhole(*fs, "/after/more"));
  EXPECT_TRUE(m == more);
  ASSERT_OK(fs->Unmount());
  ASSIGN_OR_FAIL(FsckReport r, Fsck(path_));
  EXPECT_TRUE(r.clean()) << JoinProblems(r);
}

// Memory failure on a read-only mount: recorded in core, never on the media.
TEST_F(ReadOnlyTest, MemoryFailureOnReadOnlyMountWritesNothing) {
  uint64_t devoff;
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_));
    ASSIGN_OR_FAIL(File f, fs->Open("/d/f", O_RDONLY));
    ASSIGN_OR_FAIL(auto ext, f.Fiemap());
    ASSERT_FALSE(ext.empty());
    devoff = ext[0].device_offset;
  }
  auto before = Image();
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(path_, MountOptions{.read_only = true}));
    ASSERT_OK(fs->InjectPoison(devoff, kBlockSize));
    EXPECT_ERRNO(ReadWhole(*fs, "/d/f"), EIO);
    ASSERT_OK(fs->Unmount());
  }
  EXPECT_TRUE(Image() == before);
}

}  // namespace
}  // namespace udax
