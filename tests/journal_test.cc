// tests/journal_test.cc — journal/: a committed but unapplied record is
// replayed; a torn image is not; a header in the older form (crc over whole
// images, reserved = 0) is still replayed.
#include "journal/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "media/verify.h"
#include "util/crc32c.h"

namespace udax {
namespace {

constexpr uint64_t kSize = 8 << 20;
constexpr uint32_t kLogBlocks = 16;
constexpr uint64_t kHome = 100;  // a metadata block past the log

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/dev/shm/udax_journal_test_" + std::to_string(getpid());
    auto dev = PmemDevice::Open(path_, {.create = true, .size = kSize});
    ASSERT_TRUE(dev.has_value()) << dev.error().ToString();
    dev_ = std::move(*dev);
    journal_ = NewJournal();
    ASSERT_TRUE(journal_->Format().ok());
  }
  void TearDown() override {
    journal_.reset();
    dev_.reset();
    unlink(path_.c_str());
  }
  std::unique_ptr<Journal> NewJournal() {
    return std::make_unique<Journal>(dev_.get(), media::kLogStart, kLogBlocks, kSize / media::kBlockSize);
  }
  // Commits a root-block image with `tag` at kHome, then wipes the home copy
  // (as if the crash came between the two fences).
  void CommitUnapplied(uint32_t tag) {
    Transaction tx(journal_.get());
    auto img = tx.New(kHome);
    ASSERT_TRUE(img.has_value());
    auto* root = reinterpret_cast<media::RootBlock*>(*img);
    root->hdr.magic = media::kRootMagic;
    root->inode_count = tag;
    ASSERT_TRUE(tx.Commit().ok());
    ASSERT_TRUE(dev_->Fill(kHome * media::kBlockSize, 0, media::kBlockSize, true).ok());
  }
  uint8_t* Block(uint64_t bno) { return dev_->BlockPtr(bno, media::kBlockSize); }
  uint64_t HomeTag() { return reinterpret_cast<media::RootBlock*>(Block(kHome))->inode_count; }

  std::string path_;
  std::unique_ptr<PmemDevice> dev_;
  std::unique_ptr<Journal> journal_;
};

TEST_F(JournalTest, CommittedRecordIsReplayed) {
  CommitUnapplied(7);
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(HomeTag(), 7u);
  EXPECT_TRUE(media::VerifyRead(Block(kHome), kHome, media::kRootMagic, kSize / media::kBlockSize).ok());
}

TEST_F(JournalTest, TornImageIsNotReplayed) {
  CommitUnapplied(7);
  Block(media::kLogStart + 1)[2000] ^= 1;  // one bit of the image, not its crc
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(HomeTag(), 0u);
}

TEST_F(JournalTest, OlderHeaderFormIsReplayed) {
  CommitUnapplied(9);
  auto* h = reinterpret_cast<media::LogHeader*>(Block(media::kLogStart));
  h->reserved = 0;  // the crc covers the header and the whole image
  h->hdr.crc = Crc32cExtend(media::BlockCrc(h), Block(media::kLogStart + 1), media::kBlockSize);
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(HomeTag(), 9u);
}

}  // namespace
}  // namespace udax
