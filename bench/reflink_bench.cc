// bench/reflink_bench.cc — the reflink rows of `udax bench`. See bench/README.md.
//
//   reflink_1g_10k_extents  ms  File::Clone of a 1 GiB file of 10 486 extents (100 KiB
//                               pieces written interleaved with a second file's 4 KiB
//                               pieces), against ioctl(FICLONE) of a file made the
//                               same way on XFS (-m reflink=1) on a loop device
//   cow_fault_4k            us  the first store into a shared block through a mapping
//                               of a fresh clone (one store per 64 KiB), against the
//                               first store into a hole of a truncated file
//   rmap_lookup             us  Filesystem::QueryRmap(random block) with ~1M
//                               single-block extents in the filesystem, against the
//                               goal constant 10 us
//
// Each row sets up its own devices and tears them down before the next row
// (the rmap device holds ~4 GiB). The sides of a row run interleaved round by
// round, alternating which goes first; each side's best round counts.
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "bench.h"
#include "bench_udax.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax::bench {
namespace {

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// ---- the layout of the clone source (both sides) ----
constexpr uint64_t kCloneFileBytes = 1ULL << 30;
constexpr uint64_t kPieceBytes = 100 << 10;  // one extent of the source
constexpr uint64_t kGapBytes = 4096;         // the other file's piece between two of them
constexpr uint64_t kPieces = (kCloneFileBytes + kPieceBytes - 1) / kPieceBytes;  // 10 486
constexpr uint64_t kCloneDeviceBytes = 2ULL << 30;  // >= 128 MiB: the largest log (510 blocks)
constexpr uint64_t kXfsImageBytes = 2ULL << 30;     // sparse
constexpr uint64_t kCowStride = 64 << 10;           // one store per 64 KiB: a fresh copy window each
constexpr uint64_t kFillChunk = 1ULL << 20;

uint64_t PieceLen(uint64_t i) { return std::min(kPieceBytes, kCloneFileBytes - i * kPieceBytes); }
uint64_t PrefixBytes(uint64_t pieces) { return std::min(pieces * kPieceBytes, kCloneFileBytes); }

// Writes a file of `bytes` through Pwrite (1 MiB at a time), then unlinks it:
// every device page below the high-water mark is then backed by tmpfs, so
// later allocations measure udax, not the page allocator of the emulation.
Status Prefault(Filesystem* fs, uint64_t bytes) {
  std::vector<uint8_t> chunk(kFillChunk, 0x77);
  {
    ASSIGN_OR_RETURN(File f, fs->Open("/prefault", O_CREAT | O_RDWR | O_TRUNC, 0644));
    for (uint64_t off = 0; off < bytes; off += kFillChunk) {
      RETURN_IF_ERROR(WriteAll(f, chunk.data(), std::min(kFillChunk, bytes - off), off));
      if (Interrupted()) return Errno(EINTR, "interrupted");
    }
    RETURN_IF_ERROR(f.Close());
  }
  return fs->Unlink("/prefault");
}

// ============================ reflink_1g_10k_extents ============================

// XFS: the same two files written with O_DIRECT (buffered writes would be
// allocated at writeback, file by file, with speculative preallocation: the
// files would come out nearly contiguous).
class XfsCloneSide {
 public:
  ~XfsCloneSide() { Close(); }
  Status Setup(const std::string& dir, const uint8_t* buf) {
    dirfd_ = ::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dirfd_ < 0) return SysErr("open " + dir);
    src_ = ::openat(dirfd_, "src", O_CREAT | O_RDWR | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
    gaps_ = ::openat(dirfd_, "gaps", O_CREAT | O_RDWR | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
    if (src_ < 0 || gaps_ < 0) return SysErr("create files on xfs with O_DIRECT");
    for (uint64_t i = 0; i < kPieces; i++) {
      uint64_t n = PieceLen(i);
      if (::pwrite(src_, buf, n, static_cast<off_t>(i * kPieceBytes)) != static_cast<ssize_t>(n))
        return SysErr("xfs: writing the clone source");
      if (::pwrite(gaps_, buf, kGapBytes, static_cast<off_t>(i * kGapBytes)) != static_cast<ssize_t>(kGapBytes))
        return SysErr("xfs: writing the gap file");
      if ((i & 1023) == 0 && Interrupted()) return Errno(EINTR, "interrupted");
    }
    if (::fsync(src_) != 0 || ::fsync(gaps_) != 0) return SysErr("xfs: fsync");
    return Status::Ok();
  }
  Result<uint64_t> Extents() { return FiemapCount(src_); }
  static Result<uint64_t> FiemapCount(int fd) {
    struct fiemap fm;
    std::memset(&fm, 0, sizeof fm);
    fm.fm_length = FIEMAP_MAX_OFFSET;
    fm.fm_flags = FIEMAP_FLAG_SYNC;
    fm.fm_extent_count = 0;  // count only
    if (ioctl(fd, FS_IOC_FIEMAP, &fm) != 0) return SysErr("FS_IOC_FIEMAP");
    return uint64_t{fm.fm_mapped_extents};
  }

  // Clones [0, len) of the source (len 0: FICLONE, the whole file) into a new
  // file. Only the ioctl is timed; *fsync_ms gets a following fsync of the
  // clone (which makes it durable, as a udax clone is on return). The clone
  // is then removed, and syncfs waits for XFS's background inode freeing so
  // that it does not run into the next measurement.
  Result<double> CloneMs(uint64_t len, double* fsync_ms, uint64_t* extents) {
    int dst = ::openat(dirfd_, "clone", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0644);
    if (dst < 0) return SysErr("xfs: create the clone");
    const Clock::time_point t0 = Clock::now();
    int rc;
    if (len == 0) {
      rc = ioctl(dst, FICLONE, src_);
    } else {
      struct file_clone_range r {};
      r.src_fd = src_;
      r.src_length = len;
      rc = ioctl(dst, FICLONERANGE, &r);
    }
    const Clock::time_point t1 = Clock::now();
    Status st = rc == 0 ? Status::Ok() : SysErr(len == 0 ? "ioctl(FICLONE)" : "ioctl(FICLONERANGE)");
    if (st.ok() && ::fsync(dst) != 0) st = SysErr("xfs: fsync of the clone");
    const Clock::time_point t2 = Clock::now();
    if (st.ok() && extents) {
      Result<uint64_t> n = FiemapCount(dst);
      *extents = n.has_value() ? *n : 0;
    }
    ::close(dst);
    ::unlinkat(dirfd_, "clone", 0);
    ::syncfs(dirfd_);
    RETURN_IF_ERROR(st);
    if (fsync_ms) *fsync_ms = Ms(t1, t2);
    return Ms(t0, t1);
  }

  void Close() {
    for (int* fd : {&src_, &gaps_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    if (dirfd_ >= 0) {
      ::unlinkat(dirfd_, "src", 0);
      ::unlinkat(dirfd_, "gaps", 0);
      ::unlinkat(dirfd_, "clone", 0);
      ::close(dirfd_);
    }
    dirfd_ = -1;
  }

 private:
  int dirfd_ = -1, src_ = -1, gaps_ = -1;
};

class CloneBench {
 public:
  explicit CloneBench(const ReflinkPlan& plan) : plan_(plan), dev_("reflink") {}

  // *skipped gets why, when XFS cannot be set up (the row is then left out).
  Result<ReflinkResult> Run(std::string* diag, std::string* skipped) {
    ReflinkResult res{"reflink_1g_10k_extents", "ms", 0, 0, "xfs-loop", 10.0, ""};
    void* mem = nullptr;
    if (posix_memalign(&mem, 4096, kPieceBytes) != 0) return Errno(ENOMEM, "buffer");
    std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(mem), &std::free);
    std::memset(buf.get(), 0xa5, kPieceBytes);

    if (Status st = xfs_.Setup(kXfsImageBytes, "reflink"); !st.ok()) {
      xfs_.Teardown();
      *skipped = st.ToString();
      return res;
    }
    RETURN_IF_ERROR(xfs_side_.Setup(xfs_.mount_point(), buf.get()).Prefixed("xfs-loop"));
    RETURN_IF_ERROR(SetupUdax(buf.get()));
    ASSIGN_OR_RETURN(auto uext, src_.Fiemap());
    ASSIGN_OR_RETURN(uint64_t xext, xfs_side_.Extents());
    *diag += Fmt("reflink: 1 GiB source in %llu pieces of 100 KiB, each followed by a 4 KiB piece of "
                 "a second file: %zu extents on udax, %llu on xfs-loop (FIEMAP)\n",
                 static_cast<unsigned long long>(kPieces), uext.size(), static_cast<unsigned long long>(xext));

    std::string udax_error;
    int udax_failures = 0;
    double best_fsync = 0;
    uint32_t log_blocks = 0;
    uint64_t xfs_clone_extents = 0;
    for (int r = 0; r < plan_.clone_rounds; r++) {
      for (int s = 0; s < 2; s++) {
        bool udax_side = (s == 0) == (r % 2 == 0);  // alternate which side goes first
        if (udax_side) {
          uint32_t free_list = dev_.FreeListCount();
          Result<double> ms = UdaxCloneMs(0, &log_blocks);
          if (ms.has_value()) {
            if (res.udax == 0 || *ms < res.udax) res.udax = *ms;
          } else {
            if (ms.error().err() == EINTR) return ms.error();
            udax_failures++;
            if (udax_error.empty())
              udax_error = Fmt("File::Clone of %zu extents failed: %s (node free list: %u blocks)",
                               uext.size(), ms.error().ToString().c_str(), free_list);
          }
        } else {
          double fsync_ms = 0;
          ASSIGN_OR_RETURN(double ms, xfs_side_.CloneMs(0, &fsync_ms, &xfs_clone_extents));
          if (res.baseline == 0 || ms < res.baseline) {
            res.baseline = ms;
            best_fsync = fsync_ms;
          }
        }
        if (Interrupted()) return Errno(EINTR, "interrupted");
      }
    }
    *diag += Fmt("reflink: xfs-loop FICLONE best %.3f ms (%.2f us per extent; the clone has %llu extents), "
                 "+ %.3f ms for an fsync of the clone\n",
                 res.baseline, res.baseline * 1e3 / double(xext), static_cast<unsigned long long>(xfs_clone_extents),
                 best_fsync);
    if (res.udax > 0) {
      *diag += Fmt("reflink: udax Clone best %.3f ms (%.2f us per extent), one transaction of %u log blocks "
                   "(of at most %u)%s\n",
                   res.udax, res.udax * 1e3 / double(uext.size()), log_blocks,
                   dev_.Stats().max_txn_blocks,
                   udax_failures ? Fmt("; %d of %d attempts failed", udax_failures, plan_.clone_rounds).c_str() : "");
    } else {
      res.error = udax_error;
      *diag += "reflink: " + udax_error + "\n";
      RETURN_IF_ERROR(FindLargestClone(diag));
    }
    return res;
  }

 private:
  Status SetupUdax(const uint8_t* buf) {
    RETURN_IF_ERROR(dev_.Make(kCloneDeviceBytes));
    ASSIGN_OR_RETURN(src_, dev_.fs()->Open("/src", O_CREAT | O_RDWR, 0644));
    ASSIGN_OR_RETURN(File gaps, dev_.fs()->Open("/gaps", O_CREAT | O_RDWR, 0644));
    for (uint64_t i = 0; i < kPieces; i++) {
      RETURN_IF_ERROR(WriteAll(src_, buf, PieceLen(i), i * kPieceBytes));
      RETURN_IF_ERROR(WriteAll(gaps, buf, kGapBytes, i * kGapBytes));
      if ((i & 1023) == 0 && Interrupted()) return Errno(EINTR, "interrupted");
    }
    return gaps.Close();
  }

  // Clones [0, len) of the source (len 0: File::Clone) into a new file; only
  // the call is timed. The clone is then unlinked (untimed).
  // *log_blocks: the size of the clone's transaction; *nodes: B+tree nodes
  // it took (net).
  Result<double> UdaxCloneMs(uint64_t len, uint32_t* log_blocks, int64_t* nodes = nullptr) {
    Filesystem* fs = dev_.fs();
    const std::string path = "/clone";
    Status st;
    double ms = 0;
    {
      ASSIGN_OR_RETURN(File dst, fs->Open(path, O_CREAT | O_RDWR | O_TRUNC, 0644));
      const uint64_t commits0 = dev_.Stats().commits;
      const uint64_t free0 = dev_.FreeAndFreeList();
      const Clock::time_point t0 = Clock::now();
      st = len == 0 ? dst.Clone(src_) : dst.CloneRange(src_, 0, len, 0);
      ms = Ms(t0, Clock::now());
      if (st.ok() && dev_.Stats().commits != commits0 + 1)
        st = Errno(EPROTO, "the clone took " + std::to_string(dev_.Stats().commits - commits0) +
                               " commits, not one");
      if (st.ok() && log_blocks) *log_blocks = dev_.LastCommitBlocks();
      if (st.ok() && nodes) *nodes = static_cast<int64_t>(free0) - static_cast<int64_t>(dev_.FreeAndFreeList());
      RETURN_IF_ERROR(dst.Close());
    }
    RETURN_IF_ERROR(fs->Unlink(path));
    RETURN_IF_ERROR(st);
    return ms;
  }

  // The whole clone failed: find the largest prefix of the source (in pieces,
  // i.e. extents) that clones, the size of that transaction in log blocks and
  // in new B+tree nodes, and time a prefix that fits on both sides.
  Status FindLargestClone(std::string* diag) {
    uint64_t lo = 0, hi = kPieces;  // lo clones, hi does not
    uint32_t lo_blocks = 0, lo_free = 0, hi_free = dev_.FreeListCount();
    int64_t lo_nodes = 0;
    std::string hi_error;
    while (hi - lo > 1) {
      uint64_t mid = lo + (hi - lo) / 2;
      uint32_t free_list = dev_.FreeListCount(), blocks = 0;
      int64_t nodes = 0;
      Result<double> ms = UdaxCloneMs(PrefixBytes(mid), &blocks, &nodes);
      if (ms.has_value()) {
        lo = mid;
        lo_blocks = blocks;
        lo_nodes = nodes;
        lo_free = free_list;
      } else {
        if (ms.error().err() == EINTR) return ms.error();
        hi = mid;
        hi_free = free_list;
        hi_error = ms.error().ToString();
      }
      if (Interrupted()) return Errno(EINTR, "interrupted");
    }
    const FsStats stats = dev_.Stats();
    const uint32_t max_blocks = stats.max_txn_blocks;
    const double per_blocks = lo ? double(lo_blocks) / double(lo) : 0, per_nodes = lo ? double(lo_nodes) / double(lo) : 0;
    *diag += Fmt("reflink: the largest prefix that clones: %llu extents, one transaction of %u log blocks "
                 "(at most %u) taking %lld new B+tree nodes (net) from a free list of %u; %llu extents fail "
                 "(free list %u)%s%s\n",
                 static_cast<unsigned long long>(lo), lo_blocks, max_blocks, static_cast<long long>(lo_nodes),
                 lo_free, static_cast<unsigned long long>(hi), hi_free, hi_error.empty() ? "" : ": ",
                 hi_error.c_str());
    *diag += Fmt("reflink: per extent %.4f log blocks and %.4f nodes: all %llu extents need ~%.0f log blocks "
                 "(fits %u) and ~%.0f nodes (the free list holds %u-%u at a transaction's start)\n",
                 per_blocks, per_nodes, static_cast<unsigned long long>(kPieces), per_blocks * double(kPieces),
                 max_blocks, per_nodes * double(kPieces), stats.free_list_low, stats.free_list_high);
    // Time a prefix that fits whatever the free list holds (its low mark),
    // on both sides; halve it while udax refuses.
    uint64_t k = lo_nodes > 0 ? std::min<uint64_t>(lo, uint64_t(double(stats.free_list_low) * 0.9 / per_nodes)) : lo;
    for (; k > 0; k /= 2) {
      double u = 0, x = 0;
      int u_fail = 0;
      for (int r = 0; r < plan_.clone_rounds; r++) {
        Result<double> ms = UdaxCloneMs(PrefixBytes(k), nullptr);
        if (ms.has_value()) {
          if (u == 0 || *ms < u) u = *ms;
        } else {
          u_fail++;
        }
        ASSIGN_OR_RETURN(double xm, xfs_side_.CloneMs(PrefixBytes(k), nullptr, nullptr));
        if (x == 0 || xm < x) x = xm;
      }
      if (u == 0) continue;
      *diag += Fmt("reflink: a prefix of %llu extents (%llu MiB): udax CloneRange %.3f ms (%.2f us per extent), "
                   "xfs-loop FICLONERANGE %.3f ms (%.2f us per extent): ratio %.2fx%s\n",
                   static_cast<unsigned long long>(k), static_cast<unsigned long long>(PrefixBytes(k) >> 20), u,
                   u * 1e3 / double(k), x, x * 1e3 / double(k), x / u,
                   u_fail ? Fmt(" (%d udax attempts failed)", u_fail).c_str() : "");
      break;
    }
    return Status::Ok();
  }

  ReflinkPlan plan_;
  XfsLoop xfs_;
  XfsCloneSide xfs_side_;
  UdaxDevice dev_;
  File src_;
};

// ================================ cow_fault_4k ================================

// One store per kCowStride, each timed on its own (ns into out[]).
[[gnu::noinline]] void StoreEach(uint8_t* p, uint64_t n, uint64_t* out) {
  for (uint64_t i = 0; i < n; i++) {
    const Clock::time_point t0 = Clock::now();
    *reinterpret_cast<volatile uint64_t*>(p + i * kCowStride) = i + 1;
    const Clock::time_point t1 = Clock::now();
    out[i] = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
}

struct StoreStats {
  double mean_us = 0, median_us = 0, p99_us = 0, max_us = 0;
};
StoreStats Stats(std::vector<uint64_t> ns) {
  StoreStats s;
  if (ns.empty()) return s;
  double sum = 0;
  for (uint64_t v : ns) sum += double(v);
  std::sort(ns.begin(), ns.end());
  s.mean_us = sum / double(ns.size()) / 1e3;
  s.median_us = double(ns[ns.size() / 2]) / 1e3;
  s.p99_us = double(ns[std::min(ns.size() - 1, ns.size() * 99 / 100)]) / 1e3;
  s.max_us = double(ns.back()) / 1e3;
  return s;
}

class CowBench {
 public:
  explicit CowBench(const ReflinkPlan& plan)
      : plan_(plan), bytes_(plan.cow_stores * kCowStride), dev_("cow") {}

  Result<ReflinkResult> Run(std::string* diag) {
    ReflinkResult res{"cow_fault_4k", "us", 0, 0, "hole-fault", 0.5, ""};
    // Room for the source, one cycle's copies and one hole file, plus slack.
    const uint64_t dev_bytes = std::max<uint64_t>(512ULL << 20, 4 * bytes_ + (256ULL << 20));
    RETURN_IF_ERROR(dev_.Make(dev_bytes));
    RETURN_IF_ERROR(Prefault(dev_.fs(), 3 * bytes_ + (64ULL << 20)));
    ASSIGN_OR_RETURN(src_, dev_.fs()->Open("/src", O_CREAT | O_RDWR, 0644));
    std::vector<uint8_t> chunk(kFillChunk, 0x5c);
    for (uint64_t off = 0; off < bytes_; off += kFillChunk)
      RETURN_IF_ERROR(WriteAll(src_, chunk.data(), std::min(kFillChunk, bytes_ - off), off));

    std::vector<uint64_t> ns(plan_.cow_stores), best_cow, best_hole;
    StoreStats cow_best, hole_best;
    uint64_t shared_left = 0, cow_extents = 0;
    for (int r = 0; r < plan_.cow_rounds; r++) {
      for (int s = 0; s < 2; s++) {
        bool cow_side = (s == 0) == (r % 2 == 0);
        RETURN_IF_ERROR(cow_side ? CowCycle(ns.data(), &shared_left, &cow_extents) : HoleCycle(ns.data()));
        StoreStats st = Stats(ns);
        StoreStats& best = cow_side ? cow_best : hole_best;
        if (best.mean_us == 0 || st.mean_us < best.mean_us) best = st;
        if (Interrupted()) return Errno(EINTR, "interrupted");
      }
    }
    res.udax = cow_best.mean_us;
    res.baseline = hole_best.mean_us;
    *diag += Fmt("cow: %llu stores 64 KiB apart into a %llu MiB clone (source: %zu extent(s)); after a cycle "
                 "the clone has %llu extents and %llu bytes still shared\n",
                 static_cast<unsigned long long>(plan_.cow_stores), static_cast<unsigned long long>(bytes_ >> 20),
                 src_.Fiemap().has_value() ? src_.Fiemap()->size() : 0, static_cast<unsigned long long>(cow_extents),
                 static_cast<unsigned long long>(shared_left));
    for (int i = 0; i < 2; i++) {
      const StoreStats& s = i == 0 ? cow_best : hole_best;
      *diag += Fmt("cow: %-10s per store (best cycle): mean %.2f us, median %.2f, p99 %.2f, max %.1f\n",
                   i == 0 ? "cow-fault" : "hole-fault", s.mean_us, s.median_us, s.p99_us, s.max_us);
    }
    return res;
  }

 private:
  // Clone the source, map the clone, store once per 64 KiB (each store
  // copies a 64 KiB window), unmap, unlink. Only the stores are timed.
  Status CowCycle(uint64_t* ns, uint64_t* shared_left, uint64_t* extents) {
    Filesystem* fs = dev_.fs();
    {
      ASSIGN_OR_RETURN(File dst, fs->Open("/cow", O_CREAT | O_RDWR | O_TRUNC, 0644));
      RETURN_IF_ERROR(dst.Clone(src_).Prefixed("cow: clone"));
      ASSIGN_OR_RETURN(Mapping m, dst.Map(0, bytes_, Prot::kReadWrite));
      Status st = Guarded([&] { StoreEach(m.data(), plan_.cow_stores, ns); });
      RETURN_IF_ERROR(st.Prefixed("cow: storing into the clone"));
      RETURN_IF_ERROR(m.Unmap());
      if (plan_.diag) {
        ASSIGN_OR_RETURN(auto ext, dst.Fiemap());
        *shared_left = 0;
        for (const FileExtent& e : ext)
          if (e.flags & kExtentShared) *shared_left += e.length;
        *extents = ext.size();
      }
      RETURN_IF_ERROR(dst.Close());
    }
    return fs->Unlink("/cow");
  }

  // A new file truncated to the same size (all hole), mapped, the same stores.
  Status HoleCycle(uint64_t* ns) {
    Filesystem* fs = dev_.fs();
    {
      ASSIGN_OR_RETURN(File f, fs->Open("/hole", O_CREAT | O_RDWR | O_TRUNC, 0644));
      RETURN_IF_ERROR(f.Truncate(bytes_));
      ASSIGN_OR_RETURN(Mapping m, f.Map(0, bytes_, Prot::kReadWrite));
      Status st = Guarded([&] { StoreEach(m.data(), plan_.cow_stores, ns); });
      RETURN_IF_ERROR(st.Prefixed("cow: storing into the hole file"));
      RETURN_IF_ERROR(m.Unmap());
      RETURN_IF_ERROR(f.Close());
    }
    return fs->Unlink("/hole");
  }

  ReflinkPlan plan_;
  uint64_t bytes_;
  UdaxDevice dev_;
  File src_;
};

// ================================ rmap_lookup ================================

class RmapBench {
 public:
  explicit RmapBench(const ReflinkPlan& plan) : plan_(plan), dev_("rmap") {}

  Result<ReflinkResult> Run(std::string* diag) {
    ReflinkResult res{"rmap_lookup", "us", 0, 10.0, "goal-10us", 1.0, ""};
    const uint64_t dev_bytes = ExtentsDeviceBytes(plan_.rmap_extents);
    RETURN_IF_ERROR(dev_.Make(dev_bytes));
    Filesystem* fs = dev_.fs();

    // Every other block of each file: one extent (and one rmap record) per write.
    const Clock::time_point b0 = Clock::now();
    ASSIGN_OR_RETURN(uint64_t extents, BuildSingleBlockExtents(fs, plan_.rmap_extents, plan_.rmap_files));
    const double build_s = Ms(b0, Clock::now()) / 1e3;

    // Random blocks over the used part of the device (allocation fills it
    // from the front): data blocks, B+tree nodes and free-list blocks.
    ASSIGN_OR_RETURN(StatFs sf, fs->GetStatFs());
    const uint64_t lo = dev_.Stats().data_start, hi = lo + (sf.total_blocks - sf.free_blocks);
    std::mt19937_64 rng(20240603);
    std::uniform_int_distribution<uint64_t> pick(lo, hi - 1);
    std::vector<uint64_t> q(plan_.rmap_queries);
    for (uint64_t& b : q) b = pick(rng);

    uint64_t hist[3] = {0, 0, 0};  // 0, 1, >1 owners (last round)
    for (int r = 0; r < plan_.rmap_rounds; r++) {
      hist[0] = hist[1] = hist[2] = 0;
      const Clock::time_point t0 = Clock::now();
      for (uint64_t b : q) {
        Result<std::vector<BlockOwner>> owners = fs->QueryRmap(b * kBlockSize, kBlockSize);
        if (!owners.has_value()) return owners.error().Prefixed("rmap_lookup: block " + std::to_string(b));
        hist[std::min<size_t>(owners->size(), 2)]++;
      }
      const double us = Ms(t0, Clock::now()) * 1e3 / double(q.size());
      if (res.udax == 0 || us < res.udax) res.udax = us;
      if (Interrupted()) return Errno(EINTR, "interrupted");
    }
    *diag += Fmt("rmap: %llu single-block extents in %llu files (FIEMAP), made in %.1f s; device %llu GiB, "
                 "%llu blocks in use; %llu random blocks in use per round: %.1f%% with 1 owner, %.1f%% with none "
                 "(free list), %.1f%% with more\n",
                 static_cast<unsigned long long>(extents), static_cast<unsigned long long>(plan_.rmap_files), build_s,
                 static_cast<unsigned long long>(dev_bytes >> 30), static_cast<unsigned long long>(hi - lo),
                 static_cast<unsigned long long>(q.size()), 100.0 * double(hist[1]) / double(q.size()),
                 100.0 * double(hist[0]) / double(q.size()), 100.0 * double(hist[2]) / double(q.size()));
    return res;
  }

 private:
  ReflinkPlan plan_;
  UdaxDevice dev_;
};

}  // namespace

ReflinkPlan MakeReflinkPlan(bool quick) {
  ReflinkPlan p;
  p.clone_rounds = quick ? 3 : 5;
  p.cow_stores = quick ? 1024 : 4096;  // a 64 MiB / 256 MiB clone
  p.cow_rounds = quick ? 3 : 5;
  p.rmap_extents = quick ? (1ULL << 17) : (1ULL << 20);
  p.rmap_files = quick ? 4 : 16;
  p.rmap_queries = quick ? 100'000 : 200'000;
  p.rmap_rounds = 3;
  return p;
}

Result<std::vector<ReflinkResult>> RunReflinkBench(const ReflinkPlan& plan, std::string* diag) {
  std::vector<ReflinkResult> out;
  {
    CloneBench b(plan);
    std::string skipped;
    ASSIGN_OR_RETURN(ReflinkResult r, b.Run(diag, &skipped));
    if (skipped.empty()) {
      out.push_back(r);
    } else {
      std::fflush(stdout);
      std::fprintf(stderr, "udax bench: skipping reflink_1g_10k_extents (no xfs-loop baseline): %s\n",
                   skipped.c_str());
    }
  }
  {
    CowBench b(plan);
    ASSIGN_OR_RETURN(ReflinkResult r, b.Run(diag));
    out.push_back(r);
  }
  {
    RmapBench b(plan);
    ASSIGN_OR_RETURN(ReflinkResult r, b.Run(diag));
    out.push_back(r);
  }
  return out;
}

}  // namespace udax::bench
