// bench/client_worker.cc — the second process of the client rows: the hidden
// `udax bench --client-worker MOUNTPOINT --seed S --rw-ops N --create-ops M
// --max-seconds X`, started by client_bench.cc with posix_spawn of
// /proc/self/exe. It connects to the mount with Filesystem::Connect (the
// rendezvous directory comes in $UDAX_SHARE_DIR), opens /bench.dat, rebuilds
// the workload from the seed (the same offsets and names as the library
// rows) and then answers one command per line on stdin, one answer per line
// on stdout (both are one end of a socketpair):
//
//   (at start)         -> ok 0                 connected, /bench.dat open
//   measure OP         -> ok RATE              OP: pwrite_4k, pread_4k, create_unlink
//   parts N            -> ok OPEN CLOSE UNLINK STATFS   us: TimeCreateUnlinkParts of N ops
//   map PATH N         -> ok N                 N Mappings of 4 KiB (page i at i*4096), each loaded once
//   heard              -> ok N FIRST LAST      every mapping heard a Truncate on_invalidate; the first
//                                             and last one's steady_clock time in ns (CLOCK_MONOTONIC,
//                                             which the parent reads too)
//   unmap              -> ok 0                 the mappings unmapped, PATH closed
//   quit               (exits 0)
//   any failure        -> error ERRNO MESSAGE
//
// It dies with its parent (PR_SET_PDEATHSIG), and exits at EOF on stdin.
// Single-threaded but for the client library's own threads, which run the
// on_invalidate callbacks: the per-mapping counters are atomics.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax::bench {
namespace {

constexpr uint64_t kMapBytes = 4096;  // one mapping: one page of the file
constexpr uint64_t kMaxMappings = 10000;
constexpr auto kHeardWait = std::chrono::seconds(2);  // callbacks run before the ack; this is a backstop

void Answer(const Result<std::vector<double>>& r) {
  if (r.has_value()) {
    std::printf("ok");
    for (double v : *r) std::printf(" %.17g", v);
    std::printf("\n");
  } else {
    std::string msg = r.error().message();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    std::printf("error %d %s\n", r.error().err() != 0 ? r.error().err() : EIO, msg.c_str());
  }
  std::fflush(stdout);
}
void Answer(const Result<double>& r) {
  Answer(r.has_value() ? Result<std::vector<double>>(std::vector<double>{*r}) : Result<std::vector<double>>(r.error()));
}

// One mapping and what it heard.
struct Watched {
  Mapping map;
  std::atomic<uint32_t> truncates{0}, others{0};
  std::atomic<int64_t> heard_ns{0};  // steady_clock (CLOCK_MONOTONIC: the parent's clock too) at the first Truncate
};
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class Worker {
 public:
  explicit Worker(const ClientWorkerArgs& a)
      : args_(a), w_(MakeWorkload(a.seed, a.rw_ops, a.create_ops, a.max_seconds)) {}

  Status Start() {
    ASSIGN_OR_RETURN(fs_, Filesystem::Connect(args_.mountpoint));
    ASSIGN_OR_RETURN(bench_file_, fs_->Open("/bench.dat", O_RDWR));
    return Status::Ok();
  }

  // One command line; false for quit.
  bool Serve(const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "quit") return false;
    if (cmd == "measure") {
      std::string name;
      in >> name;
      Answer(Measure(name));
    } else if (cmd == "map") {
      std::string path;
      uint64_t n = 0;
      in >> path >> n;
      Answer(MapAll(path, n));
    } else if (cmd == "parts") {
      uint64_t n = 0;
      in >> n;
      Answer(Parts(n));
    } else if (cmd == "heard") {
      Answer(Heard());
    } else if (cmd == "unmap") {
      Answer(UnmapAll());
    } else {
      Answer(Result<double>(Errno(EINVAL, "client worker: unknown command '" + line + "'")));
    }
    return true;
  }

  void Stop() {
    UnmapAll().status().IgnoreError();
    if (bench_file_.is_open()) bench_file_.Close().IgnoreError();
    if (fs_) fs_->Unmount().IgnoreError();
    fs_.reset();
  }

 private:
  Result<double> Measure(const std::string& name) {
    for (Op op : kOps)
      if (name == OpName(op)) {
        Result<double> r = MeasureUdaxOp(fs_.get(), bench_file_, op, w_);
        if (!r.has_value()) return r.error().Prefixed(std::string("client ") + OpName(op));
        return r;
      }
    return Errno(EINVAL, "client worker: no such op '" + name + "'");
  }

  Result<std::vector<double>> Parts(uint64_t n) {
    ASSIGN_OR_RETURN(CreateUnlinkParts p, TimeCreateUnlinkParts(fs_.get(), w_, n));
    return std::vector<double>{p.open_us, p.close_us, p.unlink_us, p.statfs_us};
  }

  Result<double> MapAll(const std::string& path, uint64_t n) {
    RETURN_IF_ERROR(UnmapAll().status());
    if (n == 0 || n > kMaxMappings) return Errno(EINVAL, "client worker: map count out of range");
    ASSIGN_OR_RETURN(map_file_, fs_->Open(path, O_RDONLY));
    for (uint64_t i = 0; i < n; i++) {
      auto wt = std::make_unique<Watched>();
      ASSIGN_OR_RETURN(wt->map, map_file_.Map(i * kMapBytes, kMapBytes, Prot::kRead));
      Watched* p = wt.get();
      wt->map.OnInvalidate([p](uint64_t, uint64_t, uint64_t, InvalidateReason why) {
        if (why == InvalidateReason::kTruncate && p->truncates.fetch_add(1) == 0) p->heard_ns.store(NowNs());
        if (why != InvalidateReason::kTruncate) p->others.fetch_add(1);
      });
      watched_.push_back(std::move(wt));
    }
    // Each load faults once: the mount hands out the block, the client maps it.
    volatile uint8_t sink = 0;
    RETURN_IF_ERROR(Guarded([&] {
                      for (const auto& wt : watched_) sink = sink + wt->map.data()[0];
                    }).Prefixed("client worker: touching the mappings"));
    return static_cast<double>(n);
  }

  // The revocation's callbacks run before the client acknowledges, so they
  // have all run once the mount's Truncate returned; the wait is a backstop.
  Result<std::vector<double>> Heard() {
    const auto end = std::chrono::steady_clock::now() + kHeardWait;
    uint64_t heard = 0, others = 0;
    for (;;) {
      heard = others = 0;
      for (const auto& wt : watched_) {
        heard += wt->truncates.load() > 0 ? 1 : 0;
        others += wt->others.load();
      }
      if (heard == watched_.size() || std::chrono::steady_clock::now() > end) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (heard != watched_.size() || others != 0)
      return Errno(EPROTO, "client worker: " + std::to_string(heard) + " of " + std::to_string(watched_.size()) +
                               " mappings heard a Truncate on_invalidate (and " + std::to_string(others) +
                               " callbacks of other reasons)");
    int64_t first = INT64_MAX, last = 0;
    for (const auto& wt : watched_) {
      first = std::min(first, wt->heard_ns.load());
      last = std::max(last, wt->heard_ns.load());
    }
    return std::vector<double>{static_cast<double>(heard), static_cast<double>(first), static_cast<double>(last)};
  }

  Result<double> UnmapAll() {
    Status st;
    for (auto& wt : watched_) {
      Status u = wt->map.Unmap();
      if (st.ok() && !u.ok()) st = u.Prefixed("client worker: unmap");
    }
    watched_.clear();
    if (map_file_.is_open()) {
      Status c = map_file_.Close();
      if (st.ok() && !c.ok()) st = c.Prefixed("client worker: close");
    }
    if (!st.ok()) return st;
    return 0.0;
  }

  ClientWorkerArgs args_;
  Workload w_;
  std::unique_ptr<Filesystem> fs_;
  File bench_file_, map_file_;
  std::vector<std::unique_ptr<Watched>> watched_;
};

}  // namespace

int RunClientWorker(const ClientWorkerArgs& args) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the bench
  Worker worker(args);
  Status st = worker.Start();
  Answer(st.ok() ? Result<double>(0.0) : Result<double>(st.Prefixed("client worker: connect")));
  if (!st.ok()) return 1;
  std::string line;
  while (std::getline(std::cin, line) && worker.Serve(line)) {
  }
  worker.Stop();
  return 0;
}

}  // namespace udax::bench
