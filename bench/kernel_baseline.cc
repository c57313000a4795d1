// bench/kernel_baseline.cc — the kernel side of `udax bench`: the same three
// loops as plain syscalls (pwrite/pread on one fd; openat(O_CREAT)+close+
// unlinkat relative to a directory fd) in a fresh directory of a kernel
// filesystem — tmpfs (/dev/shm), or XFS on a loop device that this file sets
// up (sparse image, mkfs.xfs -m reflink=1, losetup, mount) and always tears
// down again (umount, losetup -d, remove image and mount point); the XFS
// part (XfsLoop) also serves the reflink rows (reflink_bench.cc).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <utility>

#include "bench.h"

namespace udax::bench {
namespace {

constexpr uint64_t kFillChunk = 1ULL << 20;
constexpr uint64_t kXfsImageSize = 1ULL << 30;  // sparse

Status SysErr(const std::string& what) { return Errno(errno, what + ": " + strerror(errno)); }

// Runs argv (searched in PATH) and waits; *out gets stdout+stderr.
Status RunCommand(const std::vector<std::string>& argv, std::string* out) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return SysErr("pipe");
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return SysErr("fork");
  }
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(p[1]);
  out->clear();
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out->append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  std::string msg = argv[0] + (WIFEXITED(status) && WEXITSTATUS(status) == 127
                                   ? std::string(" not found")
                                   : " failed");
  std::string first = out->substr(0, out->find('\n'));
  if (!first.empty()) msg += ": " + first;
  return Errno(EIO, msg);
}

class KernelTarget : public Target {
 public:
  // Works in a new directory made under `parent`.
  KernelTarget(std::string parent, std::string name)
      : parent_(std::move(parent)), name_(std::move(name)) {
    std::memset(buf_, 0x5a, sizeof buf_);
  }
  ~KernelTarget() override { Teardown(); }
  std::string name() const override { return name_; }

  Status Setup() override {
    std::string tmpl = parent_ + "/udax-bench-XXXXXX";
    if (!mkdtemp(tmpl.data())) return SysErr("mkdtemp in " + parent_);
    dir_ = tmpl;
    dirfd_ = open(dir_.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dirfd_ < 0) return SysErr("open " + dir_);
    fd_ = openat(dirfd_, "bench.dat", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return SysErr("create " + dir_ + "/bench.dat");
    std::vector<uint8_t> chunk(kFillChunk, 0xa5);
    for (uint64_t off = 0; off < kFileSize; off += kFillChunk) {
      if (pwrite(fd_, chunk.data(), chunk.size(), static_cast<off_t>(off)) !=
          static_cast<ssize_t>(chunk.size()))
        return SysErr("fill " + dir_ + "/bench.dat");
    }
    if (mkdirat(dirfd_, "cu", 0755) != 0) return SysErr("mkdir " + dir_ + "/cu");
    return Status::Ok();
  }

  Result<double> Measure(Op op, const Workload& w) override {
    Result<double> rate = 0.0;
    switch (op) {
      case Op::kPwrite4k:
        rate = TimeOps(w.rw_ops, WarmOps(w.rw_ops), w.max_seconds, [&](uint64_t i) -> Status {
          return pwrite(fd_, buf_, kIoSize, static_cast<off_t>(w.offsets[i])) == ssize_t{kIoSize}
                     ? Status::Ok()
                     : SysErr("pwrite");
        });
        break;
      case Op::kPread4k:
        rate = TimeOps(w.rw_ops, WarmOps(w.rw_ops), w.max_seconds, [&](uint64_t i) -> Status {
          return pread(fd_, buf_, kIoSize, static_cast<off_t>(w.offsets[i])) == ssize_t{kIoSize}
                     ? Status::Ok()
                     : SysErr("pread");
        });
        break;
      case Op::kCreateUnlink: {
        std::vector<std::string> paths;
        paths.reserve(w.names.size());
        for (const std::string& n : w.names) paths.push_back("cu/" + n);
        rate = TimeOps(w.create_ops, WarmOps(w.create_ops), w.max_seconds,
                       [&](uint64_t i) -> Status {
                         int fd = openat(dirfd_, paths[i].c_str(), O_CREAT | O_WRONLY, 0644);
                         if (fd < 0) return SysErr("open " + paths[i]);
                         if (close(fd) != 0) return SysErr("close");
                         if (unlinkat(dirfd_, paths[i].c_str(), 0) != 0) return SysErr("unlink");
                         return Status::Ok();
                       });
        break;
      }
    }
    if (!rate.has_value()) return rate.error().Prefixed(name_ + " " + OpName(op));
    return rate;
  }

  void Teardown() override {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    if (dirfd_ >= 0) {
      unlinkat(dirfd_, "bench.dat", 0);
      unlinkat(dirfd_, "cu", AT_REMOVEDIR);
      close(dirfd_);
      dirfd_ = -1;
    }
    if (!dir_.empty()) rmdir(dir_.c_str());
    dir_.clear();
  }

 private:
  std::string parent_, name_, dir_;
  int dirfd_ = -1, fd_ = -1;
  alignas(64) uint8_t buf_[kIoSize];
};

// XFS on a loop device: the XfsLoop (below) plus the three loops in a
// directory of it.
class XfsLoopTarget : public Target {
 public:
  ~XfsLoopTarget() override { Teardown(); }
  std::string name() const override { return "xfs-loop"; }

  Status Setup() override {
    RETURN_IF_ERROR(loop_.Setup(kXfsImageSize, "fs"));
    inner_ = std::make_unique<KernelTarget>(loop_.mount_point(), name());
    return inner_->Setup();
  }

  Result<double> Measure(Op op, const Workload& w) override { return inner_->Measure(op, w); }

  void Teardown() override {
    inner_.reset();
    loop_.Teardown();
  }

 private:
  XfsLoop loop_;
  std::unique_ptr<KernelTarget> inner_;
};

}  // namespace

// A sparse image in /dev/shm (RAM, like the udax device): each step is
// recorded so Teardown undoes exactly what was done.
Status XfsLoop::Setup(uint64_t image_bytes, const std::string& tag) {
  if (geteuid() != 0) return Errno(EPERM, "needs root (losetup, mount)");
  image_ = "/dev/shm/udax-bench-xfs-" + tag + "-" + std::to_string(getpid()) + ".img";
  int fd = open(image_.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    Status st = SysErr("create " + image_);
    image_.clear();
    return st;
  }
  int rc = ftruncate(fd, static_cast<off_t>(image_bytes));
  close(fd);
  if (rc != 0) return SysErr("size " + image_);
  std::string out;
  RETURN_IF_ERROR(RunCommand({"mkfs.xfs", "-f", "-q", "-m", "reflink=1", image_}, &out));
  RETURN_IF_ERROR(RunCommand({"losetup", "-f", "--show", image_}, &out));
  size_t at = out.rfind("/dev/");
  if (at == std::string::npos) return Errno(EIO, "losetup printed no device: " + out);
  loop_ = out.substr(at, out.find_first_of(" \n", at) - at);
  std::string tmpl = "/tmp/udax-bench-xfs-XXXXXX";
  if (!mkdtemp(tmpl.data())) return SysErr("mkdtemp");
  mnt_ = tmpl;
  RETURN_IF_ERROR(RunCommand({"mount", "-t", "xfs", loop_, mnt_}, &out));
  mounted_ = true;
  return Status::Ok();
}

void XfsLoop::Teardown() {
  std::string out;
  if (mounted_ && !RunCommand({"umount", mnt_}, &out).ok())
    std::fprintf(stderr, "udax bench: cannot umount %s: %s\n", mnt_.c_str(), out.c_str());
  mounted_ = false;
  if (!mnt_.empty()) rmdir(mnt_.c_str());
  mnt_.clear();
  if (!loop_.empty() && !RunCommand({"losetup", "-d", loop_}, &out).ok())
    std::fprintf(stderr, "udax bench: cannot detach %s: %s\n", loop_.c_str(), out.c_str());
  loop_.clear();
  if (!image_.empty()) unlink(image_.c_str());
  image_.clear();
}

std::unique_ptr<Target> MakeKernelTarget(std::string dir, std::string name) {
  return std::make_unique<KernelTarget>(std::move(dir), std::move(name));
}
std::unique_ptr<Target> MakeXfsLoopTarget() { return std::make_unique<XfsLoopTarget>(); }

}  // namespace udax::bench
