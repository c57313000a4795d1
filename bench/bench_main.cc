// bench/bench_main.cc — `udax bench [--quick] [--json] [--dax-only] [--reflink-only]
// [--failure-only] [--client-only]`:
// builds the workload,
// sets up udax and the kernel baselines (tmpfs; XFS on a loop device when it
// can), the FUSE mount and a direct client in a second process, runs the
// measurements interleaved in rounds (best round per side), then the client
// revocation row, the DAX rows, the reflink rows (clone, CoW fault, rmap) and
// the failure rows (device removal, poison routing),
// and prints the table with ratios and goals — or, with --json, only a JSON
// array of {name, unit, udax, baseline, baseline_name, ratio} on stdout.
// With the hidden --client-worker it is instead that second process
// (client_worker.cc).
#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "../tools/udax/cli.h"
#include "../tools/udax/format.h"
#include "bench.h"

namespace udax::bench {

namespace {
volatile std::sig_atomic_t g_interrupted = 0;
void OnSignal(int) { g_interrupted = 1; }
}  // namespace

bool Interrupted() { return g_interrupted != 0; }

const char* OpName(Op op) {
  switch (op) {
    case Op::kPwrite4k: return "pwrite_4k";
    case Op::kPread4k: return "pread_4k";
    case Op::kCreateUnlink: return "create_unlink";
  }
  return "?";
}

Workload MakeWorkload(uint64_t seed, uint64_t rw_ops, uint64_t create_ops, double max_seconds) {
  Workload w;
  w.seed = seed;
  w.rw_ops = rw_ops;
  w.create_ops = create_ops;
  w.max_seconds = max_seconds;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> block(0, kFileSize / kIoSize - 1);
  w.offsets.resize(rw_ops);
  for (uint64_t& off : w.offsets) off = block(rng) * kIoSize;
  for (uint64_t i = 0; i < create_ops; i++) w.names.push_back("f" + std::to_string(i));
  return w;
}

namespace {

struct BenchArgs {
  bool quick = false;
  bool json = false;
  bool dax_only = false;      // only the dax_* rows
  bool reflink_only = false;  // only reflink_1g_10k_extents, cow_fault_4k, rmap_lookup
  bool failure_only = false;  // only remove_revoke_{1,100,10000}, poison_route
  bool client_only = false;   // only the udax and tmpfs fs rows and the client_* rows
  ClientWorkerArgs worker;    // set (mountpoint): this process is the client worker
};

struct Plan {
  Workload w;
  int rounds = 0;
};

// Every run and every side (the client worker too) replays one sequence.
constexpr uint64_t kWorkloadSeed = 20240601;

Plan MakePlan(bool quick) {
  Plan p;
  // Under ~20 s (--quick) and ~2 min even on a loaded 2-core machine; each
  // measurement also stops after max_seconds.
  p.w = MakeWorkload(kWorkloadSeed, quick ? 200'000 : 600'000, quick ? 5'000 : 25'000, quick ? 0.5 : 2.0);
  p.rounds = quick ? 3 : 5;
  return p;
}

// One row of the table / the JSON array.
struct Row {
  std::string name, unit;
  double udax = 0, baseline = 0;
  std::string baseline_name;
  double goal = 0;  // minimum ratio; 0 = no goal
  std::string error;  // the udax side failed: no udax number, no ratio
  double udax_max = 0;  // also: udax at most this (in unit); 0 = none
  std::vector<std::pair<std::string, double>> extra;  // more numbers, as more JSON keys
};
// ratio > 1 means udax is better: udax/baseline for a rate, baseline/udax for a time.
bool TimeUnit(const std::string& unit) { return unit == "us" || unit == "ms"; }
double Ratio(const Row& r) {
  if (!r.error.empty()) return 0.0;
  double num = TimeUnit(r.unit) ? r.baseline : r.udax, den = TimeUnit(r.unit) ? r.udax : r.baseline;
  return den > 0 ? num / den : 0.0;
}
// The fs goals are set against tmpfs; 0 = no goal.
double Goal(Op op, const std::string& baseline) {
  if (baseline != "tmpfs") return 0;
  return op == Op::kCreateUnlink ? 2.0 : 3.0;
}
// A direct client against the library in the same run: no round trip on the
// data path, and a metadata call's round trip cheaper than the call itself.
double ClientGoal(Op op) { return op == Op::kCreateUnlink ? 0.5 : 0.9; }
// Revocation rounds of client_revoke_100 (best counts).
int ClientRevokeRounds(bool quick) { return quick ? 9 : 21; }
// DAX: a mapped udax file should run at the raw mapping's speed; a first-touch
// fault may cost at most 1.5x the bare SIGSEGV -> mmap round trip.
double DaxGoal(DaxOp op) { return op == DaxOp::kFaultExtent ? 0.67 : 0.95; }
const char* DaxUnit(DaxOp op) {
  switch (op) {
    case DaxOp::kSeqRead:
    case DaxOp::kSeqWrite: return "GB/s";
    case DaxOp::kRand4k: return "ops/s";
    case DaxOp::kFaultExtent: return "us";
  }
  return "?";
}
const char* DaxBaselineName(DaxOp op) {
  return op == DaxOp::kFaultExtent ? "raw-sigsegv-mmap" : "raw-mmap";
}
double Round(double v, double scale) { return std::round(v * scale) / scale; }
// Below 1, six decimals (remove_revoke_1 is a few us, in ms).
double RoundFor(const std::string& unit, double v) {
  return Round(v, unit == "ops/s" ? 10 : std::fabs(v) < 1 ? 1e6 : 1000);
}

// Catches SIGINT/SIGTERM while alive, so an interrupted run still cleans up.
class SignalGuard {
 public:
  SignalGuard() {
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

int RunBench(const BenchArgs& args) {
  SignalGuard signals;
  Plan plan = MakePlan(args.quick);
  std::vector<std::unique_ptr<Target>> targets;  // [0] is udax, then the baselines
  const bool fs_rows = !args.dax_only && !args.reflink_only && !args.failure_only;
  const bool other_rows = !args.client_only;  // besides the fs and client rows
  if (fs_rows) {
    targets.push_back(MakeUdaxTarget());
    targets.push_back(MakeKernelTarget("/dev/shm", "tmpfs"));
  }
  for (auto& t : targets) {
    Status st = t->Setup();
    if (!st.ok()) {
      cli::PrintError("bench: setting up " + t->name(), st);
      return 1;
    }
  }
  auto xfs = fs_rows && other_rows ? MakeXfsLoopTarget() : nullptr;
  if (!xfs) {
  } else if (Status st = xfs->Setup(); st.ok()) {
    targets.push_back(std::move(xfs));
  } else {
    xfs.reset();  // undoes whatever was set up
    std::fflush(stdout);
    std::fprintf(stderr, "udax bench: skipping the xfs-loop rows: %s\n", st.ToString().c_str());
  }
  // udax through its FUSE mount (fuse_bench.cc): measured in the same rounds.
  auto fuse = fs_rows && other_rows ? MakeUdaxFuseTarget() : nullptr;
  if (!fuse) {
  } else if (Status st = fuse->Setup(); !st.ok()) {
    fuse.reset();
    std::fflush(stdout);
    std::fprintf(stderr, "udax bench: skipping the fuse_* rows: %s\n", st.ToString().c_str());
  }

  // udax through a direct client in a second process (client_bench.cc):
  // measured in the same rounds. A failure of the client side makes its rows
  // errors; the other rows go on.
  std::unique_ptr<Target> client = fs_rows ? MakeUdaxClientTarget(targets[0].get(), plan.w) : nullptr;
  std::vector<std::string> client_error(std::size(kOps));  // per op; set: that row failed
  if (!client) {
  } else if (Status st = client->Setup(); !st.ok()) {
    client.reset();
    for (std::string& e : client_error) e = "setting up the client worker: " + st.ToString();
  }
  std::vector<double> client_best(std::size(kOps), 0);

  // best[target][op]: the best of the rounds; every round runs each op on
  // every side back to back, so slow phases of a shared machine hit all sides.
  // best[targets.size()], when there is a FUSE side, is the FUSE side's.
  const size_t sides = targets.size() + (fuse ? 1 : 0);
  std::vector<std::vector<double>> best(sides, std::vector<double>(std::size(kOps), 0));
  for (int r = 0; r < plan.rounds && !targets.empty(); r++) {
    for (size_t o = 0; o < std::size(kOps); o++) {
      for (size_t t = 0; t < sides; t++) {
        Target* side = t < targets.size() ? targets[t].get() : fuse.get();
        Result<double> rate = side->Measure(kOps[o], plan.w);
        if (!rate.has_value()) {
          cli::PrintError("bench", rate.error());
          return 1;
        }
        best[t][o] = std::max(best[t][o], *rate);
      }
      if (!client || !client_error[o].empty()) continue;
      Result<double> rate = client->Measure(kOps[o], plan.w);
      if (!rate.has_value() && rate.error().err() == EINTR) {
        cli::PrintError("bench", rate.error());
        return 1;
      }
      if (!rate.has_value()) client_error[o] = rate.error().ToString();
      client_best[o] = std::max(client_best[o], rate.has_value() ? *rate : 0.0);
    }
  }
  std::string diag = targets.empty() ? std::string() : UdaxFenceReport(targets[0].get());
  // create_unlink taken apart (human mode only: stderr).
  if (client) diag += UdaxClientReport(client.get(), args.json ? 0 : std::min<uint64_t>(plan.w.create_ops, 2000));

  std::vector<Row> rows;
  for (size_t t = 1; t < targets.size(); t++) {
    for (size_t o = 0; o < std::size(kOps); o++) {
      Op op = kOps[o];
      rows.push_back(Row{OpName(op), "ops/s", best[0][o], best[t][o], targets[t]->name(),
                         Goal(op, targets[t]->name()), "", 0, {}});
    }
  }
  for (size_t t = 1; fuse && t < targets.size(); t++) {
    for (size_t o = 0; o < std::size(kOps); o++)
      rows.push_back(Row{std::string("fuse_") + OpName(kOps[o]), "ops/s", best[targets.size()][o], best[t][o],
                         targets[t]->name(), 0, "", 0, {}});
  }
  // The client rows: against the library, then against tmpfs; then the
  // revocation row, while the worker and the mount still live.
  for (size_t t = 0; fs_rows && t < targets.size(); t++) {
    if (t != 0 && targets[t]->name() != "tmpfs") continue;
    for (size_t o = 0; o < std::size(kOps); o++) {
      Row row{std::string("client_") + OpName(kOps[o]), "ops/s", client_best[o], best[t][o],
              t == 0 ? "udax-lib" : targets[t]->name(), t == 0 ? ClientGoal(kOps[o]) : 0, client_error[o], 0, {}};
      rows.push_back(std::move(row));
    }
  }
  if (fs_rows) {
    FailureResult r{"client_revoke_100", "ms", 0, 0, "mmap-prot-none-100", 0, 1.0, {}, client_error[0]};
    if (client) {
      Result<FailureResult> run = RunClientRevokeBench(client.get(), ClientRevokeRounds(args.quick), &diag);
      if (!run.has_value()) {
        cli::PrintError("bench", run.error());
        return 1;
      }
      r = *run;
    }
    rows.push_back(Row{r.name, r.unit, r.udax, r.baseline, r.baseline_name, r.goal, r.error, r.udax_max, r.extra});
  }
  client.reset();  // before the udax target it serves
  fuse.reset();
  targets.clear();  // tear the fs sides down before the DAX rows need the memory

  DaxPlan dax = MakeDaxPlan(args.quick);
  dax.control = !args.json;  // the control goes to stderr, which --json keeps quiet
  Result<std::vector<DaxResult>> dax_rows = std::vector<DaxResult>{};
  if (!args.reflink_only && !args.failure_only && other_rows) dax_rows = RunDaxBench(dax, &diag);
  if (!dax_rows.has_value()) {
    cli::PrintError("bench", dax_rows.error());
    return 1;
  }
  for (const DaxResult& d : *dax_rows) {
    rows.push_back(Row{DaxOpName(d.op), DaxUnit(d.op), d.udax, d.raw, DaxBaselineName(d.op), DaxGoal(d.op), "", 0, {}});
    if (d.control > 0) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "dax control: %-14s %12.*f %-5s on a plain mmap of the udax device file"
                    " (udax/control %.3f, raw/control %.3f)\n",
                    DaxOpName(d.op), d.op == DaxOp::kRand4k ? 0 : 3, d.control, DaxUnit(d.op), d.udax / d.control, d.raw / d.control);
      diag += line;
    }
  }

  // The reflink rows (reflink_bench.cc), each on devices of its own.
  ReflinkPlan rplan = MakeReflinkPlan(args.quick);
  rplan.diag = !args.json;
  if (!args.dax_only && !args.failure_only && other_rows) {
    Result<std::vector<ReflinkResult>> rrows = RunReflinkBench(rplan, &diag);
    if (!rrows.has_value()) {
      std::fflush(stdout);
      std::fprintf(stderr, "%s", diag.c_str());
      cli::PrintError("bench", rrows.error());
      return 1;
    }
    for (const ReflinkResult& r : *rrows)
      rows.push_back(Row{r.name, r.unit, r.udax, r.baseline, r.baseline_name, r.goal, r.error, 0, {}});
  }

  // The failure rows (failure_bench.cc): device removal, poison routing.
  FailurePlan fplan = MakeFailurePlan(args.quick);
  fplan.diag = !args.json;
  if (!args.dax_only && !args.reflink_only && other_rows) {
    Result<std::vector<FailureResult>> frows = RunFailureBench(fplan, &diag);
    if (!frows.has_value()) {
      std::fflush(stdout);
      std::fprintf(stderr, "%s", diag.c_str());
      cli::PrintError("bench", frows.error());
      return 1;
    }
    for (const FailureResult& r : *frows)
      rows.push_back(Row{r.name, r.unit, r.udax, r.baseline, r.baseline_name, r.goal, r.error, r.udax_max, r.extra});
  }

  nlohmann::json out = nlohmann::json::array();
  for (const Row& r : rows) {
    nlohmann::json j = {{"name", r.name},
                        {"unit", r.unit},
                        {"udax", RoundFor(r.unit, r.udax)},
                        {"baseline", RoundFor(r.unit, r.baseline)},
                        {"baseline_name", r.baseline_name},
                        {"ratio", Round(Ratio(r), 1000)}};
    for (const auto& [key, v] : r.extra) j[key] = RoundFor(r.unit, v);
    if (!r.error.empty()) {  // no udax number: null, and why
      j["udax"] = nullptr;
      j["ratio"] = nullptr;
      j["error"] = r.error;
    }
    out.push_back(std::move(j));
  }
  if (args.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("udax bench%s: %llu random 4 KiB ops in a 256 MiB file, %llu create+close+unlink",
              args.quick ? " --quick" : "", static_cast<unsigned long long>(plan.w.rw_ops),
              static_cast<unsigned long long>(plan.w.create_ops));
  if (other_rows)
    std::printf("; DAX: a %llu MiB mapped file, %llu random 4 KiB load+stores, %llu 2 MiB extents",
                static_cast<unsigned long long>(dax.seq_bytes >> 20),
                static_cast<unsigned long long>(dax.rand_offsets.size()),
                static_cast<unsigned long long>(dax.fault_bytes >> 21));
  std::printf("; best of %d interleaved rounds\n", plan.rounds);
  if (fs_rows)
    std::printf("client: the same loops by a direct client in a second process; the mount's Truncate of a file "
                "it holds %d mappings of (best of %d)\n",
                100, ClientRevokeRounds(args.quick));
  if (!args.dax_only && !args.failure_only && other_rows)
    std::printf("reflink: Clone of a 1 GiB file of ~10k extents (best of %d); %llu CoW/hole stores per cycle "
                "(best of %d); %llu rmap queries over %llu extents (best of %d)\n",
                rplan.clone_rounds, static_cast<unsigned long long>(rplan.cow_stores), rplan.cow_rounds,
                static_cast<unsigned long long>(rplan.rmap_queries),
                static_cast<unsigned long long>(rplan.rmap_extents), rplan.rmap_rounds);
  if (!args.dax_only && !args.reflink_only && other_rows)
    std::printf("failure: RemoveDevice with N touched mappings, N one-block files (best of %d; %d for N < 10000); "
                "InjectPoison of a block with 2 owners over %llu extents (best of %d poisons)\n",
                fplan.remove_rounds, 3 * fplan.remove_rounds, static_cast<unsigned long long>(fplan.poison_extents),
                fplan.poison_reps);
  std::printf("%-22s %-6s %12s %12s %-18s %8s  %s\n", "name", "unit", "udax", "baseline",
              "baseline_name", "ratio", "goal");
  for (const Row& r : rows) {
    double ratio = Ratio(r);
    // A ratio goal, an absolute one (udax at most udax_max), both, or none.
    std::string goal_text;
    if (r.goal > 0) goal_text = Fmt(">= %.3gx %s", r.goal, ratio >= r.goal ? "met" : "MISSED");
    if (r.udax_max > 0)
      goal_text += Fmt("%s<= %g %s %s", goal_text.empty() ? "" : ", ", r.udax_max, r.unit.c_str(),
                       r.error.empty() && r.udax <= r.udax_max ? "met" : "MISSED");
    if (goal_text.empty()) goal_text = "-";
    if (!r.error.empty()) {
      std::printf(r.unit == "ops/s" ? "%-22s %-6s %12s %12.0f %-18s %8s  %s (udax failed: see below)\n"
                                    : "%-22s %-6s %12s %12.3f %-18s %8s  %s (udax failed: see below)\n",
                  r.name.c_str(), r.unit.c_str(), "FAILED", r.baseline, r.baseline_name.c_str(), "-",
                  goal_text.c_str());
      diag += Fmt("udax bench: %s (against %s) failed: %s\n", r.name.c_str(), r.baseline_name.c_str(),
                  r.error.c_str());
      continue;
    }
    const char* fmt = r.unit == "ops/s"                       ? "%-22s %-6s %12.0f %12.0f %-18s %7.2fx  %s\n"
                      : std::min(r.udax, r.baseline) < 0.1 ? "%-22s %-6s %12.5f %12.5f %-18s %7.2fx  %s\n"
                                                           : "%-22s %-6s %12.3f %12.3f %-18s %7.2fx  %s\n";
    std::printf(fmt, r.name.c_str(), r.unit.c_str(), r.udax, r.baseline, r.baseline_name.c_str(), ratio,
                goal_text.c_str());
  }
  std::fflush(stdout);
  std::fprintf(stderr, "%s", diag.c_str());
  return 0;
}

}  // namespace
}  // namespace udax::bench

namespace udax::cli {

void SetupBench(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<bench::BenchArgs>();
  CLI::App* sub = app.add_subcommand(
      "bench", "benchmark udax against the kernel (tmpfs, and XFS on a loop device as root)");
  sub->add_flag("--quick", args->quick, "smaller op counts (the run stays under ~20 s)");
  sub->add_flag("--json", args->json, "print only a JSON array of result rows on stdout");
  sub->add_flag("--dax-only", args->dax_only, "run only the dax_* rows");
  sub->add_flag("--reflink-only", args->reflink_only,
                "run only the reflink rows (reflink_1g_10k_extents, cow_fault_4k, rmap_lookup)");
  sub->add_flag("--failure-only", args->failure_only,
                "run only the failure rows (remove_revoke_1/_100/_10000, poison_route)");
  sub->add_flag("--client-only", args->client_only,
                "run only the udax and tmpfs fs rows and the client_* rows (a direct client in a second process)");
  // The second process of the client rows (client_worker.cc): hidden.
  sub->add_option("--client-worker", args->worker.mountpoint)->group("");
  sub->add_option("--seed", args->worker.seed)->group("");
  sub->add_option("--rw-ops", args->worker.rw_ops)->group("");
  sub->add_option("--create-ops", args->worker.create_ops)->group("");
  sub->add_option("--max-seconds", args->worker.max_seconds)->group("");
  sub->callback([args, exit_code] {
    *exit_code = args->worker.mountpoint.empty() ? bench::RunBench(*args) : bench::RunClientWorker(args->worker);
  });
}

}  // namespace udax::cli
