// tests/client_process_test.cc — direct clients (and a mount) as separate
// processes, killed and stopped: a SIGSTOPped client holding a mapping is
// killed within the revocation bound and its blocks are reused only after it
// is dead; kill -9 of clients, and of the mount, at random moments under a
// mixed load loses no operation that returned and leaves fsck clean; a
// client of another uid is refused with EACCES.
//
// Processes are spawned (posix_spawn), never forked from this threaded
// process: `udax io MOUNTPOINT` (UDAX_BINARY) and udax_test_client
// (UDAX_TEST_CLIENT, tests/helpers/test_client.cc: the load, and a mount
// serving clients). The load and its model are tests/helpers/load_model.h.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "client_test_util.h"
#include "helpers/load_model.h"

extern char** environ;

namespace udax {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using loadtest::Files;
using loadtest::Op;
using testutil::ClientFixture;
using testutil::Pattern;

// ---- processes -------------------------------------------------------------------

// A spawned process with a pipe to its stdin and one from its stdout (and
// stderr, when asked). Every pipe end this process keeps is O_CLOEXEC, so
// no other child inherits it (an inherited stdin would never see EOF).
class Proc {
 public:
  static std::unique_ptr<Proc> Spawn(const std::vector<std::string>& argv, bool merge_stderr = false) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return nullptr;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    if (merge_stderr) posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    auto p = std::unique_ptr<Proc>(new Proc);
    int rc = ::posix_spawn(&p->pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    p->in_ = in[1];
    p->out_ = out[0];
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
      return nullptr;
    }
    return p;
  }
  ~Proc() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    CloseIn();
    if (out_ >= 0) ::close(out_);
  }

  pid_t pid() const { return pid_; }
  void Send(const std::string& text) { ASSERT_EQ(::write(in_, text.data(), text.size()), ssize_t(text.size())); }
  void CloseIn() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  // The next line of its output (without '\n'); nullopt at EOF or timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout = 20s) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (!Fill(deadline)) return std::nullopt;
    }
  }
  // Reads until a line containing `needle`; every line read is kept in
  // transcript().
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout = 20s) {
    auto deadline = Clock::now() + timeout;
    while (auto line = ReadLine(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) {
      transcript_ += *line + "\n";
      if (line->find(needle) != std::string::npos) return true;
    }
    return false;
  }
  // Everything it writes until EOF (false: not within the timeout).
  bool ReadToEof(std::string* all, std::chrono::milliseconds timeout = 20s) {
    auto deadline = Clock::now() + timeout;
    while (Fill(deadline)) {
    }
    *all = buf_;
    buf_.clear();
    return eof_;
  }
  // Waits for it to end; its wait status.
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
  }
  // Whether it has ended (without reaping it): its siginfo.
  std::optional<siginfo_t> Ended() const {
    siginfo_t si{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &si, WEXITED | WNOHANG | WNOWAIT) != 0) return std::nullopt;
    if (si.si_pid != pid_) return std::nullopt;
    return si;
  }
  const std::string& transcript() const { return transcript_; }

 private:
  Proc() = default;
  bool Fill(Clock::time_point deadline) {
    if (eof_) return false;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left < 0) return false;
      pollfd p{out_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      char b[4096];
      ssize_t n = ::read(out_, b, sizeof b);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        return false;
      }
      buf_.append(b, static_cast<size_t>(n));
      return true;
    }
  }
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  bool reaped_ = false, eof_ = false;
  std::string buf_, transcript_;
};

bool KilledBy(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }

// Sanitizers make each process start slowly: fewer trials there (the
// Release suite runs them all).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kTrialDivisor = 4;
#else
constexpr int kTrialDivisor = 1;
#endif

// ---- one load client's report and what it says must be in the filesystem ------------

struct LoadRun {
  std::string dir;
  std::vector<Op> begun;
  std::map<uint64_t, std::string> answer;  // op number → "D" or the errno's name
  std::string check;                        // the X line's verdict ("" when none)
  bool ready = false;
};

void ParseReport(const std::string& text, LoadRun* run) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line cannot be: each is one write
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line == "R") {
      run->ready = true;
    } else if (line.rfind("B ", 0) == 0) {
      auto op = Op::Parse(line.substr(2));
      ASSERT_TRUE(op) << line;
      run->begun.push_back(*op);
    } else if (line.rfind("D ", 0) == 0) {
      run->answer[std::stoull(line.substr(2))] = "D";
    } else if (line.rfind("E ", 0) == 0) {
      std::istringstream s(line.substr(2));
      uint64_t no;
      std::string e;
      s >> no >> e;
      run->answer[no] = e;
    } else if (line.rfind("X ", 0) == 0) {
      run->check = line.substr(2);
    } else {
      ADD_FAILURE() << "unexpected report line: " << line;
    }
  }
}

// The model after every operation that returned; the one operation that
// may or may not have happened (begun and unanswered, or cut off by the
// mount's death) as the file's two possible versions.
struct Expected {
  Files files;
  std::optional<int> uncertain_file;
  std::optional<std::vector<uint8_t>> before, after;
  int done = 0;
};

Expected ExpectedOf(const LoadRun& run, bool mount_died) {
  Expected x;
  for (size_t i = 0; i < run.begun.size(); i++) {
    const Op& op = run.begun[i];
    auto a = run.answer.find(op.no);
    bool cut = a == run.answer.end() || (mount_died && a->second == "ENOTCONN");
    if (cut) {
      EXPECT_EQ(i + 1, run.begun.size()) << run.dir << ": op " << op.no << " unanswered, yet another began";
      x.uncertain_file = op.file;
      auto it = x.files.find(op.file);
      if (it != x.files.end()) x.before = it->second;
      Files after = x.files;
      loadtest::Apply(op, after);
      auto jt = after.find(op.file);
      if (jt != after.end()) x.after = jt->second;
      break;
    }
    if (a->second != "D") {
      ADD_FAILURE() << run.dir << ": op " << op.no << " (" << op.kind << ") failed: " << a->second;
      continue;
    }
    loadtest::Apply(op, x.files);
    x.done++;
  }
  return x;
}

std::optional<std::vector<uint8_t>> Contents(Filesystem& fs, const std::string& path) {
  auto r = testutil::ReadWhole(fs, path);
  if (!r) {
    EXPECT_EQ(r.error().err(), ENOENT) << path << ": " << r.error().ToString();
    return std::nullopt;
  }
  return *r;
}

// Every block of the file is owned by it (QueryRmap), and by it alone
// unless Fiemap says the extent is shared.
void ExpectOwnedBy(Filesystem& fs, const std::string& path) {
  auto f = fs.Open(path, O_RDONLY);
  ASSERT_OK(f);
  auto ext = f->Fiemap();
  ASSERT_OK(ext);
  for (const FileExtent& e : *ext) {
    auto owners = fs.QueryRmap(e.device_offset, e.length);
    ASSERT_OK(owners);
    uint64_t mine = 0;
    for (const BlockOwner& o : *owners) {
      if (o.kind == BlockOwner::Kind::kFileData && o.ino == f->ino()) {
        EXPECT_EQ(o.file_offset - e.file_offset, o.device_offset - e.device_offset) << path;
        mine += o.length;
      } else {
        EXPECT_TRUE(o.kind == BlockOwner::Kind::kFileData && (e.flags & kExtentShared))
            << path << ": block at " << o.device_offset << " of an unshared extent is also owned by ino " << o.ino
            << " (" << o.metadata << ")";
      }
    }
    EXPECT_EQ(mine, e.length) << path << ": extent at device offset " << e.device_offset;
  }
}

// The client's directory holds what its report says (fs mounted anew).
void ExpectDurable(Filesystem& fs, const LoadRun& run, bool mount_died) {
  Expected x = ExpectedOf(run, mount_died);
  auto ents = fs.ReadDir(run.dir);
  ASSERT_OK(ents);
  std::set<std::string> names;
  for (const auto& e : *ents)
    if (e.name != "." && e.name != "..") names.insert(e.name);
  for (int idx : {0, 1, 2, 3, loadtest::kHeldFile}) {
    std::string path = loadtest::FileName(run.dir, idx);
    auto actual = Contents(fs, path);
    EXPECT_EQ(actual.has_value(), names.count("f" + std::to_string(idx)) == 1) << path;
    names.erase("f" + std::to_string(idx));
    if (x.uncertain_file == idx) {
      EXPECT_TRUE(loadtest::Possible(actual, x.before, x.after))
          << path << ": neither before nor after op " << run.begun.back().no << " (" << run.begun.back().kind
          << "); size " << (actual ? actual->size() : 0);
    } else {
      auto it = x.files.find(idx);
      if (it == x.files.end()) {
        EXPECT_FALSE(actual) << path << " should not exist";
      } else {
        ASSERT_TRUE(actual) << path << " is missing";
        EXPECT_EQ(actual->size(), it->second.size()) << path;
        EXPECT_TRUE(*actual == it->second) << path << ": contents differ from every returned operation's";
      }
    }
    if (actual) ExpectOwnedBy(fs, path);
  }
  EXPECT_TRUE(names.empty()) << run.dir << " holds unexpected names, e.g. " << *names.begin();
}

void RemoveDir(Filesystem& fs, const std::string& dir) {
  auto ents = fs.ReadDir(dir);
  ASSERT_OK(ents);
  for (const auto& e : *ents) {
    if (e.name == "." || e.name == "..") continue;
    ASSERT_OK(fs.Unlink(dir + "/" + e.name));
  }
  ASSERT_OK(fs.Rmdir(dir));
}

std::unique_ptr<Proc> SpawnLoad(const std::string& mountpoint, const std::string& dir, uint64_t seed) {
  return Proc::Spawn({UDAX_TEST_CLIENT, "load", mountpoint, dir, std::to_string(seed)});
}

// Waits for each load client to say it is ready.
void AwaitReady(std::vector<std::unique_ptr<Proc>>& procs, std::vector<std::string>& reports) {
  for (size_t i = 0; i < procs.size(); i++) {
    ASSERT_TRUE(procs[i]);
    bool ready = false;
    while (auto line = procs[i]->ReadLine()) {
      reports[i] += *line + "\n";
      if (*line == "R") {
        ready = true;
        break;
      }
    }
    ASSERT_TRUE(ready) << "client " << i << " never got ready; said:\n" << reports[i];
  }
}

// ---- the tests --------------------------------------------------------------------

class ClientProcessTest : public ClientFixture {
 protected:
  std::chrono::milliseconds RevokeTimeout() const override { return revoke_timeout_; }
  std::chrono::milliseconds revoke_timeout_{1000};
};

class StoppedClientTest : public ClientProcessTest {
 protected:
  uint64_t DeviceBytes() const override { return 16 * testutil::kMiB; }
  void SetUp() override {
    revoke_timeout_ = 200ms;
    ClientProcessTest::SetUp();
  }
};

bool Overlaps(const std::vector<FileExtent>& a, const std::vector<FileExtent>& b) {
  for (const auto& x : a)
    for (const auto& y : b)
      if (x.device_offset < y.device_offset + y.length && y.device_offset < x.device_offset + x.length) return true;
  return false;
}

// Fills the filesystem with /fill until ENOSPC: the blocks a truncate frees
// are then the only free ones, so a new file gets exactly those.
void FillUp(Filesystem& fs) {
  auto f = fs.Open("/fill", O_CREAT | O_WRONLY | O_APPEND);
  ASSERT_OK(f);
  std::vector<uint8_t> chunk(1 << 20, 0xf1);
  for (size_t n = chunk.size(); n >= 4096; n /= 2) {
    for (;;) {
      auto w = f->Write(chunk.data(), n);
      if (!w) {
        ASSERT_EQ(w.error().err(), ENOSPC) << w.error().ToString();
        break;
      }
    }
  }
}

TEST_F(StoppedClientTest, AStoppedClientIsKilledBeforeItsBlocksAreReused) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(64 * 1024, 3)));
  auto lf = fs().Open("/f", O_RDWR);
  ASSERT_OK(lf);
  auto old_blocks = lf->Fiemap();
  ASSERT_OK(old_blocks);
  ASSERT_FALSE(old_blocks->empty());

  auto io = Proc::Spawn({UDAX_BINARY, "io", mountpoint_}, true);
  ASSERT_TRUE(io);
  io->Send("open /f\nmmap -rw 0 64k\nmwrite -S 0x5a 0 64k\nstat\n");
  ASSERT_TRUE(io->WaitFor("stat.size")) << io->transcript();
  uint8_t b = 0;
  ASSERT_OK(lf->Pread(&b, 1, 60000));
  ASSERT_EQ(b, 0x5a) << "the client's stores through its mapping are not in the file";

  ASSERT_EQ(::kill(io->pid(), SIGSTOP), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(io->pid(), &st, WUNTRACED), io->pid());
  ASSERT_TRUE(WIFSTOPPED(st));
  FillUp(fs());

  // Meanwhile a writer keeps asking for blocks: the only ones that can come
  // free are /f's, and it must not get them while the client that could
  // still reach them lives.
  std::atomic<bool> stop{false};
  std::atomic<int> reused{0}, reused_while_alive{0}, other{0};
  std::thread allocator([&] {
    std::vector<uint8_t> data(4096, 0xee);
    for (int i = 0; !stop && reused == 0; i++) {
      auto f = fs().Open("/new", O_CREAT | O_WRONLY | O_APPEND);
      if (!f) {  // ENOSPC for the inode itself
        std::this_thread::sleep_for(1ms);
        continue;
      }
      auto w = f->Write(data.data(), data.size());
      if (!w) {
        std::this_thread::sleep_for(1ms);
        continue;
      }
      // Alive after the write took its blocks: alive when they were taken.
      bool alive = !io->Ended();
      auto ext = f->Fiemap();
      if (!ext) continue;
      if (Overlaps(*ext, *old_blocks)) {
        reused++;
        if (alive) reused_while_alive++;
      } else {
        other++;
      }
    }
  });
  std::this_thread::sleep_for(20ms);

  auto t0 = Clock::now();
  Status tr = lf->Truncate(0);
  auto took = Clock::now() - t0;
  auto ended = io->Ended();  // at once: the truncate returned after the death
  ASSERT_OK(tr);
  ASSERT_TRUE(ended) << "the truncate returned while the stopped client was alive";
  EXPECT_EQ(ended->si_code, CLD_KILLED);
  EXPECT_EQ(ended->si_status, SIGKILL);
  EXPECT_GE(took, 190ms) << "the truncate did not wait for the client";
  EXPECT_LE(took, 200ms + 800ms) << "the truncate took longer than the revocation bound and a margin";

  auto give_up = Clock::now() + 10s;
  while (reused == 0 && Clock::now() < give_up) std::this_thread::sleep_for(1ms);
  stop = true;
  allocator.join();
  EXPECT_EQ(reused_while_alive.load(), 0) << "a new file got the stopped client's blocks while it lived";
  EXPECT_GT(reused.load(), 0) << "the freed blocks never went to the writer: the check above proves nothing";
  EXPECT_EQ(other.load(), 0) << "the writer got blocks that were not /f's: the device was not full";
  EXPECT_TRUE(KilledBy(io->Wait(), SIGKILL));

  SharingStatus s = server_->GetStatus();
  EXPECT_EQ(s.kills, 1u);
  EXPECT_GE(s.revocations, 1u);
  EXPECT_TRUE(s.clients.empty()) << "the dead client is still listed";
  server_->Stop();
  ExpectFsckClean(false);
}

class KilledClientsTest : public ClientProcessTest {};

TEST_F(KilledClientsTest, NothingThatReturnedIsLostAndFsckIsClean) {
  constexpr int kTrials = 200 / kTrialDivisor, kClients = 3, kBatch = 50 / kTrialDivisor;
  constexpr int kMaxKillDelayUs = 5000;
  std::mt19937_64 rng(12345);
  std::vector<LoadRun> runs;
  int total_done = 0;
  for (int trial = 0; trial < kTrials; trial++) {
    std::vector<std::unique_ptr<Proc>> procs;
    std::vector<std::string> reports(kClients);
    for (int k = 0; k < kClients; k++)
      procs.push_back(SpawnLoad(mountpoint_, "/t" + std::to_string(trial) + "c" + std::to_string(k),
                                static_cast<uint64_t>(trial * kClients + k + 1)));
    AwaitReady(procs, reports);
    std::vector<int> delays;
    for (int k = 0; k < kClients; k++) delays.push_back(static_cast<int>(rng() % kMaxKillDelayUs));
    std::vector<int> order(kClients);
    for (int k = 0; k < kClients; k++) order[k] = k;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return delays[a] < delays[b]; });
    auto start = Clock::now();
    for (int k : order) {
      std::this_thread::sleep_until(start + std::chrono::microseconds(delays[k]));
      ASSERT_EQ(::kill(procs[k]->pid(), SIGKILL), 0);
    }
    for (int k = 0; k < kClients; k++) {
      std::string rest;
      EXPECT_TRUE(procs[k]->ReadToEof(&rest)) << "client " << k;
      int status = procs[k]->Wait();
      EXPECT_TRUE(KilledBy(status, SIGKILL)) << "client " << k << " ended on its own: " << status << "\n"
                                             << reports[k] << rest;
      LoadRun run;
      run.dir = "/t" + std::to_string(trial) + "c" + std::to_string(k);
      ParseReport(reports[k] + rest, &run);
      runs.push_back(std::move(run));
    }
    if ((trial + 1) % kBatch != 0 && trial + 1 != kTrials) continue;

    // The mount still serves; then unmount, fsck, mount, and look.
    auto c = Connect();
    ASSERT_TRUE(c);
    ASSERT_OK(c->GetStat("/"));
    ASSERT_OK(c->Unmount());
    c.reset();
    server_->Stop();
    server_.reset();
    ExpectFsckClean(true);
    for (const LoadRun& run : runs) {
      total_done += ExpectedOf(run, false).done;
      ExpectDurable(fs(), run, false);
      RemoveDir(fs(), run.dir);
    }
    if (HasFailure()) return;
    runs.clear();
    StartServer();
  }
  // Proof the clients were doing something when they died.
  EXPECT_GT(total_done, kTrials * kClients) << "the load barely ran";
  std::printf("%d trials, %d clients each: %d operations returned before the kills\n", kTrials, kClients, total_done);
}

class KilledMountTest : public ClientProcessTest {
 protected:
  void SetUp() override {
    ClientProcessTest::SetUp();
    // The mount is a process of its own here (udax_test_client serve).
    server_->Stop();
    server_.reset();
    UnmountNow();
  }
  void TearDown() override {
    if (!fs_) MountNow();
    ClientProcessTest::TearDown();
  }

  // One trial: a mount serving `clients` load clients, killed (-9) at a
  // random moment; each client must hear it (its call fails with ENOTCONN,
  // then its check runs). Appends their reports to runs_ and each client's
  // check verdict to verdicts_.
  void KillTheMountUnderLoad(int trial, int clients) {
    auto mount = Proc::Spawn({UDAX_TEST_CLIENT, "serve", path_, mountpoint_, "1000"});
    ASSERT_TRUE(mount);
    ASSERT_TRUE(mount->WaitFor("serving")) << "trial " << trial << ": the mount did not start";
    std::vector<std::unique_ptr<Proc>> procs;
    std::vector<std::string> reports(clients);
    for (int k = 0; k < clients; k++)
      procs.push_back(SpawnLoad(mountpoint_, "/m" + std::to_string(trial) + "c" + std::to_string(k),
                                static_cast<uint64_t>(100000 + trial * clients + k)));
    AwaitReady(procs, reports);
    std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 5000));
    ASSERT_EQ(::kill(mount->pid(), SIGKILL), 0);
    EXPECT_TRUE(KilledBy(mount->Wait(), SIGKILL));
    for (int k = 0; k < clients; k++) {
      std::string rest;
      EXPECT_TRUE(procs[k]->ReadToEof(&rest, 10s)) << "client " << k << " did not notice the mount's death";
      int status = procs[k]->Wait();
      LoadRun run;
      run.dir = "/m" + std::to_string(trial) + "c" + std::to_string(k);
      ParseReport(reports[k] + rest, &run);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "trial " << trial << " client " << k << ": wait status " << status << "\n"
          << reports[k] << rest;
      ASSERT_FALSE(run.begun.empty());
      auto last = run.answer.find(run.begun.back().no);
      ASSERT_NE(last, run.answer.end()) << run.dir << ": its last call never returned";
      EXPECT_EQ(last->second, "ENOTCONN") << run.dir << ": its call after the mount's death";
      verdicts_.push_back(run.check);
      runs_.push_back(std::move(run));
    }
  }

  // Mounts (replaying the journal the killed mount left), checks every
  // run's directory and removes it, unmounts, fsck. The operations that
  // returned, in all.
  int CheckRuns() {
    int done = 0;
    MountNow();
    for (const LoadRun& run : runs_) {
      done += ExpectedOf(run, true).done;
      ExpectDurable(fs(), run, true);
      RemoveDir(fs(), run.dir);
    }
    runs_.clear();
    ExpectFsckClean(false);
    return done;
  }

  std::mt19937_64 rng_{777};
  std::vector<LoadRun> runs_;
  std::vector<std::string> verdicts_;
};

TEST_F(KilledMountTest, ClientsHearItAndNothingThatReturnedIsLost) {
  constexpr int kTrials = 100 / kTrialDivisor, kClients = 3, kBatch = 20 / kTrialDivisor;
  int total_done = 0;
  for (int trial = 0; trial < kTrials && !HasFailure(); trial++) {
    KillTheMountUnderLoad(trial, kClients);
    if ((trial + 1) % kBatch == 0 || trial + 1 == kTrials) total_done += CheckRuns();
  }
  int late = 0;
  for (const auto& v : verdicts_) {
    // "late": revoked, but only after a call had said ENOTCONN (see
    // MappingsAreRevokedBeforeACallSaysEnotconn).
    EXPECT_TRUE(v == "ok" || v == "late") << v;
    late += v == "late";
  }
  EXPECT_GT(total_done, kTrials * kClients) << "the load barely ran";
  std::printf("%d trials, %d clients each: %d operations returned before the mount was killed; "
              "%d of %zu clients saw ENOTCONN before their mapping was revoked\n",
              kTrials, kClients, total_done, late, verdicts_.size());
}

// FAILS (reported to the lead, src/client/): a client's call can fail with
// ENOTCONN before the client has revoked its mappings — ClientFs::Call
// returns the connection's ENOTCONN (or CheckLive's, OnDisconnect having
// set kGone) while the watcher thread's OnDisconnect has yet to run
// RevokeEverything, so a load right after the failed call still reads
// device memory and the callback has not heard Removed. The fix belongs in
// the client: a call that finds the mount gone returns only once the
// disconnection's revocation is done.
TEST_F(KilledMountTest, MappingsAreRevokedBeforeACallSaysEnotconn) {
  constexpr int kTrials = 20, kClients = 2;
  for (int trial = 0; trial < kTrials && !HasFailure(); trial++) KillTheMountUnderLoad(trial, kClients);
  int late = 0;
  for (const auto& v : verdicts_) late += v != "ok";
  EXPECT_EQ(late, 0) << late << " of " << verdicts_.size()
                     << " clients could still read their mapping after a call said ENOTCONN";
  CheckRuns();
}

// `udax io MOUNTPOINT` as a direct client (the CLI's side of item 5 of the
// issue's tests without FUSE: tests/cli/client.sh has the rest): two of
// them map one file, the stores of one are the other's loads, a truncate by
// one prints "invalidate: ... reason=Truncate" in the other at once —
// without another command to flush it — and after the mount stops serving
// their commands fail with ENOTCONN.
class IoClientsTest : public ClientProcessTest {};

TEST_F(IoClientsTest, TwoShareAMappingAndOneHearsTheOthersTruncate) {
  auto a = Proc::Spawn({UDAX_BINARY, "io", mountpoint_}, true);
  auto b = Proc::Spawn({UDAX_BINARY, "io", mountpoint_}, true);
  ASSERT_TRUE(a && b);
  a->Send("open -f /shared\ntruncate 64k\nmmap -rw 0 64k\nmwrite -S 0x42 4096 4096\nstat\n");
  ASSERT_TRUE(a->WaitFor("stat.size = 65536")) << a->transcript();
  b->Send("open /shared\nmmap -r 0 64k\nmread -v 4096 16\n");
  ASSERT_TRUE(b->WaitFor("00001000:")) << b->transcript();
  EXPECT_NE(b->transcript().find("00001000:  42 42 42 42 42 42 42 42 42 42 42 42 42 42 42 42"), std::string::npos)
      << "B's mapping does not see A's stores:\n"
      << b->transcript();
  auto back = testutil::ReadWhole(fs(), "/shared");
  ASSERT_OK(back);
  EXPECT_EQ((*back)[4096], 0x42);
  EXPECT_EQ((*back)[8191], 0x42);

  a->Send("truncate 0\n");
  ASSERT_TRUE(a->WaitFor("reason=Truncate")) << a->transcript();  // its own mapping: the truncate is done
  b->Send("mread 0 16\n");
  ASSERT_TRUE(b->WaitFor("(SIGBUS)")) << b->transcript();
  EXPECT_NE(b->transcript().find("reason=Truncate\nmread: access beyond end of file (SIGBUS)"), std::string::npos)
      << "B did not hear the truncate before its next access:\n"
      << b->transcript();

  server_->Stop();
  a->Send("stat /shared\n");
  EXPECT_TRUE(a->WaitFor("ENOTCONN")) << a->transcript();
  b->Send("pread 0 16\n");
  EXPECT_TRUE(b->WaitFor("ENOTCONN")) << b->transcript();
  a->CloseIn();
  b->CloseIn();
  int sa = a->Wait(), sb = b->Wait();
  EXPECT_TRUE(WIFEXITED(sa) && WEXITSTATUS(sa) == 1) << sa;  // commands failed
  EXPECT_TRUE(WIFEXITED(sb) && WEXITSTATUS(sb) == 1) << sb;
}

// FAILS (reported to the lead, tools/udax/io_mmap.cc): in a direct client
// the invalidation callback runs on the client's revocation thread, and its
// printf stays in stdout's buffer (a pipe: fully buffered) until the next
// command's fflush — so "invalidate: ..." is not printed "at once" as
// `udax io` promises, and a script waiting for it before sending another
// command waits forever. The fix: fflush(stdout) in the callback.
TEST_F(IoClientsTest, AnInvalidationIsPrintedWithoutWaitingForTheNextCommand) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(64 * 1024, 2)));
  auto b = Proc::Spawn({UDAX_BINARY, "io", mountpoint_}, true);
  ASSERT_TRUE(b);
  b->Send("open /f\nmmap -r 0 64k\nmread -v 0 16\n");
  ASSERT_TRUE(b->WaitFor("00000000:")) << b->transcript();
  ASSERT_OK(fs().Truncate("/f", 0));  // returns once B has acknowledged
  EXPECT_TRUE(b->WaitFor("reason=Truncate", 3s)) << "nothing printed yet:\n" << b->transcript();
}

class OtherUidTest : public ClientProcessTest {};

TEST_F(OtherUidTest, IsRefusedWithEaccesAndToldToUseTheMount) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as uid 65534";
  if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs setpriv (util-linux)";
  ASSERT_EQ(::chmod(path_.c_str(), 0600), 0);
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(4096, 1)));
  auto io = Proc::Spawn({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", UDAX_BINARY, "io",
                         mountpoint_, "-c", "stat /f"},
                        true);
  ASSERT_TRUE(io);
  std::string out;
  ASSERT_TRUE(io->ReadToEof(&out));
  int status = io->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << "\n" << out;
  EXPECT_NE(out.find("EACCES"), std::string::npos) << out;
  EXPECT_NE(out.find("uid 65534"), std::string::npos) << out;
  EXPECT_NE(out.find("use the files through the mount point"), std::string::npos) << out;
  // A client of the device's owner is still served.
  auto c = Connect();
  ASSERT_TRUE(c);
  ASSERT_OK(c->GetStat("/f"));
}

}  // namespace
}  // namespace udax
