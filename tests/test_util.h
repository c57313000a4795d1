// tests/test_util.h — shared helpers for the filesystem unit tests: a temp
// device path under /dev/shm unique per test (removed on teardown), a fixture
// with a freshly made and mounted filesystem, Status/Result assertion macros,
// whole-file read/write helpers, raw image block access (pread/pwrite on the
// host file while the filesystem is unmounted) and raw image navigation: find
// a tree's leaf, read or edit records in place with a valid crc (crafted images).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <utility>
#include <thread>
#include <mutex>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fs/fs_impl.h"
#include "pattern.h"
#include "fs/test_access.h"
#include "udax/check.h"
#include "media/format.h"
#include "media/verify.h"
#include "udax/fs.h"
#include "udax/status.h"
#include "util/assert.h"

namespace udax::testutil {

// ---- Status / Result assertions --------------------------------------------
inline Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.error();
}

inline ::testing::AssertionResult IsOk(const Status& s, const char* expr) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " -> " << s.ToString();
}
inline ::testing::AssertionResult HasErrno(const Status& s, int e, const char* expr) {
  if (s.err() == e) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " -> " << (s.ok() ? "ok" : s.ToString())
                                       << ", expected " << ErrnoName(e);
}
// All four accept a Status or a Result<T> and can be streamed into (<< ...).
#define ASSERT_OK(expr) \
  ASSERT_TRUE(::udax::testutil::IsOk(::udax::testutil::StatusOf(expr), #expr))
#define EXPECT_OK(expr) \
  EXPECT_TRUE(::udax::testutil::IsOk(::udax::testutil::StatusOf(expr), #expr))
// The expression fails with errno `e`.
#define EXPECT_ERRNO(expr, e) \
  EXPECT_TRUE(::udax::testutil::HasErrno(::udax::testutil::StatusOf(expr), (e), #expr))
#define ASSERT_ERRNO(expr, e) \
  ASSERT_TRUE(::udax::testutil::HasErrno(::udax::testutil::StatusOf(expr), (e), #expr))
// `auto x = ASSERT_VALUE(result_expr)` is not possible with gtest; use:
//   ASSIGN_OR_FAIL(auto x, expr);
#define ASSIGN_OR_FAIL(lhs, expr)                                                   \
  auto UDAX_CONCAT(_r_, __LINE__) = (expr);                                         \
  ASSERT_TRUE(UDAX_CONCAT(_r_, __LINE__).has_value())                               \
      << #expr << " -> " << UDAX_CONCAT(_r_, __LINE__).error().ToString();          \
  lhs = std::move(UDAX_CONCAT(_r_, __LINE__)).value()

// ---- temp devices ------------------------------------------------------------
inline std::string DevicePathStem(const std::string& tag) {
  std::string name = "udax";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    name += "_";
    name += info->test_suite_name();
    name += "_";
    name += info->name();
  }
  for (char& c : name)
    if (c == '/' || c == ' ') c = '_';
  if (!tag.empty()) name += "_" + tag;
  return name;
}

// Tests of contracts (util/assert.h) need a build that checks them: Debug or
// a sanitizer build (CI's ASan build); elsewhere they skip, saying so.
#define UDAX_SKIP_WITHOUT_ASSERTS()                                                        \
  do {                                                                                     \
    if (!UDAX_ASSERTS_ON)                                                                  \
      GTEST_SKIP() << "contracts are checked only with UDAX_ASSERTS (Debug and sanitizer " \
                      "builds; CI: the ASan build)";                                       \
  } while (0)

// True in the child process of a "threadsafe" death test (re-executed binary).
inline bool InDeathTestChild() { return !GTEST_FLAG_GET(internal_run_death_test).empty(); }

// /dev/shm/udax_<suite>_<test>[_tag]_<pid>_<n>.img — unique per test and
// process. A death-test child (which dies without cleaning up) names its files
// after its parent, <ppid>_dt<pid>_<n>, so the parent can remove them.
inline std::string UniqueDevicePath(const std::string& tag = "") {
  static std::atomic<int> counter{0};
  std::string pid = InDeathTestChild()
                        ? std::to_string(getppid()) + "_dt" + std::to_string(getpid())
                        : std::to_string(getpid());
  return "/dev/shm/" + DevicePathStem(tag) + "_" + pid + "_" +
         std::to_string(counter.fetch_add(1)) + ".img";
}

// Removes what death-test children of this process left for `tag`.
inline void RemoveDeathTestLeftovers(const std::string& tag) {
  std::string prefix = DevicePathStem(tag) + "_" + std::to_string(getpid()) + "_dt";
  DIR* d = ::opendir("/dev/shm");
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0)
      ::unlink(("/dev/shm/" + std::string(e->d_name)).c_str());
  }
  ::closedir(d);
}

// A device path removed when this goes out of scope.
class TempDevice {
 public:
  explicit TempDevice(const std::string& tag = "") : tag_(tag), path_(UniqueDevicePath(tag)) {
    ::unlink(path_.c_str());
  }
  ~TempDevice() {
    ::unlink(path_.c_str());
    if (!InDeathTestChild()) RemoveDeathTestLeftovers(tag_);
  }
  TempDevice(const TempDevice&) = delete;
  TempDevice& operator=(const TempDevice&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string tag_;
  std::string path_;
};

inline constexpr uint64_t kMiB = 1024 * 1024;

// ---- data helpers --------------------------------------------------------------
// Pattern(len, seed): deterministic pseudo-random bytes (pattern.h).

// Waits (polling every millisecond) until cond() holds, at most `bound`.
inline bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds bound = std::chrono::milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + bound;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Runs `body` in a forked child that dies with its parent (and exits at
// once if the parent is already gone); the child exits with body's return
// value (0 = ok). Returns its pid.
inline pid_t ForkChild(const std::function<int()>& body) {
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(120);
    ::_exit(body());
  }
  return pid;
}
// Waits for `pid`; its wait status.
inline int WaitChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Collects on_invalidate callbacks of any number of mappings (from any thread).
struct InvalidateEvent {
  uint64_t ino, off, len;
  InvalidateReason why;
};
class InvalidateLog {
 public:
  InvalidateCallback Callback() {
    return [this](uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why) {
      std::lock_guard<std::mutex> g(mu_);
      events_.push_back({ino, off, len, why});
    };
  }
  std::vector<InvalidateEvent> Take() {
    std::lock_guard<std::mutex> g(mu_);
    return std::exchange(events_, {});
  }
  bool Heard(InvalidateReason why) {
    std::lock_guard<std::mutex> g(mu_);
    for (const auto& e : events_)
      if (e.why == why) return true;
    return false;
  }
  size_t count() {
    std::lock_guard<std::mutex> g(mu_);
    return events_.size();
  }

 private:
  std::mutex mu_;
  std::vector<InvalidateEvent> events_;
};

inline Status WriteWhole(Filesystem& fs, const std::string& path, const std::vector<uint8_t>& data,
                         int extra_flags = O_TRUNC) {
  auto f = fs.Open(path, O_CREAT | O_RDWR | extra_flags, 0644);
  if (!f.has_value()) return f.error();
  size_t done = 0;
  while (done < data.size()) {
    auto n = f->Pwrite(data.data() + done, data.size() - done, done);
    if (!n.has_value()) return n.error();
    if (*n == 0) return Errno(EIO, "short write of 0 bytes");
    done += *n;
  }
  return f->Close();
}

// A directory keeps its entry tree's (empty) root leaf once it has held an
// entry, until it is removed. Tests that compare free space before and after
// call this first, so "/" already holds its leaf when the baseline is taken.
inline Status GiveRootItsLeaf(Filesystem& fs) {
  RETURN_IF_ERROR(WriteWhole(fs, "/.root-leaf", {}));
  return fs.Unlink("/.root-leaf");
}

inline Result<std::vector<uint8_t>> ReadWhole(Filesystem& fs, const std::string& path) {
  auto f = fs.Open(path, O_RDONLY);
  if (!f.has_value()) return f.error();
  auto st = f->GetStat();
  if (!st.has_value()) return st.error();
  std::vector<uint8_t> out(st->size);
  size_t done = 0;
  while (done < out.size()) {
    auto n = f->Pread(out.data() + done, out.size() - done, done);
    if (!n.has_value()) return n.error();
    if (*n == 0) break;
    done += *n;
  }
  out.resize(done);
  return out;
}

inline std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

// Index of the first byte that is not `v`, or -1.
inline int64_t FirstNot(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return static_cast<int64_t>(i);
  return -1;
}

// ---- raw image access (unmounted) ------------------------------------------------
inline std::vector<uint8_t> ReadImage(const std::string& path, uint64_t off, size_t len) {
  std::vector<uint8_t> buf(len);
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) return buf;
  ssize_t n = ::pread(fd, buf.data(), len, static_cast<off_t>(off));
  EXPECT_EQ(n, static_cast<ssize_t>(len));
  ::close(fd);
  return buf;
}

inline void WriteImage(const std::string& path, uint64_t off, const void* data, size_t len) {
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << path;
  ssize_t n = ::pwrite(fd, data, len, static_cast<off_t>(off));
  ASSERT_EQ(n, static_cast<ssize_t>(len));
  ::close(fd);
}

inline std::vector<uint8_t> ReadImageBlock(const std::string& path, uint64_t bno) {
  return ReadImage(path, bno * media::kBlockSize, media::kBlockSize);
}
inline void WriteImageBlock(const std::string& path, uint64_t bno, const std::vector<uint8_t>& b) {
  ASSERT_EQ(b.size(), media::kBlockSize);
  WriteImage(path, bno * media::kBlockSize, b.data(), b.size());
}
// XORs `n` bytes at `off` with 0xFF.
inline void FlipBytes(const std::string& path, uint64_t off, size_t n) {
  auto b = ReadImage(path, off, n);
  for (auto& c : b) c ^= 0xFF;
  WriteImage(path, off, b.data(), n);
}

inline uint64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

// The permissions /proc/self/maps shows for the page at `p` ("rw-s", "---p"...).
inline std::string PagePerms(const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    uintptr_t lo, hi;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a < hi) return perms;
  }
  return "unmapped";
}

// ---- raw image navigation (unmounted; crafted images) -------------------------------
inline std::string ProblemsMatching(const FsckReport& r, const std::string& needle) {
  std::string out;
  for (const auto& p : r.problems)
    if (p.find(needle) != std::string::npos) out += p + "\n";
  return out;
}

inline media::RootBlock ReadRootBlock(const std::string& path) {
  media::RootBlock r;
  auto b = ReadImageBlock(path, media::kRootBlockNo);
  std::memcpy(&r, b.data(), sizeof r);
  return r;
}

// The leaf of the tree at `root` that holds (or would hold) `key` (the key's
// first word).
inline uint64_t LeafFor(const std::string& path, const media::BtreeRoot& root, uint32_t magic, uint64_t key) {
  const media::TreeShape& s = *media::ShapeForMagic(magic);
  uint64_t bno = root.block;
  for (int depth = 0; depth < 20; depth++) {
    auto b = ReadImageBlock(path, bno);
    const auto* h = reinterpret_cast<const media::BtreeNodeHeader*>(b.data());
    if (h->level == 0) return bno;
    uint32_t stride = s.key_words * 8 + 8;
    uint64_t child = 0;
    for (uint32_t i = 0; i < h->nrecs; i++) {
      uint64_t k, c;
      std::memcpy(&k, b.data() + sizeof(media::BtreeNodeHeader) + i * stride, 8);
      std::memcpy(&c, b.data() + sizeof(media::BtreeNodeHeader) + i * stride + s.key_words * 8, 8);
      if (i == 0 || k <= key) child = c;
    }
    bno = child;
  }
  ADD_FAILURE() << "tree too deep";
  return 0;
}

inline media::InodeRec ReadInodeRec(const std::string& path, uint64_t ino) {
  media::RootBlock root = ReadRootBlock(path);
  uint64_t leaf = LeafFor(path, root.inodes, media::kInodeMagic, ino);
  auto b = ReadImageBlock(path, leaf);
  const auto* h = reinterpret_cast<const media::BtreeNodeHeader*>(b.data());
  for (uint32_t i = 0; i < h->nrecs; i++) {
    media::InodeRec r;
    std::memcpy(&r, b.data() + sizeof(media::BtreeNodeHeader) + i * sizeof r, sizeof r);
    if (r.ino == ino) return r;
  }
  ADD_FAILURE() << "inode " << ino << " not found in the image";
  return {};
}

// Rewrites block `bno` after `edit`, with a correct crc.
inline void EditBlock(const std::string& path, uint64_t bno, const std::function<void(uint8_t*)>& edit) {
  auto b = ReadImageBlock(path, bno);
  edit(b.data());
  media::SetBlockCrc(b.data());
  WriteImageBlock(path, bno, b);
}

// Edits, with a correct crc, every record for which `match` holds in the
// leaf of the tree at `root` that holds `key`; returns the leaf's block
// (ADD_FAILURE when no record matched).
inline uint64_t EditLeafRecords(const std::string& path, const media::BtreeRoot& root, uint32_t magic,
                                uint64_t key, const std::function<bool(const uint8_t* rec)>& match,
                                const std::function<void(uint8_t* rec)>& edit) {
  const media::TreeShape& s = *media::ShapeForMagic(magic);
  uint64_t leaf = LeafFor(path, root, magic, key);
  int edited = 0;
  EditBlock(path, leaf, [&](uint8_t* b) {
    const auto* h = reinterpret_cast<const media::BtreeNodeHeader*>(b);
    for (uint32_t i = 0; i < h->nrecs; i++) {
      uint8_t* rec = b + sizeof(media::BtreeNodeHeader) + i * s.rec_size;
      if (match(rec)) {
        edit(rec);
        edited++;
      }
    }
  });
  if (edited == 0) ADD_FAILURE() << "no " << s.name << " record matched in block " << leaf;
  return leaf;
}

// Edits inode `ino`'s record in place (valid crc); returns its leaf's block.
inline uint64_t EditInodeRec(const std::string& path, uint64_t ino, const std::function<void(media::InodeRec*)>& edit) {
  return EditLeafRecords(
      path, ReadRootBlock(path).inodes, media::kInodeMagic, ino,
      [&](const uint8_t* r) { return reinterpret_cast<const media::InodeRec*>(r)->ino == ino; },
      [&](uint8_t* r) { edit(reinterpret_cast<media::InodeRec*>(r)); });
}

inline std::string JoinProblems(const FsckReport& r) {
  std::string s;
  for (const auto& p : r.problems) s += "\n  " + p;
  return s;
}

// ---- fixture: a mounted filesystem on a fresh temp device ------------------------
class FsFixture : public ::testing::Test {
 protected:
  virtual uint64_t DeviceBytes() const { return 64 * kMiB; }

  void SetUp() override {
    path_ = UniqueDevicePath();
    ::unlink(path_.c_str());
    MkfsOptions o;
    o.size = DeviceBytes();
    Status st = Filesystem::Mkfs(path_, o);
    ASSERT_TRUE(st.ok()) << st.ToString();
    MountNow();
  }
  void TearDown() override {
    if (fs_) fs_.reset();
    ::unlink(path_.c_str());
    if (!InDeathTestChild()) RemoveDeathTestLeftovers("");
  }

  void MountNow(MountOptions opts = {}) {
    auto m = Filesystem::Mount(path_, opts);
    ASSERT_TRUE(m.has_value()) << m.error().ToString();
    fs_ = std::move(m).value();
  }
  void UnmountNow() {
    ASSERT_TRUE(fs_);
    Status st = fs_->Unmount();
    fs_.reset();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void Remount() {
    UnmountNow();
    MountNow();
  }
  // Unmounts, runs fsck, expects it clean, and mounts again.
  void ExpectFsckClean(bool remount = true) {
    if (fs_) UnmountNow();
    auto r = Fsck(path_);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_TRUE(r->clean()) << "fsck problems:" << JoinProblems(*r);
    if (remount) MountNow();
  }
  uint64_t FreeBlocks() {
    auto s = fs_->GetStatFs();
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    return s.has_value() ? s->free_blocks : 0;
  }

  // Free space as the allocator holds it: the free-space trees plus the node
  // free list (statfs counts only the former, so it drifts with the list).
  uint64_t AllFreeBlocks() {
    Transaction tx(ImplOf(*fs_)->journal(), true);
    auto rb = tx.Read(media::kRootBlockNo, media::kRootMagic);
    EXPECT_TRUE(rb.has_value()) << rb.error().ToString();
    if (!rb.has_value()) return 0;
    const auto* root = reinterpret_cast<const media::RootBlock*>(*rb);
    return root->free_blocks + root->freelist_count;
  }

  Filesystem& fs() { return *fs_; }

  std::string path_;
  std::unique_ptr<Filesystem> fs_;
};

}  // namespace udax::testutil
