// tests/journal_test.cc — journal/: the chain of line records is replayed in
// order (revokes honoured, unchanged blocks never logged, wraps and records of
// an earlier mount kept out); a torn or crafted record is not; a log in the
// older whole-image form is still replayed.
#include "journal/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <vector>

#include "media/verify.h"
#include "test_util.h"
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

TEST_F(JournalTest, TornLineIsNotReplayed) {
  CommitUnapplied(7);
  // The record: a 64-byte header, one 32-byte descriptor (padded to 128),
  // then the lines. One bit of a line:
  Block(media::kLogStart)[128 + 20] ^= 1;
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(HomeTag(), 0u);
}

// A log written by an older udax: one header naming home blocks, then whole
// block images (here the form whose crc covers the whole images).
TEST_F(JournalTest, OlderWholeImageFormIsReplayed) {
  std::vector<uint8_t> img(media::kBlockSize, 0);
  auto* root = reinterpret_cast<media::RootBlock*>(img.data());
  root->hdr.magic = media::kRootMagic;
  root->inode_count = 9;
  ASSERT_TRUE(media::VerifyAndSeal(img.data(), kHome, kSize / media::kBlockSize).ok());
  std::vector<uint8_t> hb(media::kBlockSize, 0);
  auto* h = reinterpret_cast<media::LogHeader*>(hb.data());
  h->hdr.magic = media::kLogMagic;
  h->hdr.blkno = media::kLogStart;
  h->seq = 5;
  h->nblocks = 1;
  h->reserved = 0;
  h->homes[0] = kHome;
  h->hdr.crc = Crc32cExtend(media::BlockCrc(h), img.data(), media::kBlockSize);
  ASSERT_TRUE(dev_->CopyIn((media::kLogStart + 1) * media::kBlockSize, img.data(), img.size(), false).ok());
  ASSERT_TRUE(dev_->CopyIn(media::kLogStart * media::kBlockSize, hb.data(), hb.size(), true).ok());
  auto j = NewJournal();
  auto n = j->Recover(false);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(HomeTag(), 9u);
  EXPECT_EQ(j->seq(), 6u);
  auto again = NewJournal()->Recover(false);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 0u) << "the log was cleared";
}


// ---- commit protocol, recovery and transaction semantics -------------------------
// (a fresh device per test, through tests/test_util.h)

class JournalProtocolTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kBlocks = kSize / media::kBlockSize;
  void SetUp() override {
    auto dev = PmemDevice::Open(tmp_.path(), {.create = true, .size = kSize});
    ASSERT_TRUE(dev.has_value()) << dev.error().ToString();
    dev_ = std::move(*dev);
    journal_ = NewJournal();
    ASSERT_TRUE(journal_->Format().ok());
  }
  std::unique_ptr<Journal> NewJournal() {
    return std::make_unique<Journal>(dev_.get(), media::kLogStart, kLogBlocks, kBlocks);
  }
  // Stages a valid root-block-shaped image at `bno` carrying `tag`.
  void Stage(Transaction& tx, uint64_t bno, uint64_t tag) {
    auto img = tx.New(bno);
    ASSERT_TRUE(img.has_value()) << img.error().ToString();
    auto* root = reinterpret_cast<media::RootBlock*>(*img);
    root->hdr.magic = media::kRootMagic;
    root->inode_count = tag;
    root->next_ino = tag * 3;
  }
  // Stages a bmap leaf with two records.
  void StageLeaf(Transaction& tx, uint64_t bno, uint64_t owner) {
    auto img = tx.New(bno);
    ASSERT_TRUE(img.has_value());
    auto* h = reinterpret_cast<media::BtreeNodeHeader*>(*img);
    h->hdr.magic = media::kBmapMagic;
    h->owner = owner;
    h->nrecs = 2;
    auto* r = reinterpret_cast<media::BmapRec*>(*img + sizeof(media::BtreeNodeHeader));
    r[0] = {0, 500, 4, 0};
    r[1] = {10, 600, 1, 0};
  }
  uint8_t* Block(uint64_t bno) { return dev_->BlockPtr(bno, media::kBlockSize); }
  std::vector<uint8_t> Copy(uint64_t bno) { return {Block(bno), Block(bno) + media::kBlockSize}; }
  // The committed content of a block as its home will hold it (sealed); the
  // home itself waits for the checkpoint.
  std::vector<uint8_t> Sealed(uint64_t bno) {
    Transaction tx(journal_.get(), true);
    auto r = tx.Read(bno, 0);
    if (!r.has_value()) {
      ADD_FAILURE() << r.error().ToString();
      return {};
    }
    std::vector<uint8_t> b(*r, *r + media::kBlockSize);
    media::SetBlockCrc(b.data());
    return b;
  }
  uint64_t Tag(uint64_t bno) { return reinterpret_cast<media::RootBlock*>(Block(bno))->inode_count; }

  testutil::TempDevice tmp_;
  std::unique_ptr<PmemDevice> dev_;
  std::unique_ptr<Journal> journal_;
};

TEST_F(JournalProtocolTest, FencesPerCommitWhateverTheSize) {
  for (int nblocks : {1, 2, 7, 14}) {
    SCOPED_TRACE(nblocks);
    const uint64_t base = 100 + 20 * nblocks;  // blocks no earlier round wrote
    Transaction tx(journal_.get());
    for (int i = 0; i < nblocks; i++) Stage(tx, base + i, i + 1);
    EXPECT_EQ(tx.dirty_blocks(), static_cast<size_t>(nblocks));
    uint64_t f0 = dev_->fence_count(), c0 = journal_->commits(), s0 = journal_->seq();
    ASSERT_TRUE(tx.Commit().ok());
    EXPECT_EQ(dev_->fence_count() - f0, Journal::kFencesPerCommit);
    EXPECT_EQ(journal_->commits(), c0 + 1);
    EXPECT_EQ(journal_->seq(), s0 + 1);
    EXPECT_FALSE(tx.dirty()) << "a committed transaction is empty";
    Transaction reader(journal_.get(), true);
    for (int i = 0; i < nblocks; i++) {
      EXPECT_EQ(Tag(base + i), 0u) << "homes wait for the checkpoint";
      auto r = reader.Read(base + i, media::kRootMagic);
      ASSERT_TRUE(r.has_value()) << r.error().ToString();
      EXPECT_EQ(reinterpret_cast<const media::RootBlock*>(*r)->inode_count, static_cast<uint64_t>(i + 1))
          << "readers see the committed content";
    }
    // The checkpoint: every dirty block home, sealed, one fence; then the
    // log's first header cleared, a second fence (before any new record).
    f0 = dev_->fence_count();
    ASSERT_TRUE(journal_->Checkpoint().ok());
    EXPECT_EQ(dev_->fence_count() - f0, 2u);
    EXPECT_EQ(journal_->dirty_blocks(), 0u);
    for (int i = 0; i < nblocks; i++) {
      EXPECT_EQ(Tag(base + i), static_cast<uint64_t>(i + 1)) << "written home";
      EXPECT_TRUE(media::VerifyRead(Block(base + i), base + i, media::kRootMagic, kBlocks).ok());
    }
  }
  // Nothing to commit: no fence, no commit.
  Transaction empty(journal_.get());
  uint64_t f0 = dev_->fence_count(), c0 = journal_->commits();
  ASSERT_TRUE(empty.Commit().ok());
  EXPECT_EQ(dev_->fence_count(), f0);
  EXPECT_EQ(journal_->commits(), c0);
}

TEST_F(JournalProtocolTest, RecoveryRestoresGarbledHomes) {
  Transaction tx(journal_.get());
  Stage(tx, 200, 42);
  StageLeaf(tx, 201, 9);
  ASSERT_TRUE(tx.Commit().ok());
  auto want200 = Sealed(200), want201 = Sealed(201);
  // The crash came in a checkpoint: homes hold garbage (torn copies).
  ASSERT_TRUE(dev_->Fill(200 * media::kBlockSize, 0xAB, 2 * media::kBlockSize, true).ok());
  // A read-only recovery reports the record and writes nothing.
  {
    auto j = NewJournal();
    auto n = j->Recover(/*read_only=*/true);
    ASSERT_TRUE(n.has_value()) << n.error().ToString();
    EXPECT_EQ(*n, 2u);
    EXPECT_EQ(Block(200)[100], 0xAB);
  }
  auto j = NewJournal();
  auto n = j->Recover(false);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_EQ(*n, 2u);
  EXPECT_TRUE(Copy(200) == want200);
  EXPECT_TRUE(Copy(201) == want201);
  EXPECT_GT(j->seq(), journal_->seq() - 1) << "sequence continues after the replayed record";
  // The log is cleared: a second recovery replays nothing.
  ASSERT_TRUE(dev_->Fill(200 * media::kBlockSize, 0xCD, media::kBlockSize, true).ok());
  auto again = NewJournal()->Recover(false);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 0u);
  EXPECT_EQ(Block(200)[100], 0xCD);
}

TEST_F(JournalProtocolTest, TheChainIsReplayedInOrder) {
  {
    Transaction a(journal_.get());
    Stage(a, 300, 1);
    ASSERT_TRUE(a.Commit().ok());
  }
  {
    Transaction b(journal_.get());
    Stage(b, 301, 2);
    ASSERT_TRUE(b.Commit().ok());
  }
  {
    Transaction c(journal_.get());  // changes a few lines of block 300
    auto w = c.Write(300, media::kRootMagic);
    ASSERT_TRUE(w.has_value());
    reinterpret_cast<media::RootBlock*>(*w)->inode_count = 3;
    ASSERT_TRUE(c.Commit().ok());
  }
  auto want300 = Sealed(300);
  ASSERT_TRUE(dev_->Fill(300 * media::kBlockSize, 0, 2 * media::kBlockSize, true).ok());
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(Tag(301), 2u);
  EXPECT_EQ(Tag(300), 3u);
  EXPECT_TRUE(Copy(300) == want300);
}

TEST_F(JournalProtocolTest, UnchangedBlocksAreNotLogged) {
  {
    Transaction tx(journal_.get());
    Stage(tx, 310, 1);
    ASSERT_TRUE(tx.Commit().ok());
  }
  uint64_t f0 = dev_->fence_count(), c0 = journal_->commits();
  Transaction tx(journal_.get());
  ASSERT_TRUE(tx.Write(310, media::kRootMagic).has_value());  // written, not changed
  EXPECT_TRUE(tx.dirty());
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_EQ(dev_->fence_count(), f0) << "nothing changed: no record, no fence";
  EXPECT_EQ(journal_->commits(), c0);
}

// A block freed after it was logged may hold file data since: replay must not
// bring the old lines back over it.
TEST_F(JournalProtocolTest, RevokedBlockIsNotReplayed) {
  {
    Transaction a(journal_.get());
    Stage(a, 320, 1);
    Stage(a, 321, 1);
    ASSERT_TRUE(a.Commit().ok());
  }
  {
    Transaction b(journal_.get());
    b.Forget(320);  // freed
    Stage(b, 321, 2);
    ASSERT_TRUE(b.Commit().ok());
  }
  // Block 320 now holds file data (written straight to the device).
  ASSERT_TRUE(dev_->Fill(320 * media::kBlockSize, 0x77, media::kBlockSize, true).ok());
  ASSERT_TRUE(dev_->Fill(321 * media::kBlockSize, 0, media::kBlockSize, true).ok());
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(Tag(321), 2u);
  EXPECT_EQ(Block(320)[100], 0x77) << "a revoked block's old lines were replayed over its new content";
}

// Commits until the log has wrapped twice: recovery replays the current lap
// only, and gets the newest content.
TEST_F(JournalProtocolTest, WrappingKeepsTheChainConsistent) {
  uint64_t tag = 0;
  while (journal_->checkpoints() < 2) {
    Transaction tx(journal_.get());
    Stage(tx, 330 + tag % 5, tag + 1);  // fresh blocks: every non-zero line is logged
    ASSERT_TRUE(tx.Commit().ok());
    tag++;
    ASSERT_LT(tag, 10000u) << "the log never wrapped";
  }
  std::vector<std::vector<uint8_t>> want;
  for (int i = 0; i < 5; i++) want.push_back(Sealed(330 + i));
  ASSERT_TRUE(dev_->Fill(330 * media::kBlockSize, 0, 5 * media::kBlockSize, true).ok());
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_GE(*n, 1u);
  // Blocks last written in the current lap come back; a block last written
  // before the last wrap was made durable by the wrap's fence (and the Fill
  // above destroyed it, which no log can know about), so only compare those
  // that were rebuilt.
  uint64_t back = 0;
  for (int i = 0; i < 5; i++) back += Copy(330 + i) == want[i];
  EXPECT_EQ(back, *n);
  EXPECT_TRUE(Copy(330 + (tag - 1) % 5) == want[(tag - 1) % 5]) << "the newest record was not replayed";
}

// Records left by an earlier mount (another generation) after the current
// mount's first record are not part of its chain, even with the next seq.
TEST_F(JournalProtocolTest, RecordsOfAnEarlierMountAreNotReplayed) {
  for (uint64_t t = 1; t <= 2; t++) {  // seq 1 (block 340), seq 2 (block 341)
    Transaction tx(journal_.get());
    Stage(tx, 339 + t, t);
    ASSERT_TRUE(tx.Commit().ok());
  }
  auto later = NewJournal();  // seq 1 again, another generation
  {
    Transaction tx(later.get());
    Stage(tx, 340, 7);  // the same shape: it overwrites exactly the first record
    ASSERT_TRUE(tx.Commit().ok());
  }
  ASSERT_TRUE(dev_->Fill(340 * media::kBlockSize, 0, 2 * media::kBlockSize, true).ok());
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(Tag(340), 7u);
  EXPECT_EQ(Tag(341), 0u) << "a record of the earlier mount was replayed";
}

// The first record of the log, as the tests below edit it.
struct FirstRecord {
  explicit FirstRecord(uint8_t* log) : p(log) {}
  media::LogRecordHeader* h() { return reinterpret_cast<media::LogRecordHeader*>(p); }
  media::LogBlockDesc* desc(uint32_t i) {
    return reinterpret_cast<media::LogBlockDesc*>(p + sizeof(media::LogRecordHeader)) + i;
  }
  uint8_t* lines() {
    return p + (sizeof(media::LogRecordHeader) + h()->nblocks * sizeof(media::LogBlockDesc) + 63) / 64 * 64;
  }
  void Reseal() {
    media::LogRecordHeader c = *h();
    c.crc = 0;
    h()->crc = Crc32cExtend(Crc32c(&c, sizeof c), p + sizeof c, h()->len - sizeof c);
  }
  uint8_t* p;
};

TEST_F(JournalProtocolTest, TornOrForeignLogIsNotReplayed) {
  auto commit_and_garble = [&] {
    Transaction tx(journal_.get());
    Stage(tx, 400, 5);
    ASSERT_TRUE(tx.Commit().ok());
    ASSERT_TRUE(dev_->Fill(400 * media::kBlockSize, 0, media::kBlockSize, true).ok());
  };
  FirstRecord r(Block(media::kLogStart));
  struct Damage {
    const char* what;
    std::function<void()> fn;
  } damages[] = {
      {"record crc", [&] { r.h()->crc ^= 1; }},
      {"home in descriptor", [&] { r.desc(0)->home = 401; }},
      {"line mask", [&] { r.desc(0)->line_mask ^= 2; }},
      {"block count", [&] { r.h()->nblocks = 2; }},
      {"line count", [&] { r.h()->nlines += 1; }},
      {"length", [&] { r.h()->len += 64; }},
      {"magic", [&] { r.h()->magic = media::kRootMagic; }},
      {"line byte", [&] { r.lines()[70] ^= 0x10; }},
      {"zero count", [&] { r.h()->nblocks = 0; }},
  };
  for (const auto& d : damages) {
    SCOPED_TRACE(d.what);
    journal_ = NewJournal();  // each commit starts a fresh log at its start
    commit_and_garble();
    d.fn();
    auto n = NewJournal()->Recover(false);
    ASSERT_TRUE(n.has_value()) << n.error().ToString();
    EXPECT_EQ(*n, 0u);
    EXPECT_EQ(Tag(400), 0u) << "a torn record must not be replayed";
    EXPECT_EQ(Tag(401), 0u);
  }
}

TEST_F(JournalProtocolTest, ValidRecordWithBadHomeIsRefused) {
  Transaction tx(journal_.get());
  Stage(tx, 500, 5);
  ASSERT_TRUE(tx.Commit().ok());
  FirstRecord r(Block(media::kLogStart));
  for (uint64_t bad : {uint64_t{0}, uint64_t{media::kLogStart}, uint64_t{media::kLogStart + 3},
                       kBlocks - 1, kBlocks, ~uint64_t{0}}) {
    SCOPED_TRACE(bad);
    r.desc(0)->home = bad;
    r.Reseal();
    auto n = NewJournal()->Recover(false);
    ASSERT_FALSE(n.has_value());
    EXPECT_EQ(n.error().err(), EUCLEAN) << n.error().ToString();
  }
  // A home the lines were not sealed for (blkno mismatch).
  r.desc(0)->home = 501;
  r.Reseal();
  auto n = NewJournal()->Recover(false);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error().err(), EUCLEAN);
  EXPECT_EQ(Tag(501), 0u);
  // The right home again: replayed.
  r.desc(0)->home = 500;
  r.Reseal();
  ASSERT_TRUE(dev_->Fill(500 * media::kBlockSize, 0, media::kBlockSize, true).ok());
  auto ok = NewJournal()->Recover(false);
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  EXPECT_EQ(*ok, 1u);
  EXPECT_EQ(Tag(500), 5u);
}

TEST_F(JournalProtocolTest, CommitRefusesInvalidImagesAndOversizedTransactions) {
  // A structurally invalid image: nothing reaches the device.
  {
    Transaction tx(journal_.get());
    Stage(tx, 600, 1);
    auto img = tx.New(601);
    ASSERT_TRUE(img.has_value());
    auto* h = reinterpret_cast<media::BtreeNodeHeader*>(*img);
    h->hdr.magic = media::kBmapMagic;
    h->nrecs = 2;  // two records with equal keys: out of order
    uint64_t f0 = dev_->fence_count(), c0 = journal_->commits();
    Status st = tx.Commit();
    EXPECT_EQ(st.err(), EUCLEAN) << st.ToString();
    EXPECT_EQ(dev_->fence_count(), f0);
    EXPECT_EQ(journal_->commits(), c0);
    EXPECT_EQ(Tag(600), 0u) << "no part of a refused transaction is applied";
    auto n = NewJournal()->Recover(true);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 0u) << "nothing was logged";
  }
  // An unknown magic.
  {
    Transaction tx(journal_.get());
    auto img = tx.New(602);
    ASSERT_TRUE(img.has_value());
    reinterpret_cast<media::BlockHeader*>(*img)->magic = media::Magic("JUNK");
    EXPECT_EQ(tx.Commit().err(), EUCLEAN);
  }
  // More blocks than the log holds.
  {
    Transaction tx(journal_.get());
    EXPECT_EQ(tx.room(), journal_->max_blocks_per_txn());
    for (uint32_t i = 0; i <= journal_->max_blocks_per_txn(); i++) Stage(tx, 700 + i, 1);
    EXPECT_EQ(tx.room(), 0u);
    Status st = tx.Commit();
    EXPECT_EQ(st.err(), ENOSPC) << st.ToString();
    EXPECT_EQ(Tag(700), 0u);
  }
}

TEST_F(JournalProtocolTest, TransactionReadWriteForget) {
  {
    Transaction tx(journal_.get());
    Stage(tx, 800, 8);
    ASSERT_TRUE(tx.Commit().ok());
  }
  Transaction tx(journal_.get());
  auto r = tx.Read(800, media::kRootMagic);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(reinterpret_cast<const media::RootBlock*>(*r)->inode_count, 8u);
  // Wrong magic expected.
  EXPECT_EQ(tx.Read(800, media::kInodeMagic).error().err(), EUCLEAN);
  // A write is a private copy until commit.
  auto w = tx.Write(800, media::kRootMagic);
  ASSERT_TRUE(w.has_value());
  reinterpret_cast<media::RootBlock*>(*w)->inode_count = 9;
  EXPECT_EQ(reinterpret_cast<const media::RootBlock*>(Sealed(800).data())->inode_count, 8u);
  EXPECT_EQ(reinterpret_cast<const media::RootBlock*>(*tx.Read(800, media::kRootMagic))->inode_count, 9u);
  EXPECT_EQ(tx.dirty_blocks(), 1u);
  tx.Forget(800);
  EXPECT_EQ(tx.dirty_blocks(), 0u);
  EXPECT_EQ(reinterpret_cast<const media::RootBlock*>(*tx.Read(800, media::kRootMagic))->inode_count, 8u);
  tx.Abort();
  // Blocks that cannot hold metadata.
  for (uint64_t bad : {uint64_t{0}, uint64_t{media::kLogStart}, uint64_t{media::kLogStart + kLogBlocks - 1},
                       kBlocks, kBlocks + 1000}) {
    auto b = tx.Read(bad, 0);
    ASSERT_FALSE(b.has_value()) << bad;
    EXPECT_TRUE(b.error().err() == EUCLEAN || b.error().err() == EIO) << b.error().ToString();
  }
  // A block with garbage: checksum mismatch, named.
  ASSERT_TRUE(dev_->Fill(900 * media::kBlockSize, 0x5A, media::kBlockSize, true).ok());
  auto g = tx.Read(900, 0);
  ASSERT_FALSE(g.has_value());
  EXPECT_NE(g.error().message().find("900"), std::string::npos) << g.error().message();
  // Read-only transactions cannot write.
  Transaction ro(journal_.get(), /*read_only=*/true);
  EXPECT_EQ(ro.Write(800, media::kRootMagic).error().err(), EROFS);
  EXPECT_EQ(ro.New(801).error().err(), EROFS);
  EXPECT_TRUE(ro.read_only());
}

TEST_F(JournalProtocolTest, FormatClearsTheLog) {
  Transaction tx(journal_.get());
  Stage(tx, 1000, 3);
  ASSERT_TRUE(tx.Commit().ok());
  uint64_t f0 = dev_->fence_count();
  ASSERT_TRUE(journal_->Format().ok());
  // The applied lines first, then the cleared start of the log (the
  // checkpoint's cleared first header, then the whole first block).
  EXPECT_EQ(dev_->fence_count() - f0, 3u);
  ASSERT_TRUE(dev_->Fill(1000 * media::kBlockSize, 0, media::kBlockSize, true).ok());
  auto n = NewJournal()->Recover(false);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(Tag(1000), 0u);
}

}  // namespace
// ---- contracts (util/assert.h): deliberate misuse dies in checked builds -------

// The state machine: a transaction takes changes only while open; Restart()
// opens it again for a rolling operation.
TEST_F(JournalProtocolTest, ContractWriteAfterCommitDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  Transaction tx(journal_.get());
  Stage(tx, 1100, 1);
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_DEATH((void)tx.Write(1100, media::kRootMagic), "Write on a committed transaction");
  EXPECT_DEATH((void)tx.New(1101), "New on a committed transaction");
  EXPECT_DEATH(tx.Forget(1100), "Forget on a committed transaction");
  EXPECT_DEATH(tx.Commit().IgnoreError(), "Commit of a committed transaction");
  tx.Restart();
  Stage(tx, 1101, 2);
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_EQ(reinterpret_cast<const media::RootBlock*>(Sealed(1101).data())->inode_count, 2u);
}

TEST_F(JournalProtocolTest, ContractWriteAfterAbortDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  Transaction tx(journal_.get());
  Stage(tx, 1110, 1);
  tx.Abort();
  EXPECT_DEATH((void)tx.New(1110), "New on an aborted transaction");
  EXPECT_DEATH(tx.Commit().IgnoreError(), "Commit of an aborted transaction");
  // A commit that fails aborts the transaction too.
  Transaction bad(journal_.get());
  auto img = bad.New(1111);
  ASSERT_TRUE(img.has_value());
  reinterpret_cast<media::BlockHeader*>(*img)->magic = media::Magic("JUNK");
  EXPECT_EQ(bad.Commit().err(), EUCLEAN);
  EXPECT_DEATH(bad.Commit().IgnoreError(), "Commit of an aborted transaction");
}

TEST_F(JournalProtocolTest, ContractOneWritingTransactionAtATime) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  Transaction a(journal_.get()), b(journal_.get());
  Stage(a, 1120, 1);
  EXPECT_DEATH(Stage(b, 1121, 2), "another transaction of this journal holds block images");
  Transaction reader(journal_.get(), /*read_only=*/true);
  EXPECT_FALSE(reader.Write(1120, media::kRootMagic).has_value()) << "a reader takes no images";
  ASSERT_TRUE(a.Commit().ok());
  Stage(b, 1121, 2);  // a is done: b may write now
  ASSERT_TRUE(b.Commit().ok());
  // TrimCache drops cached copies: never while a transaction holds images.
  Transaction c(journal_.get());
  Stage(c, 1122, 3);
  EXPECT_DEATH(journal_->TrimCache().IgnoreError(), "TrimCache while a transaction holds block images");
}

// An image pointer is dead once its transaction committed: a store through it
// would change the block cache (the only up-to-date copy) or a pooled buffer
// behind the journal's back.
TEST_F(JournalProtocolTest, ContractStoreThroughAStaleImagePointerDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  Transaction tx(journal_.get());
  auto img = tx.New(1130);  // the first image of the block: the cache takes this buffer
  ASSERT_TRUE(img.has_value());
  auto* root = reinterpret_cast<media::RootBlock*>(*img);
  root->hdr.magic = media::kRootMagic;
  ASSERT_TRUE(tx.Commit().ok());
  root->inode_count = 99;  // after the commit
  EXPECT_DEATH(journal_->Checkpoint().IgnoreError(), "cached copy of block 1130 changed outside a commit");
  root->inode_count = 0;  // undone: the checkpoint is fine
  ASSERT_TRUE(journal_->Checkpoint().ok());

  tx.Restart();
  auto w = tx.Write(1130, media::kRootMagic);  // a cached block: this buffer goes back to the pool
  ASSERT_TRUE(w.has_value());
  reinterpret_cast<media::RootBlock*>(*w)->inode_count = 5;
  ASSERT_TRUE(tx.Commit().ok());
  reinterpret_cast<media::RootBlock*>(*w)->inode_count = 6;  // into the pool
  tx.Restart();
  EXPECT_DEATH((void)tx.Write(1130, media::kRootMagic), "a pooled image buffer was written");
}

// The journal checks that writers hold the lock the filesystem names.
TEST_F(JournalProtocolTest, ContractWritersHoldTheWriterLock) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  OwnedSharedMutex mu;
  journal_->SetWriterLock(&mu);
  Transaction tx(journal_.get());
  Stage(tx, 1140, 1);
  EXPECT_DEATH(tx.Commit().IgnoreError(), "REQUIRES: the calling thread holds the lock exclusively");
  {
    std::shared_lock<OwnedSharedMutex> shared(mu);
    EXPECT_DEATH(tx.Commit().IgnoreError(), "REQUIRES: the calling thread holds the lock exclusively");
  }
  std::unique_lock<OwnedSharedMutex> lk(mu);
  ASSERT_TRUE(tx.Commit().ok());
  ASSERT_TRUE(journal_->Checkpoint().ok());
  ASSERT_TRUE(journal_->TrimCache().ok());
}

// Two owners of one block (a cross-linked tree, a use after free): a write of
// a block the transaction freed is refused, in every build.
TEST_F(JournalProtocolTest, WriteOfABlockTheTransactionFreedIsRefused) {
  {
    Transaction tx(journal_.get());
    Stage(tx, 1150, 1);
    ASSERT_TRUE(tx.Commit().ok());
  }
  Transaction tx(journal_.get());
  tx.Forget(1150);
  auto w = tx.Write(1150, media::kRootMagic);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().err(), EUCLEAN);
  EXPECT_NE(w.error().message().find("block 1150"), std::string::npos) << w.error().message();
  Status st = tx.Commit();
  EXPECT_EQ(st.err(), EUCLEAN) << "the transaction refuses to commit";
  EXPECT_EQ(reinterpret_cast<const media::RootBlock*>(Sealed(1150).data())->inode_count, 1u);
  // Taken again as a new block (a node freed and reallocated in one
  // transaction) is fine.
  tx.Restart();
  tx.Forget(1150);
  Stage(tx, 1150, 7);
  ASSERT_TRUE(tx.Write(1150, media::kRootMagic).has_value());
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_EQ(reinterpret_cast<const media::RootBlock*>(Sealed(1150).data())->inode_count, 7u);
}

}  // namespace udax
