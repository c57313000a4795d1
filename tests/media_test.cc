// tests/media_test.cc — media/ and util/: crc32c known vectors, the block
// crc, Status/Result, and the superblock, root block and B+tree
// node verifiers (each check accepts its boundary and rejects one past it).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "media/format.h"
#include "media/verify.h"
#include "udax/status.h"
#include "util/crc32c.h"

namespace udax {
namespace {

using namespace media;

// ---- crc32c ------------------------------------------------------------------------

TEST(Crc32cVectors, KnownAnswers) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  EXPECT_EQ(Crc32c("a", 1), 0xC1D04330u);
  // RFC 3720 (iSCSI) B.4 test vectors.
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), inc(32), dec(32);
  for (int i = 0; i < 32; i++) {
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(Crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(inc.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(dec.data(), 32), 0x113FDB5Cu);
}

TEST(Crc32cVectors, ExtendEqualsWholeAtEverySplitAndAlignment) {
  std::vector<uint8_t> buf(300);
  for (size_t i = 0; i < buf.size(); i++) buf[i] = static_cast<uint8_t>(i * 7 + 3);
  for (size_t start : {0, 1, 3, 7, 8}) {
    for (size_t len : {0, 1, 7, 8, 9, 63, 64, 65, 255, 290}) {
      if (start + len > buf.size()) continue;
      uint32_t whole = Crc32c(buf.data() + start, len);
      for (size_t cut = 0; cut <= len; cut += (len / 5 + 1)) {
        uint32_t c = Crc32cExtend(Crc32c(buf.data() + start, cut), buf.data() + start + cut, len - cut);
        ASSERT_EQ(c, whole) << start << "+" << len << " cut " << cut;
      }
    }
  }
  // One flipped bit anywhere changes the crc.
  uint32_t base = Crc32c(buf.data(), buf.size());
  for (size_t i = 0; i < buf.size(); i += 13) {
    buf[i] ^= 0x20;
    EXPECT_NE(Crc32c(buf.data(), buf.size()), base) << i;
    buf[i] ^= 0x20;
  }
}

TEST(BlockCrc, SkipsOnlyTheCrcField) {
  std::vector<uint8_t> b(kBlockSize);
  for (size_t i = 0; i < b.size(); i++) b[i] = static_cast<uint8_t>(i ^ (i >> 8));
  uint32_t c = BlockCrc(b.data());
  reinterpret_cast<BlockHeader*>(b.data())->crc = 0xDEADBEEF;
  EXPECT_EQ(BlockCrc(b.data()), c);
  for (size_t off : {size_t{0}, size_t{3}, size_t{8}, size_t{15}, size_t{16}, size_t{kBlockSize - 1}}) {
    b[off] ^= 1;
    EXPECT_NE(BlockCrc(b.data()), c) << off;
    b[off] ^= 1;
  }
  SetBlockCrc(b.data());
  EXPECT_EQ(reinterpret_cast<BlockHeader*>(b.data())->crc, c);
  // The crc is crc32c over bytes [0,4) then [8,4096).
  EXPECT_EQ(c, Crc32cExtend(Crc32c(b.data(), 4), b.data() + 8, kBlockSize - 8));
}

// ---- Status / Result -------------------------------------------------------------------

TEST(StatusTest, RenderingAndResult) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.ToString(), "ok");
  Status e = Errno(ENOENT, "no such file");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.err(), ENOENT);
  EXPECT_EQ(e.ToString(), "no such file (ENOENT)");
  EXPECT_EQ(e.Prefixed("open /x").ToString(), "open /x: no such file (ENOENT)");
  EXPECT_TRUE(ok.Prefixed("ctx").ok());
  EXPECT_STREQ(ErrnoName(EUCLEAN), "EUCLEAN");
  EXPECT_STREQ(ErrnoName(EOPNOTSUPP), "EOPNOTSUPP");
  EXPECT_STREQ(ErrnoName(123456), "E?");
  // The direct-client transport's errors (src/share/) have names too.
  EXPECT_STREQ(ErrnoName(ENOTCONN), "ENOTCONN");
  EXPECT_STREQ(ErrnoName(EPROTO), "EPROTO");
  EXPECT_STREQ(ErrnoName(ETIMEDOUT), "ETIMEDOUT");
  Result<int> r = 5;
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(*r, 5);
  EXPECT_TRUE(r.error().ok());
  Result<int> bad = Errno(EIO, "io");
  EXPECT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().err(), EIO);
  auto f = [](bool fail) -> Result<std::string> {
    if (fail) return Errno(EINVAL, "bad");
    return std::string("fine");
  };
  auto g = [&](bool fail) -> Status {
    ASSIGN_OR_RETURN(std::string s, f(fail));
    return s == "fine" ? Status::Ok() : Errno(EIO, "wrong");
  };
  EXPECT_TRUE(g(false).ok());
  EXPECT_EQ(g(true).err(), EINVAL);
}

// ---- superblock verifier -----------------------------------------------------------------

constexpr uint64_t kDevBytes = 64ull << 20;
constexpr uint64_t kTotal = kDevBytes / kBlockSize;

struct SbBlock {
  alignas(8) uint8_t b[kBlockSize] = {};
  Superblock* sb() { return reinterpret_cast<Superblock*>(b); }
  void Seal() { SetBlockCrc(b); }
};

SbBlock GoodSuperblock() {
  SbBlock s;
  Superblock* sb = s.sb();
  sb->hdr.magic = kSuperMagic;
  sb->version = kVersion;
  sb->block_size = kBlockSize;
  sb->total_blocks = kTotal;
  sb->log_start = kLogStart;
  sb->log_blocks = 256;
  sb->root_block = kRootBlockNo;
  s.Seal();
  return s;
}

TEST(VerifySuperblock, AcceptsGoodOne) {
  SbBlock s = GoodSuperblock();
  EXPECT_TRUE(VerifySuperblock(*s.sb(), kDevBytes).ok()) << VerifySuperblock(*s.sb(), kDevBytes).ToString();
  // A device larger than the filesystem is fine.
  EXPECT_TRUE(VerifySuperblock(*s.sb(), kDevBytes * 2).ok());
  // Unknown compat and ro-compat bits are not the verifier's business (mount decides).
  s.sb()->features_compat = 1;
  s.sb()->features_ro_compat = 1;
  s.Seal();
  EXPECT_TRUE(VerifySuperblock(*s.sb(), kDevBytes).ok());
}

TEST(VerifySuperblock, RejectsEachBadField) {
  struct Case {
    const char* what;
    std::function<void(Superblock*)> edit;
    int err;
  } cases[] = {
      {"magic", [](Superblock* sb) { sb->hdr.magic = kRootMagic; }, EUCLEAN},
      {"version", [](Superblock* sb) { sb->version = kVersion + 1; }, EUCLEAN},
      {"version", [](Superblock* sb) { sb->version = 0; }, EUCLEAN},
      {"block size", [](Superblock* sb) { sb->block_size = 512; }, EUCLEAN},
      {"does not fit", [](Superblock* sb) { sb->total_blocks = kTotal + 1; }, EUCLEAN},
      {"does not fit", [](Superblock* sb) { sb->total_blocks = 15; }, EUCLEAN},
      {"does not fit", [](Superblock* sb) { sb->total_blocks = UINT64_MAX / 2; }, EUCLEAN},
      {"journal", [](Superblock* sb) { sb->log_start = 3; }, EUCLEAN},
      {"journal", [](Superblock* sb) { sb->log_blocks = 7; }, EUCLEAN},
      {"journal", [](Superblock* sb) { sb->log_blocks = kLogMaxBlocks + 2; }, EUCLEAN},
      {"journal",
       [](Superblock* sb) {
         sb->total_blocks = 300;
         sb->log_blocks = 297;
       },
       EUCLEAN},
      {"root block", [](Superblock* sb) { sb->root_block = 2; }, EUCLEAN},
      {"incompatible", [](Superblock* sb) { sb->features_incompat = 1ull << 63; }, EOPNOTSUPP},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    SbBlock s = GoodSuperblock();
    c.edit(s.sb());
    s.Seal();
    Status st = VerifySuperblock(*s.sb(), kDevBytes);
    EXPECT_EQ(st.err(), c.err) << st.ToString();
    EXPECT_NE(st.message().find(c.what), std::string::npos) << st.message();
  }
  // Boundaries that are accepted.
  SbBlock s = GoodSuperblock();
  s.sb()->log_blocks = 8;
  s.Seal();
  EXPECT_TRUE(VerifySuperblock(*s.sb(), kDevBytes).ok());
  s.sb()->log_blocks = kLogMaxBlocks + 1;
  s.Seal();
  EXPECT_TRUE(VerifySuperblock(*s.sb(), kDevBytes).ok());
  // A good superblock with a stale crc.
  s = GoodSuperblock();
  s.sb()->mkfs_time = 12345;
  Status st = VerifySuperblock(*s.sb(), kDevBytes);
  EXPECT_EQ(st.err(), EUCLEAN);
  EXPECT_NE(st.message().find("checksum"), std::string::npos) << st.message();
  // The crc covers the whole block, not just the struct.
  s = GoodSuperblock();
  s.b[kBlockSize - 1] ^= 1;
  EXPECT_EQ(VerifySuperblock(*s.sb(), kDevBytes).err(), EUCLEAN);
}

// ---- node verifiers ------------------------------------------------------------------------

struct Node {
  alignas(8) uint8_t b[kBlockSize] = {};
  BtreeNodeHeader* h() { return reinterpret_cast<BtreeNodeHeader*>(b); }
  uint8_t* recs() { return b + sizeof(BtreeNodeHeader); }
};

// A leaf of `shape` with keys 10, 20, 30... (first key word; second word 0).
Node Leaf(uint32_t magic, uint16_t n) {
  const TreeShape& s = *ShapeForMagic(magic);
  Node node;
  node.h()->hdr.magic = magic;
  node.h()->level = 0;
  node.h()->nrecs = n;
  // Records are filled only as far as they fit (nrecs may claim more).
  for (uint16_t i = 0; i < n && sizeof(BtreeNodeHeader) + (i + 1) * s.rec_size <= kBlockSize; i++) {
    uint64_t k = 10 * (i + 1);
    std::memcpy(node.recs() + i * s.rec_size, &k, 8);
  }
  return node;
}

// An interior node of `shape` with n children at blocks 100, 101...
Node Interior(uint32_t magic, uint16_t n, uint16_t level = 1) {
  const TreeShape& s = *ShapeForMagic(magic);
  Node node;
  node.h()->hdr.magic = magic;
  node.h()->level = level;
  node.h()->nrecs = n;
  uint32_t stride = s.key_words * 8 + 8;
  for (uint16_t i = 0; i < n && sizeof(BtreeNodeHeader) + (i + 1) * stride <= kBlockSize; i++) {
    uint64_t k = 10 * (i + 1), child = 100 + i;
    std::memcpy(node.recs() + i * stride, &k, 8);
    std::memcpy(node.recs() + i * stride + s.key_words * 8, &child, 8);
  }
  return node;
}

// The node tests check structure; their records hold keys only, so reads skip
// the record checks (those are tested field by field in hostile_image_test).
Status SealAndRead(Node& n, uint64_t bno, uint32_t magic = 0) {
  RETURN_IF_ERROR(VerifyAndSeal(n.b, bno, kTotal));
  return VerifyRead(n.b, bno, magic, kTotal, RecordChecks::kSkip);
}

const uint32_t kTreeMagics[] = {kBmapMagic, kFreeBnoMagic, kFreeCntMagic, kInodeMagic, kDirMagic, kOrphanMagic};

TEST(TreeShapes, KnownShapesAndCapacities) {
  for (uint32_t m : kTreeMagics) {
    const TreeShape* s = ShapeForMagic(m);
    ASSERT_NE(s, nullptr) << MagicName(m);
    EXPECT_EQ(s->magic, m);
    EXPECT_GE(LeafCapacity(*s), 2u) << s->name;
    EXPECT_GE(NodeCapacity(*s), 2u) << s->name;
    EXPECT_LE(sizeof(BtreeNodeHeader) + LeafCapacity(*s) * s->rec_size, kBlockSize);
    EXPECT_GT(sizeof(BtreeNodeHeader) + (LeafCapacity(*s) + 1) * s->rec_size, kBlockSize);
  }
  EXPECT_EQ(ShapeForMagic(kSuperMagic), nullptr);
  EXPECT_EQ(ShapeForMagic(kRootMagic), nullptr);
  EXPECT_EQ(ShapeForMagic(kLogMagic), nullptr);
  EXPECT_EQ(ShapeForMagic(0), nullptr);
  EXPECT_EQ(ShapeForMagic(kBmapMagic)->rec_size, sizeof(BmapRec));
  EXPECT_EQ(ShapeForMagic(kFreeCntMagic)->key_words, 2);
  EXPECT_EQ(ShapeForMagic(kDirMagic)->key_words, 2);
  EXPECT_EQ(LeafCapacity(*ShapeForMagic(kBmapMagic)), (kBlockSize - 32) / 24);
  EXPECT_EQ(LeafCapacity(*ShapeForMagic(kDirMagic)), (kBlockSize - 32) / 288);
  EXPECT_EQ(NodeCapacity(*ShapeForMagic(kInodeMagic)), (kBlockSize - 32) / 16);
  EXPECT_EQ(NodeCapacity(*ShapeForMagic(kDirMagic)), (kBlockSize - 32) / 24);
  EXPECT_EQ(MagicName(kSuperMagic), "'UDXS'");
  EXPECT_EQ(MagicName(0x00414243), "'CBA?'");
  uint64_t a[2] = {1, 5}, b[2] = {1, 6}, c[2] = {2, 0};
  EXPECT_LT(CompareKeys(a, b, 2), 0);
  EXPECT_EQ(CompareKeys(a, b, 1), 0);
  EXPECT_GT(CompareKeys(c, b, 2), 0);
  EXPECT_EQ(CompareKeys(a, a, 2), 0);
}

TEST(NodeVerifier, AcceptsFullAndEmptyLeaves) {
  for (uint32_t m : kTreeMagics) {
    SCOPED_TRACE(MagicName(m));
    const TreeShape& s = *ShapeForMagic(m);
    Node empty = Leaf(m, 0);
    EXPECT_TRUE(SealAndRead(empty, 50, m).ok());
    Node full = Leaf(m, static_cast<uint16_t>(LeafCapacity(s)));
    Status st = SealAndRead(full, 51, m);
    EXPECT_TRUE(st.ok()) << st.ToString();
    Node inner = Interior(m, static_cast<uint16_t>(NodeCapacity(s)));
    st = SealAndRead(inner, 52, m);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

TEST(NodeVerifier, RejectsBadNrecsAndKeyOrder) {
  for (uint32_t m : kTreeMagics) {
    const TreeShape& s = *ShapeForMagic(m);
    SCOPED_TRACE(s.name);
    auto expect_bad = [&](Node n, const char* what) {
      Node copy = n;
      Status st = VerifyAndSeal(copy.b, 60, kTotal);
      EXPECT_EQ(st.err(), EUCLEAN) << what << ": " << st.ToString();
      EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
      EXPECT_NE(st.message().find("refusing to write"), std::string::npos) << st.message();
      // The same block arriving from the device (crc made valid) is refused on read.
      reinterpret_cast<BlockHeader*>(n.b)->blkno = 60;
      SetBlockCrc(n.b);
      Status rd = VerifyRead(n.b, 60, m, kTotal, RecordChecks::kSkip);
      EXPECT_EQ(rd.err(), EUCLEAN) << what << ": " << rd.ToString();
      EXPECT_NE(rd.message().find(what), std::string::npos) << rd.message();
      EXPECT_NE(rd.message().find("block 60"), std::string::npos) << rd.message();
    };
    // nrecs one past the capacity (leaf and interior), and absurd.
    expect_bad(Leaf(m, static_cast<uint16_t>(LeafCapacity(s) + 1)), "too many records");
    {
      Node n = Leaf(m, 3);
      n.h()->nrecs = 0xFFFF;
      expect_bad(n, "too many records");
    }
    expect_bad(Interior(m, static_cast<uint16_t>(NodeCapacity(s) + 1)), "too many records");
    // Keys out of order / duplicated, in a leaf and in an interior node.
    {
      Node n = Leaf(m, 5);
      uint64_t k = 5;  // record 3 gets a key below record 2's
      std::memcpy(n.recs() + 3 * s.rec_size, &k, 8);
      expect_bad(n, "out of order");
    }
    {
      Node n = Leaf(m, 5);
      uint64_t k = 20;  // record 2 == record 1
      std::memcpy(n.recs() + 2 * s.rec_size, &k, 8);
      expect_bad(n, "out of order");
    }
    {
      Node n = Interior(m, 4);
      uint32_t stride = s.key_words * 8 + 8;
      uint64_t k = 10;
      std::memcpy(n.recs() + 3 * stride, &k, 8);
      expect_bad(n, "out of order");
    }
    if (s.key_words == 2) {  // the second key word decides between equal first words
      Node n = Leaf(m, 3);
      uint64_t k1[2] = {20, 7}, k2[2] = {20, 6};
      std::memcpy(n.recs() + 1 * s.rec_size, k1, 16);
      std::memcpy(n.recs() + 2 * s.rec_size, k2, 16);
      expect_bad(n, "out of order");
      std::memcpy(n.recs() + 2 * s.rec_size, k1, 16);
      k1[1] = 6;
      std::memcpy(n.recs() + 1 * s.rec_size, k1, 16);
      Node good = n;
      EXPECT_TRUE(SealAndRead(good, 61, m).ok());
    }
    // Interior nodes: empty, child pointers outside the device, level too large.
    expect_bad(Interior(m, 0), "empty interior");
    {
      Node n = Interior(m, 3);
      uint64_t child = 1;  // the root block: not a tree node
      std::memcpy(n.recs() + 2 * (s.key_words * 8 + 8) + s.key_words * 8, &child, 8);
      expect_bad(n, "child pointer");
    }
    {
      Node n = Interior(m, 3);
      uint64_t child = kTotal;
      std::memcpy(n.recs() + (s.key_words * 8 + 8) + s.key_words * 8, &child, 8);
      expect_bad(n, "child pointer");
    }
    expect_bad(Interior(m, 2, 17), "level too large");
    Node deep = Interior(m, 2, 16);
    EXPECT_TRUE(SealAndRead(deep, 62, m).ok());
  }
}

TEST(NodeVerifier, ReadChecksHeaderFields) {
  Node n = Leaf(kInodeMagic, 2);
  for (uint32_t i = 0; i < 2; i++)  // regular files: records that pass their checks
    reinterpret_cast<InodeRec*>(n.recs())[i].mode = 0100644;
  ASSERT_TRUE(VerifyAndSeal(n.b, 70, kTotal).ok());
  EXPECT_EQ(reinterpret_cast<BlockHeader*>(n.b)->blkno, 70u) << "sealing stamps the block number";
  EXPECT_TRUE(VerifyRead(n.b, 70, kInodeMagic, kTotal).ok());
  EXPECT_TRUE(VerifyRead(n.b, 70, 0, kTotal).ok());
  // Misdirected: read at another block number.
  Status st = VerifyRead(n.b, 71, kInodeMagic, kTotal);
  EXPECT_EQ(st.err(), EUCLEAN);
  EXPECT_NE(st.message().find("claims to be block 70"), std::string::npos) << st.message();
  // Wrong magic for the caller.
  st = VerifyRead(n.b, 70, kDirMagic, kTotal);
  EXPECT_EQ(st.err(), EUCLEAN);
  EXPECT_NE(st.message().find("'INOB'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'DIRB'"), std::string::npos) << st.message();
  // Any byte changed after sealing: checksum mismatch.
  for (size_t off : {size_t{0}, size_t{9}, size_t{20}, size_t{500}, size_t{kBlockSize - 1}}) {
    Node c = n;
    c.b[off] ^= 0x80;
    Status s2 = VerifyRead(c.b, 70, 0, kTotal);
    EXPECT_EQ(s2.err(), EUCLEAN) << off;
  }
  // Unknown magic with a valid crc.
  Node u = n;
  reinterpret_cast<BlockHeader*>(u.b)->magic = Magic("JUNK");
  SetBlockCrc(u.b);
  st = VerifyRead(u.b, 70, 0, kTotal);
  EXPECT_EQ(st.err(), EUCLEAN);
  EXPECT_NE(st.message().find("unknown block magic"), std::string::npos) << st.message();
  // All zeroes (a never-written block).
  Node z;
  EXPECT_EQ(VerifyRead(z.b, 70, kInodeMagic, kTotal).err(), EUCLEAN);
  EXPECT_EQ(VerifyRead(z.b, 70, 0, kTotal).err(), EUCLEAN);
}

TEST(RootBlockVerifier, FreeList) {
  Node n;
  auto* r = reinterpret_cast<RootBlock*>(n.b);
  r->hdr.magic = kRootMagic;
  r->freelist_count = kFreeListMax;
  for (uint32_t i = 0; i < kFreeListMax; i++) r->freelist[i] = 100 + i;
  EXPECT_TRUE(SealAndRead(n, kRootBlockNo, kRootMagic).ok());
  r->freelist_count = kFreeListMax + 1;
  Status st = VerifyAndSeal(n.b, kRootBlockNo, kTotal);
  EXPECT_EQ(st.err(), EUCLEAN);
  EXPECT_NE(st.message().find("free list too long"), std::string::npos) << st.message();
  r->freelist_count = 3;
  r->freelist[2] = kTotal;
  EXPECT_NE(VerifyAndSeal(n.b, kRootBlockNo, kTotal).message().find("outside the device"), std::string::npos);
  r->freelist[2] = 0;
  EXPECT_EQ(VerifyAndSeal(n.b, kRootBlockNo, kTotal).err(), EUCLEAN);
  r->freelist[2] = kLogStart;
  EXPECT_TRUE(VerifyAndSeal(n.b, kRootBlockNo, kTotal).ok());
  // Entries past the count are not looked at.
  r->freelist[3] = UINT64_MAX;
  EXPECT_TRUE(SealAndRead(n, kRootBlockNo, kRootMagic).ok());
}

}  // namespace
}  // namespace udax
