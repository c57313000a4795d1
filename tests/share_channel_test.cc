// tests/share_channel_test.cc — the transport in one process (server and
// client on threads, the channel mapped twice): round trips, errors, bounds,
// several threads in flight, revocations while application threads are
// blocked, handshake refusals, the sealed channel. The cross-process cases
// (death, kills, hostile clients, other uids) are in share_process_test.cc.
#include <poll.h>
#include <sys/socket.h>

#include <set>

#include "share/channel.h"
#include "share/wire.h"
#include "share_test_util.h"

namespace udax::share::testing {
namespace {

class Channel : public ShareTest {};

Result<std::unique_ptr<Client>> ConnectTo(const std::string& path, ClientOptions o = {}) {
  return Client::Connect(path, std::move(o));
}

TEST_F(Channel, RoundTripEchoes) {
  StartServer();
  ASSIGN_OR_FAIL(auto c, ConnectTo(path_));
  std::vector<uint8_t> out;
  EXPECT_OK(c->Call(kOpNull, {}, &out));
  EXPECT_TRUE(out.empty());
  for (int i = 0; i < 100; ++i) {
    auto in = udax::testutil::Pattern(static_cast<size_t>(i) * 37, static_cast<uint64_t>(i));
    ASSERT_OK(c->Call(kOpEcho, in, &out));
    ASSERT_EQ(out, in) << "call " << i;
  }
  // The device handed over is the device: same file.
  struct stat a{}, b{};
  ASSERT_EQ(::fstat(c->device_fd(), &a), 0);
  ASSERT_EQ(::stat(device_.path().c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
}

TEST_F(Channel, ErrorsCarryTheErrnoAndTheMessage) {
  StartServer();
  ASSIGN_OR_FAIL(auto c, ConnectTo(path_));
  std::vector<uint8_t> out;
  Status st = c->Call(kOpFail, Bytes("because"), &out);
  EXPECT_EQ(st.err(), EBADE);
  EXPECT_EQ(st.message(), "told to fail: because");
  EXPECT_EQ(c->Call(999, {}, &out).err(), ENOSYS);
  EXPECT_OK(c->Call(kOpEcho, Bytes("still fine"), &out));
}

TEST_F(Channel, PayloadBounds) {
  StartServer();
  ASSIGN_OR_FAIL(auto c, ConnectTo(path_));
  std::vector<uint8_t> out;
  std::vector<uint8_t> max(kMaxPayload, 0xA5);
  ASSERT_OK(c->Call(kOpEcho, max, &out));
  EXPECT_EQ(out, max);
  std::vector<uint8_t> over(kMaxPayload + 1, 1);
  EXPECT_EQ(c->Call(kOpEcho, over, &out).err(), EMSGSIZE);
  EXPECT_EQ(c->Call(kOpBig, {}, &out).err(), EOVERFLOW);
  EXPECT_OK(c->Call(kOpEcho, Bytes("after"), &out));
}

TEST_F(Channel, ManyThreadsInFlight) {
  StartServer();
  ASSIGN_OR_FAIL(auto c, ConnectTo(path_));
  constexpr int kThreads = 12, kCalls = 1500;  // more threads than slots
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<uint8_t> out;
      for (int i = 0; i < kCalls; ++i) {
        std::string msg = std::to_string(t) + ":" + std::to_string(i);
        if (!c->Call(kOpEcho, Bytes(msg), &out).ok() || out != Bytes(msg)) bad.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(Channel, RevocationsAreServedInOrderAndAcknowledged) {
  StartServer();
  std::mutex mu;
  std::vector<Revocation> seen;
  ClientOptions o;
  o.on_revoke = [&](const Revocation& r) {
    std::lock_guard lk(mu);
    seen.push_back(r);
  };
  ASSIGN_OR_FAIL(auto c, ConnectTo(path_, o));
  ASSERT_TRUE(WaitFor([&] { return server_->Clients().size() == 1; }, 5s));
  std::vector<Revocation> ranges;
  for (uint64_t i = 0; i < 100; ++i) ranges.push_back({i * 4096, 4096, static_cast<uint32_t>(i % 7), i + 1});
  ASSIGN_OR_FAIL(RevokeReport r, server_->Revoke(ranges, 5000ms));
  EXPECT_EQ(r.clients, 1u);
  EXPECT_EQ(r.acked, 1u);
  EXPECT_EQ(r.killed + r.gone, 0u);
  std::lock_guard lk(mu);
  ASSERT_EQ(seen.size(), ranges.size());
  std::set<uint64_t> offsets;
  for (const Revocation& s : seen) {
    offsets.insert(s.offset);
    EXPECT_EQ(s.length, 4096u);
    EXPECT_EQ(s.reason, s.offset / 4096 % 7);
    EXPECT_EQ(s.ino, s.offset / 4096 + 1);  // the caller's inode number travels too
  }
  std::set<uint64_t> seqs;  // each has the server's number, never 0, never twice
  for (const Revocation& s : seen) seqs.insert(s.seq);
  EXPECT_EQ(seqs.size(), seen.size());
  EXPECT_EQ(seqs.count(0), 0u);
  EXPECT_EQ(offsets.size(), ranges.size());
  EXPECT_EQ(server_->revocations(), 100u);
  EXPECT_EQ(server_->acknowledgements(), 100u);
  EXPECT_EQ(server_->Clients()[0].revocations_acked, 100u);
}

TEST_F(Channel, AcksDoNotWaitForABlockedApplicationThread) {
  StartServer();
  std::atomic<int> revoked{0};
  ClientOptions o;
  o.on_revoke = [&](const Revocation&) { revoked.fetch_add(1); };
  ASSIGN_OR_FAIL(auto c, ConnectTo(path_, o));
  std::thread blocked([&] {
    std::vector<uint8_t> out;
    EXPECT_OK(c->Call(kOpBlock, {}, &out));
  });
  ASSERT_TRUE(WaitBlocked(1));
  Revocation one{0, 1 << 20, 1};
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_FAIL(RevokeReport r, server_->Revoke({&one, 1}, 2000ms));
  EXPECT_EQ(r.acked, 1u);
  EXPECT_EQ(revoked.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  OpenGate();
  blocked.join();
}

TEST_F(Channel, ClientsAreListedAndTheirLeavingReported) {
  StartServer();
  {
    ASSIGN_OR_FAIL(auto c, ConnectTo(path_));
    ASSERT_TRUE(WaitFor([&] { return server_->Clients().size() == 1; }, 5s));
    ClientInfo ci = server_->Clients()[0];
    EXPECT_EQ(ci.pid, ::getpid());
    EXPECT_EQ(ci.uid, ::geteuid());
    EXPECT_EQ(ci.gid, ::getegid());
  }
  ASSERT_TRUE(WaitFor([&] { return Disconnects().size() == 1; }, 5s));
  EXPECT_OK(Disconnects()[0]);
  EXPECT_TRUE(server_->Clients().empty());
}

TEST_F(Channel, ServerStopDisconnectsClients) {
  StartServer();
  std::atomic<int> disconnected{0};
  ClientOptions o;
  o.on_disconnect = [&] { disconnected.fetch_add(1); };
  ASSIGN_OR_FAIL(auto c, ConnectTo(path_, o));
  std::vector<uint8_t> out;
  ASSERT_OK(c->Call(kOpNull, {}, &out));
  server_->Stop();
  ASSERT_TRUE(WaitFor([&] { return disconnected.load() == 1; }, 5s));
  EXPECT_FALSE(c->connected());
  EXPECT_EQ(c->Call(kOpNull, {}, &out).err(), ENOTCONN);
  struct stat st{};
  EXPECT_NE(::lstat(path_.c_str(), &st), 0) << "socket left behind";
}

TEST_F(Channel, RevokeWithNoClientsIsEmpty) {
  StartServer();
  Revocation one{0, 4096, 0};
  ASSIGN_OR_FAIL(RevokeReport r, server_->Revoke({&one, 1}, 100ms));
  EXPECT_EQ(r.clients, 0u);
}

TEST_F(Channel, TheChannelIsSealed) {
  StartServer();
  ASSIGN_OR_FAIL(Admission a, Handshake(path_, 2000ms));
  EXPECT_EQ(a.channel_bytes, ChannelBytes());
  EXPECT_NE(::ftruncate(a.channel.get(), 0), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(::ftruncate(a.channel.get(), static_cast<off_t>(a.channel_bytes * 2)), 0);
  EXPECT_NE(::fcntl(a.channel.get(), F_ADD_SEALS, F_SEAL_WRITE), 0);
}

// ---- the handshake against bad clients (not admitted: nothing to kill) -------

TEST_F(Channel, BadHelloIsRefusedAndTheServerGoesOn) {
  StartServer();
  {
    ASSIGN_OR_FAIL(UniqueFd s, ConnectUnix(path_));
    Hello h{};
    h.magic = 0x12345678;
    h.version = 77;
    ASSERT_OK(SendMessage(s.get(), &h, sizeof(h), {}));
    Welcome w{};
    ASSERT_OK(RecvMessage(s.get(), &w, sizeof(w), 2, nullptr, 2000ms));
    EXPECT_EQ(w.status, EPROTO);
    EXPECT_EQ(w.nfds, 0);
  }
  {  // a short hello, then silence: the server gives up on it
    ASSIGN_OR_FAIL(UniqueFd s, ConnectUnix(path_));
    ASSERT_EQ(::send(s.get(), "UDX", 3, MSG_NOSIGNAL), 3);
    char b;
    EXPECT_EQ(::recv(s.get(), &b, 1, 0), 0);  // EOF after handshake_timeout
  }
  {  // connect and leave
    ASSIGN_OR_FAIL(UniqueFd s, ConnectUnix(path_));
  }
  ASSIGN_OR_FAIL(auto c, ConnectTo(path_));
  std::vector<uint8_t> out;
  EXPECT_OK(c->Call(kOpEcho, Bytes("ok"), &out));
}

TEST_F(Channel, HelloWithFileDescriptorsIsDroppedWithoutKeepingThem) {
  StartServer();
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  {
    ASSIGN_OR_FAIL(UniqueFd s, ConnectUnix(path_));
    Hello h{};
    h.magic = kHelloMagic;
    h.version = kProtocolVersion;
    h.flags = kHelloWantDirect;
    int fds[1] = {wr.get()};
    ASSERT_OK(SendMessage(s.get(), &h, sizeof(h), fds));
    char b;
    EXPECT_EQ(::recv(s.get(), &b, 1, 0), 0);  // dropped: a hello carries no fds
  }
  wr.Reset();
  // Had the server kept the write end, this read would block, not see EOF.
  pollfd p{rd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  char b;
  EXPECT_EQ(::read(rd.get(), &b, 1), 0);
}

class OneClientChannel : public Channel {
 protected:
  // A server that serves one client, and that client.
  void SetUp() override {
    Channel::SetUp();
    auto l = Listener::Create(path_);
    ASSERT_TRUE(l.has_value());
    ServerOptions o = Options();
    o.max_clients = 1;
    StartServer(std::move(l).value(), std::move(o));
    ASSIGN_OR_FAIL(first_, ConnectTo(path_));
  }
  std::unique_ptr<Client> first_;
};

TEST_F(OneClientChannel, TooManyClientsAreRefused) {
  auto second = ConnectTo(path_);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().err(), EAGAIN) << second.error().ToString();
}

// The refusal can come before the hello is sent (the server refuses at
// accept and closes): the client reports the refusal, not its failed send.
TEST_F(OneClientChannel, ARefusalBeforeTheHelloIsReported) {
  ASSIGN_OR_FAIL(UniqueFd sock, ConnectUnix(path_));
  pollfd p{sock.get(), POLLRDHUP, 0};  // the server answered and closed
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  auto second = HandshakeOn(std::move(sock), path_, 2000ms);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().err(), EAGAIN) << second.error().ToString();
}

TEST_F(Channel, HandshakeTimeoutIsShort) {
  auto l = Listener::Create(path_);
  ASSERT_TRUE(l.has_value());
  ServerOptions o = Options();
  o.handshake_timeout = 50ms;
  StartServer(std::move(l).value(), std::move(o));
  ASSIGN_OR_FAIL(UniqueFd s, ConnectUnix(path_));
  auto start = std::chrono::steady_clock::now();
  char b;
  EXPECT_EQ(::recv(s.get(), &b, 1, 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

}  // namespace
}  // namespace udax::share::testing
