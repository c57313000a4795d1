// tests/btree_test.cc — the B+tree engine (src/btree/) over a real journal on
// a file-backed device: per-shape basics, a randomized differential test
// against std::map, node freeing, merging on delete (trees that grow and
// shrink back), depth under sequential inserts, errors and corrupted nodes.
#include "btree/btree.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "device/pmem_device.h"
#include "journal/journal.h"
#include "media/format.h"
#include "media/verify.h"
#include "test_util.h"

namespace udax {
namespace {

using Key = std::array<uint64_t, 2>;  // unused words stay 0

// Hands out increasing blocks above 600; freed blocks become reusable once
// the transaction that freed them committed (the journal's rule).
class TestAllocator : public NodeAllocator {
 public:
  explicit TestAllocator(uint64_t limit) : limit_(limit) {}
  Result<uint64_t> AllocNode(Transaction& tx, const media::TreeShape&, uint64_t) override {
    if (fail_) return Errno(ENOSPC, "test allocator: out of nodes");
    uint64_t bno;
    if (!reusable_.empty()) {
      bno = reusable_.back();
      reusable_.pop_back();
    } else {
      if (next_ >= limit_) return Errno(ENOSPC, "test allocator: device full");
      bno = next_++;
    }
    EXPECT_TRUE(live_.insert(bno).second) << "block " << bno << " handed out twice";
    allocs_++;
    return bno;
  }
  Status FreeNode(Transaction& tx, uint64_t bno, const media::TreeShape&, uint64_t) override {
    EXPECT_EQ(live_.erase(bno), 1u) << "freeing block " << bno << " which is not allocated";
    tx.Forget(bno);
    pending_.push_back(bno);
    frees_++;
    return Status::Ok();
  }
  void Committed() {
    reusable_.insert(reusable_.end(), pending_.begin(), pending_.end());
    pending_.clear();
  }
  void Aborted() { pending_.clear(); }

  uint64_t allocs_ = 0, frees_ = 0;
  bool fail_ = false;
  std::set<uint64_t> live_;

 private:
  uint64_t limit_;
  uint64_t next_ = 600;
  std::vector<uint64_t> reusable_, pending_;
};

std::string TempPath() {
  static std::atomic<int> n{0};
  return "/dev/shm/udax_btree_test_" + std::to_string(getpid()) + "_" + std::to_string(n++);
}

class BtreeTest : public ::testing::Test {
 protected:
  void Open(uint64_t size) {
    path_ = TempPath();
    auto dev = PmemDevice::Open(path_, {.create = true, .size = size});
    ASSERT_TRUE(dev.has_value()) << dev.error().ToString();
    dev_ = std::move(*dev);
    journal_ = std::make_unique<Journal>(dev_.get(), 2, 512, size / media::kBlockSize);
    ASSERT_TRUE(journal_->Format().ok());
    alloc_ = std::make_unique<TestAllocator>(size / media::kBlockSize - 1);
    tx_ = std::make_unique<Transaction>(journal_.get());
  }
  void SetUp() override { Open(64 << 20); }
  void TearDown() override {
    tx_.reset();
    journal_.reset();
    dev_.reset();
    if (!path_.empty()) unlink(path_.c_str());
  }
  void Commit() {
    Status st = tx_->Commit();
    tx_->Restart();
    ASSERT_TRUE(st.ok()) << st.ToString();
    alloc_->Committed();
  }
  std::unique_ptr<Btree> Tree(uint32_t magic) {
    shape_ = media::ShapeForMagic(magic);
    return std::make_unique<Btree>(tx_.get(), *shape_, &root_, 7, alloc_.get());
  }

  // A record of the current shape: key words, then bytes derived from `tag`.
  std::vector<uint8_t> Rec(const Key& k, uint64_t tag) const {
    std::vector<uint8_t> r(shape_->rec_size);
    std::memcpy(r.data(), k.data(), shape_->key_words * 8);
    for (size_t i = shape_->key_words * 8; i < r.size(); i++) r[i] = uint8_t(tag * 31 + i);
    return r;
  }
  Key KeyOf(const void* rec) const {
    Key k{};
    std::memcpy(k.data(), rec, shape_->key_words * 8);
    return k;
  }

  // Checks the structural invariants through VisitNodes: levels, key order,
  // every key within its parent's [lo, hi). Returns the number of records.
  uint64_t CheckStructure(Btree& t, uint32_t* height = nullptr) {
    uint64_t recs = 0;
    uint32_t max_level = 0;
    uint32_t kw = shape_->key_words;
    Status st = t.VisitNodes(
        [&](uint64_t bno, const uint8_t* node, const uint64_t* lo, const uint64_t* hi) {
          const auto& h = *reinterpret_cast<const media::BtreeNodeHeader*>(node);
          max_level = std::max<uint32_t>(max_level, h.level);
          EXPECT_EQ(h.owner, 7u);
          uint32_t stride = h.level == 0 ? shape_->rec_size : kw * 8 + 8;
          if (h.level == 0) recs += h.nrecs;
          if (h.level == 0 && bno != root_.block) {
            EXPECT_GT(h.nrecs, 0) << "empty non-root leaf";
          }
          for (uint32_t i = 0; i < h.nrecs; i++) {
            const auto* k = reinterpret_cast<const uint64_t*>(node + 32 + i * stride);
            if (lo) {
              EXPECT_GE(media::CompareKeys(k, lo, kw), 0) << "key below lo in " << bno;
            }
            if (hi) {
              EXPECT_LT(media::CompareKeys(k, hi, kw), 0) << "key above hi in " << bno;
            }
            if (i > 0) {
              EXPECT_LT(media::CompareKeys(k - stride / 8, k, kw), 0);
            }
          }
          return Status::Ok();
        });
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (root_.levels) {
      EXPECT_EQ(max_level + 1, root_.levels);
    }
    if (height) *height = root_.levels;
    EXPECT_EQ(t.CountRecords(), recs);
    return recs;
  }

  std::string path_;
  std::unique_ptr<PmemDevice> dev_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<TestAllocator> alloc_;
  std::unique_ptr<Transaction> tx_;
  media::BtreeRoot root_{};
  const media::TreeShape* shape_ = nullptr;
};

class BtreeShapeTest : public BtreeTest, public ::testing::WithParamInterface<uint32_t> {};

INSTANTIATE_TEST_SUITE_P(Shapes, BtreeShapeTest,
                         ::testing::Values(media::kBmapMagic, media::kFreeCntMagic,
                                           media::kDirMagic),
                         [](const auto& info) {
                           return std::string(media::ShapeForMagic(info.param)->name) ==
                                          "free-by-size"
                                      ? std::string("FreeCnt")
                                      : std::string(media::ShapeForMagic(info.param)->name);
                         });

Key MakeKey(const media::TreeShape& s, uint64_t a, uint64_t b) {
  return s.key_words == 1 ? Key{a * 1000 + b, 0} : Key{a, b};
}

TEST_P(BtreeShapeTest, InsertLookupUpdateDelete) {
  auto t = Tree(GetParam());
  std::vector<uint8_t> out(shape_->rec_size);
  Key k0 = MakeKey(*shape_, 1, 1);
  auto found = t->Lookup(k0.data(), out.data());
  ASSERT_TRUE(found.has_value());
  EXPECT_FALSE(*found);
  EXPECT_EQ(t->Delete(k0.data()).err(), ENOENT);
  EXPECT_EQ(t->Update(Rec(k0, 1).data()).err(), ENOENT);
  EXPECT_FALSE(t->root_changed());

  std::vector<Key> keys;
  for (uint64_t a = 0; a < 40; a++)
    for (uint64_t b = 0; b < 50; b++) keys.push_back(MakeKey(*shape_, a * 2 + 1, b * 3 + 1));
  std::mt19937_64 rng(GetParam());
  std::shuffle(keys.begin(), keys.end(), rng);
  for (size_t i = 0; i < keys.size(); i++) {
    Status st = t->Insert(Rec(keys[i], 1).data());
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (i % 40 == 39) Commit();
  }
  EXPECT_TRUE(t->root_changed());
  EXPECT_EQ(t->Insert(Rec(keys[5], 9).data()).err(), EEXIST);
  Commit();
  EXPECT_EQ(CheckStructure(*t), keys.size());
  EXPECT_GT(root_.levels, 1u);

  for (const Key& k : keys) {
    auto r = t->Lookup(k.data(), out.data());
    ASSERT_TRUE(r.has_value() && *r);
    EXPECT_EQ(out, Rec(k, 1));
    Key miss = k;
    miss[shape_->key_words - 1]++;  // keys are spaced, so this one is absent
    r = t->Lookup(miss.data(), out.data());
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(*r);
    r = t->LookupGE(miss.data(), out.data());
    ASSERT_TRUE(r.has_value());
    if (*r) {
      EXPECT_GT(KeyOf(out.data()), miss);
    }
  }
  // Update half, delete the other half.
  for (size_t i = 0; i < keys.size(); i++) {
    Status st = i % 2 ? t->Update(Rec(keys[i], 2).data()) : t->Delete(keys[i].data());
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (i % 40 == 39) Commit();
  }
  Commit();
  EXPECT_EQ(CheckStructure(*t), keys.size() / 2);
  for (size_t i = 0; i < keys.size(); i++) {
    auto r = t->Lookup(keys[i].data(), out.data());
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, i % 2 == 1);
    if (*r) {
      EXPECT_EQ(out, Rec(keys[i], 2));
    }
  }
  EXPECT_EQ(t->Delete(keys[0].data()).err(), ENOENT);
  EXPECT_EQ(t->Update(Rec(keys[0], 3).data()).err(), ENOENT);
  EXPECT_EQ(t->Insert(Rec(keys[1], 3).data()).err(), EEXIST);
}

// Every operation against std::map; probes LookupLE/GE/GT and Scan on the way.
TEST_P(BtreeShapeTest, DifferentialAgainstStdMap) {
  auto t = Tree(GetParam());
  std::map<Key, std::vector<uint8_t>> model;
  std::mt19937_64 rng(12345 + GetParam());
  // A key domain of ~24k keys so that deletes and duplicate inserts hit.
  auto rand_key = [&] { return MakeKey(*shape_, rng() % 120, rng() % 200); };
  std::vector<uint8_t> out(shape_->rec_size);
  auto check_probe = [&](const Key& k) {
    auto ge = model.lower_bound(k);
    auto gt = model.upper_bound(k);
    auto r = t->LookupGE(k.data(), out.data());
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_EQ(*r, ge != model.end());
    if (*r) {
      ASSERT_EQ(out, ge->second);
    }
    r = t->LookupGT(k.data(), out.data());
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_EQ(*r, gt != model.end());
    if (*r) {
      ASSERT_EQ(out, gt->second);
    }
    r = t->LookupLE(k.data(), out.data());
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_EQ(*r, gt != model.begin());
    if (*r) {
      ASSERT_EQ(out, std::prev(gt)->second);
    }
    r = t->Lookup(k.data(), out.data());
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_EQ(*r, model.count(k) == 1);
  };
  auto check_scan = [&](const Key* start, size_t limit) {
    auto it = start ? model.lower_bound(*start) : model.begin();
    size_t seen = 0;
    Status st = t->Scan(start ? start->data() : nullptr, [&](const void* rec) {
      EXPECT_TRUE(it != model.end());
      if (it == model.end()) return false;
      EXPECT_EQ(0, std::memcmp(rec, it->second.data(), shape_->rec_size));
      ++it;
      return ++seen < limit;
    });
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (seen < limit) {
      EXPECT_TRUE(it == model.end());
    }
  };

  const int kOps = 100000;
  uint64_t tag = 0;
  for (int op = 0; op < kOps; op++) {
    Key k = rand_key();
    int dice = int(rng() % 100);
    int insert_pct = op < kOps * 6 / 10 ? 60 : 25;  // grow, then shrink
    if (dice < insert_pct) {
      auto rec = Rec(k, ++tag);
      Status st = t->Insert(rec.data());
      if (model.count(k)) {
        ASSERT_EQ(st.err(), EEXIST);
      } else {
        ASSERT_TRUE(st.ok()) << st.ToString();
        model[k] = rec;
      }
    } else if (dice < 90) {
      // Delete, half of the time a present key.
      if (!model.empty() && dice % 2) {
        auto it = model.lower_bound(k);
        if (it == model.end()) it = model.begin();
        k = it->first;
      }
      Status st = t->Delete(k.data());
      if (model.erase(k)) {
        ASSERT_TRUE(st.ok()) << st.ToString();
      } else {
        ASSERT_EQ(st.err(), ENOENT);
      }
    } else {
      auto rec = Rec(k, ++tag);
      Status st = t->Update(rec.data());
      if (model.count(k)) {
        ASSERT_TRUE(st.ok()) << st.ToString();
        model[k] = rec;
      } else {
        ASSERT_EQ(st.err(), ENOENT);
      }
    }
    ASSERT_NO_FATAL_FAILURE(check_probe(rand_key()));
    if (op % 32 == 31) {
      ASSERT_NO_FATAL_FAILURE(Commit());
    }
    if (op % 500 == 0) {
      Key s = rand_key();
      ASSERT_NO_FATAL_FAILURE(check_scan(&s, 40));
    }
    if (op % 25000 == 0 || op == kOps - 1) {
      ASSERT_NO_FATAL_FAILURE(check_scan(nullptr, SIZE_MAX));
      ASSERT_EQ(CheckStructure(*t), model.size());
    }
  }
  Commit();
  // Probe around the extremes of the key space too.
  ASSERT_NO_FATAL_FAILURE(check_probe(Key{0, 0}));
  ASSERT_NO_FATAL_FAILURE(check_probe(Key{~0ull, shape_->key_words == 1 ? 0 : ~0ull}));
  // Empty the tree: every node goes back to the allocator.
  std::vector<Key> left;
  for (const auto& [k, v] : model) left.push_back(k);
  std::shuffle(left.begin(), left.end(), rng);
  for (size_t i = 0; i < left.size(); i++) {
    ASSERT_TRUE(t->Delete(left[i].data()).ok());
    if (i % 32 == 31) Commit();
  }
  Commit();
  EXPECT_EQ(root_.block, 0u);
  EXPECT_EQ(root_.levels, 0u);
  EXPECT_EQ(alloc_->allocs_, alloc_->frees_);
  EXPECT_TRUE(alloc_->live_.empty());
}

TEST_F(BtreeTest, DeleteEverythingFreesEveryNode) {
  auto t = Tree(media::kDirMagic);
  std::mt19937_64 rng(7);
  std::vector<Key> keys;
  for (uint64_t i = 0; i < 20000; i++) keys.push_back(Key{rng(), i});
  for (size_t i = 0; i < keys.size(); i++) {
    ASSERT_TRUE(t->Insert(Rec(keys[i], i).data()).ok());
    if (i % 32 == 31) Commit();
  }
  Commit();
  uint32_t height = 0;
  EXPECT_EQ(CheckStructure(*t, &height), keys.size());
  EXPECT_GE(height, 3u);
  EXPECT_EQ(alloc_->live_.size(), alloc_->allocs_ - alloc_->frees_);
  // Delete in key order from both ends alternately (drives root collapse).
  std::sort(keys.begin(), keys.end());
  for (size_t i = 0, lo = 0, hi = keys.size(); lo < hi; i++) {
    const Key& k = (i % 2) ? keys[--hi] : keys[lo++];
    Status st = t->Delete(k.data());
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (i % 32 == 31) Commit();
    if (i % 2000 == 0) {
      EXPECT_EQ(CheckStructure(*t), hi - lo);
    }
  }
  Commit();
  EXPECT_EQ(root_.block, 0u);
  EXPECT_EQ(root_.levels, 0u);
  EXPECT_EQ(alloc_->allocs_, alloc_->frees_);
  EXPECT_EQ(t->CountRecords(), 0u);
  // And the tree starts over from empty.
  ASSERT_TRUE(t->Insert(Rec(keys[0], 0).data()).ok());
  EXPECT_EQ(root_.levels, 1u);
  EXPECT_EQ(t->CountRecords(), 1u);
}

TEST_F(BtreeTest, DepthStaysLogarithmicUnderSequentialInserts) {
  TearDown();
  Open(uint64_t(1) << 30);  // 1M directory records need ~300 MiB of leaves
  auto t = Tree(media::kDirMagic);
  const uint64_t kN = 1000000;
  auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < kN; i++) {
    Status st = t->Insert(Rec(Key{i >> 3, i & 7}, i).data());
    ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
    if (i % 64 == 63) Commit();
  }
  Commit();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint32_t height = 0;
  EXPECT_EQ(CheckStructure(*t, &height), kN);
  // 14 records per leaf, 169 entries per interior node: 4 levels when full,
  // 5 at worst when half full.
  EXPECT_LE(height, 5u);
  EXPECT_GE(height, 4u);
  std::vector<uint8_t> out(shape_->rec_size);
  for (uint64_t i = 0; i < kN; i += 9973) {
    Key k{i >> 3, i & 7};
    auto r = t->Lookup(k.data(), out.data());
    ASSERT_TRUE(r.has_value() && *r);
    EXPECT_EQ(out, Rec(k, i));
  }
  std::printf("1M sequential inserts: %.2f s, height %u, %llu nodes\n", secs, height,
              (unsigned long long)alloc_->live_.size());
}

TEST_F(BtreeTest, DepthStaysLogarithmicUnderRandomInserts) {
  TearDown();
  Open(uint64_t(512) << 20);
  auto t = Tree(media::kDirMagic);
  std::mt19937_64 rng(99);
  const uint64_t kN = 200000;
  for (uint64_t i = 0; i < kN; i++) {
    ASSERT_TRUE(t->Insert(Rec(Key{rng(), i}, i).data()).ok());
    if (i % 64 == 63) Commit();
  }
  Commit();
  uint32_t height = 0;
  EXPECT_EQ(CheckStructure(*t, &height), kN);
  EXPECT_LE(height, 5u);
}

TEST_F(BtreeTest, DescendingInsertsStayBalanced) {
  auto t = Tree(media::kBmapMagic);
  const uint64_t kN = 50000;
  for (uint64_t i = kN; i-- > 0;) {
    ASSERT_TRUE(t->Insert(Rec(Key{i * 4, 0}, i).data()).ok());
    if (i % 64 == 0) Commit();
  }
  Commit();
  uint32_t height = 0;
  EXPECT_EQ(CheckStructure(*t, &height), kN);
  EXPECT_LE(height, 3u);
  std::vector<uint8_t> out(shape_->rec_size);
  Key k{4 * 100 + 1, 0};
  auto r = t->LookupLE(k.data(), out.data());
  ASSERT_TRUE(r.has_value() && *r);
  EXPECT_EQ(KeyOf(out.data())[0], 400u);
  r = t->LookupGT(k.data(), out.data());
  ASSERT_TRUE(r.has_value() && *r);
  EXPECT_EQ(KeyOf(out.data())[0], 404u);
  Key below{0, 0};
  r = t->LookupLE(below.data(), out.data());
  ASSERT_TRUE(r.has_value() && *r);
  Key past{4 * kN, 0};
  r = t->LookupGE(past.data(), out.data());
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(*r);
}

TEST_F(BtreeTest, ReadOnlyTreeRefusesChanges) {
  auto t = Tree(media::kBmapMagic);
  ASSERT_TRUE(t->Insert(Rec(Key{1, 0}, 1).data()).ok());
  Commit();
  Btree ro(tx_.get(), *shape_, &root_, 7, nullptr);
  std::vector<uint8_t> out(shape_->rec_size);
  Key k{1, 0};
  auto r = ro.Lookup(k.data(), out.data());
  ASSERT_TRUE(r.has_value() && *r);
  EXPECT_EQ(ro.Insert(Rec(Key{2, 0}, 2).data()).err(), EROFS);
  EXPECT_EQ(ro.Delete(k.data()).err(), EROFS);
}

TEST_F(BtreeTest, AllocationFailureLeavesTreeIntact) {
  auto t = Tree(media::kDirMagic);
  uint64_t i = 0;
  for (; root_.levels < 2; i++) ASSERT_TRUE(t->Insert(Rec(Key{i, 0}, i).data()).ok());
  Commit();
  // Fill the last leaf so that the next append must split it.
  while (true) {
    uint64_t before = alloc_->allocs_;
    ASSERT_TRUE(t->Insert(Rec(Key{i, 0}, i).data()).ok());
    i++;
    if (alloc_->allocs_ != before) break;
  }
  Commit();
  uint64_t count = CheckStructure(*t);
  // Fill the leaf again, then fail the split.
  for (uint32_t j = 1; j < media::LeafCapacity(*shape_); j++, i++)
    ASSERT_TRUE(t->Insert(Rec(Key{i, 0}, i).data()).ok());
  count += media::LeafCapacity(*shape_) - 1;
  alloc_->fail_ = true;
  EXPECT_EQ(t->Insert(Rec(Key{i, 0}, i).data()).err(), ENOSPC);
  alloc_->fail_ = false;
  EXPECT_EQ(CheckStructure(*t), count);
  ASSERT_TRUE(t->Insert(Rec(Key{i, 0}, i).data()).ok());
  Commit();
  EXPECT_EQ(CheckStructure(*t), count + 1);
}

// --- Merging on delete -------------------------------------------------------
//
// Trees grow and shrink back: the node count must follow the record count
// down (records that fit in one leaf end in a one-node tree; each level has at
// most 2 * ceil(items / capacity) + parents nodes), and every block the
// allocator handed out is either a node of the tree or was freed.

using WideKey = std::array<uint64_t, 4>;  // words past key_words stay 0

// The shape of the reverse-mapping tree being added (32-byte records, 3-word
// key). The media verifier only knows the shapes of media::ShapeForMagic, so
// a tree of this shape never goes through Commit (which verifies every block):
// it lives in one open transaction, which serves its own blocks back.
const media::TreeShape kRmapLikeShape{media::Magic("TRM3"), 32, 3, "test-3word"};

enum class DeleteOrder { kRandom, kAscending, kDescending };

class BtreeMergeTest : public BtreeTest {
 protected:
  void Use(const media::TreeShape& s, bool commit) {
    shape_ = &s;
    commit_ = commit;
    root_ = {};
    tree_ = std::make_unique<Btree>(tx_.get(), s, &root_, 7, alloc_.get());
  }
  void Step() {
    if (commit_ && ++ops_ % 32 == 0) Commit();
  }
  void Flush() {
    if (commit_) Commit();
  }

  // `n` distinct random keys; the leading words come from small domains so
  // that multi-word keys share prefixes (as rmap's {block, owner, offset}).
  std::vector<WideKey> Keys(size_t n, uint64_t seed) const {
    std::mt19937_64 rng(seed);
    std::set<WideKey> seen;
    std::vector<WideKey> out;
    while (out.size() < n) {
      WideKey k{};
      switch (shape_->key_words) {
        case 1: k = {rng(), 0, 0, 0}; break;
        case 2: k = {rng() % 4096, rng(), 0, 0}; break;
        default: k = {rng() % 2048, rng() % 16, rng(), 0}; break;
      }
      if (seen.insert(k).second) out.push_back(k);
    }
    return out;
  }
  std::vector<uint8_t> WideRec(const WideKey& k) const {
    std::vector<uint8_t> r(shape_->rec_size);
    std::memcpy(r.data(), k.data(), shape_->key_words * 8);
    for (size_t i = shape_->key_words * 8; i < r.size(); i++) r[i] = uint8_t(k[0] * 7 + k[2] + i);
    return r;
  }
  void Insert(const WideKey& k) {
    Status st = tree_->Insert(WideRec(k).data());
    ASSERT_TRUE(st.ok()) << st.ToString();
    Step();
  }
  void Delete(const WideKey& k) {
    Status st = tree_->Delete(k.data());
    ASSERT_TRUE(st.ok()) << st.ToString();
    Step();
  }

  // Nodes per level (level 0 first); the node blocks in *bnos.
  std::vector<uint64_t> NodesPerLevel(std::set<uint64_t>* bnos) {
    std::vector<uint64_t> per(root_.levels, 0);
    Status st = tree_->VisitNodes(
        [&](uint64_t bno, const uint8_t* node, const uint64_t*, const uint64_t*) {
          const auto& h = *reinterpret_cast<const media::BtreeNodeHeader*>(node);
          if (h.level < per.size()) per[h.level]++;
          EXPECT_TRUE(bnos->insert(bno).second) << "node " << bno << " reached twice";
          return Status::Ok();
        });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return per;
  }
  uint64_t NodeCount() {
    std::set<uint64_t> bnos;
    NodesPerLevel(&bnos);
    return bnos.size();
  }

  // The tree holds exactly `model`, is well formed, compact, and accounts for
  // every allocated block. Returns the node count.
  uint64_t Check(const std::set<WideKey>& model) {
    EXPECT_EQ(CheckStructure(*tree_), model.size());
    auto it = model.begin();
    Status st = tree_->Scan(nullptr, [&](const void* rec) {
      EXPECT_TRUE(it != model.end());
      if (it == model.end()) return false;
      EXPECT_EQ(0, std::memcmp(rec, WideRec(*it).data(), shape_->rec_size));
      ++it;
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(it == model.end());
    std::set<uint64_t> bnos;
    std::vector<uint64_t> per = NodesPerLevel(&bnos);
    // Allocations minus frees is the live node count, and the live blocks
    // are exactly the tree's nodes.
    EXPECT_EQ(alloc_->allocs_ - alloc_->frees_, bnos.size());
    EXPECT_EQ(alloc_->live_, bnos);
    // Compactness, level by level: adjacent siblings hold more than one
    // node's worth together, so a level of `items` items under P parents has
    // at most 2 * ceil(items / cap) + P nodes.
    uint64_t items = model.size();
    for (uint32_t l = 0; l < per.size(); l++) {
      uint64_t cap = l == 0 ? media::LeafCapacity(*shape_) : media::NodeCapacity(*shape_);
      uint64_t parents = l + 1 < per.size() ? per[l + 1] : 0;
      EXPECT_LE(per[l], 2 * ((items + cap - 1) / cap) + parents)
          << "level " << l << " of " << per.size() << ": " << items << " items";
      items = per[l];
    }
    if (!per.empty()) {
      EXPECT_EQ(per.back(), 1u);
    }
    return bnos.size();
  }

  // Grows a tree of `keep` records (at most one leaf's worth) to `total`
  // records and deletes back to the same `keep` records in `order`: the tree
  // must return to a single leaf, then to nothing.
  void GrowAndShrinkToOneLeaf(size_t keep, size_t total, DeleteOrder order, uint64_t seed) {
    ASSERT_LE(keep, media::LeafCapacity(*shape_));
    std::vector<WideKey> keys = Keys(total, seed);
    std::set<WideKey> model(keys.begin(), keys.begin() + keep);
    for (size_t i = 0; i < keep; i++) ASSERT_NO_FATAL_FAILURE(Insert(keys[i]));
    Flush();
    uint64_t start = Check(model);
    EXPECT_EQ(start, keep ? 1u : 0u);
    for (size_t i = keep; i < total; i++) ASSERT_NO_FATAL_FAILURE(Insert(keys[i]));
    Flush();
    std::set<WideKey> all(keys.begin(), keys.end());
    EXPECT_GT(Check(all), 20u);
    EXPECT_GE(root_.levels, 2u);
    std::vector<WideKey> extra(keys.begin() + keep, keys.end());
    if (order == DeleteOrder::kAscending) std::sort(extra.begin(), extra.end());
    if (order == DeleteOrder::kDescending) std::sort(extra.rbegin(), extra.rend());
    for (size_t i = 0; i < extra.size(); i++) {
      ASSERT_NO_FATAL_FAILURE(Delete(extra[i]));
      all.erase(extra[i]);
      if (i % 997 == 0) {
        Flush();
        ASSERT_NO_FATAL_FAILURE(Check(all));
      }
    }
    Flush();
    EXPECT_EQ(Check(model), start) << "node count did not return to its starting value";
    EXPECT_EQ(root_.levels, keep ? 1u : 0u);
    EXPECT_EQ(alloc_->live_.size(), start);
    // And down to nothing: every node back to the allocator.
    for (const WideKey& k : model) ASSERT_NO_FATAL_FAILURE(Delete(k));
    Flush();
    EXPECT_EQ(root_.block, 0u);
    EXPECT_EQ(root_.levels, 0u);
    EXPECT_EQ(alloc_->allocs_, alloc_->frees_);
    EXPECT_TRUE(alloc_->live_.empty());
  }

  // Inserts `total` records, then deletes all but `keep` of them at random,
  // checking compactness on the way; then compares with a tree built from
  // the `keep` records directly.
  void ShrinkStaysCompact(size_t keep, size_t total, uint64_t seed) {
    std::vector<WideKey> keys = Keys(total, seed);
    std::set<WideKey> model;
    for (size_t i = 0; i < total; i++) {
      ASSERT_NO_FATAL_FAILURE(Insert(keys[i]));
      model.insert(keys[i]);
      if (i % 4999 == 0) {
        Flush();
        ASSERT_NO_FATAL_FAILURE(Check(model));
      }
    }
    Flush();
    uint64_t grown = Check(model);
    for (size_t i = keep; i < total; i++) {
      ASSERT_NO_FATAL_FAILURE(Delete(keys[i]));
      model.erase(keys[i]);
      if (i % 499 == 0) {
        Flush();
        ASSERT_NO_FATAL_FAILURE(Check(model));
      }
    }
    Flush();
    uint64_t shrunk = Check(model);
    // The same records inserted into a fresh tree.
    media::BtreeRoot saved = root_;
    root_ = {};
    for (size_t i = 0; i < keep; i++) ASSERT_NO_FATAL_FAILURE(Insert(keys[i]));
    Flush();
    uint64_t direct = NodeCount();
    std::printf("%s: %zu records %llu nodes -> %zu records %llu nodes (built directly: %llu)\n",
                shape_->name, total, (unsigned long long)grown, keep,
                (unsigned long long)shrunk, (unsigned long long)direct);
    EXPECT_LT(shrunk, grown);
    for (size_t i = 0; i < keep; i++) ASSERT_NO_FATAL_FAILURE(Delete(keys[i]));
    Flush();
    EXPECT_EQ(root_.levels, 0u);
    root_ = saved;
    EXPECT_EQ(alloc_->live_.size(), shrunk);
    // Emptying the shrunk tree frees every node.
    for (size_t i = 0; i < keep; i++) ASSERT_NO_FATAL_FAILURE(Delete(keys[i]));
    Flush();
    EXPECT_EQ(root_.levels, 0u);
    EXPECT_EQ(alloc_->allocs_, alloc_->frees_);
    EXPECT_TRUE(alloc_->live_.empty());
  }

  // The tree as a map: per node its level and children (interior) or record
  // keys (leaf); also the leaf holding each key.
  struct NodeInfo {
    uint32_t level = 0;
    std::vector<uint64_t> children;
    std::vector<WideKey> keys;
  };
  std::map<uint64_t, NodeInfo> Map(std::map<WideKey, uint64_t>* leaf_of = nullptr) {
    std::map<uint64_t, NodeInfo> m;
    uint32_t kw = shape_->key_words;
    Status st = tree_->VisitNodes(
        [&](uint64_t bno, const uint8_t* node, const uint64_t*, const uint64_t*) {
          const auto& h = *reinterpret_cast<const media::BtreeNodeHeader*>(node);
          NodeInfo& ni = m[bno];
          ni.level = h.level;
          uint32_t stride = h.level == 0 ? shape_->rec_size : kw * 8 + 8;
          for (uint32_t i = 0; i < h.nrecs; i++) {
            const uint8_t* item = node + sizeof(media::BtreeNodeHeader) + i * stride;
            if (h.level == 0) {
              WideKey k{};
              std::memcpy(k.data(), item, kw * 8);
              ni.keys.push_back(k);
              if (leaf_of) (*leaf_of)[k] = bno;
            } else {
              uint64_t c;
              std::memcpy(&c, item + kw * 8, 8);
              ni.children.push_back(c);
            }
          }
          return Status::Ok();
        });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return m;
  }
  // Every record key under node `bno` of map `m`.
  static void KeysUnder(const std::map<uint64_t, NodeInfo>& m, uint64_t bno,
                        std::vector<WideKey>* out) {
    const NodeInfo& ni = m.at(bno);
    out->insert(out->end(), ni.keys.begin(), ni.keys.end());
    for (uint64_t c : ni.children) KeysUnder(m, c, out);
  }

  std::unique_ptr<Btree> tree_;
  bool commit_ = true;
  uint64_t ops_ = 0;
};

TEST_F(BtreeMergeTest, GrowAndShrinkBackToOneLeaf) {
  const media::TreeShape* shapes[] = {media::ShapeForMagic(media::kBmapMagic),
                                      media::ShapeForMagic(media::kFreeCntMagic),
                                      media::ShapeForMagic(media::kDirMagic)};
  uint64_t seed = 1;
  for (const media::TreeShape* s : shapes) {
    for (DeleteOrder order :
         {DeleteOrder::kRandom, DeleteOrder::kAscending, DeleteOrder::kDescending}) {
      uint32_t cap = media::LeafCapacity(*s);
      for (size_t keep : {size_t(1), size_t(cap / 3), size_t(cap)}) {
        SCOPED_TRACE(std::string(s->name) + " order " + std::to_string(int(order)) + " keep " +
                     std::to_string(keep));
        Use(*s, /*commit=*/true);
        // Directory records are large (14 a leaf): fewer of them are enough.
        size_t total = cap < 20 ? 8000 : 20000;
        ASSERT_NO_FATAL_FAILURE(GrowAndShrinkToOneLeaf(keep, total, order, seed++));
      }
    }
  }
}

TEST_F(BtreeMergeTest, GrowAndShrinkBackToOneLeafThreeWordKeys) {
  uint64_t seed = 100;
  for (DeleteOrder order :
       {DeleteOrder::kRandom, DeleteOrder::kAscending, DeleteOrder::kDescending}) {
    for (size_t keep : {size_t(1), size_t(40), size_t(127)}) {
      SCOPED_TRACE("order " + std::to_string(int(order)) + " keep " + std::to_string(keep));
      Use(kRmapLikeShape, /*commit=*/false);
      ASSERT_EQ(media::LeafCapacity(kRmapLikeShape), 127u);
      ASSERT_NO_FATAL_FAILURE(GrowAndShrinkToOneLeaf(keep, 20000, order, seed++));
    }
  }
}

TEST_F(BtreeMergeTest, ShrinkStaysCompact) {
  for (uint32_t magic : {media::kBmapMagic, media::kFreeCntMagic, media::kDirMagic}) {
    const media::TreeShape* s = media::ShapeForMagic(magic);
    SCOPED_TRACE(s->name);
    Use(*s, /*commit=*/true);
    ASSERT_NO_FATAL_FAILURE(ShrinkStaysCompact(3000, 20000, magic));
  }
}

TEST_F(BtreeMergeTest, ShrinkStaysCompactThreeWordKeys) {
  Use(kRmapLikeShape, /*commit=*/false);
  ASSERT_NO_FATAL_FAILURE(ShrinkStaysCompact(3000, 20000, 5));
}

// Merging two interior nodes makes the left one's last child and the right
// one's first child siblings; they are merged too when they fit, down to the
// leaves. Built by hand on a 4-level directory tree (sequential inserts fill
// every node): root -> {G1 (169 full level-1 nodes), G2 -> {P2, P2'}}. The last
// leaf under G1 (A) and the first under G2 (B) are cut to one record each, and
// their level-1 parents P1 and P2 to a few entries; then two level-1 subtrees
// of G1 are emptied, so that G1 and G2 fit in one node and merge: P1 and P2
// must merge, and A and B with them.
TEST_F(BtreeMergeTest, MergeFollowsTheSeamDownToTheLeaves) {
  TearDown();
  Open(uint64_t(256) << 20);
  Use(*media::ShapeForMagic(media::kDirMagic), /*commit=*/true);
  const uint64_t kLeaf = media::LeafCapacity(*shape_), kNode = media::NodeCapacity(*shape_);
  ASSERT_EQ(kLeaf, 14u);
  ASSERT_EQ(kNode, 169u);
  const uint64_t n = kNode * kNode * kLeaf + kNode * kLeaf + 166 * kLeaf;
  std::set<WideKey> model;
  for (uint64_t i = 0; i < n; i++) {
    WideKey k{i / 4, i % 4, 0, 0};
    ASSERT_NO_FATAL_FAILURE(Insert(k));
    model.insert(k);
  }
  Flush();
  ASSERT_EQ(root_.levels, 4u);
  auto m = Map();
  const NodeInfo& root = m.at(root_.block);
  ASSERT_EQ(root.children.size(), 2u);
  const NodeInfo& g1 = m.at(root.children[0]);
  const NodeInfo& g2 = m.at(root.children[1]);
  ASSERT_EQ(g1.children.size(), kNode);
  ASSERT_EQ(g2.children.size(), 2u);
  const NodeInfo& p1 = m.at(g1.children.back());
  const NodeInfo& p2 = m.at(g2.children[0]);
  ASSERT_EQ(p1.children.size(), kNode);
  ASSERT_EQ(p2.children.size(), kNode);
  ASSERT_EQ(m.at(g2.children[1]).children.size(), 166u);
  const NodeInfo& a = m.at(p1.children.back());
  const NodeInfo& b = m.at(p2.children.front());
  const WideKey ka = a.keys.front(), kb = b.keys.front();
  // Keys to delete, from the intact map: A and B but one record each; P1's
  // leaves 4..167 (P1 keeps 5 entries: it is last under G1 and its left
  // neighbour is full); P2's leaves 1..149 (P2 keeps 20, too many to merge
  // with P' of 166); then two whole level-1 subtrees of G1.
  std::vector<WideKey> cut(a.keys.begin() + 1, a.keys.end());
  cut.insert(cut.end(), b.keys.begin() + 1, b.keys.end());
  for (size_t i = 4; i < kNode - 1; i++) KeysUnder(m, p1.children[i], &cut);
  for (size_t i = 1; i < 150; i++) KeysUnder(m, p2.children[i], &cut);
  std::vector<WideKey> drain;
  KeysUnder(m, g1.children[10], &drain);
  KeysUnder(m, g1.children[20], &drain);
  for (const WideKey& k : cut) {
    ASSERT_NO_FATAL_FAILURE(Delete(k));
    model.erase(k);
  }
  Flush();
  std::map<WideKey, uint64_t> leaf_of;
  m = Map(&leaf_of);
  ASSERT_EQ(root_.levels, 4u);
  ASSERT_NE(leaf_of.at(ka), leaf_of.at(kb));
  EXPECT_EQ(m.at(leaf_of.at(ka)).keys.size(), 1u);
  EXPECT_EQ(m.at(leaf_of.at(kb)).keys.size(), 1u);
  EXPECT_EQ(m.at(m.at(root_.block).children[0]).children.size(), kNode);
  ASSERT_NO_FATAL_FAILURE(Check(model));
  for (const WideKey& k : drain) {
    ASSERT_NO_FATAL_FAILURE(Delete(k));
    model.erase(k);
  }
  Flush();
  // G1 + G2 = 167 + 2 entries: merged, the root collapsed, and P1 + P2 merged
  // on the seam.
  leaf_of.clear();
  m = Map(&leaf_of);
  EXPECT_EQ(root_.levels, 3u);
  EXPECT_EQ(m.at(root_.block).children.size(), kNode - 1);
  EXPECT_EQ(leaf_of.at(ka), leaf_of.at(kb)) << "the seam leaves were not merged";
  EXPECT_EQ(m.at(leaf_of.at(ka)).keys, (std::vector<WideKey>{ka, kb}));
  ASSERT_NO_FATAL_FAILURE(Check(model));
}

// Many small trials on the directory shape (14 records a leaf, so merges and
// splits are frequent): start from up to one leaf of records, run a random
// mix of inserts and deletes of other records (clustered or spread keys),
// delete every other record: the tree is one leaf again.
TEST_F(BtreeMergeTest, InterleavedWorkloadsReturnToOneLeaf) {
  Use(*media::ShapeForMagic(media::kDirMagic), /*commit=*/true);
  const uint64_t kLeaf = media::LeafCapacity(*shape_);
  for (uint64_t trial = 0; trial < 300; trial++) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    std::mt19937_64 rng(trial);
    uint64_t domain = trial % 3 == 0 ? 64 : trial % 3 == 1 ? 1000 : 1ull << 40;
    auto key = [&] { return WideKey{rng() % domain, rng() % 8, 0, 0}; };
    std::set<WideKey> keep;
    size_t nkeep = 1 + rng() % kLeaf;
    while (keep.size() < nkeep) keep.insert(key());
    for (const WideKey& k : keep) ASSERT_NO_FATAL_FAILURE(Insert(k));
    Flush();
    ASSERT_EQ(root_.levels, 1u);
    std::set<WideKey> extra;
    std::vector<WideKey> extra_v;
    size_t ops = 200 + rng() % 3000;
    int grow_pct = 50 + int(rng() % 40);
    for (size_t op = 0; op < ops; op++) {
      if (extra_v.empty() || int(rng() % 100) < grow_pct) {
        WideKey k = key();
        if (keep.count(k) || !extra.insert(k).second) continue;
        extra_v.push_back(k);
        ASSERT_NO_FATAL_FAILURE(Insert(k));
      } else {
        size_t at = rng() % extra_v.size();
        std::swap(extra_v[at], extra_v.back());
        ASSERT_NO_FATAL_FAILURE(Delete(extra_v.back()));
        extra.erase(extra_v.back());
        extra_v.pop_back();
      }
    }
    if (trial % 2) std::sort(extra_v.begin(), extra_v.end());
    for (const WideKey& k : extra_v) ASSERT_NO_FATAL_FAILURE(Delete(k));
    Flush();
    EXPECT_EQ(root_.levels, 1u);
    EXPECT_EQ(Check(keep), 1u);
    for (const WideKey& k : keep) ASSERT_NO_FATAL_FAILURE(Delete(k));
    Flush();
    ASSERT_EQ(root_.levels, 0u);
    ASSERT_TRUE(alloc_->live_.empty());
  }
}

// Interleaved inserts and deletes around a steady size keep the tree compact
// and the allocator's books balanced.
TEST_F(BtreeMergeTest, ChurnStaysCompact) {
  Use(*media::ShapeForMagic(media::kDirMagic), /*commit=*/true);
  std::vector<WideKey> keys = Keys(30000, 77);
  std::mt19937_64 rng(78);
  std::set<WideKey> model;
  std::vector<WideKey> present;
  size_t next = 0;
  for (int op = 0; op < 60000; op++) {
    // Grow to ~6000, shrink to ~500, grow again.
    size_t target = op < 20000 ? 6000 : op < 40000 ? 500 : 4000;
    bool grow = present.size() < target ? rng() % 4 != 0 : rng() % 4 == 0;
    bool insert = next < keys.size() && (present.empty() || grow);
    if (insert) {
      ASSERT_NO_FATAL_FAILURE(Insert(keys[next]));
      model.insert(keys[next]);
      present.push_back(keys[next++]);
    } else {
      size_t at = rng() % present.size();
      std::swap(present[at], present.back());
      ASSERT_NO_FATAL_FAILURE(Delete(present.back()));
      model.erase(present.back());
      present.pop_back();
    }
    if (op % 2000 == 1999) {
      Flush();
      ASSERT_NO_FATAL_FAILURE(Check(model));
    }
  }
  Flush();
  Check(model);
}

class BtreeCorruptionTest : public BtreeTest {
 protected:
  // A three-level directory tree, committed; returns its keys.
  std::vector<Key> Build(Btree& t) {
    std::vector<Key> keys;
    for (uint64_t i = 0; i < 3000; i++) {
      keys.push_back(Key{i * 7919 % 3001, i});
      EXPECT_TRUE(t.Insert(Rec(keys.back(), i).data()).ok());
      if (i % 32 == 31) Commit();
    }
    Commit();
    EXPECT_GE(root_.levels, 3u);
    return keys;
  }
  // The leaf holding `k` and its parent, from VisitNodes.
  void FindLeaf(Btree& t, const Key& k, uint64_t* leaf, uint64_t* parent) {
    uint64_t last_interior = 0;
    ASSERT_TRUE(t.VisitNodes([&](uint64_t bno, const uint8_t* node, const uint64_t* lo,
                                 const uint64_t* hi) {
                   const auto& h = *reinterpret_cast<const media::BtreeNodeHeader*>(node);
                   if (h.level == 1) last_interior = bno;
                   if (h.level == 0 && lo && media::CompareKeys(lo, k.data(), 2) <= 0 &&
                       (!hi || media::CompareKeys(k.data(), hi, 2) < 0)) {
                     *leaf = bno;
                     *parent = last_interior;
                   }
                   return Status::Ok();
                 }).ok());
  }
  void Flip(uint64_t bno, uint64_t off) {
    ASSERT_TRUE(journal_->Checkpoint().ok());  // the home is the block's only copy to damage
    auto span = dev_->Range(bno * media::kBlockSize + off, 1);
    ASSERT_TRUE(span.has_value());
    (*span)[0] ^= 0x40;
    journal_->ForgetBlock(bno);  // and its cached copy: the next read sees the flip
  }
};

TEST_F(BtreeCorruptionTest, FlippedByteInLeafGivesEuclean) {
  auto t = Tree(media::kDirMagic);
  auto keys = Build(*t);
  uint64_t leaf = 0, parent = 0;
  FindLeaf(*t, keys[100], &leaf, &parent);
  ASSERT_NE(leaf, 0u);
  // A key of another leaf under another parent, found while the tree is intact.
  Key elsewhere{};
  for (const Key& k : keys) {
    uint64_t l2 = 0, p2 = 0;
    FindLeaf(*t, k, &l2, &p2);
    if (p2 != parent) {
      elsewhere = k;
      break;
    }
  }
  Flip(leaf, 100);
  std::vector<uint8_t> out(shape_->rec_size);
  auto r = t->Lookup(keys[100].data(), out.data());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().err(), EUCLEAN) << r.error().ToString();
  EXPECT_EQ(t->Delete(keys[100].data()).err(), EUCLEAN);
  EXPECT_EQ(t->Update(Rec(keys[100], 5).data()).err(), EUCLEAN);
  EXPECT_EQ(t->Insert(Rec(Key{keys[100][0], 99999}, 1).data()).err(), EUCLEAN);
  EXPECT_EQ(t->Scan(nullptr, [](const void*) { return true; }).err(), EUCLEAN);
  EXPECT_EQ(t->VisitNodes([](uint64_t, const uint8_t*, const uint64_t*, const uint64_t*) {
               return Status::Ok();
             }).err(),
            EUCLEAN);
  EXPECT_EQ(t->CountRecords(), 0u);
  // Records in other leaves stay readable.
  r = t->Lookup(elsewhere.data(), out.data());
  ASSERT_TRUE(r.has_value() && *r);
  EXPECT_EQ(KeyOf(out.data()), elsewhere);
}

TEST_F(BtreeCorruptionTest, FlippedByteInInteriorNodeGivesEuclean) {
  auto t = Tree(media::kDirMagic);
  auto keys = Build(*t);
  Flip(root_.block, 40);  // first key of the root
  std::vector<uint8_t> out(shape_->rec_size);
  auto r = t->LookupLE(keys[0].data(), out.data());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().err(), EUCLEAN);
}

TEST_F(BtreeCorruptionTest, WrongLevelOrMagicGivesEuclean) {
  auto t = Tree(media::kDirMagic);
  auto keys = Build(*t);
  uint64_t leaf = 0, parent = 0;
  FindLeaf(*t, keys[10], &leaf, &parent);
  std::vector<uint8_t> out(shape_->rec_size);
  // A root that claims more levels than its nodes have.
  media::BtreeRoot saved = root_;
  root_.levels++;
  auto r = t->Lookup(keys[10].data(), out.data());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().err(), EUCLEAN);
  EXPECT_NE(r.error().message().find("level mismatch"), std::string::npos) << r.error().message();
  // A root pointing at a leaf while claiming interior levels.
  root_ = {leaf, saved.levels, 0};
  r = t->LookupGE(keys[10].data(), out.data());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().err(), EUCLEAN);
  // Impossible roots.
  root_ = {0, 2, 0};
  EXPECT_EQ(t->Lookup(keys[10].data(), out.data()).error().err(), EUCLEAN);
  root_ = {leaf, 40, 0};
  EXPECT_EQ(t->Lookup(keys[10].data(), out.data()).error().err(), EUCLEAN);
  root_ = saved;
  // A tree of another kind: the magic is checked.
  Btree other(tx_.get(), *media::ShapeForMagic(media::kFreeCntMagic), &root_, 7, alloc_.get());
  EXPECT_EQ(other.Lookup(keys[10].data(), out.data()).error().err(), EUCLEAN);
  // The intact tree still works.
  r = t->Lookup(keys[10].data(), out.data());
  ASSERT_TRUE(r.has_value() && *r);
}

}  // namespace
// ---- contracts (util/assert.h) and the run-time guards beside them ----------

class BtreeContractTest : public BtreeTest {
 protected:
  // A node image in the transaction: bmap records (key k, then Rec's bytes)
  // at a leaf, {key, child} entries at an interior node.
  void StageNode(uint64_t bno, uint16_t level, const std::vector<std::pair<uint64_t, uint64_t>>& items) {
    auto img = tx_->New(bno);
    ASSERT_TRUE(img.has_value()) << img.error().ToString();
    auto* h = reinterpret_cast<media::BtreeNodeHeader*>(*img);
    h->hdr.magic = shape_->magic;
    h->owner = 7;
    h->level = level;
    h->nrecs = static_cast<uint16_t>(items.size());
    uint8_t* p = *img + sizeof(media::BtreeNodeHeader);
    for (const auto& [key, child] : items) {
      if (level == 0) {
        std::vector<uint8_t> r = Rec({key, 0}, 1);
        std::memcpy(p, r.data(), r.size());
        p += r.size();
      } else {
        std::memcpy(p, &key, 8);
        std::memcpy(p + 8, &child, 8);
        p += 16;
      }
    }
  }
};

TEST_F(BtreeContractTest, ContractMisplacedInsertDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  auto t = Tree(media::kBmapMagic);
  for (uint64_t k = 10; k <= 50; k += 10) ASSERT_TRUE(t->Insert(Rec({k, 0}, 1).data()).ok());
  EXPECT_DEATH(
      {
        Btree::InjectFaultForTesting(Btree::Fault::kMisplaceInsert);
        t->Insert(Rec({25, 0}, 1).data()).IgnoreError();
      },
      "bmap btree node [0-9]+ after insert: keys out of order at item");
  ASSERT_TRUE(t->Insert(Rec({25, 0}, 1).data()).ok()) << "no fault: the same insert is fine";
  EXPECT_EQ(CheckStructure(*t), 6u);
}

TEST_F(BtreeContractTest, ContractDeleteLeavingAnEmptyNodeDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  auto t = Tree(media::kBmapMagic);
  const uint64_t cap = media::LeafCapacity(*shape_);
  for (uint64_t k = 1; k <= 3 * cap; k++) ASSERT_TRUE(t->Insert(Rec({k, 0}, 1).data()).ok());
  ASSERT_EQ(root_.levels, 2u);
  // Sequential inserts leave full leaves: the second one holds cap+1..2cap.
  // Empty it but for one record; the last delete would merge it away.
  for (uint64_t k = cap + 1; k < 2 * cap; k++) ASSERT_TRUE(t->Delete(&k).ok());
  uint64_t last = 2 * cap;
  EXPECT_DEATH(
      {
        Btree::InjectFaultForTesting(Btree::Fault::kKeepEmptyNode);
        t->Delete(&last).IgnoreError();
      },
      "bmap btree delete leaves empty node");
  ASSERT_TRUE(t->Delete(&last).ok());
  EXPECT_EQ(CheckStructure(*t), 2 * cap);
}

TEST_F(BtreeContractTest, ContractRootOnTheWrongLevelDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  auto t = Tree(media::kBmapMagic);
  EXPECT_DEATH(
      {
        Btree::InjectFaultForTesting(Btree::Fault::kWrongRootLevel);
        t->Insert(Rec({1, 0}, 1).data()).IgnoreError();
      },
      "bmap btree root [0-9]+ of a 2-level tree is not on level 1");
}

// A block the transaction holds as another tree's node (a cross-link on a
// crafted image): refused when the engine reaches it, in every build.
TEST_F(BtreeContractTest, CrossLinkedNodeOfAnotherTreeIsRefused) {
  auto dir = Tree(media::kDirMagic);
  ASSERT_TRUE(dir->Insert(Rec({5, 6}, 1).data()).ok());
  const media::BtreeRoot dir_root = root_;
  auto bmap = Tree(media::kBmapMagic);  // on the same root: the directory's leaf
  uint64_t key = 5;
  auto r = bmap->Lookup(&key, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().err(), EUCLEAN);
  EXPECT_NE(r.error().message().find("block " + std::to_string(dir_root.block)), std::string::npos)
      << r.error().message();
}

// A child whose keys run past its parent's next key (a crafted image that
// each node's verifier passes): the split that would put its separator out
// of order in the parent is refused, in every build.
TEST_F(BtreeContractTest, SplitOfAChildOutsideItsRangeIsRefused) {
  Tree(media::kBmapMagic);
  const uint64_t cap = media::LeafCapacity(*shape_);
  std::vector<std::pair<uint64_t, uint64_t>> a, b;
  for (uint64_t i = 0; i < cap; i++) a.push_back({11 + 2 * i, 0});  // 11, 13, .. far past 20
  b.push_back({1000, 0});
  ASSERT_NO_FATAL_FAILURE(StageNode(701, 0, a));
  ASSERT_NO_FATAL_FAILURE(StageNode(702, 0, b));
  ASSERT_NO_FATAL_FAILURE(StageNode(700, 1, {{10, 701}, {20, 702}}));
  root_.block = 700;
  root_.levels = 2;
  auto t = Tree(media::kBmapMagic);
  Status st = t->Insert(Rec({16, 0}, 2).data());
  EXPECT_EQ(st.err(), EUCLEAN) << st.ToString();
  EXPECT_NE(st.message().find("block 700"), std::string::npos) << st.message();
}

}  // namespace udax
