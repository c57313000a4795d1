// tests/serve_test_util.h — helpers for the serve_* tests (src/serve/, the
// mount's side of direct clients): a Filesystem mounted on a /dev/shm image,
// a mount point that is just a directory (the rendezvous only stat()s it), a
// private UDAX_SHARE_DIR, the DirectServer, and raw clients
// (share::Client + proto::Writer) that record the revocations they get.
//
// Forking: a child that starts threads (a Client does) is forked before
// this process has threads of its own (before Mount and Start): see
// ForkChild, which the tests call first.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proto/ops.h"
#include "share/client.h"
#include "share/rendezvous.h"
#include "test_util.h"
#include "udax/fs.h"
#include "udax/serve.h"

namespace udax::serve::testing {

using namespace std::chrono_literals;
using proto::Reader;
using proto::Writer;
using udax::testutil::TempDevice;
using udax::testutil::WaitFor;

// A request payload built with a Writer.
class Req {
 public:
  template <typename T>
  Req& Put(const T& v) {
    w_.Put(v);
    return *this;
  }
  Req& Str(std::string_view s) {
    w_.PutString(s);
    return *this;
  }
  Req& Bytes(const void* p, size_t n) {
    w_.PutBytes(p, n);
    return *this;
  }
  Req& Path(const std::string& p, uint64_t at = 0) {
    proto::PutPath(w_, PathAt(at, p));
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return buf_; }

 private:
  std::vector<uint8_t> buf_;
  Writer w_{&buf_};
};

// A direct client speaking the protocol by hand.
class RawClient {
 public:
  static Result<std::unique_ptr<RawClient>> Connect(const std::string& socket) {
    std::unique_ptr<RawClient> rc(new RawClient());
    RawClient* self = rc.get();
    share::ClientOptions o;
    o.on_revoke = [self](const share::Revocation& r) {
      std::lock_guard<std::mutex> g(self->mu_);
      self->revs_.push_back(r);
    };
    ASSIGN_OR_RETURN(rc->c_, share::Client::Connect(socket, o));
    return rc;
  }
  Status Call(uint32_t op, const Req& req, std::vector<uint8_t>* out = nullptr) {
    std::vector<uint8_t> tmp;
    return c_->Call(op, req.bytes(), out ? out : &tmp);
  }
  Status CallRaw(uint32_t op, std::span<const uint8_t> in, std::vector<uint8_t>* out) {
    return c_->Call(op, in, out);
  }
  std::vector<share::Revocation> revocations() {
    std::lock_guard<std::mutex> g(mu_);
    return revs_;
  }
  bool connected() const { return c_->connected(); }

  // kOpen → handle.
  Result<uint64_t> Open(const std::string& path, int flags, uint32_t mode = 0644) {
    std::vector<uint8_t> out;
    RETURN_IF_ERROR(Call(proto::kOpen, Req().Path(path).Put<int32_t>(flags).Put<uint32_t>(mode), &out));
    Reader r(out);
    auto reply = r.Get<proto::OpenReply>();
    RETURN_IF_ERROR(r.Finish("open reply"));
    return reply.handle;
  }
  struct Lease {
    proto::LeaseHeader hdr;
    std::vector<proto::LeaseSegment> segs;
  };
  Result<Lease> TakeLease(uint64_t h, uint64_t off, uint64_t len) {
    std::vector<uint8_t> out;
    RETURN_IF_ERROR(Call(proto::kLease, Req().Put(h).Put(off).Put(len), &out));
    Reader r(out);
    Lease l;
    l.hdr = r.Get<proto::LeaseHeader>();
    for (uint32_t i = 0; i < l.hdr.nsegs && r.ok(); i++) l.segs.push_back(r.Get<proto::LeaseSegment>());
    RETURN_IF_ERROR(r.Finish("lease reply"));
    return l;
  }
  struct Fault {
    proto::FaultHeader hdr;
    std::vector<proto::WireInstall> installs;
  };
  Result<Fault> TakeFault(uint64_t h, uint64_t off, bool write, uint64_t lo, uint64_t hi) {
    std::vector<uint8_t> out;
    RETURN_IF_ERROR(Call(proto::kFault,
                         Req().Put(h).Put(off).Put<uint8_t>(write).Put<uint8_t>(1).Put(lo).Put(hi), &out));
    Reader r(out);
    Fault f;
    f.hdr = r.Get<proto::FaultHeader>();
    for (uint32_t i = 0; i < f.hdr.n && r.ok(); i++) f.installs.push_back(r.Get<proto::WireInstall>());
    RETURN_IF_ERROR(r.Finish("fault reply"));
    return f;
  }

 private:
  RawClient() = default;
  std::unique_ptr<share::Client> c_;
  std::mutex mu_;
  std::vector<share::Revocation> revs_;
};

// A private share dir and mount-point directory, an image, and (Mount,
// Start) the Filesystem and its DirectServer.
class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/udax_serve_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ::setenv("UDAX_SHARE_DIR", (base_ + "/run").c_str(), 1);
    mountpoint_ = base_ + "/mnt";
    ASSERT_EQ(::mkdir(mountpoint_.c_str(), 0755), 0);
    auto sock = share::ServerSocketPath(mountpoint_);
    ASSERT_TRUE(sock.has_value()) << sock.error().ToString();
    socket_ = *sock;
    MkfsOptions mo;
    mo.size = 64 * testutil::kMiB;
    ASSERT_OK(Filesystem::Mkfs(device_.path(), mo));
  }
  void TearDown() override {
    server_.reset();
    if (fs_) EXPECT_OK(fs_->Unmount());
    fs_.reset();
    ::unsetenv("UDAX_SHARE_DIR");
    ::unlink(socket_.c_str());
    ::rmdir((base_ + "/run").c_str());
    ::rmdir(mountpoint_.c_str());
    ::rmdir(base_.c_str());
  }
  void MountAndServe(std::chrono::milliseconds revoke = 1000ms) {
    auto fs = Filesystem::Mount(device_.path());
    ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
    fs_ = std::move(fs).value();
    DirectServerOptions o;
    o.device = device_.path();
    o.revoke_timeout = revoke;
    auto s = DirectServer::Start(*fs_, mountpoint_, o);
    ASSERT_TRUE(s.has_value()) << s.error().ToString();
    server_ = std::move(s).value();
  }
  std::unique_ptr<RawClient> Client() {
    auto c = RawClient::Connect(socket_);
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
    return c.has_value() ? std::move(c).value() : nullptr;
  }


  TempDevice device_{"serve"};
  std::string base_, mountpoint_, socket_;
  std::unique_ptr<Filesystem> fs_;
  std::unique_ptr<DirectServer> server_;
};

// A forked child running `body` (testutil::ForkChild).
struct Child {
  pid_t pid = -1;
};
inline Child ForkChild(const std::function<int()>& body) { return Child{testutil::ForkChild(body)}; }
inline int ReapChild(const Child& c) { return testutil::WaitChild(c.pid); }

}  // namespace udax::serve::testing
