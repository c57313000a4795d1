// tools/udax/demo_cmd.cc — `udax demo [--device PATH] [--keep] [-f]`: the
// story of udax's failure handling, told unattended on an emulated pmem device
// in a file (64 MiB), in six numbered steps:
//   1. mkfs + mount;
//   2. /data/a (a known pattern), /data/log, /data/b = reflink of /data/a;
//   3. both files mapped read-write; the first store to page 0 of each copies
//      it (copy-on-write); two threads per mapping then keep storing and
//      loading their own 8-byte slot of page 0 inside udax::Guarded;
//   4. a memory failure (InjectPoison) in a block both files still share:
//      both mappings hear MemoryFailure at that file offset, Pread there is
//      EIO (so is a load through the mapping), the threads keep running;
//   5. RemoveDevice under the running threads: every mapping hears Removed,
//      every thread's Guarded loop ends with ENODEV (none hangs), and every
//      later operation fails with ENODEV;
//   6. re-attach: fsck (clean), mount again, the committed data is intact
//      (the pattern, the log, each thread's last store) except the failed
//      block, which reads EIO and is in the persistent bad-block list.
// Every step checks what it observes against the documented behaviour
// (include/udax/fs.h, include/udax/mapping.h, docs/dax.md); on a mismatch it
// prints "FAIL  expected: ... / got: ..." and the exit status is 1. Exit 0
// only when every check passed. A watchdog ends a hung run (exit 1).
//
// The default image is /dev/shm/udax-demo-PID.img (or under /tmp), removed at
// the end unless --keep; an image named with --device is left in place.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.h"
#include "udax/check.h"
#include "udax/fs.h"
#include "udax/mapping.h"
#include "format.h"

namespace udax::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kDeviceSize = 64ULL << 20;
constexpr uint64_t kFileSize = 1ULL << 20;  // /data/a and /data/b: 256 blocks
constexpr uint64_t kBlock = kBlockSize;
constexpr int kThreadsPerMapping = 2;
constexpr uint64_t kSlotStride = 64;  // each thread's slot: its own cache line of page 0
constexpr auto kRunFor = std::chrono::milliseconds(200);     // progress sampling
constexpr auto kThreadEndLimit = std::chrono::seconds(5);    // "none hangs"
constexpr unsigned kWatchdogSeconds = 120;                   // the whole demo
constexpr int kSteps = 6;

// The known content of /data/a (and so of /data/b): a byte per offset that
// differs between neighbouring blocks.
uint8_t PatternByte(uint64_t off) { return static_cast<uint8_t>(off * 7 + (off / kBlock) * 13 + 0x5a); }

// "ENODEV (filesystem shut down: device removed)" / "ok".
std::string Describe(const Status& st) {
  if (st.ok()) return "ok";
  return std::string(ErrnoName(st.err())) + " (" + st.message() + ")";
}

double MsSince(Clock::time_point t0, Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

void Watchdog(int) {
  static const char msg[] =
      "\nudax demo: FAIL  expected: the demo to finish; got: still running after the watchdog "
      "limit (something hangs)\n";
  ssize_t rc = ::write(STDOUT_FILENO, msg, sizeof msg - 1);
  (void)rc;
  _exit(1);
}

// ---- what the mappings' on_invalidate callbacks heard ----
struct Event {
  std::string who;  // "/data/a"
  uint64_t off, len;
  InvalidateReason why;
};

class EventLog {
 public:
  // Runs in the invalidating thread with udax locks held: records only.
  InvalidateCallback Recorder(std::string who) {
    return [this, who](uint64_t, uint64_t off, uint64_t len, InvalidateReason why) {
      std::lock_guard<std::mutex> g(mu_);
      events_.push_back({who, off, len, why});
    };
  }
  size_t size() {
    std::lock_guard<std::mutex> g(mu_);
    return events_.size();
  }
  std::vector<Event> Since(size_t first) {
    std::lock_guard<std::mutex> g(mu_);
    return std::vector<Event>(events_.begin() + static_cast<ptrdiff_t>(std::min(first, events_.size())),
                              events_.end());
  }

 private:
  std::mutex mu_;
  std::vector<Event> events_;
};

std::string EventLine(const Event& e) {
  return Fmt("on_invalidate: %s offset=%" PRIu64 " len=%" PRIu64 " reason=%s", e.who.c_str(), e.off, e.len,
             InvalidateReasonName(e.why));
}

// ---- the storing threads ----
struct Worker {
  std::string name;            // "a#0"
  volatile uint64_t* slot;     // in page 0 of its mapping
  uint64_t slot_off;           // file offset of the slot
  std::atomic<uint64_t> ops{0};
  std::atomic<bool> mismatch{false};
  std::atomic<bool> done{false};
  Status result;               // Guarded's, written before `done`
  Clock::time_point ended;
  std::thread thread;
};

// Stores n+1 into its slot, loads it back, counts; until told to stop or a
// SIGBUS ends the Guarded loop.
void WorkerLoop(Worker* w, const std::atomic<bool>* stop) {
  Status st = Guarded([w, stop] {
    uint64_t n = w->ops.load(std::memory_order_relaxed);
    while (!stop->load(std::memory_order_relaxed)) {
      *w->slot = n + 1;
      if (*w->slot != n + 1) {
        w->mismatch.store(true);
        return;
      }
      n++;
      w->ops.store(n, std::memory_order_relaxed);
      if ((n & 0xfff) == 0) std::this_thread::yield();
    }
  });
  w->result = st;
  w->ended = Clock::now();
  w->done.store(true, std::memory_order_release);
}

// Owns the threads: stops and joins them on every way out. A thread that does
// not end in time cannot be joined: report it and exit at once.
class Workers {
 public:
  ~Workers() {
    stop_.store(true);
    if (!WaitAllDone(Clock::now() + kThreadEndLimit)) {
      std::printf("  FAIL  expected: every storing thread to end within %lld s; got: %s still running\n",
                  static_cast<long long>(kThreadEndLimit.count()), Running().c_str());
      std::fflush(stdout);
      _exit(1);
    }
    for (auto& w : all_)
      if (w->thread.joinable()) w->thread.join();
  }
  void Start(const std::string& name, uint8_t* page0, int index) {
    auto w = std::make_unique<Worker>();
    w->name = name;
    w->slot_off = static_cast<uint64_t>(index) * kSlotStride;
    w->slot = reinterpret_cast<volatile uint64_t*>(page0 + w->slot_off);
    Worker* p = w.get();
    all_.push_back(std::move(w));
    p->thread = std::thread(WorkerLoop, p, &stop_);
  }
  std::vector<std::unique_ptr<Worker>>& all() { return all_; }
  bool WaitAllDone(Clock::time_point deadline) {
    for (;;) {
      bool all_done = true;
      for (auto& w : all_) all_done = all_done && w->done.load(std::memory_order_acquire);
      if (all_done) return true;
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::string Running() {
    std::string s;
    for (auto& w : all_)
      if (!w->done.load(std::memory_order_acquire)) s += (s.empty() ? "" : ", ") + w->name;
    return s.empty() ? "none" : s;
  }
  void JoinDone() {
    for (auto& w : all_)
      if (w->done.load(std::memory_order_acquire) && w->thread.joinable()) w->thread.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Worker>> all_;
};

struct DemoArgs {
  std::string device;
  bool keep = false;
  bool force = false;
};

class Demo {
 public:
  explicit Demo(DemoArgs args) : args_(std::move(args)) {}
  ~Demo() { Cleanup(); }
  int Run();

 private:
  // Output: a step header with one line of explanation, then facts.
  void Step(int n, const char* title, const char* why) {
    step_ = n;
    std::printf("\n[%d/%d] %s\n      %s\n", n, kSteps, title, why);
  }
  void Fact(const std::string& s) { std::printf("  ok    %s\n", s.c_str()); }
  void Info(const std::string& s) { std::printf("        %s\n", s.c_str()); }
  bool Expect(bool cond, const std::string& expected, const std::string& got) {
    if (cond) return true;
    std::printf("  FAIL  expected: %s\n        got:      %s\n", expected.c_str(), got.c_str());
    std::fflush(stdout);
    return false;
  }
  bool ExpectOk(const Status& st, const std::string& what) {
    return Expect(st.ok(), what + " succeeds", Describe(st));
  }
  bool ExpectErr(const Status& st, int err, const std::string& what) {
    return Expect(st.err() == err, what + " fails with " + ErrnoName(err), Describe(st));
  }

  bool ChooseDevice();
  bool Step1Mkfs();
  bool Step2Files();
  bool Step3MapAndStore();
  bool Step4Poison();
  bool Step5Remove();
  bool Step6Reattach();
  bool CheckProgress(const char* when);
  bool CheckFileData(File& f, const std::string& name, bool with_slots);
  bool AppendLog(const std::string& line);
  void Cleanup();

  DemoArgs args_;
  std::string path_;
  bool owned_ = false;  // the demo made the image file: remove it at the end
  int step_ = 0;        // the step being told
  std::unique_ptr<Filesystem> fs_;
  File a_, b_, log_;
  Mapping ma_, mb_;
  EventLog events_;
  std::unique_ptr<Workers> workers_;
  std::string log_text_;
  uint64_t poison_file_off_ = 0, poison_dev_off_ = 0;
  std::vector<uint64_t> final_ops_;  // per worker, after removal
};

bool Demo::ChooseDevice() {
  if (!args_.device.empty()) {
    path_ = args_.device;
    struct stat sb;
    if (::stat(path_.c_str(), &sb) == 0 && !S_ISREG(sb.st_mode)) {
      PrintError("demo", Errno(EINVAL, path_ + " is not a regular file: the demo emulates pmem in an image file"));
      return false;
    }
    return true;
  }
  struct stat sb;
  const char* dir = (::stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && ::access("/dev/shm", W_OK) == 0)
                        ? "/dev/shm"
                        : "/tmp";
  path_ = Fmt("%s/udax-demo-%d.img", dir, static_cast<int>(::getpid()));
  owned_ = true;
  return true;
}

bool Demo::AppendLog(const std::string& line) {
  std::string text = line + "\n";
  Result<size_t> n = log_.Write(text.data(), text.size());
  if (!Expect(n.has_value() && *n == text.size(), "append to /data/log succeeds", Describe(n.error())))
    return false;
  log_text_ += text;
  return true;
}

bool Demo::Step1Mkfs() {
  Step(1, "Make a filesystem on an emulated pmem device",
       "An ordinary file stands in for persistent memory: udax maps it and uses loads, stores and cache-line flushes.");
  MkfsOptions opts;
  opts.size = kDeviceSize;
  opts.force = args_.force;
  if (!ExpectOk(Filesystem::Mkfs(path_, opts), "mkfs of " + path_)) {
    if (!args_.force) Info("(an existing filesystem at --device is kept unless -f is given)");
    return false;
  }
  Fact(Fmt("mkfs %s: %" PRIu64 " MiB", path_.c_str(), kDeviceSize >> 20));
  auto fs = Filesystem::Mount(path_);
  if (!ExpectOk(fs.error(), "mount")) return false;
  fs_ = std::move(*fs);
  auto sfs = fs_->GetStatFs();
  if (!ExpectOk(sfs.error(), "statfs")) return false;
  Fact(Fmt("mounted: %" PRIu64 " blocks of 4 KiB, %" PRIu64 " free", sfs->total_blocks, sfs->free_blocks));
  return true;
}

// Bytes of the file's Fiemap flagged shared, and the extent map itself.
uint64_t SharedBytes(const std::vector<FileExtent>& map) {
  uint64_t n = 0;
  for (const FileExtent& e : map)
    if (e.flags & kExtentShared) n += e.length;
  return n;
}

// The device offset behind file offset `off` (and whether it is shared), or false.
bool DeviceOffsetOf(const std::vector<FileExtent>& map, uint64_t off, uint64_t* dev, bool* shared) {
  for (const FileExtent& e : map) {
    if (off >= e.file_offset && off < e.file_offset + e.length) {
      *dev = e.device_offset + (off - e.file_offset);
      *shared = (e.flags & kExtentShared) != 0;
      return true;
    }
  }
  return false;
}

bool Demo::Step2Files() {
  Step(2, "Write files, then reflink /data/a to /data/b",
       "A clone shares every block of its source until either side writes (copy-on-write).");
  if (!ExpectOk(fs_->Mkdir("/data"), "mkdir /data")) return false;
  auto a = fs_->Open("/data/a", O_CREAT | O_EXCL | O_RDWR);
  if (!ExpectOk(a.error(), "create /data/a")) return false;
  a_ = std::move(*a);
  std::vector<uint8_t> buf(kFileSize);
  for (uint64_t i = 0; i < kFileSize; i++) buf[i] = PatternByte(i);
  auto n = a_.Pwrite(buf.data(), buf.size(), 0);
  if (!Expect(n.has_value() && *n == kFileSize, "pwrite of 1 MiB to /data/a", Describe(n.error()))) return false;
  Fact(Fmt("/data/a: %" PRIu64 " MiB written, a known pattern (byte = 7*off + 13*block + 0x5a)", kFileSize >> 20));

  auto lg = fs_->Open("/data/log", O_CREAT | O_EXCL | O_RDWR | O_APPEND);
  if (!ExpectOk(lg.error(), "create /data/log")) return false;
  log_ = std::move(*lg);
  if (!AppendLog("1. mkfs " + path_) || !AppendLog("2. wrote /data/a, cloned it to /data/b")) return false;
  Fact(Fmt("/data/log: %zu bytes appended", log_text_.size()));

  auto b = fs_->Open("/data/b", O_CREAT | O_EXCL | O_RDWR);
  if (!ExpectOk(b.error(), "create /data/b")) return false;
  b_ = std::move(*b);
  if (!ExpectOk(b_.Clone(a_), "reflink /data/a to /data/b (Clone)")) return false;
  auto fa = a_.Fiemap();
  auto fb = b_.Fiemap();
  if (!ExpectOk(fa.error(), "fiemap /data/a") || !ExpectOk(fb.error(), "fiemap /data/b")) return false;
  if (!Expect(SharedBytes(*fa) == kFileSize && SharedBytes(*fb) == kFileSize,
              "every block of /data/a and /data/b flagged shared",
              Fmt("%" PRIu64 " and %" PRIu64 " of %" PRIu64 " bytes shared", SharedBytes(*fa), SharedBytes(*fb),
                  kFileSize)))
    return false;
  for (uint64_t off = 0; off < kFileSize; off += kBlock) {
    uint64_t da = 0, db = 0;
    bool sa = false, sb = false;
    if (!Expect(DeviceOffsetOf(*fa, off, &da, &sa) && DeviceOffsetOf(*fb, off, &db, &sb) && da == db,
                Fmt("file offset %" PRIu64 " of both files on one device block", off),
                Fmt("device offsets %" PRIu64 " and %" PRIu64, da, db)))
      return false;
  }
  Fact(Fmt("/data/b cloned: Fiemap shows both files on the same %" PRIu64 " device blocks, flag shared",
           kFileSize / kBlock));
  std::vector<uint8_t> back(kFileSize);
  auto r = b_.Pread(back.data(), back.size(), 0);
  if (!Expect(r.has_value() && *r == kFileSize && back == buf, "/data/b reads the pattern of /data/a",
              r.has_value() ? "different bytes" : Describe(r.error())))
    return false;
  Fact("/data/b reads back the same pattern");
  return true;
}

bool Demo::CheckProgress(const char* when) {
  std::vector<uint64_t> before;
  for (auto& w : workers_->all()) before.push_back(w->ops.load());
  std::this_thread::sleep_for(kRunFor);
  std::string facts;
  for (size_t i = 0; i < workers_->all().size(); i++) {
    Worker& w = *workers_->all()[i];
    uint64_t now = w.ops.load();
    if (!Expect(!w.done.load() && now > before[i], "thread " + w.name + " storing " + when,
                w.done.load() ? "it ended: " + Describe(w.result) : Fmt("no progress (%" PRIu64 " ops)", now)))
      return false;
    if (!Expect(!w.mismatch.load(), "thread " + w.name + " loads what it stored", "a different value"))
      return false;
    facts += Fmt("%s%s +%" PRIu64, i ? ", " : "", w.name.c_str(), now - before[i]);
  }
  Fact(Fmt("threads storing%s%s (stores in %lld ms): %s", *when ? " " : "", when,
           static_cast<long long>(kRunFor.count()), facts.c_str()));
  return true;
}

bool Demo::Step3MapAndStore() {
  Step(3, "Map both files read-write; threads store and load through the mappings",
       "Stores go straight to device memory; the first store to a shared page copies it (copy-on-write).");
  auto ma = a_.Map(0, kFileSize, Prot::kReadWrite);
  if (!ExpectOk(ma.error(), "map /data/a")) return false;
  ma_ = std::move(*ma);
  ma_.OnInvalidate(events_.Recorder("/data/a"));
  auto mb = b_.Map(0, kFileSize, Prot::kReadWrite);
  if (!ExpectOk(mb.error(), "map /data/b")) return false;
  mb_ = std::move(*mb);
  mb_.OnInvalidate(events_.Recorder("/data/b"));
  Fact(Fmt("/data/a mapped at %p, /data/b at %p (%" PRIu64 " KiB each, read-write)",
           static_cast<void*>(ma_.data()), static_cast<void*>(mb_.data()), kFileSize >> 10));

  // The first store into page 0 of each file: a write fault on a shared block
  // copies it, so from here on page 0 is private to each file.
  size_t first_event = events_.size();
  for (Mapping* m : {&ma_, &mb_}) {
    uint8_t* page0 = m->data();
    Status st = Guarded([page0] {
      for (int i = 0; i < kThreadsPerMapping; i++)
        *reinterpret_cast<volatile uint64_t*>(page0 + static_cast<uint64_t>(i) * kSlotStride) = 0;
    });
    if (!ExpectOk(st, "first store into page 0 (inside Guarded)")) return false;
  }
  auto fa = a_.Fiemap();
  auto fb = b_.Fiemap();
  if (!ExpectOk(fa.error(), "fiemap /data/a") || !ExpectOk(fb.error(), "fiemap /data/b")) return false;
  uint64_t d0a = 0, d0b = 0;
  bool s0a = true, s0b = true;
  if (!Expect(DeviceOffsetOf(*fa, 0, &d0a, &s0a) && DeviceOffsetOf(*fb, 0, &d0b, &s0b) && !s0a && !s0b &&
                  d0a != d0b,
              "page 0 of each file on its own, unshared block after the store",
              Fmt("/data/a page 0 %s at %" PRIu64 ", /data/b page 0 %s at %" PRIu64, s0a ? "shared" : "private",
                  d0a, s0b ? "shared" : "private", d0b)))
    return false;
  Fact(Fmt("first store copied page 0: now private in both; still shared: /data/a %" PRIu64
           " KiB, /data/b %" PRIu64 " KiB",
           SharedBytes(*fa) >> 10, SharedBytes(*fb) >> 10));
  for (const Event& e : events_.Since(first_event)) {
    if (!Expect(e.why == InvalidateReason::kCopyOnWrite, "only CopyOnWrite invalidations from a first store",
                EventLine(e)))
      return false;
    Info(EventLine(e) + "  (the read-only view of the shared page is replaced)");
  }

  workers_ = std::make_unique<Workers>();
  for (int i = 0; i < kThreadsPerMapping; i++) workers_->Start(Fmt("a#%d", i), ma_.data(), i);
  for (int i = 0; i < kThreadsPerMapping; i++) workers_->Start(Fmt("b#%d", i), mb_.data(), i);
  Fact(Fmt("%d threads started, %d per mapping: each stores a counter into its own slot of page 0, loads it "
           "back, inside udax::Guarded",
           2 * kThreadsPerMapping, kThreadsPerMapping));
  if (!AppendLog("3. mapped /data/a and /data/b, threads storing")) return false;
  return CheckProgress("");
}

bool Demo::Step4Poison() {
  Step(4, "Memory failure in a block both files still share",
       "The device loses one 4 KiB page; udax finds its owners in the reverse map and revokes it from each.");
  // Find the block: the middle of the longest shared extent of /data/a.
  auto fa = a_.Fiemap();
  auto fb = b_.Fiemap();
  if (!ExpectOk(fa.error(), "fiemap /data/a") || !ExpectOk(fb.error(), "fiemap /data/b")) return false;
  const FileExtent* best = nullptr;
  for (const FileExtent& e : *fa)
    if ((e.flags & kExtentShared) && (!best || e.length > best->length)) best = &e;
  if (!Expect(best != nullptr, "a shared extent in /data/a's Fiemap", "none")) return false;
  poison_file_off_ = best->file_offset + best->length / 2 / kBlock * kBlock;
  poison_dev_off_ = best->device_offset + (poison_file_off_ - best->file_offset);
  uint64_t dev_b = 0;
  bool shared_b = false;
  if (!Expect(DeviceOffsetOf(*fb, poison_file_off_, &dev_b, &shared_b) && dev_b == poison_dev_off_ && shared_b,
              Fmt("/data/b to share device offset %" PRIu64 " at file offset %" PRIu64, poison_dev_off_,
                  poison_file_off_),
              Fmt("device offset %" PRIu64 " (%s)", dev_b, shared_b ? "shared" : "not shared")))
    return false;
  if (!Expect(poison_file_off_ >= kBlock, "the chosen block to be outside page 0 (where the threads store)",
              Fmt("file offset %" PRIu64, poison_file_off_)))
    return false;
  Fact(Fmt("Fiemap: file offset %" PRIu64 " (block %" PRIu64 ") of both files is device offset %" PRIu64
           ", flag shared",
           poison_file_off_, poison_file_off_ / kBlock, poison_dev_off_));

  size_t first_event = events_.size();
  if (!ExpectOk(fs_->InjectPoison(poison_dev_off_, kBlock), "InjectPoison")) return false;
  Fact(Fmt("InjectPoison(device offset %" PRIu64 ", 4096)", poison_dev_off_));
  std::vector<Event> heard = events_.Since(first_event);
  for (const char* who : {"/data/a", "/data/b"}) {
    bool found = false;
    for (const Event& e : heard)
      found = found || (e.who == who && e.why == InvalidateReason::kMemoryFailure && e.off == poison_file_off_ &&
                        e.len == kBlock);
    std::string got;
    for (const Event& e : heard) got += (got.empty() ? "" : "; ") + EventLine(e);
    if (!Expect(found,
                Fmt("on_invalidate: %s offset=%" PRIu64 " len=4096 reason=MemoryFailure", who, poison_file_off_),
                got.empty() ? "no callback" : got))
      return false;
  }
  for (const Event& e : heard) {
    if (!Expect(e.why == InvalidateReason::kMemoryFailure && e.off == poison_file_off_ && e.len == kBlock,
                "only the failed block invalidated, reason MemoryFailure", EventLine(e)))
      return false;
    Fact(EventLine(e));
  }

  uint8_t buf[kBlock];
  for (auto [f, name] : {std::pair<File*, const char*>{&a_, "/data/a"}, {&b_, "/data/b"}}) {
    auto r = f->Pread(buf, kBlock, poison_file_off_);
    if (!ExpectErr(r.error(), EIO, Fmt("Pread of %s at %" PRIu64, name, poison_file_off_))) return false;
    Fact(Fmt("Pread %s at %" PRIu64 ": %s", name, poison_file_off_, Describe(r.error()).c_str()));
  }
  const uint8_t* p = ma_.data() + poison_file_off_;
  Status load = Guarded([p] { (void)*reinterpret_cast<const volatile uint8_t*>(p); });
  if (!ExpectErr(load, EIO, "a load through the /data/a mapping at the failed block (inside Guarded)"))
    return false;
  Fact("load through the /data/a mapping there: Guarded returns " + Describe(load));
  for (uint64_t off : {poison_file_off_ - kBlock, poison_file_off_ + kBlock}) {
    if (off >= kFileSize) continue;
    auto r = a_.Pread(buf, kBlock, off);
    bool same = r.has_value() && *r == kBlock;
    for (uint64_t i = 0; same && i < kBlock; i++) same = buf[i] == PatternByte(off + i);
    if (!Expect(same, Fmt("the neighbouring block at %" PRIu64 " to read the pattern", off),
                r.has_value() ? "different bytes" : Describe(r.error())))
      return false;
  }
  Fact("the neighbouring blocks still read the pattern");
  auto bad = fs_->BadBlocks();
  if (!ExpectOk(bad.error(), "BadBlocks")) return false;
  bool listed = false;
  for (auto [off, len] : *bad) listed = listed || (off <= poison_dev_off_ && poison_dev_off_ < off + len);
  if (!Expect(listed, Fmt("BadBlocks() to list device offset %" PRIu64, poison_dev_off_),
              Fmt("%zu entries", bad->size())))
    return false;
  Fact(Fmt("BadBlocks(): device offset %" PRIu64 " listed", poison_dev_off_));
  if (!AppendLog(Fmt("4. poisoned device offset %" PRIu64, poison_dev_off_))) return false;
  Fact("the filesystem keeps working: /data/log appended");
  return CheckProgress("after the failure");
}

bool Demo::Step5Remove() {
  Step(5, "Remove the device under the running threads",
       "New operations fail at once, those in flight finish, every mapping is revoked, then the memory goes.");
  size_t first_event = events_.size();
  Clock::time_point t0 = Clock::now();
  Status st = fs_->RemoveDevice();
  Clock::time_point t1 = Clock::now();
  if (!ExpectOk(st, "RemoveDevice")) return false;
  Fact(Fmt("RemoveDevice() returned in %.1f ms", MsSince(t0, t1)));
  std::vector<Event> heard = events_.Since(first_event);
  for (const char* who : {"/data/a", "/data/b"}) {
    const Event* got = nullptr;
    for (const Event& e : heard)
      if (e.who == who && e.why == InvalidateReason::kRemoved) got = &e;
    std::string all;
    for (const Event& e : heard) all += (all.empty() ? "" : "; ") + EventLine(e);
    if (!Expect(got != nullptr, Fmt("on_invalidate for %s with reason=Removed", who),
                all.empty() ? "no callback" : all))
      return false;
    Fact(EventLine(*got));
  }

  bool ended = workers_->WaitAllDone(t0 + kThreadEndLimit);
  if (!Expect(ended, Fmt("every storing thread to end within %lld s", static_cast<long long>(kThreadEndLimit.count())),
              workers_->Running() + " still running")) {
    std::fflush(stdout);
    _exit(1);  // a hung thread cannot be joined
  }
  workers_->JoinDone();
  for (auto& w : workers_->all()) {
    if (!ExpectErr(w->result, ENODEV, "thread " + w->name + "'s Guarded loop")) return false;
    if (!Expect(!w->mismatch.load(), "thread " + w->name + " loads what it stored", "a different value"))
      return false;
    final_ops_.push_back(w->ops.load());
    Fact(Fmt("thread %s ended %.1f ms after removal began, %" PRIu64 " stores: %s", w->name.c_str(),
             MsSince(t0, w->ended), w->ops.load(), Describe(w->result).c_str()));
  }

  // Everything later fails with the device-removed error.
  std::vector<std::pair<std::string, Status>> later;
  later.emplace_back("Open /data/a", fs_->Open("/data/a", O_RDONLY).error());
  uint8_t buf[64];
  later.emplace_back("Pread /data/a", a_.Pread(buf, sizeof buf, kBlock).error());
  later.emplace_back("Pwrite /data/log", log_.Pwrite("x", 1, 0).error());
  later.emplace_back("Map /data/b", b_.Map(0, kBlock, Prot::kRead).error());
  later.emplace_back("Persist /data/a mapping", ma_.Persist(ma_.data(), 64));
  uint8_t* p = mb_.data() + kBlock;
  later.emplace_back("load via /data/b mapping",
                     Guarded([p] { (void)*reinterpret_cast<const volatile uint8_t*>(p); }));
  later.emplace_back("StatFs", fs_->GetStatFs().error());
  later.emplace_back("RemoveDevice again", fs_->RemoveDevice());
  for (auto& [what, s] : later) {
    if (!ExpectErr(s, ENODEV, what)) return false;
  }
  Fact("later operations fail with ENODEV: " + later[0].second.message());
  std::string names;
  for (size_t i = 1; i < later.size(); i++) names += (i > 1 ? ", " : "") + later[i].first;
  Info("(also " + names + ")");

  // The program drops its handles; then Unmount succeeds (nothing is left to write).
  workers_.reset();
  Status um = ma_.Unmap();
  Status ub = mb_.Unmap();
  if (!ExpectOk(um, "Unmap /data/a") || !ExpectOk(ub, "Unmap /data/b")) return false;
  a_.Close().IgnoreError();  // the inode is released; there is no device to write to
  b_.Close().IgnoreError();
  log_.Close().IgnoreError();
  if (!ExpectOk(fs_->Unmount(), "Unmount after removal")) return false;
  fs_.reset();
  Fact("mappings unmapped, files closed, Unmount() ok, Filesystem object dropped");
  return true;
}

// Reads the file block by block: the pattern everywhere (but the threads'
// slots in page 0), EIO at the failed block.
bool Demo::CheckFileData(File& f, const std::string& name, bool with_slots) {
  std::vector<uint8_t> buf(kBlock);
  uint64_t good = 0;
  std::string slots;
  for (uint64_t off = 0; off < kFileSize; off += kBlock) {
    auto r = f.Pread(buf.data(), kBlock, off);
    if (off == poison_file_off_) {
      if (!ExpectErr(r.error(), EIO, Fmt("Pread of %s at the failed block %" PRIu64, name.c_str(), off)))
        return false;
      continue;
    }
    if (!Expect(r.has_value() && *r == kBlock, Fmt("Pread of %s at %" PRIu64, name.c_str(), off),
                Describe(r.error())))
      return false;
    for (uint64_t i = 0; i < kBlock; i++) {
      if (off == 0 && i < kThreadsPerMapping * kSlotStride && i % kSlotStride < 8) continue;  // a slot
      if (!Expect(buf[i] == PatternByte(off + i), Fmt("%s byte %" PRIu64 " = 0x%02x", name.c_str(), off + i,
                                                      PatternByte(off + i)),
                  Fmt("0x%02x", buf[i])))
        return false;
    }
    if (off == 0 && with_slots) {
      // Each thread's last store is in the image: its count, or one more
      // when the removal came between a store and the load after it.
      size_t base = name == "/data/a" ? 0 : kThreadsPerMapping;
      for (int t = 0; t < kThreadsPerMapping; t++) {
        uint64_t v;
        std::memcpy(&v, buf.data() + static_cast<uint64_t>(t) * kSlotStride, sizeof v);
        uint64_t ops = final_ops_[base + static_cast<size_t>(t)];
        if (!Expect(v == ops || v == ops + 1, Fmt("%s slot %d to hold the thread's last store (%" PRIu64 ")",
                                                  name.c_str(), t, ops),
                    Fmt("%" PRIu64, v)))
          return false;
        slots += Fmt("%s%" PRIu64, t ? ", " : "", v);
      }
    }
    good++;
  }
  Fact(Fmt("%s: %" PRIu64 " blocks hold the pattern, block %" PRIu64 " reads EIO%s", name.c_str(), good,
           poison_file_off_ / kBlock, with_slots ? (", slots hold the last stores: " + slots).c_str() : ""));
  return true;
}

bool Demo::Step6Reattach() {
  Step(6, "Re-attach: check and mount the image again",
       "Every committed change is in the image; the failed block stays off limits, listed persistently.");
  auto rep = Fsck(path_);
  if (!ExpectOk(rep.error(), "fsck")) return false;
  std::string problems;
  for (const std::string& s : rep->problems) problems += (problems.empty() ? "" : "; ") + s;
  if (!Expect(rep->clean(), "fsck: clean", problems)) return false;
  Fact(Fmt("fsck: clean: %" PRIu64 " files, %" PRIu64 " used blocks (%" PRIu64 " shared), %" PRIu64 " free",
           rep->files, rep->used_blocks, rep->shared_blocks, rep->free_blocks));
  for (const std::string& note : rep->notes) Info("fsck note: " + note);

  auto fs = Filesystem::Mount(path_);
  if (!ExpectOk(fs.error(), "mount again")) return false;
  fs_ = std::move(*fs);
  Fact("mounted again");
  for (const char* name : {"/data/a", "/data/b"}) {
    auto f = fs_->Open(name, O_RDONLY);
    if (!ExpectOk(f.error(), std::string("open ") + name)) return false;
    if (!CheckFileData(*f, name, true)) return false;
  }
  auto lg = fs_->Open("/data/log", O_RDONLY);
  if (!ExpectOk(lg.error(), "open /data/log")) return false;
  std::string text(log_text_.size() + 64, '\0');
  auto n = lg->Pread(text.data(), text.size(), 0);
  if (!ExpectOk(n.error(), "read /data/log")) return false;
  text.resize(*n);
  if (!Expect(text == log_text_, "/data/log to hold the lines appended before the removal",
              Fmt("%zu bytes, different", text.size())))
    return false;
  Fact(Fmt("/data/log: the %zu lines appended before the removal", static_cast<size_t>(std::count(
                                                                        text.begin(), text.end(), '\n'))));
  lg->Close().IgnoreError();
  auto bad = fs_->BadBlocks();
  if (!ExpectOk(bad.error(), "BadBlocks")) return false;
  bool exact = bad->size() == 1 && (*bad)[0].first == poison_dev_off_ && (*bad)[0].second == kBlock;
  std::string got;
  for (auto [off, len] : *bad) got += Fmt("%s[%" PRIu64 ", +%" PRIu64 ")", got.empty() ? "" : " ", off, len);
  if (!Expect(exact, Fmt("BadBlocks() = [%" PRIu64 ", +4096)", poison_dev_off_), got.empty() ? "empty" : got))
    return false;
  Fact("BadBlocks() after the remount: " + got);
  if (!ExpectOk(fs_->Unmount(), "unmount")) return false;
  fs_.reset();
  auto again = Fsck(path_);
  if (!Expect(again.has_value() && again->clean(), "fsck: clean after the unmount",
              again.has_value() ? Fmt("%zu problems", again->problems.size()) : Describe(again.error())))
    return false;
  Fact("unmounted; fsck clean again");
  return true;
}

void Demo::Cleanup() {
  workers_.reset();  // stops and joins the threads (before their mappings go)
  ma_.Unmap().IgnoreError();
  mb_.Unmap().IgnoreError();
  a_.Close().IgnoreError();
  b_.Close().IgnoreError();
  log_.Close().IgnoreError();
  if (fs_) {
    fs_->Unmount().IgnoreError();
    fs_.reset();
  }
  if (owned_ && !args_.keep) {
    ::unlink(path_.c_str());
    owned_ = false;
  }
}

int Demo::Run() {
  if (!ChooseDevice()) return 1;
  std::printf("udax demo: memory failure and device removal under live DAX mappings\n");
  bool ok = Step1Mkfs() && Step2Files() && Step3MapAndStore() && Step4Poison() && Step5Remove() &&
            Step6Reattach();
  std::string where = path_;
  bool removed = owned_ && !args_.keep;
  Cleanup();
  if (!ok) {
    std::printf("\ndemo FAILED in step %d of %d (see FAIL above)%s\n", step_, kSteps,
                removed ? "; rerun with --keep to inspect the image" : "");
    return 1;
  }
  std::printf("\ndemo finished: every step behaved as documented (%s %s)\n", where.c_str(),
              removed ? "removed" : "kept");
  return 0;
}

}  // namespace

void SetupDemo(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* sub = app.add_subcommand(
      "demo",
      "memory failure and device removal under live mappings, told on an emulated device (exit 0: as documented)");
  sub->add_option("--device", args->device,
                  "image file to use, kept at the end (default: a new /dev/shm/udax-demo-PID.img, or under /tmp, "
                  "removed at the end)")
      ->type_name("PATH");
  sub->add_flag("--keep", args->keep, "keep the default image file at the end");
  sub->add_flag("-f,--force", args->force, "overwrite an existing udax filesystem at --device");
  sub->callback([args, exit_code] {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line by line, even into a pipe
    struct sigaction sa = {};
    sa.sa_handler = Watchdog;
    sigaction(SIGALRM, &sa, nullptr);
    alarm(kWatchdogSeconds);
    Demo demo(*args);
    *exit_code = demo.Run();
    alarm(0);
  });
}

}  // namespace udax::cli
