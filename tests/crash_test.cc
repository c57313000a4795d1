// tests/crash_test.cc — crash consistency: every workload runs once on a
// small device with a CrashRecorder (src/testing/crash_recorder.h) watching
// every flush and fence; then, for every fence k (sampled when there are too
// many), the durable image "after fence k" is rebuilt, mounted (journal
// replay + orphan reclaim), compared with the model, unmounted and fsck-ed.
//
// What a crash image must show, with c = number of operations that returned
// at or before fence k:
//  * operations 1..c completely (the durability contract: metadata and data
//    are durable when the call returns);
//  * operation c+1 (in flight) all-or-nothing for metadata: the whole
//    namespace (names, types, inode numbers, nlink, sizes, modes, symlink
//    targets) equals the model state before it or after it;
//  * file data: per 4 KiB block (64 bytes in torn states) the content before
//    or after the in-flight operation;
//  * fsck clean.
// Torn states: for a sample of fences, also a random subset of the 64-byte
// pieces written after fence k and before fence k+1.
//
// On failure the workload, the fence index and the operation in flight are
// printed; UDAX_CRASH_KEEP=1 keeps the failing image under /dev/shm.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fs/fs_impl.h"
#include "fs/fsck.h"
#include "testing/crash_recorder.h"
#include "testing/fs_model.h"
#include "testing/fs_snapshot.h"
#include "udax/fs.h"

namespace udax::testing {
namespace {

constexpr uint64_t kDevSize = 16 << 20;
constexpr uint64_t kMaxChecksPerWorkload = 500;
constexpr int kTornEvery = 2;  // whole-record torn states at every 2nd checked fence
// Known issue, accepted until fixed: a pwrite that allocates several extents
// commits a transaction per extent (FsImpl::Pwrite's roll), each with the
// size reached so far, so a crash can leave any of those intermediate sizes.
constexpr bool kWriteSizeMayBePartial = true;

std::string Pattern(uint64_t seed, size_t len) {
  std::string s(len, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x | 1);  // never 0: a lost write cannot look like a hole
  }
  return s;
}

std::string ShmPath(const std::string& tag) {
  return "/dev/shm/udax_crash_" + std::to_string(getpid()) + "_" + tag + ".img";
}

// One workload run: the live filesystem, the model and the recording.
class CrashRun {
 public:
  explicit CrashRun(std::string name) : name_(std::move(name)), dev_(ShmPath(name_)), img_(ShmPath(name_ + "_img")) {}
  ~CrashRun() {
    handles_.clear();
    if (fs_) fs_->CrashForTesting();
    fs_.reset();
    if (!getenv("UDAX_CRASH_KEEP") || !::testing::Test::HasFailure()) ::unlink(img_.c_str());
    ::unlink(dev_.c_str());
  }

  // log_blocks: 0 = chosen from the size; a small log checkpoints often.
  void Setup(uint32_t log_blocks = 0) {
    ::unlink(dev_.c_str());
    ASSERT_TRUE(Filesystem::Mkfs(dev_, {.size = kDevSize, .log_blocks = log_blocks}).ok());
    auto m = Filesystem::Mount(dev_);
    ASSERT_TRUE(m.has_value()) << m.error().ToString();
    fs_ = std::move(*m);
  }

  // Everything before this is the (durable) starting state.
  void StartRecording() {
    LearnInos();
    rec_ = std::make_unique<CrashRecorder>(fs_->impl()->device());
    ASSERT_TRUE(rec_->Start().ok());
    fs_->impl()->device()->SetPersistObserver(rec_.get());
    checkpoints0_ = fs_->impl()->journal()->checkpoints();
    recording_ = true;
    states_.push_back(model_.Snapshot());
    ops_.clear();
  }

  // ---- operations: the real call and the model's, same errno expected ----
  void Op(const std::string& desc, const std::function<int()>& real, const std::function<int()>& model) {
    int got = real();
    int want = model();
    ASSERT_EQ(ErrnoName(got), std::string(ErrnoName(want))) << name_ << ": " << desc;
    uint64_t partial = partial_size_ino_;
    partial_size_ino_ = 0;
    LearnInos();
    if (recording_) {
      // Writes may still be pending at return: a commit's record is fenced,
      // the lines it applies to their homes wait for the next fence. That
      // the op is durable at return is what the image at its done fence
      // (which holds none of the pending writes) and every torn subset of
      // them checks in CheckAllFences.
      rec_->MarkOpDone(ops_.size());
      ops_.push_back(desc);
      partial_ino_.push_back(partial);
      states_.push_back(model_.Snapshot());
    }
  }

  static int Err(const Status& st) { return st.err(); }

  void Create(const std::string& h, const std::string& path, int flags = O_RDWR | O_CREAT) {
    Handle nh;
    int err = 0;
    Op("open " + path, [&] {
      auto f = fs_->Open(path, flags, 0644);
      if (!f) return err = f.error().err();
      nh.file = std::move(*f);
      return 0;
    }, [&] {
      bool created;
      return model_.Open(path, flags, 0644, &nh.id, &created);
    });
    if (err == 0 && nh.file.is_open()) handles_[h] = std::move(nh);
  }
  void Close(const std::string& h) {
    Op("close " + h, [&] { return Err(handles_.at(h).file.Close()); },
       [&] {
         model_.Close(handles_.at(h).id);
         handles_.erase(h);
         return 0;
       });
  }
  void Write(const std::string& h, uint64_t off, size_t len) {
    std::string data = Pattern(++seed_, len);
    if (kWriteSizeMayBePartial) partial_size_ino_ = model_.Get(handles_.at(h).id)->real_ino;
    Op("pwrite " + h + " [" + std::to_string(off) + ", +" + std::to_string(len) + ")", [&] {
      auto n = handles_.at(h).file.Pwrite(data.data(), len, off);
      if (!n) return n.error().err();
      return *n == len ? 0 : EIO;
    }, [&] {
      model_.Write(handles_.at(h).id, off, data.data(), len);
      return 0;
    });
  }
  void Ftruncate(const std::string& h, uint64_t len) {
    Op("ftruncate " + h + " " + std::to_string(len), [&] { return Err(handles_.at(h).file.Truncate(len)); },
       [&] { return model_.Truncate(handles_.at(h).id, len); });
  }
  void Fallocate(const std::string& h, int mode, uint64_t off, uint64_t len) {
    Op("fallocate " + h + " mode " + std::to_string(mode) + " [" + std::to_string(off) + ", +" +
           std::to_string(len) + ")",
       [&] { return Err(handles_.at(h).file.Fallocate(mode, off, len)); },
       [&] { return model_.Fallocate(handles_.at(h).id, mode, off, len, true); });
  }
  void Truncate(const std::string& p, uint64_t len) {
    Op("truncate " + p + " " + std::to_string(len), [&] { return Err(fs_->Truncate(p, len)); },
       [&] { return model_.TruncatePath(p, len); });
  }
  void Mkdir(const std::string& p) {
    Op("mkdir " + p, [&] { return Err(fs_->Mkdir(p, 0755)); }, [&] { return model_.Mkdir(p, 0755); });
  }
  void Rmdir(const std::string& p) {
    Op("rmdir " + p, [&] { return Err(fs_->Rmdir(p)); }, [&] { return model_.Rmdir(p); });
  }
  void Unlink(const std::string& p) {
    Op("unlink " + p, [&] { return Err(fs_->Unlink(p)); }, [&] { return model_.Unlink(p); });
  }
  void Rename(const std::string& a, const std::string& b) {
    Op("rename " + a + " " + b, [&] { return Err(fs_->Rename(a, b)); }, [&] { return model_.Rename(a, b); });
  }
  void Link(const std::string& a, const std::string& b) {
    Op("link " + a + " " + b, [&] { return Err(fs_->Link(a, b)); }, [&] { return model_.Link(a, b); });
  }
  void Symlink(const std::string& t, const std::string& p) {
    Op("symlink " + p + " -> " + t.substr(0, 40), [&] { return Err(fs_->Symlink(t, p)); },
       [&] { return model_.Symlink(t, p); });
  }
  void Chmod(const std::string& p, uint32_t mode) {
    Op("chmod " + p, [&] { return Err(fs_->Chmod(p, mode)); }, [&] { return model_.Chmod(p, mode); });
  }
  // A file of `extents` separate one-block extents (every other block written).
  void Fragmented(const std::string& path, int extents) {
    Create("frag", path);
    for (int i = 0; i < extents; i++) Write("frag", uint64_t(2 * i) * kModelBlock, kModelBlock);
    Close("frag");
  }

  const FsModel& model() const { return model_; }
  bool HasHandle(const std::string& h) const { return handles_.count(h) != 0; }
  uint64_t HandleSize(const std::string& h) const { return model_.Get(handles_.at(h).id)->size; }

  // Ends the live run: checks it against the model, then runs every crash check.
  void Finish() {
    ASSERT_TRUE(recording_);
    auto snap = SnapshotFs(*fs_, true);
    ASSERT_TRUE(snap.has_value()) << snap.error().ToString();
    std::string d = DiffSnapshots(model_.Snapshot(), *snap, true, true, true);
    ASSERT_EQ(d, "") << name_ << ": live filesystem differs from the model:\n" << d;
    fs_->impl()->device()->SetPersistObserver(nullptr);
    checkpoints_ = fs_->impl()->journal()->checkpoints() - checkpoints0_;
    handles_.clear();
    fs_->CrashForTesting();
    fs_.reset();
    CheckAllFences();
  }
  // Journal checkpoints during the recorded workload (after Finish).
  uint64_t checkpoints() const { return checkpoints_; }

 private:
  void LearnInos() {
    for (const auto& [id, path] : model_.PathsById()) {
      ModelNode* n = model_.Get(id);
      if (n->real_ino) continue;
      auto st = fs_->GetLstat(path);
      ASSERT_TRUE(st.has_value()) << path;
      n->real_ino = st->ino;
    }
  }

  struct Handle {
    File file;
    uint64_t id = 0;
  };

  void CheckAllFences();
  // "" when the image at `where` is acceptable for c completed operations.
  std::string CheckImage(size_t c, uint64_t grain);

  std::string name_, dev_, img_;
  std::unique_ptr<Filesystem> fs_;
  FsModel model_;
  std::unique_ptr<CrashRecorder> rec_;
  bool recording_ = false;
  uint64_t checkpoints0_ = 0, checkpoints_ = 0;
  std::map<std::string, Handle> handles_;
  std::vector<std::string> ops_;
  std::vector<TreeSnap> states_;  // states_[i]: after i operations
  std::vector<uint64_t> partial_ino_;  // per op: inode whose size may stop part-way
  uint64_t partial_size_ino_ = 0;
  uint64_t partial_states_ = 0;
  uint64_t seed_ = 0;
};

// Metadata view of a snapshot, by path (data dropped).
std::string MetaDiff(const TreeSnap& want, const TreeSnap& got) {
  return DiffSnapshots(want, got, true, false, false);
}

// Per `grain`-sized piece: got's content equals a's or b's (by inode number).
std::string DataDiff(const TreeSnap& got, const TreeSnap& a, const TreeSnap* b, uint64_t grain) {
  std::map<uint64_t, const SnapEntry*> by_ino_a, by_ino_b;
  for (const auto& [p, e] : a)
    if (e.type == S_IFREG) by_ino_a[e.ino] = &e;
  if (b)
    for (const auto& [p, e] : *b)
      if (e.type == S_IFREG) by_ino_b[e.ino] = &e;
  static const std::string kZero(kModelBlock, '\0');
  auto block = [](const SnapEntry* e, uint64_t blk) -> const std::string& {
    if (!e) return kZero;
    auto it = e->data.find(blk);
    return it == e->data.end() ? kZero : it->second;
  };
  std::ostringstream os;
  for (const auto& [path, g] : got) {
    if (g.type != S_IFREG) continue;
    const SnapEntry* ea = by_ino_a.count(g.ino) ? by_ino_a[g.ino] : nullptr;
    const SnapEntry* eb = by_ino_b.count(g.ino) ? by_ino_b[g.ino] : nullptr;
    std::set<uint64_t> blocks;
    for (const SnapEntry* e : {&g, ea, eb})
      if (e)
        for (const auto& [blk, _] : e->data) blocks.insert(blk);
    for (uint64_t blk : blocks) {
      if (blk * kModelBlock >= g.size) break;
      const std::string& gb = block(&g, blk);
      const std::string& ab = block(ea, blk);
      const std::string& bb = block(eb ? eb : ea, blk);
      for (uint64_t o = 0; o < kModelBlock && blk * kModelBlock + o < g.size; o += grain) {
        // Only what is visible (below the size found) has to match.
        size_t n = std::min<uint64_t>(grain, g.size - (blk * kModelBlock + o));
        if (std::memcmp(gb.data() + o, ab.data() + o, n) == 0) continue;
        if (std::memcmp(gb.data() + o, bb.data() + o, n) == 0) continue;
        os << "  " << path << " (inode " << g.ino << "): bytes [" << blk * kModelBlock + o << ", +"
           << grain << ") are neither the old nor the new content"
           << (std::memcmp(gb.data() + o, kZero.data(), n) == 0 ? " (zeroes)" : "") << "\n";
        return os.str();
      }
    }
  }
  return os.str();
}

std::string CrashRun::CheckImage(size_t c, uint64_t grain) {
  std::ostringstream os;
  {
    auto m = Filesystem::Mount(img_);
    if (!m) return "mount failed: " + m.error().ToString() + "\n";
    auto fs = std::move(*m);
    auto snap = SnapshotFs(*fs, true);
    if (!snap) {
      fs->CrashForTesting();
      return "reading the tree failed: " + snap.error().ToString() + "\n";
    }
    const TreeSnap* next = c + 1 < states_.size() ? &states_[c + 1] : nullptr;
    std::string d_old = MetaDiff(states_[c], *snap);
    std::string d_new = next ? MetaDiff(*next, *snap) : "x";
    if (!d_old.empty() && !d_new.empty() && next && partial_ino_[c]) {
      // Accepted (kWriteSizeMayBePartial): the written file's size anywhere
      // between its old and new size, everything else as after the write.
      TreeSnap cand = *next;
      for (auto& [p, e] : cand) {
        if (e.ino != partial_ino_[c]) continue;
        auto g = snap->find(p);
        auto o = states_[c].find(p);
        uint64_t lo = o == states_[c].end() ? 0 : o->second.size;
        if (g != snap->end() && g->second.size >= lo && g->second.size <= e.size) e.size = g->second.size;
      }
      if (MetaDiff(cand, *snap).empty()) {
        d_new.clear();
        partial_states_++;
      }
    }
    if (!d_old.empty() && !d_new.empty()) {
      os << "metadata is neither the state before the in-flight operation nor after it\n"
         << " vs before:\n" << d_old;
      if (next) os << " vs after:\n" << d_new;
    } else {
      os << DataDiff(*snap, states_[c], next, grain);
    }
    Status st = fs->Unmount();
    if (!st.ok()) os << "unmount failed: " << st.ToString() << "\n";
  }
  auto r = Fsck(img_);
  if (!r) {
    os << "fsck could not run: " << r.error().ToString() << "\n";
  } else {
    for (const auto& p : r->problems) os << "  fsck: " << p << "\n";
  }
  return os.str();
}

void CrashRun::CheckAllFences() {
  auto t0 = std::chrono::steady_clock::now();
  const uint64_t fences = rec_->fences();
  std::vector<uint64_t> done;  // done fence per op
  for (auto [id, f] : rec_->ops()) done.push_back(f);
  // Which fences to check: all, or an even sample plus every op boundary.
  std::set<uint64_t> pick;
  if (fences + 1 <= kMaxChecksPerWorkload) {
    for (uint64_t k = 0; k <= fences; k++) pick.insert(k);
  } else {
    for (uint64_t f : done) pick.insert(f);
    uint64_t stride = (fences + 1) / (kMaxChecksPerWorkload - pick.size()) + 1;
    for (uint64_t k = 0; k <= fences; k += stride) pick.insert(k);
    pick.insert(fences);
  }
  std::mt19937_64 rng(fences * 7919 + done.size());
  std::vector<uint8_t> image = rec_->base();
  uint64_t applied = 0, checked = 0, torn = 0;
  int failures = 0;
  for (uint64_t k : pick) {
    while (applied < k) rec_->ApplyEpoch(++applied, &image);
    size_t c = 0;
    while (c < done.size() && done[c] <= k) c++;
    std::string where = name_ + ": crash after fence " + std::to_string(k) + "/" +
                        std::to_string(fences) + ", " + std::to_string(c) + " ops done" +
                        (c < ops_.size() ? ", in flight: " + ops_[c] : ", none in flight");
    ASSERT_TRUE(CrashRecorder::WriteFile(image, img_).ok());
    std::string err = CheckImage(c, kModelBlock);
    checked++;
    if (!err.empty()) {
      ADD_FAILURE() << where << "\n" << err;
      if (++failures >= 3) return;
      continue;
    }
    // Torn variants: a random subset of the writes in flight after fence k
    // (before fence k+1) — cut into 64-byte pieces, and now and then as
    // whole write records.
    const auto& inflight = rec_->InflightWrites(k);
    for (int variant = 0; variant < 2 && !inflight.empty(); variant++) {
      if (variant == 1 && checked % kTornEvery != 0) break;
      auto pieces = variant == 0 ? CrashRecorder::SplitGranularity(inflight, 64) : inflight;
      std::vector<CrashRecorder::Write> subset;
      for (const auto& w : pieces)
        if (rng() & 1) subset.push_back(w);
      std::vector<uint8_t> t = image;
      rec_->ApplyWrites(subset, &t);
      ASSERT_TRUE(CrashRecorder::WriteFile(t, img_).ok());
      err = CheckImage(c, variant == 0 ? 64 : kModelBlock);
      torn++;
      if (!err.empty()) {
        ADD_FAILURE() << where << ", plus " << subset.size() << " of " << pieces.size()
                      << (variant == 0 ? " in-flight 64-byte pieces" : " in-flight write records")
                      << " (torn)\n" << err;
        if (++failures >= 3) return;
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("[ crash    ] %-12s %3zu ops, %4lu fences (%lu checkpoints), %4lu states checked + %3lu torn, %.1f s%s\n",
         name_.c_str(), ops_.size(), static_cast<unsigned long>(fences), static_cast<unsigned long>(checkpoints_),
         static_cast<unsigned long>(checked), static_cast<unsigned long>(torn), secs,
         partial_states_ ? (" (" + std::to_string(partial_states_) +
                            " with a partial write size: known issue)").c_str()
                         : "");
}

// ---------------------------------------------------------------------------

TEST(CrashTest, CreateAndWrite) {
  CrashRun r("write");
  r.Setup();
  r.StartRecording();
  r.Create("a", "/a");
  r.Write("a", 0, 10000);           // extending, multi-block
  r.Write("a", 2000, 5000);         // overwrite in place
  r.Write("a", 8000, 20000);        // part overwrite, part extension
  r.Write("a", 28000, 100);         // extension inside the EOF block
  r.Write("a", 200000, 3 * 4096);   // sparse extension
  r.Write("a", 50000, 70000);       // fills part of the hole
  r.Create("b", "/b", O_RDWR | O_CREAT | O_EXCL);
  r.Write("b", 1 << 20, 64 << 10);  // sparse, 64 KiB in one call
  r.Write("b", 0, 256 << 10);       // 256 KiB in one call
  r.Close("a");
  r.Close("b");
  r.Create("c", "/c", O_RDWR | O_CREAT | O_TRUNC);
  r.Close("c");
  r.Create("a2", "/a", O_RDWR | O_TRUNC);  // truncating open
  r.Write("a2", 0, 5000);
  r.Close("a2");
  r.Finish();
}

TEST(CrashTest, Rename) {
  CrashRun r("rename");
  r.Setup();
  r.Create("h", "/a");
  r.Write("h", 0, 30000);
  r.Close("h");
  r.Create("h", "/b");
  r.Write("h", 0, 50000);
  r.Close("h");
  r.Mkdir("/d1");
  r.Mkdir("/d1/sub");
  r.Create("h", "/d1/x");
  r.Write("h", 0, 5000);
  r.Close("h");
  r.Mkdir("/d2");
  r.Mkdir("/e");
  r.StartRecording();
  r.Rename("/a", "/c");            // new name
  r.Rename("/c", "/b");            // replaces a file (its blocks are freed)
  r.Rename("/d1", "/d2/d1");       // moves a directory
  r.Rename("/d2/d1/x", "/x");      // file across directories
  r.Rename("/d2/d1", "/e");        // directory over an empty directory
  r.Rename("/e/sub", "/e/sub2");   // within one directory
  r.Rename("/x", "/e/sub2/x");
  r.Link("/b", "/e/b2");
  r.Rename("/b", "/e/b2");         // same inode: nothing happens
  r.Rename("/e", "/top");
  r.Finish();
}

TEST(CrashTest, Unlink) {
  CrashRun r("unlink");
  r.Setup();
  r.Create("h", "/small");
  r.Write("h", 0, 3000);
  r.Close("h");
  r.Fragmented("/big", 150);  // freeing rolls over several transactions
  r.Create("h", "/open");
  r.Write("h", 0, 40000);
  r.Close("h");
  r.StartRecording();
  r.Unlink("/small");
  r.Unlink("/big");
  r.Create("o", "/open", O_RDWR);
  r.Unlink("/open");               // still open: orphaned, not freed
  r.Write("o", 40000, 20000);      // writes to the orphan
  r.Close("o");                    // last close frees it
  r.Finish();
}

TEST(CrashTest, Truncate) {
  CrashRun r("truncate");
  r.Setup();
  r.Create("h", "/t");
  r.Write("h", 0, 200000);
  r.Close("h");
  r.Fragmented("/frag", 120);
  r.StartRecording();
  r.Truncate("/t", 100000);        // down, mid-block
  r.Truncate("/t", 300000);        // up: the old EOF block's tail must read as zeroes
  r.Create("t", "/t", O_RDWR);
  r.Ftruncate("t", 5000);
  r.Write("t", 9000, 100);         // extension past a truncated EOF
  r.Ftruncate("t", 0);
  r.Close("t");
  r.Truncate("/frag", 4096 * 3 + 10);  // frees ~117 extents, rolling
  r.Truncate("/frag", 0);
  r.Truncate("/frag", 1 << 20);
  r.Finish();
}

TEST(CrashTest, Fallocate) {
  CrashRun r("fallocate");
  r.Setup();
  r.Create("h", "/f");
  r.Write("h", 0, 64 << 10);
  r.Close("h");
  r.Fragmented("/p", 100);
  r.StartRecording();
  r.Create("f", "/f", O_RDWR);
  r.Fallocate("f", 0, 60000, 70000);                                        // extends the size
  r.Fallocate("f", FALLOC_FL_KEEP_SIZE, 200000, 50000);                     // past EOF, size kept
  r.Fallocate("f", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5000, 20000); // partial blocks + full
  r.Fallocate("f", FALLOC_FL_ZERO_RANGE, 30000, 10000);
  r.Fallocate("f", FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 120000, 100000);
  r.Fallocate("f", FALLOC_FL_ZERO_RANGE, 125000, 10000);                   // extends over allocated blocks
  r.Close("f");
  r.Create("p", "/p", O_RDWR);
  r.Fallocate("p", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 4096 * 190);  // rolling punch
  r.Fallocate("p", 0, 0, 4096 * 50);
  r.Close("p");
  r.Finish();
}

TEST(CrashTest, DirsAndLinks) {
  CrashRun r("dirs");
  r.Setup();
  r.StartRecording();
  r.Mkdir("/a");
  r.Mkdir("/a/b");
  r.Mkdir("/a/b/c");
  r.Create("f", "/a/b/c/f");
  r.Write("f", 0, 9000);
  r.Close("f");
  r.Symlink("/a/b", "/l");
  r.Symlink(std::string(300, 'x') + "/target", "/a/long");  // target in a data block
  r.Link("/a/b/c/f", "/hard");
  r.Link("/l", "/l2");              // a hard link to a symlink
  r.Chmod("/hard", 0600);
  r.Unlink("/a/b/c/f");             // nlink 2 -> 1
  r.Rmdir("/a/b/c");
  r.Rmdir("/a/b");
  r.Unlink("/l");
  r.Unlink("/a/long");
  r.Unlink("/hard");                // last link: freed
  for (int i = 0; i < 40; i++) r.Mkdir("/a/d" + std::to_string(i));  // directory tree grows
  for (int i = 0; i < 40; i += 2) r.Rmdir("/a/d" + std::to_string(i));
  r.Finish();
}

TEST(CrashTest, RollingWrite) {
  // A write that fills several holes past EOF (blocks preallocated with
  // KEEP_SIZE split it), so it allocates several extents and commits more
  // than one transaction.
  CrashRun r("rollwrite");
  r.Setup();
  r.Create("h", "/f");
  for (int i = 1; i < 12; i++) r.Fallocate("h", FALLOC_FL_KEEP_SIZE, uint64_t(4 * i) * kModelBlock, kModelBlock);
  r.StartRecording();
  r.Write("h", 0, 50 * kModelBlock);
  r.Close("h");
  r.Finish();
}

// The durability contract for lazy timestamps: an overwrite's mtime/ctime
// reach the device at fsync, at the last close, at unmount — and survive a
// crash after any of those.
TEST(CrashTest, LazyTimesPersistAtFsyncAndClose) {
  std::string dev = ShmPath("times");
  ::unlink(dev.c_str());
  ASSERT_TRUE(Filesystem::Mkfs(dev, {.size = kDevSize}).ok());
  std::string data = Pattern(1, 8192);
  Stat after_fsync, after_close;
  {
    auto fs = Filesystem::Mount(dev).value();
    auto f = fs->Open("/f", O_RDWR | O_CREAT).value();
    ASSERT_TRUE(f.Pwrite(data.data(), data.size(), 0).has_value());
    auto g = fs->Open("/g", O_RDWR | O_CREAT).value();
    ASSERT_TRUE(g.Pwrite(data.data(), data.size(), 0).has_value());
    usleep(20000);
    ASSERT_TRUE(f.Pwrite(data.data(), 100, 10).has_value());  // overwrite: lazy times
    ASSERT_TRUE(f.Fsync().ok());
    after_fsync = *f.GetStat();
    ASSERT_TRUE(g.Pwrite(data.data(), 100, 10).has_value());
    after_close = *g.GetStat();
    ASSERT_TRUE(g.Close().ok());
    fs->CrashForTesting();
  }
  auto fs = Filesystem::Mount(dev).value();
  Stat f = *fs->GetStat("/f"), g = *fs->GetStat("/g");
  EXPECT_EQ(f.mtime, after_fsync.mtime) << "mtime lost although fsync returned";
  EXPECT_EQ(f.ctime, after_fsync.ctime);
  EXPECT_EQ(g.mtime, after_close.mtime) << "mtime lost although the last close returned";
  EXPECT_EQ(g.ctime, after_close.ctime);
  ASSERT_TRUE(fs->Unmount().ok());
  ::unlink(dev.c_str());
}

// `n` random operations on a small namespace (errors included: they must
// match the model and change nothing).
void RandomOps(CrashRun& r, uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t k) { return rng() % k; };
  auto name = [&] {
    static const char* kDirs[] = {"/", "/d/", "/d/e/", "/x/"};
    return std::string(kDirs[pick(4)]) + static_cast<char>('a' + pick(4));
  };
  auto existing = [&] {
    const auto& paths = r.model().PathsById();
    auto it = paths.begin();
    std::advance(it, pick(paths.size()));
    return it->second;
  };
  const char* kHandles[] = {"h0", "h1", "h2"};
  for (int i = 0; i < n && !::testing::Test::HasFatalFailure(); i++) {
    std::string h = kHandles[pick(3)];
    switch (pick(12)) {
      case 0:
      case 1:
        if (r.HasHandle(h)) r.Close(h);
        else r.Create(h, pick(3) ? name() : existing(), O_RDWR | O_CREAT);
        break;
      case 2:
      case 3:
      case 4:
        if (r.HasHandle(h)) {
          uint64_t size = r.HandleSize(h);
          uint64_t off = pick(3) ? pick(size + 1) : pick(256 << 10);
          r.Write(h, off, 1 + pick(pick(4) ? 9000 : 100000));
        }
        break;
      case 5:
        if (r.HasHandle(h)) {
          uint64_t size = r.HandleSize(h);
          if (pick(2)) r.Ftruncate(h, pick(size + 1));
          else r.Fallocate(h, std::vector<int>{0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE}[pick(4)],
                           pick(size + 8192), 1 + pick(40000));
        }
        break;
      case 6: r.Mkdir(name()); break;
      case 7: r.Rmdir(existing()); break;
      case 8: r.Unlink(existing()); break;
      case 9: r.Rename(existing(), pick(2) ? name() : existing()); break;
      case 10: r.Link(existing(), name()); break;
      case 11: r.Symlink(pick(2) ? existing() : std::string(200, 's'), name()); break;
    }
  }
}

// One random workload on a fresh filesystem (three directories to start
// from), cut at every fence; returns the journal checkpoints it made.
uint64_t RandomRun(const std::string& name, uint64_t seed, int ops, uint32_t log_blocks) {
  CrashRun r(name);
  r.Setup(log_blocks);
  r.Mkdir("/d");
  r.Mkdir("/d/e");
  r.Mkdir("/x");
  r.StartRecording();
  RandomOps(r, seed, ops);
  if (::testing::Test::HasFatalFailure()) return 0;
  r.Finish();
  return r.checkpoints();
}

// A log of the smallest size (8 blocks): the journal checkpoints every few
// operations, so power is also cut inside checkpoints (home blocks half
// written, the log's start cleared or not) and right after the log wraps.
TEST(CrashTest, RandomWithCheckpoints) {
  for (uint64_t s = 142; s < 145; s++) {
    SCOPED_TRACE("seed " + std::to_string(s));
    uint64_t checkpoints = RandomRun("ckpt" + std::to_string(s), s, 250, /*log_blocks=*/8);
    if (::testing::Test::HasFatalFailure()) return;
    EXPECT_GE(checkpoints, 1u) << "the workload should fill the log";
  }
}

TEST(CrashTest, Random) {
  uint64_t seed = getenv("UDAX_CRASH_SEED") ? strtoull(getenv("UDAX_CRASH_SEED"), nullptr, 0) : 42;
  for (uint64_t s = seed; s < seed + 6; s++) {
    SCOPED_TRACE("UDAX_CRASH_SEED=" + std::to_string(s));
    RandomRun("random" + std::to_string(s), s, 400, /*log_blocks=*/0);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace udax::testing
