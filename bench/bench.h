// bench/bench.h — what the files of `udax bench` share: the workload (op
// counts and the one random offset sequence both sides replay), the timing
// loop, and the Target interface that the udax side (fs_bench.cc) and the
// kernel sides (kernel_baseline.cc: tmpfs, XFS on a loop device) implement.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "udax/status.h"

namespace udax {
class Filesystem;
class File;
}  // namespace udax

namespace udax::bench {

inline constexpr uint64_t kFileSize = 256ULL << 20;  // the pwrite/pread file
inline constexpr uint32_t kIoSize = 4096;            // one op, 4 KiB-aligned

enum class Op { kPwrite4k, kPread4k, kCreateUnlink };
inline constexpr Op kOps[] = {Op::kPwrite4k, Op::kPread4k, Op::kCreateUnlink};
const char* OpName(Op op);  // "pwrite_4k", "pread_4k", "create_unlink"

struct Workload {
  uint64_t seed = 0;              // of the offsets (every side replays one sequence)
  uint64_t rw_ops = 0;            // timed pwrite_4k / pread_4k ops per measurement
  uint64_t create_ops = 0;        // timed create+close+unlink ops per measurement
  double max_seconds = 0;         // a measurement stops early past this
  std::vector<uint64_t> offsets;  // rw_ops random 4 KiB-aligned offsets < kFileSize
  std::vector<std::string> names; // create_ops file names ("f0", "f1", ...)
};
// The workload of these parameters: the offsets drawn from `seed`, so a
// second process (the client worker) rebuilds the very same sequence
// (bench_main.cc).
Workload MakeWorkload(uint64_t seed, uint64_t rw_ops, uint64_t create_ops, double max_seconds);

// One side of the comparison. Setup creates the kFileSize file and writes it
// fully (the warm-up), plus an empty directory for create_unlink; Measure
// runs one timed measurement and returns ops/s; Teardown removes everything.
// Teardown also runs from the destructor, so failures clean up.
class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;
  virtual Status Setup() = 0;
  virtual Result<double> Measure(Op op, const Workload& w) = 0;
  virtual void Teardown() = 0;
};

std::unique_ptr<Target> MakeUdaxTarget();                        // fs_bench.cc
// The udax target's mounted Filesystem and its device file (null / "" for
// any other target): the client rows serve that Filesystem to a second
// process.
Filesystem* UdaxTargetFs(Target* udax);                           // fs_bench.cc
std::string UdaxTargetDevice(Target* udax);                       // fs_bench.cc
// One timed measurement of `op` through any udax Filesystem (mounted here or
// a direct client's): `file` is its open /bench.dat, the create_unlink names
// go in /cu. The loops of the udax target and of the client worker. *ops (if
// given): the ops done, warm-up included.
Result<double> MeasureUdaxOp(Filesystem* fs, File& file, Op op, const Workload& w,
                             uint64_t* ops = nullptr);  // fs_bench.cc
// create_unlink taken apart (stderr): the median us of each call of n
// create+close+unlink ops timed one by one, and of a GetStatFs after each
// (for a direct client: one request that does almost nothing, i.e. the
// round trip itself).
struct CreateUnlinkParts {
  double open_us = 0, close_us = 0, unlink_us = 0, statfs_us = 0;
};
Result<CreateUnlinkParts> TimeCreateUnlinkParts(Filesystem* fs, const Workload& w, uint64_t n);  // fs_bench.cc
// A kernel filesystem: works in a new directory under `parent_dir`.
std::unique_ptr<Target> MakeKernelTarget(std::string parent_dir, std::string name);  // kernel_baseline.cc
// XFS on a loop device: needs root and mkfs.xfs. Setup fails with a Status
// (the caller then skips XFS) and undoes whatever it had done.
std::unique_ptr<Target> MakeXfsLoopTarget();                      // kernel_baseline.cc
// udax through its FUSE mount, served by this process: the kernel sides'
// loops in a directory of the mount. Setup fails without FUSE.
std::unique_ptr<Target> MakeUdaxFuseTarget();                     // fuse_bench.cc

// XFS (mkfs.xfs -m reflink=1) on a loop device over a sparse image in
// /dev/shm, mounted on a new directory under /tmp (kernel_baseline.cc). Needs
// root and xfsprogs; Setup fails with a Status otherwise. Teardown (also run
// by the destructor, and after a failed Setup) undoes exactly what was done:
// umount, losetup -d, remove the image and the mount point.
class XfsLoop {
 public:
  XfsLoop() = default;
  XfsLoop(const XfsLoop&) = delete;
  XfsLoop& operator=(const XfsLoop&) = delete;
  ~XfsLoop() { Teardown(); }
  Status Setup(uint64_t image_bytes, const std::string& tag);
  void Teardown();
  const std::string& mount_point() const { return mnt_; }

 private:
  std::string image_, loop_, mnt_;
  bool mounted_ = false;
};

// udax through a direct client (Filesystem::Connect) in a second process: a
// DirectServer serves `udax`'s Filesystem on a private rendezvous, and a
// worker (`udax bench --client-worker`, client_worker.cc) runs the same loops
// on the same file, rebuilding `w` from its seed; each Measure (of that
// workload) asks it for one measurement over a pipe. Setup fails when the
// server or the worker cannot start; Measure fails (never hangs: the worker
// is killed past a bound) when the worker does. Tear it down before `udax`.
std::unique_ptr<Target> MakeUdaxClientTarget(Target* udax, const Workload& w);  // client_bench.cc
// What the mount saw of the client worker (revocations posted, leased bytes),
// and create_unlink taken apart on both sides (TimeCreateUnlinkParts: n ops
// by the worker and by the library, when n > 0).
std::string UdaxClientReport(Target* client, uint64_t n);         // client_bench.cc

// Extra facts a target reports about its last measurements (udax: fences).
std::string UdaxFenceReport(Target* udax);                       // fs_bench.cc

// ---- DAX (dax_bench.cc): a udax mapping (File::Map) against a raw mmap ----
enum class DaxOp { kSeqRead, kSeqWrite, kRand4k, kFaultExtent };
inline constexpr DaxOp kDaxOps[] = {DaxOp::kSeqRead, DaxOp::kSeqWrite, DaxOp::kRand4k,
                                    DaxOp::kFaultExtent};
const char* DaxOpName(DaxOp op);  // "dax_seq_read", "dax_seq_write", "dax_rand_4k", "dax_fault_extent"

struct DaxPlan {
  uint64_t seq_bytes = 0;    // the seq/rand file (and its raw twin)
  int seq_passes = 0;        // whole-file passes per seq measurement
  uint64_t fault_bytes = 0;  // the fault file: fault_bytes / 2 MiB extents
  int fault_cycles = 0;      // map + touch every extent + unmap, per measurement
  double max_seconds = 0;    // a measurement stops early past this
  int rounds = 0;
  bool control = false;  // also run the control side (a plain mmap of the udax device file)
  std::vector<uint64_t> rand_offsets;  // random 4 KiB-aligned offsets < seq_bytes
};
DaxPlan MakeDaxPlan(bool quick);

// Best round per side: GB/s (seq), ops/s (rand_4k), us per extent (fault).
struct DaxResult {
  DaxOp op;
  double udax = 0, raw = 0;
  double control = 0;  // the same routine on a plain mmap of the udax device file (0: not run)
};
// Sets up (a 2 GiB udax device and raw /dev/shm files), runs the rounds and
// tears down; facts about the layout are appended to *diag.
Result<std::vector<DaxResult>> RunDaxBench(const DaxPlan& plan, std::string* diag);

// ---- reflink, copy-on-write faults, rmap (reflink_bench.cc) ----
//   reflink_1g_10k_extents  ms  File::Clone of a 1 GiB file of ~10k extents vs
//                               ioctl(FICLONE) on XFS (xfs-loop)
//   cow_fault_4k            us  first store into a shared block through a mapping
//                               vs a store into a hole (hole-fault)
//   rmap_lookup             us  Filesystem::QueryRmap(random block) with ~1M extents
//                               in the filesystem vs the goal constant (goal-10us)
struct ReflinkPlan {
  int clone_rounds = 0;        // FICLONE / Clone per side, best counts
  uint64_t cow_stores = 0;     // stores (64 KiB apart) per cow / hole cycle
  int cow_rounds = 0;          // cycles per side, best cycle counts
  uint64_t rmap_extents = 0;   // 1-block extents made for rmap_lookup
  uint64_t rmap_files = 0;     // ... spread over this many files
  uint64_t rmap_queries = 0;   // random blocks per rmap measurement
  int rmap_rounds = 0;
  bool diag = false;           // human mode: extra facts for stderr
};
ReflinkPlan MakeReflinkPlan(bool quick);

struct ReflinkResult {
  std::string name, unit;
  double udax = 0, baseline = 0;  // best round of each side
  std::string baseline_name;
  double goal = 0;                // minimum ratio
  std::string error;              // non-empty: the udax side failed (no udax number)
};
// Runs the three rows (each on its own devices, set up and torn down in
// turn); a row whose baseline cannot run (XFS: not root, no xfsprogs) is left
// out with a note in *diag. Facts about layouts and distributions go to *diag.
Result<std::vector<ReflinkResult>> RunReflinkBench(const ReflinkPlan& plan, std::string* diag);

// ---- device removal and memory failure (failure_bench.cc) ----
//   remove_revoke_N  ms  N files, one touched mapping each: from RemoveDevice()
//                        to the last on_invalidate (reason Removed), vs N raw
//                        mmap(PROT_NONE, MAP_FIXED) over N touched mappings
//                        (raw-mmap-prot-none); N = 1, 100, 10 000
//   poison_route     us  InjectPoison() of a mapped block (two owners: a file
//                        and its clone) with ~1M extents in the filesystem,
//                        to the last on_invalidate (reason MemoryFailure),
//                        minus the raw mmap(PROT_NONE) of the same pages;
//                        vs the goal constant 10 us (goal-10us)
struct FailurePlan {
  std::vector<uint64_t> remove_files;  // N per remove_revoke row
  int remove_rounds = 0;               // per side at N = 10 000; 3x that for smaller N
  uint64_t poison_extents = 0;         // 1-block extents made for poison_route
  uint64_t poison_files = 0;           // ... spread over this many files
  int poison_reps = 0;                 // poisons per side (<= 100: one image)
  bool diag = false;                   // human mode: extra facts for stderr
};
FailurePlan MakeFailurePlan(bool quick);

struct FailureResult {
  std::string name, unit;
  double udax = 0, baseline = 0;  // best round of each side
  std::string baseline_name;
  double goal = 0;      // minimum ratio (0: none)
  double udax_max = 0;  // and udax at most this, in `unit` (0: none)
  // More numbers of the row, added to its JSON object under these keys.
  std::vector<std::pair<std::string, double>> extra;
  std::string error;  // non-empty: the udax side failed (no udax number)
};
// Runs the rows in turn, each on a fresh image (and raw mappings) of its own;
// facts about the setup and distributions go to *diag.
Result<std::vector<FailureResult>> RunFailureBench(const FailurePlan& plan, std::string* diag);

// ---- direct clients (client_bench.cc) ----
//   client_revoke_100  ms  Truncate (through the mount's Filesystem) of a file
//                          of which the client worker holds 100 touched 4 KiB
//                          Mappings, until it returned (every mapping revoked
//                          and acknowledged), vs 100 raw mmap(PROT_NONE,
//                          MAP_FIXED) in one process (mmap-prot-none-100)
// `client` is the target MakeUdaxClientTarget made (set up); best of
// `rounds` rounds. The result has the FailureResult's shape: a time row with
// an absolute goal (udax_max).
Result<FailureResult> RunClientRevokeBench(Target* client, int rounds, std::string* diag);

// The hidden `udax bench --client-worker MOUNTPOINT ...`: the second
// process of the client rows (client_worker.cc). Reads commands on stdin,
// answers on stdout; returns the exit code.
struct ClientWorkerArgs {
  std::string mountpoint;
  uint64_t seed = 0, rw_ops = 0, create_ops = 0;
  double max_seconds = 0;
};
int RunClientWorker(const ClientWorkerArgs& args);

// Median and minimum of a sample (0 when empty).
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
inline double Min(const std::vector<double>& v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }

// True once SIGINT/SIGTERM arrived during `udax bench` (bench_main.cc): the
// loops stop with EINTR so that everything is torn down on the way out.
bool Interrupted();

// The timing loop both sides use: runs `warm` untimed ops, then `n` timed
// ones (stopping early past max_seconds); returns timed ops per second.
// `op(i)` performs op number i and returns a Status.
template <typename F>
Result<double> TimeOps(uint64_t n, uint64_t warm, double max_seconds, F&& op) {
  for (uint64_t i = 0; i < warm && i < n; i++) RETURN_IF_ERROR(op(i));
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = Clock::now();
  const auto cap = std::chrono::duration<double>(max_seconds);
  uint64_t i = 0;
  while (i < n) {
    RETURN_IF_ERROR(op(i));
    i++;
    if ((i & 255) == 0) {
      if (Interrupted()) return Errno(EINTR, "interrupted");
      if (Clock::now() - t0 > cap) break;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return secs > 0 ? static_cast<double>(i) / secs : 0.0;
}

// Untimed ops run before each timed measurement.
inline uint64_t WarmOps(uint64_t n) { return n / 20; }

}  // namespace udax::bench
