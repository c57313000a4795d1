// bench/bench.h — what the files of `udax bench` share: the workload (op
// counts and the one random offset sequence both sides replay), the timing
// loop, and the Target interface that the udax side (fs_bench.cc) and the
// kernel sides (kernel_baseline.cc: tmpfs, XFS on a loop device) implement.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "udax/status.h"

namespace udax::bench {

inline constexpr uint64_t kFileSize = 256ULL << 20;  // the pwrite/pread file
inline constexpr uint32_t kIoSize = 4096;            // one op, 4 KiB-aligned

enum class Op { kPwrite4k, kPread4k, kCreateUnlink };
inline constexpr Op kOps[] = {Op::kPwrite4k, Op::kPread4k, Op::kCreateUnlink};
const char* OpName(Op op);  // "pwrite_4k", "pread_4k", "create_unlink"

struct Workload {
  uint64_t rw_ops = 0;            // timed pwrite_4k / pread_4k ops per measurement
  uint64_t create_ops = 0;        // timed create+close+unlink ops per measurement
  double max_seconds = 0;         // a measurement stops early past this
  std::vector<uint64_t> offsets;  // rw_ops random 4 KiB-aligned offsets < kFileSize
  std::vector<std::string> names; // create_ops file names ("f0", "f1", ...)
};

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
// A kernel filesystem: works in a new directory under `parent_dir`.
std::unique_ptr<Target> MakeKernelTarget(std::string parent_dir, std::string name);  // kernel_baseline.cc
// XFS on a loop device: needs root and mkfs.xfs. Setup fails with a Status
// (the caller then skips XFS) and undoes whatever it had done.
std::unique_ptr<Target> MakeXfsLoopTarget();                      // kernel_baseline.cc

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
