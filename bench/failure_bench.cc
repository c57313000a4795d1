// bench/failure_bench.cc — the device-removal and memory-failure rows of
// `udax bench`. See bench/README.md.
//
//   remove_revoke_N  ms  N files (N = 1, 100, 10 000), each mapped once
//                        (File::Map of its one 4 KiB block) and touched once;
//                        from the call to Filesystem::RemoveDevice() to the
//                        last on_invalidate callback (reason Removed), against
//                        N raw mmap(addr, 4 KiB, PROT_NONE, MAP_FIXED|
//                        MAP_PRIVATE|MAP_ANONYMOUS) calls over N touched
//                        MAP_SHARED mappings of a /dev/shm file, laid out like
//                        udax's arena (one per 2 MiB slot of a PROT_NONE
//                        reservation). The same calls with udax's own flags
//                        (| MAP_NORESERVE) run as a third side, for stderr.
//   poison_route     us  Filesystem::InjectPoison() of one block of a mapped
//                        file with ~1M extents in the filesystem; the block
//                        has two owners (the file and its clone, both mapped):
//                        from the call to the last on_invalidate (reason
//                        MemoryFailure), minus the raw mmap(PROT_NONE) of the
//                        same page in two raw mappings; against the goal
//                        constant 10 us
//
// Each row makes a fresh image in /dev/shm and removes it afterwards. The
// sides of a row run interleaved round by round, alternating which goes
// first; each side's best round counts (medians go to stderr).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "bench.h"
#include "bench_udax.h"
#include "raw_mappings.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax::bench {
namespace {

using Clock = std::chrono::steady_clock;
double Us(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

constexpr uint64_t kRemoveDeviceBytes = 256ULL << 20;  // 10 000 files of 4 KiB + inodes + dirents
constexpr uint64_t kPoisonBlocks = 128;  // the poisoned file: one extent; rep i poisons block i
constexpr int kPoisonOwners = 2;         // the file and its clone
constexpr int kMaxPoisonReps = 100;      // adjacent blocks: the bad-block list keeps one extent

uint64_t MaxMapCount() {
  std::ifstream f("/proc/sys/vm/max_map_count");
  uint64_t n = 0;
  return (f >> n) ? n : 0;
}

// Counts the on_invalidate callbacks of one reason; the one that completes
// `expected` records the time. The callbacks run in the thread that calls
// RemoveDevice/InjectPoison, one after another.
struct CallbackClock {
  InvalidateReason reason = InvalidateReason::kRemoved;
  uint64_t expected = 0, seen = 0, other = 0;
  Clock::time_point last{};
  void Reset(InvalidateReason r, uint64_t n) {
    reason = r;
    expected = n;
    seen = other = 0;
    last = {};
  }
  void Hear(InvalidateReason r) {
    if (r != reason) {
      other++;
      return;
    }
    if (++seen == expected) last = Clock::now();
  }
};

// ================================ remove_revoke_N ================================

class RemoveBench {
 public:
  RemoveBench(const FailurePlan& plan, uint64_t n)
      : plan_(plan), n_(n), dev_("remove" + std::to_string(n)), raw_("remove" + std::to_string(n)) {}

  Result<FailureResult> Run(std::string* diag) {
    // Goals: udax <= 1.5x the raw revokes (ratio >= 1/1.5), and <= 50 ms at 10 000.
    FailureResult res{"remove_revoke_" + std::to_string(n_), "ms", 0, 0, "raw-mmap-prot-none", 1 / 1.5,
                      n_ >= 10000 ? 50.0 : 0.0, {}, ""};
    // udax: ~2 VMAs per touched mapping (the arena splits around it); the
    // raw side's mappings exist only while the udax side's do not.
    const uint64_t max_maps = MaxMapCount();
    if (max_maps != 0 && max_maps < 2 * n_ + 4096)
      return Errno(ENOMEM, Fmt("remove_revoke_%llu needs vm.max_map_count >= %llu (it is %llu)",
                               static_cast<unsigned long long>(n_), static_cast<unsigned long long>(2 * n_ + 4096),
                               static_cast<unsigned long long>(max_maps)));
    // A fresh image: N files of one 4 KiB block each, then unmounted; every
    // udax round mounts it again (a removal leaves it as committed).
    RETURN_IF_ERROR(dev_.Make(kRemoveDeviceBytes));
    {
      std::vector<uint8_t> blk(kPage, 0xa7);
      for (uint64_t i = 0; i < n_; i++) {
        ASSIGN_OR_RETURN(File f, dev_.fs()->Open(Name(i), O_CREAT | O_RDWR | O_EXCL, 0644));
        RETURN_IF_ERROR(WriteAll(f, blk.data(), kPage, 0));
        RETURN_IF_ERROR(f.Close());
        if ((i & 1023) == 0 && Interrupted()) return Errno(EINTR, "interrupted");
      }
    }
    RETURN_IF_ERROR(dev_.Unmount());
    RETURN_IF_ERROR(raw_.MakeFile(n_ * kPage));

    const int rounds = n_ >= 10000 ? plan_.remove_rounds : 3 * plan_.remove_rounds;
    std::vector<double> udax_ms, raw_ms, raw_nr_ms, return_ms;
    for (int r = 0; r < rounds; r++) {
      for (int s = 0; s < 3; s++) {
        switch ((s + r) % 3) {  // each side goes first in turn
          case 0: {
            double ret = 0;
            ASSIGN_OR_RETURN(double ms, UdaxRound(&ret));
            udax_ms.push_back(ms);
            return_ms.push_back(ret);
            break;
          }
          case 1: {
            ASSIGN_OR_RETURN(double ms, RawRound(kRawFlags));
            raw_ms.push_back(ms);
            break;
          }
          default: {
            ASSIGN_OR_RETURN(double ms, RawRound(kUdaxFlags));
            raw_nr_ms.push_back(ms);
          }
        }
        if (Interrupted()) return Errno(EINTR, "interrupted");
      }
    }
    res.udax = Min(udax_ms);
    res.baseline = Min(raw_ms);
    *diag += Fmt("remove_revoke_%llu: %d rounds per side; udax to the last callback best %.4f ms, median %.4f "
                 "(%.3f us per mapping); RemoveDevice() returned after best %.4f ms, median %.4f (includes taking "
                 "the device memory away); raw best %.4f ms, median %.4f (%.3f us per mapping); raw with udax's "
                 "flags (| MAP_NORESERVE: merges with the reservation) best %.4f ms, median %.4f (%.3f us per "
                 "mapping)\n",
                 static_cast<unsigned long long>(n_), rounds, res.udax, Median(udax_ms),
                 res.udax * 1e3 / double(n_), Min(return_ms), Median(return_ms), res.baseline, Median(raw_ms),
                 res.baseline * 1e3 / double(n_), Min(raw_nr_ms), Median(raw_nr_ms),
                 Min(raw_nr_ms) * 1e3 / double(n_));
    dev_.Close();
    return res;
  }

 private:
  static std::string Name(uint64_t i) { return "/f" + std::to_string(i); }
  static uint64_t RawFileOff(uint64_t i) { return i * kPage; }

  // Mount, open and map every file, touch each mapping once, then time
  // RemoveDevice() to the last Removed callback. Untimed: unmap, close,
  // unmount. *return_ms: until RemoveDevice() returned.
  Result<double> UdaxRound(double* return_ms) {
    RETURN_IF_ERROR(dev_.Remount());
    Filesystem* fs = dev_.fs();
    CallbackClock cc;
    cc.Reset(InvalidateReason::kRemoved, n_);
    std::vector<File> files(n_);
    std::vector<Mapping> maps(n_);
    for (uint64_t i = 0; i < n_; i++) {
      ASSIGN_OR_RETURN(files[i], fs->Open(Name(i), O_RDONLY));
      ASSIGN_OR_RETURN(maps[i], files[i].Map(0, kPage, Prot::kRead));
      maps[i].OnInvalidate([&cc](uint64_t, uint64_t, uint64_t, InvalidateReason why) { cc.Hear(why); });
    }
    volatile uint8_t sink = 0;
    RETURN_IF_ERROR(Guarded([&] {
                      for (const Mapping& m : maps) sink = sink + m.data()[0];
                    }).Prefixed("remove_revoke: touching the mappings"));
    const Clock::time_point t0 = Clock::now();
    Status st = fs->RemoveDevice();
    const Clock::time_point t1 = Clock::now();
    RETURN_IF_ERROR(st.Prefixed("RemoveDevice"));
    if (cc.seen != n_ || cc.other != 0)
      return Errno(EPROTO, Fmt("RemoveDevice: %llu Removed callbacks (and %llu others) for %llu mappings",
                               static_cast<unsigned long long>(cc.seen), static_cast<unsigned long long>(cc.other),
                               static_cast<unsigned long long>(n_)));
    *return_ms = Us(t0, t1) / 1e3;
    for (Mapping& m : maps) RETURN_IF_ERROR(m.Unmap().Prefixed("unmap after removal"));
    for (File& f : files) RETURN_IF_ERROR(f.Close().Prefixed("close after removal"));
    RETURN_IF_ERROR(dev_.Unmount().Prefixed("unmount after removal"));
    return Us(t0, cc.last) / 1e3;
  }

  // N touched mappings of the raw file, one per 2 MiB slot; time N revokes.
  Result<double> RawRound(int flags) {
    RETURN_IF_ERROR(raw_.Map(n_, kPage, &RemoveBench::RawFileOff));
    const Clock::time_point t0 = Clock::now();
    for (uint64_t i = 0; i < n_; i++) RETURN_IF_ERROR(RevokeRaw(raw_.Slot(i), kPage, flags));
    const Clock::time_point t1 = Clock::now();
    raw_.Release();
    return Us(t0, t1) / 1e3;
  }

  FailurePlan plan_;
  uint64_t n_;
  UdaxDevice dev_;
  RawMappings raw_;
};

// ================================ poison_route ================================

class PoisonBench {
 public:
  explicit PoisonBench(const FailurePlan& plan) : plan_(plan), dev_("poison"), raw_("poison") {}

  Result<FailureResult> Run(std::string* diag) {
    FailureResult res{"poison_route", "us", 0, 10.0, "goal-10us", 1.0, 0, {}, ""};
    const int reps = std::min(plan_.poison_reps, kMaxPoisonReps);
    const uint64_t bytes = kPoisonBlocks * kPage;
    RETURN_IF_ERROR(dev_.Make(ExtentsDeviceBytes(plan_.poison_extents, 4 * kPoisonBlocks)));
    Filesystem* fs = dev_.fs();
    const Clock::time_point b0 = Clock::now();
    ASSIGN_OR_RETURN(uint64_t extents, BuildSingleBlockExtents(fs, plan_.poison_extents, plan_.poison_files));
    const double build_s = Us(b0, Clock::now()) / 1e6;

    // The victim: one extent of kPoisonBlocks, shared with its clone.
    File files[kPoisonOwners];
    ASSIGN_OR_RETURN(files[0], fs->Open("/victim", O_CREAT | O_RDWR, 0644));
    {
      std::vector<uint8_t> data(bytes, 0x5a);
      RETURN_IF_ERROR(WriteAll(files[0], data.data(), bytes, 0));
    }
    for (int o = 1; o < kPoisonOwners; o++) {
      ASSIGN_OR_RETURN(files[o], fs->Open("/victim-clone" + std::to_string(o), O_CREAT | O_RDWR, 0644));
      RETURN_IF_ERROR(files[o].Clone(files[0]).Prefixed("poison_route: clone"));
    }
    ASSIGN_OR_RETURN(auto ext, files[0].Fiemap());
    if (ext.empty() || ext[0].file_offset != 0 || ext[0].length < uint64_t(reps) * kPage)
      return Errno(EPROTO, Fmt("poison_route: the victim file is %zu extents, the first of %llu bytes; "
                               "%d adjacent blocks are needed in one extent",
                               ext.size(), ext.empty() ? 0ULL : static_cast<unsigned long long>(ext[0].length), reps));
    const uint64_t dev_off = ext[0].device_offset;

    CallbackClock cc;
    Mapping maps[kPoisonOwners];
    volatile uint8_t sink = 0;
    for (int o = 0; o < kPoisonOwners; o++) {
      ASSIGN_OR_RETURN(maps[o], files[o].Map(0, bytes, Prot::kRead));
      maps[o].OnInvalidate([&cc](uint64_t, uint64_t, uint64_t, InvalidateReason why) { cc.Hear(why); });
      RETURN_IF_ERROR(Guarded([&] {
                        for (uint64_t p = 0; p < bytes; p += kPage) sink = sink + maps[o].data()[p];
                      }).Prefixed("poison_route: touching the mappings"));
    }
    RETURN_IF_ERROR(raw_.MakeFile(bytes));
    RETURN_IF_ERROR(raw_.Map(kPoisonOwners, bytes, [](uint64_t) -> uint64_t { return 0; }));

    // Rep i poisons block i of the extent (adjacent: they merge into one
    // bad-block extent) and revokes page i of each raw mapping.
    std::vector<double> total_us, raw_us, call_us;
    for (int i = 0; i < reps; i++) {
      for (int s = 0; s < 2; s++) {
        if ((s == 0) == (i % 2 == 0)) {
          cc.Reset(InvalidateReason::kMemoryFailure, kPoisonOwners);
          const Clock::time_point t0 = Clock::now();
          Status st = fs->InjectPoison(dev_off + uint64_t(i) * kPage, kPage);
          const Clock::time_point t1 = Clock::now();
          RETURN_IF_ERROR(st.Prefixed("InjectPoison"));
          if (cc.seen != uint64_t(kPoisonOwners) || cc.other != 0)
            return Errno(EPROTO, Fmt("InjectPoison: %llu MemoryFailure callbacks (and %llu others) for %d owners",
                                     static_cast<unsigned long long>(cc.seen),
                                     static_cast<unsigned long long>(cc.other), kPoisonOwners));
          total_us.push_back(Us(t0, cc.last));
          call_us.push_back(Us(t0, t1));
        } else {
          const Clock::time_point t0 = Clock::now();
          for (int o = 0; o < kPoisonOwners; o++) RETURN_IF_ERROR(RevokeRaw(raw_.Slot(o) + uint64_t(i) * kPage, kPage));
          raw_us.push_back(Us(t0, Clock::now()));
        }
      }
      if (Interrupted()) return Errno(EINTR, "interrupted");
    }
    const double best_total = Min(total_us), best_raw = Min(raw_us);
    res.udax = std::max(0.0, best_total - best_raw);
    res.extra = {{"total_us", best_total}, {"raw_revoke_us", best_raw}};

    ASSIGN_OR_RETURN(auto bad, fs->BadBlocks());
    *diag += Fmt("poison: %llu single-block extents in %llu files (FIEMAP), made in %.1f s; the victim: one "
                 "extent of %llu blocks with %d owners (a file and its clone), every page mapped; %d poisons of "
                 "adjacent blocks; the bad-block list holds %zu extent(s)\n",
                 static_cast<unsigned long long>(extents), static_cast<unsigned long long>(plan_.poison_files),
                 build_s, static_cast<unsigned long long>(kPoisonBlocks), kPoisonOwners, reps, bad.size());
    *diag += Fmt("poison: to the last callback best %.2f us, median %.2f; raw revoke of the same page in %d "
                 "mappings best %.2f us, median %.2f; route = total - raw: best %.2f us, median %.2f; "
                 "InjectPoison() returned after best %.2f us, median %.2f (includes the bad-block commit)\n",
                 best_total, Median(total_us), kPoisonOwners, best_raw, Median(raw_us), res.udax,
                 Median(total_us) - Median(raw_us), Min(call_us), Median(call_us));
    for (Mapping& m : maps) RETURN_IF_ERROR(m.Unmap());
    for (File& f : files) RETURN_IF_ERROR(f.Close());
    raw_.Release();
    dev_.Close();
    return res;
  }

 private:
  FailurePlan plan_;
  UdaxDevice dev_;
  RawMappings raw_;
};

}  // namespace

FailurePlan MakeFailurePlan(bool quick) {
  FailurePlan p;
  p.remove_files = {1, 100, 10000};  // --quick too: only fewer rounds
  p.remove_rounds = quick ? 3 : 7;
  p.poison_extents = 1ULL << 20;  // --quick too: the goal is set at ~1M extents
  p.poison_files = 16;
  p.poison_reps = quick ? 30 : kMaxPoisonReps;
  return p;
}

Result<std::vector<FailureResult>> RunFailureBench(const FailurePlan& plan, std::string* diag) {
  std::vector<FailureResult> out;
  for (uint64_t n : plan.remove_files) {
    RemoveBench b(plan, n);
    ASSIGN_OR_RETURN(FailureResult r, b.Run(diag));
    out.push_back(r);
  }
  {
    PoisonBench b(plan);
    ASSIGN_OR_RETURN(FailureResult r, b.Run(diag));
    out.push_back(r);
  }
  return out;
}

}  // namespace udax::bench
