// tests/fs_regression_test.cc — one test per bug found by the CLI and
// differential work, each failing before its fix.
#include <fcntl.h>

#include "test_util.h"
#include "udax/fs.h"

namespace udax {
namespace {

using testutil::kMiB;

class FsRegressionTest : public testutil::FsFixture {};

// fiemap on a directory read the entry tree as an extent map (EUCLEAN).
TEST_F(FsRegressionTest, FiemapOfDirectoryIsEmptyNotCorruption) {
  ASSERT_OK(fs_->Mkdir("/d"));
  for (int i = 0; i < 50; i++) ASSERT_OK(fs_->Open("/d/f" + std::to_string(i), O_CREAT | O_RDWR));
  ASSIGN_OR_FAIL(File d, fs_->Open("/d", O_RDONLY));
  ASSIGN_OR_FAIL(auto exts, d.Fiemap());
  EXPECT_TRUE(exts.empty());
}

// Removing or renaming the root gave EINVAL; Linux gives EBUSY (rmdir, rename)
// and EISDIR (unlink).
// Contract (util/owned_mutex.h): a writing transaction begins only under
// meta_mu_ held exclusive — one begun without it could interleave with
// another writer's and corrupt the journal's images.
TEST_F(FsRegressionTest, ContractTransactionWithoutTheMetadataLockDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  EXPECT_DEATH({ auto t = ImplOf(*fs_)->BeginTxn(); }, "holds the lock exclusively");
}

TEST_F(FsRegressionTest, RootCannotBeRemovedOrRenamed) {
  EXPECT_ERRNO(fs_->Rmdir("/"), EBUSY);
  EXPECT_ERRNO(fs_->Unlink("/"), EISDIR);
  EXPECT_ERRNO(fs_->Rename("/", "/x"), EBUSY);
}

}  // namespace
}  // namespace udax
