// tests/share_test_util.h — helpers for the share_* tests (src/share/, the
// transport between the mount and direct clients): a private rendezvous
// directory (UDAX_SHARE_DIR) and device file per test, a server with an echo
// handler, forked children, and waiting for them.
//
// Forking: a child that starts threads (a Client does) is forked while the
// test process has none of its own (before the Server starts), so it is safe
// under every sanitizer; it reports through its exit code (0 = ok) and dies
// with its parent (PR_SET_PDEATHSIG).
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
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "share/client.h"
#include "share/rendezvous.h"
#include "share/server.h"
#include "test_util.h"

namespace udax::share::testing {

using udax::testutil::WaitFor;

using namespace std::chrono_literals;
using udax::testutil::TempDevice;

// Opcodes of the tests' handler.
constexpr uint32_t kOpEcho = 1;   // answers the request bytes
constexpr uint32_t kOpFail = 2;   // answers EBADE "told to fail: <request>"
constexpr uint32_t kOpBig = 3;    // answers kMaxPayload + 1 bytes (EOVERFLOW)
constexpr uint32_t kOpBlock = 4;  // blocks until the test's gate opens

inline std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

// A per-test rendezvous dir (UDAX_SHARE_DIR) and a 1 MiB device file (0600, ours).
class ShareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/udax_share_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ASSERT_EQ(::chmod(base_.c_str(), 0755), 0);  // other uids may reach the socket
    dir_ = base_ + "/run";
    ::setenv("UDAX_SHARE_DIR", dir_.c_str(), 1);
    int fd = ::open(device_.path().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
    device_fd_ = UniqueFd(fd);
    auto dir = ServerSocketDir();
    ASSERT_TRUE(dir.has_value()) << dir.error().ToString();
    path_ = *dir + "/test.sock";
  }
  void TearDown() override {
    server_.reset();
    ::unsetenv("UDAX_SHARE_DIR");
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
    ::rmdir(base_.c_str());
  }

  // The echo handler (kOp* above); kOpBlock waits for OpenGate().
  RequestHandler EchoHandler() {
    return [this](const ClientInfo&, uint32_t op, std::span<const uint8_t> in,
                  std::vector<uint8_t>* out) -> Status {
      switch (op) {
        case kOpEcho:
          out->assign(in.begin(), in.end());
          return Status::Ok();
        case kOpFail:
          return Errno(EBADE, "told to fail: " + std::string(in.begin(), in.end()));
        case kOpBig:
          out->assign(kMaxPayload + 1, 7);
          return Status::Ok();
        case kOpBlock: {
          blocked_.fetch_add(1);
          std::unique_lock lk(gate_mu_);
          gate_cv_.wait(lk, [&] { return gate_open_; });
          return Status::Ok();
        }
        default:
          return Errno(ENOSYS, "no such op");
      }
    };
  }
  void OpenGate() {
    {
      std::lock_guard lk(gate_mu_);
      gate_open_ = true;
    }
    gate_cv_.notify_all();
  }
  // Waits until `n` kOpBlock requests are blocked in the handler.
  bool WaitBlocked(int n, std::chrono::milliseconds bound = 5s) {
    return WaitFor([&] { return blocked_.load() >= n; }, bound);
  }

  ServerOptions Options() {
    ServerOptions o;
    o.device_fd = device_fd_.get();
    o.device_name = device_.path();
    o.handler = EchoHandler();
    o.on_disconnect = [this](const ClientInfo&, const Status& why) {
      std::lock_guard lk(gate_mu_);
      disconnects_.push_back(why);
    };
    return o;
  }
  // Starts the server on path_ (the Listener may have been made earlier).
  void StartServer(Listener l, ServerOptions o) {
    auto s = Server::Start(std::move(l), std::move(o));
    ASSERT_TRUE(s.has_value()) << s.error().ToString();
    server_ = std::move(s).value();
  }
  void StartServer() {
    auto l = Listener::Create(path_);
    ASSERT_TRUE(l.has_value()) << l.error().ToString();
    StartServer(std::move(l).value(), Options());
  }
  std::vector<Status> Disconnects() {
    std::lock_guard lk(gate_mu_);
    return disconnects_;
  }


  TempDevice device_{"share"};
  UniqueFd device_fd_;
  std::string base_, dir_, path_;
  std::unique_ptr<Server> server_;
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool gate_open_ = false;
  std::atomic<int> blocked_{0};
  std::vector<Status> disconnects_;
};

// A forked child running `body` (its return value is the exit code).
struct Child {
  pid_t pid = -1;
  UniqueFd pidfd;
};
inline Child Fork(const std::function<int()>& body) {
  const pid_t pid = udax::testutil::ForkChild(body);
  Child c;
  c.pid = pid;
  c.pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  return c;
}
// The child's wait status (blocks).
inline int Reap(const Child& c) {
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {}
  return status;
}
inline bool ExitedWith(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
inline bool KilledBy(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }
// Exited or was killed (a zombie), without reaping it.
inline bool HasExited(pid_t pid) {
  siginfo_t si{};
  return ::waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

}  // namespace udax::share::testing
