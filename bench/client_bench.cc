// bench/client_bench.cc — the client rows of `udax bench`: udax used by a
// direct client (Filesystem::Connect) in a second process. See
// bench/README.md ("The client rows").
//
//   client_pwrite_4k, client_pread_4k, client_create_unlink   ops/s
//       the udax target's loops (MeasureUdaxOp) on the same /bench.dat and /cu,
//       run by the worker; against the library rows (udax-lib) and tmpfs
//   client_revoke_100   ms
//       Truncate to 0, through the mount's own Filesystem, of a file the worker
//       holds 100 touched 4 KiB Mappings of: the call returns once every
//       mapping was revoked in the worker and acknowledged; against 100 raw
//       mmap(PROT_NONE, MAP_FIXED) in one process (mmap-prot-none-100)
//
// The mount side is this process: a DirectServer serves the udax target's
// Filesystem on a temp directory, with a private rendezvous directory
// ($UDAX_SHARE_DIR, set only around Start and in the worker's environment).
// The worker (client_worker.cc) is /proc/self/exe started with posix_spawn;
// commands and answers are lines on a socketpair (a pipe both ways, without
// SIGPIPE). Every answer is awaited with a bound; past it, or when the worker
// dies, it is killed and reaped, and that measurement and every later one
// fail with the reason (a row error), never a hang.
// Not thread-safe: the bench's one thread drives it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "bench.h"
#include "bench_udax.h"
#include "raw_mappings.h"
#include "udax/fs.h"
#include "udax/serve.h"

extern char** environ;

namespace udax::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kStartBound{10'000};    // spawn, exec, Connect, open
constexpr milliseconds kCommandBound{10'000};  // map / heard / unmap
constexpr milliseconds kQuitBound{5'000};      // then SIGKILL
constexpr uint64_t kRevokeMappings = 100;
constexpr const char* kRevokeFile = "/revoke.dat";

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Sets an environment variable for the scope's life, then puts back what
// was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

// The worker process and its line protocol (client_worker.cc). Once it
// failed, every later Ask fails with the first reason.
class WorkerProcess {
 public:
  WorkerProcess() = default;
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;
  ~WorkerProcess() { Stop(); }

  // Starts `argv` as /proc/self/exe with `env` (entries "NAME=value") added
  // to this process's environment, and waits for its "ok" (connected).
  Status Start(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return SysErr("socketpair");
    fd_ = sv[0];
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      bool replaced = false;
      for (const std::string& mine : env)
        replaced = replaced || std::strncmp(*e, mine.c_str(), mine.find('=') + 1) == 0;
      if (!replaced) envs.emplace_back(*e);
    }
    envs.insert(envs.end(), env.begin(), env.end());
    std::vector<char*> av, ev;
    for (const std::string& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    for (const std::string& e : envs) ev.push_back(const_cast<char*>(e.c_str()));
    ev.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], STDIN_FILENO);  // dup2 clears close-on-exec
    posix_spawn_file_actions_adddup2(&fa, sv[1], STDOUT_FILENO);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, av.data(), ev.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(sv[1]);
    if (rc != 0) return Fail(Errno(rc, std::string("posix_spawn /proc/self/exe: ") + std::strerror(rc)));
    pid_ = pid;
    return Ask("", kStartBound).status();
  }

  // Sends `command` (none when empty) and waits up to `bound` for the answer's
  // first number.
  Result<double> Ask(const std::string& command, milliseconds bound) {
    ASSIGN_OR_RETURN(std::vector<double> v, AskAll(command, bound));
    if (v.empty()) return Fail(Errno(EPROTO, "client worker: an answer without a number"));
    return v[0];
  }

  // ... and for all its numbers.
  Result<std::vector<double>> AskAll(const std::string& command, milliseconds bound) {
    if (!failed_.ok()) return failed_;
    if (fd_ < 0 || pid_ <= 0) return Errno(ECHILD, "client worker: not started");
    const std::string what = command.empty() ? std::string("start") : "'" + command + "'";
    if (!command.empty()) {
      std::string line = command + "\n";
      for (size_t done = 0; done < line.size();) {
        ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          const std::string why = std::strerror(errno);
          return Fail(Errno(ECHILD, "client worker: " + ExitReason() + " (sending " + what + ": " + why + ")"));
        }
        done += static_cast<size_t>(n);
      }
    }
    ASSIGN_OR_RETURN(std::string answer, ReadLine(what, bound));
    if (answer.rfind("ok ", 0) == 0) {
      std::vector<double> v;
      const char* p = answer.c_str() + 2;
      for (char* next = nullptr;; p = next) {
        double d = std::strtod(p, &next);
        if (next == p) break;
        v.push_back(d);
      }
      return v;
    }
    if (answer.rfind("error ", 0) == 0) {
      char* rest = nullptr;
      long err = std::strtol(answer.c_str() + 6, &rest, 10);
      std::string msg = rest && *rest == ' ' ? rest + 1 : "";
      return Errno(err > 0 ? static_cast<int>(err) : EIO, msg);  // the worker's own error: it lives on
    }
    return Fail(Errno(EPROTO, "client worker: unexpected answer to " + what + ": '" + answer + "'"));
  }

  bool alive() const { return pid_ > 0 && failed_.ok(); }

  // Asks the worker to quit; kills it if it has not exited within a bound.
  void Stop() {
    if (pid_ > 0 && fd_ >= 0 && failed_.ok()) {
      ::send(fd_, "quit\n", 5, MSG_NOSIGNAL);
      const auto end = Clock::now() + kQuitBound;
      while (Clock::now() < end) {
        int status = 0;
        pid_t w = ::waitpid(pid_, &status, WNOHANG);
        if (w == pid_ || (w < 0 && errno != EINTR)) {
          pid_ = 0;
          break;
        }
        ::usleep(1000);
      }
    }
    KillAndReap();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  // One line (without '\n') within `bound`; the worker is killed otherwise.
  Result<std::string> ReadLine(const std::string& what, milliseconds bound) {
    const auto end = Clock::now() + bound;
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (Interrupted()) return Fail(Errno(EINTR, "interrupted"));
      const auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now()).count();
      if (left <= 0)
        return Fail(Errno(ETIMEDOUT, "client worker: no answer to " + what + " within " +
                                         std::to_string(bound.count()) + " ms; killed"));
      struct pollfd p {fd_, POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100)));
      if (n < 0 && errno != EINTR) return Fail(SysErr("client worker: poll"));
      if (n <= 0) continue;
      char chunk[512];
      ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return Fail(Errno(ECHILD, "client worker: " + ExitReason() + " before answering " + what));
      buf_.append(chunk, static_cast<size_t>(got));
    }
  }

  // Reaps the worker after EOF: "exited with status N" / "killed by signal N".
  std::string ExitReason() {
    int status = 0;
    pid_t w = -1;
    for (int i = 0; i < 1000 && (w = ::waitpid(pid_, &status, WNOHANG)) == 0; i++) ::usleep(1000);
    if (w != pid_) return "closed its end";
    pid_ = 0;
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
    return "ended";
  }

  Status Fail(Status st) {
    if (failed_.ok()) failed_ = st;
    KillAndReap();
    return failed_;
  }

  void KillAndReap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = 0;
  }

  int fd_ = -1;
  pid_t pid_ = 0;
  std::string buf_;
  Status failed_;
};

class UdaxClientTarget : public Target {
 public:
  explicit UdaxClientTarget(Target* udax) : udax_(udax) {}
  ~UdaxClientTarget() override { Teardown(); }
  std::string name() const override { return "udax-client"; }

  Status Setup() override {
    fs_ = UdaxTargetFs(udax_);
    const std::string device = UdaxTargetDevice(udax_);
    if (!fs_ || device.empty()) return Errno(EINVAL, "the client rows need the udax target");
    char tmpl[] = "/tmp/udax-bench-client-XXXXXX";
    if (!::mkdtemp(tmpl)) return SysErr("mkdtemp /tmp/udax-bench-client-XXXXXX");
    base_ = tmpl;
    const std::string mnt = base_ + "/mnt", share = base_ + "/run";
    if (::mkdir(mnt.c_str(), 0755) != 0) return SysErr("mkdir " + mnt);
    DirectServerOptions o;
    o.device = device;
    {
      ScopedEnv env("UDAX_SHARE_DIR", share);
      ASSIGN_OR_RETURN(server_, DirectServer::Start(*fs_, mnt, o));
    }
    auto num = [](auto v) { return std::to_string(v); };
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.17g", max_seconds_);
    return worker_.Start({"udax", "bench", "--client-worker", mnt, "--seed", num(seed_), "--rw-ops", num(rw_ops_),
                          "--create-ops", num(create_ops_), "--max-seconds", secs},
                         {"UDAX_SHARE_DIR=" + share});
  }

  // The workload the worker rebuilds (set before Setup).
  void SetWorkload(const Workload& w) {
    w_ = w;
    seed_ = w.seed;
    rw_ops_ = w.rw_ops;
    create_ops_ = w.create_ops;
    max_seconds_ = w.max_seconds;
  }

  Result<double> Measure(Op op, const Workload& w) override {
    if (w.seed != seed_ || w.rw_ops != rw_ops_ || w.create_ops != create_ops_)
      return Errno(EINVAL, "the client worker was started for another workload");
    // The warm-up is not bounded by max_seconds, and the first touch of each
    // 4 KiB block is a lease request: on a machine loaded far beyond its CPUs
    // a request can cost a scheduler time slice (~3.6 ms each measured at
    // load 20 on 2 CPUs), so the bound is generous. Past it the worker is
    // killed: a hang is reported, never waited for.
    const milliseconds bound{static_cast<int64_t>(120'000 + 4'000 * w.max_seconds)};
    const SharingStatus before = server_->GetStatus();
    Result<double> rate = worker_.Ask(std::string("measure ") + OpName(op), bound);
    const SharingStatus after = server_->GetStatus();
    Counts& c = counts_[static_cast<int>(op)];
    c.measurements++;
    c.revocations += after.revocations - before.revocations;
    c.leased_bytes = after.clients.empty() ? 0 : after.clients[0].leased_bytes;
    c.revocations_between = before.revocations - last_revocations_;
    last_revocations_ = after.revocations;
    return rate;
  }

  // What the mount saw of the worker over the measurements, and n
  // create_unlink ops taken apart on both sides (stderr).
  std::string Report(uint64_t n) {
    std::string out;
    for (Op op : kOps) {
      const Counts& c = counts_[static_cast<int>(op)];
      if (c.measurements == 0) continue;
      out += Fmt("udax client: %-14s %llu revocations posted to the worker over %d measurements (%llu before "
                 "the last one, since the previous client measurement); it held %.1f MiB of leases after it\n",
                 OpName(op), static_cast<unsigned long long>(c.revocations), c.measurements,
                 static_cast<unsigned long long>(c.revocations_between), double(c.leased_bytes) / (1 << 20));
    }
    if (n == 0) return out;
    Result<std::vector<double>> client = worker_.AskAll("parts " + std::to_string(n), kCommandBound);
    Result<CreateUnlinkParts> lib = TimeCreateUnlinkParts(fs_, w_, n);
    if (!client.has_value() || client->size() != 4 || !lib.has_value())
      return out + "udax client: create_unlink parts: " +
             (!client.has_value() ? client.error().ToString() : lib.error().ToString()) + "\n";
    const std::vector<double>& c = *client;
    out += Fmt("udax client: create_unlink taken apart, median us of %llu ops: client open %.2f, close %.2f, "
               "unlink %.2f, sum %.2f (a GetStatFs round trip %.2f); library open %.2f, close %.2f, unlink %.2f, "
               "sum %.2f (GetStatFs %.2f)\n",
               static_cast<unsigned long long>(n), c[0], c[1], c[2], c[0] + c[1] + c[2], c[3], lib->open_us,
               lib->close_us, lib->unlink_us, lib->open_us + lib->close_us + lib->unlink_us, lib->statfs_us);
    return out;
  }

  void Teardown() override {
    worker_.Stop();
    if (server_) server_->Stop();
    server_.reset();
    if (!base_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(base_, ec);
    }
    base_.clear();
  }

  Filesystem* fs() { return fs_; }
  WorkerProcess& worker() { return worker_; }
  // Revocations the mount posted to its clients so far.
  uint64_t revocations() const { return server_ ? server_->GetStatus().revocations : 0; }

 private:
  Target* udax_;
  Filesystem* fs_ = nullptr;  // the udax target's: the mount side
  std::string base_;          // the mount point and the rendezvous directory
  std::unique_ptr<DirectServer> server_;
  WorkerProcess worker_;
  struct Counts {
    int measurements = 0;
    uint64_t revocations = 0;          // during this op's measurements
    uint64_t revocations_between = 0;  // before its last one, since the previous client measurement
    uint64_t leased_bytes = 0;         // after its last one
  };
  Counts counts_[3];
  uint64_t last_revocations_ = 0;
  Workload w_;
  uint64_t seed_ = 0, rw_ops_ = 0, create_ops_ = 0;
  double max_seconds_ = 0;
};

// ================================ client_revoke_100 ================================

class ClientRevokeBench {
 public:
  ClientRevokeBench(UdaxClientTarget* client, int rounds) : client_(client), rounds_(rounds), raw_("client-revoke") {}

  Status Run(FailureResult* res, std::string* diag) {
    Filesystem* fs = client_->fs();
    ASSIGN_OR_RETURN(file_, fs->Open(kRevokeFile, O_CREAT | O_RDWR | O_TRUNC, 0644));
    RETURN_IF_ERROR(raw_.MakeFile(kRevokeMappings * kPage));
    std::vector<double> udax_ms, raw_ms, alone_ms;
    for (int r = 0; r < rounds_; r++) {
      for (int s = 0; s < 2; s++) {
        if ((s + r) % 2 == 0) {  // each side goes first in turn
          ASSIGN_OR_RETURN(double ms, ClientRound());
          udax_ms.push_back(ms);
        } else {
          ASSIGN_OR_RETURN(double ms, RawRound());
          raw_ms.push_back(ms);
        }
      }
      ASSIGN_OR_RETURN(double alone, TruncateAlone());
      alone_ms.push_back(alone);
      if (Interrupted()) return Errno(EINTR, "interrupted");
    }
    res->udax = Min(udax_ms);
    res->baseline = Min(raw_ms);
    *diag += Fmt("client_revoke_100: %d rounds per side; the mount's Truncate with the worker's 100 mappings best "
                 "%.4f ms, median %.4f (%.2f us per mapping); the same Truncate with no mappings best %.4f ms, "
                 "median %.4f; raw best %.4f ms, median %.4f; the Truncate posted %llu revocation(s) to the "
                 "worker\n",
                 rounds_, res->udax, Median(udax_ms), res->udax * 1e3 / double(kRevokeMappings), Min(alone_ms),
                 Median(alone_ms), res->baseline, Median(raw_ms), static_cast<unsigned long long>(posted_));
    *diag += Fmt("client_revoke_100: medians: from the call to the worker's first callback %.4f ms, first to last "
                 "callback (the 100 revokes in the worker) %.4f ms, from the last callback to the return %.4f ms\n",
                 Median(to_first_ms_), Median(callbacks_ms_), Median(after_last_ms_));
    return Status::Ok();
  }

  ~ClientRevokeBench() {
    if (file_.is_open()) file_.Close().IgnoreError();
    client_->fs()->Unlink(kRevokeFile).IgnoreError();
  }

 private:
  static uint64_t RawFileOff(uint64_t i) { return i * kPage; }

  // The file's 100 blocks, written afresh (the last Truncate freed them).
  Status Fill() {
    std::vector<uint8_t> data(kRevokeMappings * kPage, 0x6b);
    return WriteAll(file_, data.data(), data.size(), 0);
  }

  // The worker maps and touches every page; the timed Truncate returns once
  // each mapping is revoked there and acknowledged; the worker then says
  // whether each one heard it.
  Result<double> ClientRound() {
    RETURN_IF_ERROR(Fill());
    WorkerProcess& w = client_->worker();
    ASSIGN_OR_RETURN(double mapped, w.Ask(Fmt("map %s %llu", kRevokeFile,
                                               static_cast<unsigned long long>(kRevokeMappings)),
                                          kCommandBound));
    if (mapped != double(kRevokeMappings)) return Errno(EPROTO, "client worker: mapped " + std::to_string(mapped));
    const uint64_t posted = client_->revocations();
    const Clock::time_point t0 = Clock::now();
    Status st = file_.Truncate(0);
    const Clock::time_point t1 = Clock::now();
    RETURN_IF_ERROR(st.Prefixed("the mount's Truncate"));
    posted_ = client_->revocations() - posted;
    ASSIGN_OR_RETURN(std::vector<double> heard, w.AskAll("heard", kCommandBound));
    RETURN_IF_ERROR(w.Ask("unmap", kCommandBound).status());
    if (heard.size() == 3) {  // where the time went, by the one clock both processes read
      auto ns = [](Clock::time_point t) { return double(t.time_since_epoch().count()); };
      static_assert(std::is_same_v<Clock::duration, std::chrono::nanoseconds>);
      to_first_ms_.push_back((heard[1] - ns(t0)) / 1e6);
      callbacks_ms_.push_back((heard[2] - heard[1]) / 1e6);
      after_last_ms_.push_back((ns(t1) - heard[2]) / 1e6);
    }
    return Ms(t0, t1);
  }

  // The same Truncate when no client holds anything of the file: the part
  // of the row that is the truncate's own transaction (stderr only).
  Result<double> TruncateAlone() {
    RETURN_IF_ERROR(Fill());
    const Clock::time_point t0 = Clock::now();
    Status st = file_.Truncate(0);
    const Clock::time_point t1 = Clock::now();
    RETURN_IF_ERROR(st.Prefixed("the mount's Truncate (no mappings)"));
    return Ms(t0, t1);
  }

  Result<double> RawRound() {
    RETURN_IF_ERROR(raw_.Map(kRevokeMappings, kPage, &ClientRevokeBench::RawFileOff));
    const Clock::time_point t0 = Clock::now();
    for (uint64_t i = 0; i < kRevokeMappings; i++) RETURN_IF_ERROR(RevokeRaw(raw_.Slot(i), kPage));
    const Clock::time_point t1 = Clock::now();
    raw_.Release();
    return Ms(t0, t1);
  }

  UdaxClientTarget* client_;
  int rounds_;
  uint64_t posted_ = 0;  // revocations the last timed Truncate posted
  // Per round: Truncate called -> the worker's first callback -> its last
  // callback -> Truncate returned.
  std::vector<double> to_first_ms_, callbacks_ms_, after_last_ms_;
  File file_;  // the mount's handle of kRevokeFile
  RawMappings raw_;
};

}  // namespace

std::unique_ptr<Target> MakeUdaxClientTarget(Target* udax, const Workload& w) {
  auto t = std::make_unique<UdaxClientTarget>(udax);
  t->SetWorkload(w);
  return t;
}

std::string UdaxClientReport(Target* client, uint64_t n) {
  auto* ct = dynamic_cast<UdaxClientTarget*>(client);
  return ct ? ct->Report(n) : std::string();
}

Result<FailureResult> RunClientRevokeBench(Target* client, int rounds, std::string* diag) {
  FailureResult res{"client_revoke_100", "ms", 0, 0, "mmap-prot-none-100", 0, 1.0, {}, ""};
  auto* ct = dynamic_cast<UdaxClientTarget*>(client);
  if (!ct || !ct->worker().alive()) {
    res.error = ct ? ct->worker().Ask("", kCommandBound).error().ToString() : "no client target";
    return res;
  }
  Status st;
  {
    ClientRevokeBench b(ct, rounds);
    st = b.Run(&res, diag);
  }
  if (st.err() == EINTR) return st;
  if (!st.ok()) res.error = st.ToString();
  return res;
}

}  // namespace udax::bench
