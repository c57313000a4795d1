// bench/fuse_bench.cc — the `fuse_*` rows of `udax bench`: the same three
// loops as the kernel sides (pwrite_4k, pread_4k, create_unlink through
// system calls: kernel_baseline.cc's KernelTarget), run in a directory of a
// udax FUSE mount (src/fuse) served by this process. What they measure is
// udax for programs that know nothing of it, FUSE round trips included,
// against tmpfs and XFS. No goal: the library and DAX are the fast paths.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "bench.h"
#include "bench_udax.h"
#include "udax/fuse.h"
#include "udax/fs.h"

namespace udax::bench {
namespace {

constexpr uint64_t kDeviceSize = 512ULL << 20;

class UdaxFuseTarget : public Target {
 public:
  UdaxFuseTarget() : dev_("fuse"), mnt_("/tmp/udax-bench-fuse-" + std::to_string(getpid())) {}
  ~UdaxFuseTarget() override { Teardown(); }
  std::string name() const override { return "udax-fuse"; }

  Status Setup() override {
    RETURN_IF_ERROR(dev_.Make(kDeviceSize));
    if (mkdir(mnt_.c_str(), 0755) != 0) return Errno(errno, "mkdir " + mnt_);
    made_mnt_ = true;
    fusefs::FuseServerOptions fo;
    fo.fsname = dev_.path();
    ASSIGN_OR_RETURN(server_, fusefs::FuseServer::Mount(dev_.fs(), mnt_, fo));
    serving_ = std::thread([this] { served_ = server_->Serve(); });
    inner_ = MakeKernelTarget(mnt_, name());
    return inner_->Setup();
  }

  Result<double> Measure(Op op, const Workload& w) override { return inner_->Measure(op, w); }

  void Teardown() override {
    if (inner_) inner_->Teardown();
    inner_.reset();
    if (serving_.joinable()) {
      server_->Stop();
      serving_.join();
    }
    server_.reset();
    if (made_mnt_) rmdir(mnt_.c_str());
    made_mnt_ = false;
    dev_.Close();
  }

 private:
  UdaxDevice dev_;  // the udax device and mount the server serves
  std::string mnt_;
  bool made_mnt_ = false;
  std::unique_ptr<fusefs::FuseServer> server_;
  std::thread serving_;
  Status served_;
  std::unique_ptr<Target> inner_;
};

}  // namespace

std::unique_ptr<Target> MakeUdaxFuseTarget() { return std::make_unique<UdaxFuseTarget>(); }

}  // namespace udax::bench
