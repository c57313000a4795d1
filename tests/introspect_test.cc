// tests/introspect_test.cc — what the public API tells beyond POSIX:
// Filesystem::QueryRmap (the owners of device bytes, as the tool's `io rmap`
// and the bench read them) and Filesystem::GetStats (counters since mount).
// Each answer is checked against the internals it is made from.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "test_util.h"
#include "udax/fs.h"

namespace udax {
namespace {

using testutil::Pattern;

class IntrospectTest : public testutil::FsFixture {};

TEST_F(IntrospectTest, QueryRmapNamesAFilesDataInBytes) {
  ASSIGN_OR_FAIL(File f, fs_->Open("/f", O_CREAT | O_RDWR));
  const std::vector<uint8_t> data = Pattern(3 * kBlockSize, 1);
  ASSIGN_OR_FAIL(size_t n, f.Pwrite(data.data(), data.size(), 2 * kBlockSize));
  ASSERT_EQ(n, data.size());
  ASSIGN_OR_FAIL(std::vector<FileExtent> ext, f.Fiemap());
  ASSERT_EQ(ext.size(), 1u);

  // An unaligned range inside the extent's middle block: that block's owner
  // record is the whole extent.
  ASSIGN_OR_FAIL(std::vector<BlockOwner> owners, fs_->QueryRmap(ext[0].device_offset + kBlockSize + 100, 10));
  ASSERT_EQ(owners.size(), 1u);
  const BlockOwner& o = owners[0];
  EXPECT_EQ(o.kind, BlockOwner::Kind::kFileData);
  EXPECT_EQ(o.ino, f.ino());
  EXPECT_EQ(o.device_offset, ext[0].device_offset);
  EXPECT_EQ(o.length, ext[0].length);
  EXPECT_EQ(o.file_offset, 2 * kBlockSize);
  EXPECT_STREQ(o.metadata, "");

  // The same answer as the rmap records themselves.
  ASSIGN_OR_FAIL(auto recs, ImplOf(*fs_)->QueryRmap(ext[0].device_offset / kBlockSize + 1, 1));
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].owner, o.ino);
  EXPECT_EQ(recs[0].start * kBlockSize, o.device_offset);
  EXPECT_EQ(recs[0].offset * kBlockSize, o.file_offset);
}

TEST_F(IntrospectTest, QueryRmapNamesMetadataAndTreeNodes) {
  ASSIGN_OR_FAIL(std::vector<BlockOwner> first, fs_->QueryRmap(0, kBlockSize));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].kind, BlockOwner::Kind::kMetadata);
  EXPECT_STREQ(first[0].metadata, "static");
  EXPECT_EQ(first[0].ino, 0u);

  // A directory with entries has an entry-tree node owned by its inode.
  ASSERT_OK(fs_->Mkdir("/d"));
  for (int i = 0; i < 4; i++) {
    ASSIGN_OR_FAIL(File f, fs_->Open("/d/f" + std::to_string(i), O_CREAT | O_RDWR));
  }
  ASSIGN_OR_FAIL(Stat d, fs_->GetStat("/d"));
  ASSIGN_OR_FAIL(StatFs sf, fs_->GetStatFs());
  ASSIGN_OR_FAIL(std::vector<BlockOwner> all, fs_->QueryRmap(0, sf.total_blocks * kBlockSize));
  bool dir_node = false, ag = false;
  uint64_t prev = 0;
  for (const BlockOwner& o : all) {
    EXPECT_GE(o.device_offset, prev) << "not in device order";
    prev = o.device_offset;
    dir_node |= o.kind == BlockOwner::Kind::kFileMetadata && o.ino == d.ino;
    ag |= o.kind == BlockOwner::Kind::kMetadata && std::string(o.metadata) == "ag";
  }
  EXPECT_TRUE(dir_node) << "no entry-tree node of /d among " << all.size() << " owners";
  EXPECT_TRUE(ag) << "no free-space/rmap tree node";
}

TEST_F(IntrospectTest, QueryRmapRefusesEmptyOrOutsideRanges) {
  ASSIGN_OR_FAIL(StatFs sf, fs_->GetStatFs());
  const uint64_t dev = sf.total_blocks * kBlockSize;
  EXPECT_ERRNO(fs_->QueryRmap(0, 0).status(), EINVAL);
  EXPECT_ERRNO(fs_->QueryRmap(dev, 1).status(), EINVAL);
  EXPECT_ERRNO(fs_->QueryRmap(dev - kBlockSize, kBlockSize + 1).status(), EINVAL);
  EXPECT_ERRNO(fs_->QueryRmap(UINT64_MAX - 10, 100).status(), EINVAL);
  EXPECT_OK(fs_->QueryRmap(dev - 1, 1).status());
}

TEST_F(IntrospectTest, StatsCountCommitsFencesAndCheckpoints) {
  ASSIGN_OR_FAIL(FsStats s0, fs_->GetStats());
  FsImpl* impl = ImplOf(*fs_);
  EXPECT_EQ(s0.commits, impl->journal()->commits());
  EXPECT_EQ(s0.fences, impl->device()->fence_count());
  EXPECT_EQ(s0.fences_per_commit, Journal::kFencesPerCommit);
  EXPECT_EQ(s0.max_txn_blocks, impl->journal()->max_blocks_per_txn());
  EXPECT_EQ(s0.data_start, impl->data_start());
  EXPECT_EQ(s0.free_list_blocks, AllFreeBlocks() - FreeBlocks() - Allocator::kReserveBlocks);
  EXPECT_LE(s0.free_list_low, s0.free_list_high);

  ASSERT_OK(fs_->Mkdir("/d"));
  ASSIGN_OR_FAIL(FsStats s1, fs_->GetStats());
  EXPECT_EQ(s1.commits, s0.commits + 1);
  EXPECT_GE(s1.fences, s0.fences + s1.fences_per_commit);
  EXPECT_GT(s1.last_commit_blocks, 0u);
  EXPECT_LE(s1.last_commit_blocks, s1.max_txn_blocks);

  // A commit of more blocks says so.
  ASSIGN_OR_FAIL(File f, fs_->Open("/big", O_CREAT | O_RDWR));
  std::vector<uint8_t> blk(kBlockSize, 7);
  for (uint64_t i = 0; i < 64; i++) ASSERT_OK(f.Pwrite(blk.data(), blk.size(), 2 * i * kBlockSize).status());
  ASSERT_OK(fs_->Unlink("/big"));
  ASSERT_OK(f.Close());
  ASSIGN_OR_FAIL(FsStats s2, fs_->GetStats());
  EXPECT_GT(s2.last_commit_blocks, s1.last_commit_blocks);

  ASSERT_OK(fs_->Sync());
  ASSIGN_OR_FAIL(FsStats s3, fs_->GetStats());
  EXPECT_EQ(s3.checkpoints, s2.checkpoints + 1);

  UnmountNow();
}

TEST_F(IntrospectTest, StatsAfterUnmountFail) {
  std::unique_ptr<Filesystem> fs = std::move(fs_);
  ASSERT_OK(fs->Unmount());
  EXPECT_FALSE(fs->GetStats().has_value());
  EXPECT_FALSE(fs->QueryRmap(0, kBlockSize).has_value());
}

}  // namespace
}  // namespace udax
