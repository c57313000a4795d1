// bench/fs_bench.cc — the udax side of `udax bench`: an emulated device file
// in /dev/shm (tmpfs-backed, like pmem) made with Filesystem::Mkfs, the
// pwrite_4k / pread_4k / create_unlink loops through the public API
// (MeasureUdaxOp, which the client worker runs too), and the fence
// accounting (deltas of Filesystem::GetStats' fences and commits) reported
// on stderr.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "bench.h"
#include "udax/fs.h"

namespace udax::bench {
namespace {

constexpr uint64_t kDeviceSize = 512ULL << 20;  // the file, the log and metadata
constexpr uint64_t kFillChunk = 1ULL << 20;

class UdaxTarget : public Target {
 public:
  UdaxTarget() : path_("/dev/shm/udax-bench-" + std::to_string(getpid()) + ".dev") {}
  ~UdaxTarget() override { Teardown(); }
  std::string name() const override { return "udax"; }

  Status Setup() override {
    MkfsOptions mo;
    mo.size = kDeviceSize;
    mo.force = true;
    RETURN_IF_ERROR(Filesystem::Mkfs(path_, mo).Prefixed("mkfs " + path_));
    made_ = true;
    ASSIGN_OR_RETURN(fs_, Filesystem::Mount(path_));
    ASSIGN_OR_RETURN(file_, fs_->Open("/bench.dat", O_CREAT | O_RDWR, 0644));
    std::vector<uint8_t> chunk(kFillChunk, 0xa5);
    for (uint64_t off = 0; off < kFileSize; off += kFillChunk) {
      ASSIGN_OR_RETURN(size_t n, file_.Pwrite(chunk.data(), chunk.size(), off));
      if (n != chunk.size()) return Errno(EIO, "short write while filling the bench file");
    }
    return fs_->Mkdir("/cu");
  }

  Result<double> Measure(Op op, const Workload& w) override {
    ASSIGN_OR_RETURN(const FsStats before, fs_->GetStats());
    fences_per_commit_ = before.fences_per_commit;
    uint64_t ops = 0;
    Result<double> rate = MeasureUdaxOp(fs_.get(), file_, op, w, &ops);
    ASSIGN_OR_RETURN(const FsStats after, fs_->GetStats());
    Counts& c = counts_[static_cast<int>(op)];
    c = Counts{ops, after.fences - before.fences, after.commits - before.commits};
    if (!rate.has_value()) return rate.error().Prefixed(std::string("udax ") + OpName(op));
    return rate;
  }

  Filesystem* fs() { return fs_.get(); }
  const std::string& device() const { return path_; }

  void Teardown() override {
    if (file_.is_open()) file_.Close().IgnoreError();
    if (fs_) {
      fs_->Unmount().IgnoreError();
      fs_.reset();
    }
    if (made_) ::unlink(path_.c_str());
    made_ = false;
  }

  // "pwrite_4k 1.00 fences/op, ..." over each op's last measurement.
  std::string FenceReport() const {
    std::string out;
    char line[256];
    for (Op op : kOps) {
      const Counts& c = counts_[static_cast<int>(op)];
      if (c.ops == 0) continue;
      std::snprintf(line, sizeof line, "udax fences: %-14s %6.2f fences/op, %5.2f commits/op",
                    OpName(op), double(c.fences) / double(c.ops), double(c.commits) / double(c.ops));
      out += line;
      if (c.commits > 0) {
        std::snprintf(line, sizeof line, ", %.2f fences/commit", double(c.fences) / double(c.commits));
        out += line;
      }
      out += '\n';
    }
    std::snprintf(line, sizeof line, "udax fences: Journal::kFencesPerCommit = %u\n", fences_per_commit_);
    return out + line;
  }

 private:
  struct Counts {
    uint64_t ops = 0, fences = 0, commits = 0;
  };
  std::string path_;
  bool made_ = false;
  std::unique_ptr<Filesystem> fs_;
  File file_;
  Counts counts_[3];
  uint32_t fences_per_commit_ = 0;  // FsStats::fences_per_commit
};

}  // namespace

Result<double> MeasureUdaxOp(Filesystem* fs, File& file, Op op, const Workload& w, uint64_t* ops) {
  alignas(64) uint8_t buf[kIoSize];
  std::memset(buf, 0x5a, sizeof buf);
  uint64_t done = 0;
  Result<double> rate = 0.0;
  switch (op) {
    case Op::kPwrite4k:
      rate = TimeOps(w.rw_ops, WarmOps(w.rw_ops), w.max_seconds, [&](uint64_t i) -> Status {
        done++;
        ASSIGN_OR_RETURN(size_t n, file.Pwrite(buf, kIoSize, w.offsets[i]));
        return n == kIoSize ? Status::Ok() : Errno(EIO, "short pwrite");
      });
      break;
    case Op::kPread4k:
      rate = TimeOps(w.rw_ops, WarmOps(w.rw_ops), w.max_seconds, [&](uint64_t i) -> Status {
        done++;
        ASSIGN_OR_RETURN(size_t n, file.Pread(buf, kIoSize, w.offsets[i]));
        return n == kIoSize ? Status::Ok() : Errno(EIO, "short pread");
      });
      break;
    case Op::kCreateUnlink: {
      std::vector<std::string> paths;
      paths.reserve(w.names.size());
      for (const std::string& n : w.names) paths.push_back("/cu/" + n);
      rate = TimeOps(w.create_ops, WarmOps(w.create_ops), w.max_seconds, [&](uint64_t i) -> Status {
        done++;
        ASSIGN_OR_RETURN(File f, fs->Open(paths[i], O_CREAT | O_WRONLY, 0644));
        RETURN_IF_ERROR(f.Close());
        return fs->Unlink(paths[i]);
      });
      break;
    }
  }
  if (ops) *ops = done;
  return rate;
}

Result<CreateUnlinkParts> TimeCreateUnlinkParts(Filesystem* fs, const Workload& w, uint64_t n) {
  using Clock = std::chrono::steady_clock;
  auto us = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
  };
  n = std::min<uint64_t>(n, w.names.size());
  std::vector<double> open_us, close_us, unlink_us, statfs_us;
  for (uint64_t i = 0; i < n; i++) {
    const std::string path = "/cu/" + w.names[i];
    const Clock::time_point t0 = Clock::now();
    ASSIGN_OR_RETURN(File f, fs->Open(path, O_CREAT | O_WRONLY, 0644));
    const Clock::time_point t1 = Clock::now();
    RETURN_IF_ERROR(f.Close());
    const Clock::time_point t2 = Clock::now();
    RETURN_IF_ERROR(fs->Unlink(path));
    const Clock::time_point t3 = Clock::now();
    RETURN_IF_ERROR(fs->GetStatFs().status());
    const Clock::time_point t4 = Clock::now();
    open_us.push_back(us(t0, t1));
    close_us.push_back(us(t1, t2));
    unlink_us.push_back(us(t2, t3));
    statfs_us.push_back(us(t3, t4));
  }
  return CreateUnlinkParts{Median(open_us), Median(close_us), Median(unlink_us), Median(statfs_us)};
}

std::unique_ptr<Target> MakeUdaxTarget() { return std::make_unique<UdaxTarget>(); }

Filesystem* UdaxTargetFs(Target* udax) {
  auto* t = dynamic_cast<UdaxTarget*>(udax);
  return t ? t->fs() : nullptr;
}

std::string UdaxTargetDevice(Target* udax) {
  auto* t = dynamic_cast<UdaxTarget*>(udax);
  return t ? t->device() : std::string();
}

std::string UdaxFenceReport(Target* udax) {
  auto* t = dynamic_cast<UdaxTarget*>(udax);
  return t ? t->FenceReport() : std::string();
}

}  // namespace udax::bench
