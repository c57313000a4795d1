// tests/client_test_util.h — a fixture for direct clients (docs/shared.md):
// a filesystem mounted in the test process (FsFixture), a DirectServer
// serving it at a "mount point" that is a plain directory (the rendezvous
// only stat()s it), and a private rendezvous directory (UDAX_SHARE_DIR).
// Clients connect from this process (each maps the device itself, as another
// process would) or from forked children (testutil::ForkChild).
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "test_util.h"
#include "udax/serve.h"

namespace udax::testutil {

class ClientFixture : public FsFixture {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/udax_client_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ASSERT_EQ(::chmod(base_.c_str(), 0755), 0);
    mountpoint_ = base_ + "/mnt";
    ASSERT_EQ(::mkdir(mountpoint_.c_str(), 0755), 0);
    ::setenv("UDAX_SHARE_DIR", (base_ + "/run").c_str(), 1);
    FsFixture::SetUp();
    StartServer();
  }
  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
    FsFixture::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }

  // The clients live in this process: one that misses the bound gets this
  // process killed. Sanitizers slow every revocation down many times.
  virtual std::chrono::milliseconds RevokeTimeout() const {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    return std::chrono::milliseconds(20000);
#else
    return std::chrono::milliseconds(5000);
#endif
  }

  void StartServer() {
    DirectServerOptions o;
    o.device = path_;
    o.revoke_timeout = RevokeTimeout();
    auto s = DirectServer::Start(*fs_, mountpoint_, o);
    ASSERT_TRUE(s.has_value()) << s.error().ToString();
    server_ = std::move(*s);
  }

  std::unique_ptr<Filesystem> Connect() {
    auto c = Filesystem::Connect(mountpoint_);
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
    return c.has_value() ? std::move(*c) : nullptr;
  }

  std::string base_, mountpoint_;
  std::unique_ptr<DirectServer> server_;
};

}  // namespace udax::testutil
