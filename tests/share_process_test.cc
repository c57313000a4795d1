// tests/share_process_test.cc — the transport across fork()ed processes:
// round trips and the device handed over; several clients at once; a client
// killed mid-request or mid-revocation; a client that misses the ack deadline
// (blocked, or SIGSTOPped) is killed and Revoke returns only once it is dead;
// the server's death wakes a waiting call (ENOTCONN); hostile clients that
// scribble over the shared memory or write on the socket are dropped and
// killed while others go on; other uids are refused with EACCES, or admitted
// through the device's group.
#include <grp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <random>

#include "share/channel.h"
#include "share/futex.h"
#include "share_test_util.h"

namespace udax::share::testing {
namespace {

// Child bodies exit with these codes.
constexpr int kOk = 0, kNoConnect = 10, kBadCall = 11, kBadBytes = 12, kNotRefused = 13;

class Process : public ShareTest {
 protected:
  // A Listener made before any child is forked: children connect to it (the
  // kernel queues them) before the server, which starts threads, exists.
  void SetUp() override {
    ShareTest::SetUp();
    auto l = Listener::Create(path_);
    ASSERT_TRUE(l.has_value()) << l.error().ToString();
    listener_ = std::move(l).value();
  }
  void Start(ServerOptions o) { StartServer(std::move(listener_), std::move(o)); }
  void Start() { Start(Options()); }
  // A child that connects with `on_revoke` and then only waits.
  Child ForkIdleClient(std::function<void(const Revocation&)> on_revoke) {
    return Fork([&] {
      ClientOptions o;
      o.on_revoke = on_revoke;
      auto cl = Client::Connect(path_, o);
      if (!cl) return kNoConnect;
      ::pause();
      return kOk;
    });
  }
  Listener listener_;
};

// A pipe a parent writes one byte to, to let a child go on.
struct Gate {
  Gate() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
      rd = UniqueFd(p[0]);
      wr = UniqueFd(p[1]);
    }
  }
  void Open() { [[maybe_unused]] ssize_t n = ::write(wr.get(), "x", 1); }
  void Wait() {
    char b;
    [[maybe_unused]] ssize_t n = ::read(rd.get(), &b, 1);
  }
  UniqueFd rd, wr;
};

TEST_F(Process, RoundTripsAndTheDeviceAcrossProcesses) {
  Child c = Fork([&] {
    auto cl = Client::Connect(path_);
    if (!cl) return kNoConnect;
    std::vector<uint8_t> out;
    for (int i = 0; i < 2000; ++i) {
      auto in = udax::testutil::Pattern(static_cast<size_t>(i % 300), static_cast<uint64_t>(i));
      if (!(*cl)->Call(kOpEcho, in, &out).ok() || out != in) return kBadCall;
    }
    // Store into the device the server handed over.
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, (*cl)->device_fd(), 0);
    if (p == MAP_FAILED) return kBadBytes;
    std::memcpy(p, "stored by the client", 21);
    ::munmap(p, 4096);
    return kOk;
  });
  Start();
  EXPECT_TRUE(ExitedWith(Reap(c), kOk));
  char buf[21] = {};
  ASSERT_EQ(::pread(device_fd_.get(), buf, sizeof(buf), 0), 21);
  EXPECT_STREQ(buf, "stored by the client");
}

TEST_F(Process, SeveralClientsAtOnceWithRevocations) {
  constexpr int kClients = 3;
  std::vector<Child> kids;
  for (int k = 0; k < kClients; ++k) {
    kids.push_back(Fork([&, k] {
      std::atomic<int> revoked{0};
      ClientOptions o;
      o.on_revoke = [&](const Revocation&) { revoked.fetch_add(1); };
      auto cl = Client::Connect(path_, o);
      if (!cl) return kNoConnect;
      std::vector<uint8_t> out;
      for (int i = 0; i < 3000; ++i) {
        std::string m = std::to_string(k) + "/" + std::to_string(i);
        if (!(*cl)->Call(kOpEcho, Bytes(m), &out).ok() || out != Bytes(m)) return kBadCall;
      }
      // Stay until the revocations below have reached us.
      while (revoked.load() < 10) std::this_thread::sleep_for(1ms);
      return kOk;
    }));
  }
  Start();
  ASSERT_TRUE(WaitFor([&] { return server_->Clients().size() == kClients; }, 10s));
  std::vector<Revocation> ranges(10, Revocation{8192, 4096, 3});
  ASSIGN_OR_FAIL(RevokeReport r, server_->Revoke(ranges, 5000ms));
  EXPECT_EQ(r.acked, static_cast<size_t>(kClients));
  for (Child& c : kids) EXPECT_TRUE(ExitedWith(Reap(c), kOk));
  ASSERT_TRUE(WaitFor([&] { return Disconnects().size() == kClients; }, 5s));
  for (const Status& s : Disconnects()) EXPECT_OK(s);
}

TEST_F(Process, ClientKilledMidRequestLeavesTheServerServing) {
  Gate later;
  Child victim = Fork([&] {
    auto cl = Client::Connect(path_);
    if (!cl) return kNoConnect;
    std::vector<uint8_t> out;
    (*cl)->Call(kOpBlock, {}, &out).IgnoreError();  // killed in here
    return kOk;
  });
  Child next = Fork([&] {
    later.Wait();
    auto cl = Client::Connect(path_);
    if (!cl) return kNoConnect;
    std::vector<uint8_t> out;
    return (*cl)->Call(kOpEcho, Bytes("hi"), &out).ok() && out == Bytes("hi") ? kOk : kBadCall;
  });
  Start();
  ASSERT_TRUE(WaitBlocked(1));
  ASSERT_EQ(::kill(victim.pid, SIGKILL), 0);
  EXPECT_TRUE(KilledBy(Reap(victim), SIGKILL));
  OpenGate();  // the server answers into the dead client's channel
  ASSERT_TRUE(WaitFor([&] { return Disconnects().size() == 1; }, 5s));
  EXPECT_OK(Disconnects()[0]);
  EXPECT_TRUE(server_->Clients().empty());
  later.Open();
  EXPECT_TRUE(ExitedWith(Reap(next), kOk));
}

TEST_F(Process, ClientDyingMidRevocationEndsTheWaitPromptly) {
  Child c = ForkIdleClient([](const Revocation&) { ::raise(SIGKILL); });
  Start();
  ASSERT_TRUE(WaitFor([&] { return server_->Clients().size() == 1; }, 10s));
  Revocation one{0, 4096, 0};
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_FAIL(RevokeReport r, server_->Revoke({&one, 1}, 20000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(r.gone, 1u);
  EXPECT_EQ(r.killed, 0u);
  EXPECT_TRUE(KilledBy(Reap(c), SIGKILL));
}

TEST_F(Process, DeadlineMissKillsTheClientAndWaitsForItsDeath) {
  Child c = ForkIdleClient([](const Revocation&) { ::pause(); });  // never acknowledges
  Start();
  ASSERT_TRUE(WaitFor([&] { return server_->Clients().size() == 1; }, 10s));
  Revocation one{4096, 4096, 2};
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_FAIL(RevokeReport r, server_->Revoke({&one, 1}, 100ms));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.killed, 1u);
  EXPECT_EQ(r.acked, 0u);
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 5s);
  EXPECT_TRUE(HasExited(c.pid)) << "Revoke returned before the client was dead";
  EXPECT_EQ(server_->kills(), 1u);
  EXPECT_TRUE(KilledBy(Reap(c), SIGKILL));
  ASSERT_TRUE(WaitFor([&] { return server_->Clients().empty(); }, 5s));
}

TEST_F(Process, StoppedClientIsKilledOnDeadline) {
  Child c = Fork([&] {
    auto cl = Client::Connect(path_);
    if (!cl) return kNoConnect;
    ::pause();
    return kOk;
  });
  Start();
  ASSERT_TRUE(WaitFor([&] { return server_->Clients().size() == 1; }, 10s));
  ASSERT_EQ(::kill(c.pid, SIGSTOP), 0);
  siginfo_t si{};  // stopped for sure, not merely signalled
  ASSERT_EQ(::waitid(P_PID, c.pid, &si, WSTOPPED | WNOWAIT), 0);
  Revocation one{0, 4096, 0};
  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_FAIL(RevokeReport r, server_->Revoke({&one, 1}, 100ms));
  EXPECT_EQ(r.killed, 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(HasExited(c.pid));
  EXPECT_TRUE(KilledBy(Reap(c), SIGKILL));
  ASSERT_TRUE(WaitFor([&] { return Disconnects().size() == 1; }, 5s));
  EXPECT_EQ(Disconnects()[0].err(), ETIMEDOUT) << Disconnects()[0].ToString();
}

TEST_F(Process, ServerDeathWakesAWaitingCallAndFailsTheNext) {
  // The server runs in the child; this process is the client.
  listener_ = Listener();
  Gate up;
  Child server = Fork([&] {
    ServerOptions o = Options();
    o.handler = [](const ClientInfo&, uint32_t op, std::span<const uint8_t> in,
                   std::vector<uint8_t>* out) -> Status {
      if (op == kOpBlock) ::pause();
      out->assign(in.begin(), in.end());
      return Status::Ok();
    };
    auto l = Listener::Create(path_);
    if (!l) return kNoConnect;
    auto s = Server::Start(std::move(l).value(), std::move(o));
    if (!s) return kNoConnect;
    up.Open();
    ::pause();
    return kOk;
  });
  up.Wait();
  std::atomic<int> disconnected{0};
  ClientOptions o;
  o.on_disconnect = [&] { disconnected.fetch_add(1); };
  ASSIGN_OR_FAIL(auto c, Client::Connect(path_, o));
  std::vector<uint8_t> out;
  ASSERT_OK(c->Call(kOpEcho, Bytes("x"), &out));
  std::atomic<int> waiting_result{-1};
  std::thread waiter([&] {
    std::vector<uint8_t> o2;
    waiting_result.store(c->Call(kOpBlock, {}, &o2).err());
  });
  std::this_thread::sleep_for(50ms);  // let it post and sleep
  ASSERT_EQ(::kill(server.pid, SIGKILL), 0);
  EXPECT_TRUE(KilledBy(Reap(server), SIGKILL));
  auto start = std::chrono::steady_clock::now();
  waiter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(waiting_result.load(), ENOTCONN);
  EXPECT_EQ(c->Call(kOpEcho, Bytes("x"), &out).err(), ENOTCONN);
  EXPECT_FALSE(c->connected());
  EXPECT_TRUE(WaitFor([&] { return disconnected.load() == 1; }, 2s));
  // Its socket is stale now: a new mount replaces it.
  auto again = Listener::Create(path_);
  EXPECT_TRUE(again.has_value()) << again.error().ToString();
}

// ---- hostile clients ---------------------------------------------------------

// A hostile client: the raw handshake, then `attack` on the mapped channel.
int Hostile(const std::string& path, const std::function<void(ChannelLayout*, int sock)>& attack) {
  auto a = Handshake(path, 2000ms);
  if (!a) return kNoConnect;
  void* p = ::mmap(nullptr, a->channel_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, a->channel.get(), 0);
  if (p == MAP_FAILED) return kNoConnect;
  attack(static_cast<ChannelLayout*>(p), a->socket.get());
  ::pause();  // until the server kills us
  return kOk;
}

TEST_F(Process, ScribblingOverTheChannelIsSurvivedAndPunished) {
  Gate honest_go;
  Child honest = Fork([&] {
    honest_go.Wait();
    auto cl = Client::Connect(path_);
    if (!cl) return kNoConnect;
    std::vector<uint8_t> out;
    for (int i = 0; i < 3000; ++i) {
      std::string m = "honest " + std::to_string(i);
      if (!(*cl)->Call(kOpEcho, Bytes(m), &out).ok() || out != Bytes(m)) return kBadCall;
    }
    return kOk;
  });
  Child hostile = Fork([&] {
    return Hostile(path_, [&](ChannelLayout* l, int) {
      honest_go.Open();
      std::mt19937_64 rng(42);
      const auto end = std::chrono::steady_clock::now() + 300ms;
      // Random values in every field but lengths, which stay bounded so the
      // server keeps reading what it finds...
      while (std::chrono::steady_clock::now() < end) {
        for (int i = 0; i < 64; ++i) {
          RequestSlot& s = l->slots[rng() % kRequestSlots];
          const uint32_t ops[] = {kOpNull, kOpEcho, kOpFail, kOpBig, 77};  // not kOpBlock
          switch (rng() % 8) {
            case 0: std::atomic_ref<uint32_t>(s.state).store(static_cast<uint32_t>(rng() % 6)); break;
            case 1: s.opcode = ops[rng() % 5]; break;
            case 2: s.seq = rng(); break;
            case 3: s.payload[rng() % kMaxPayload] = static_cast<uint8_t>(rng()); break;
            case 4: s.client_sleeping = static_cast<uint32_t>(rng()); break;
            case 5: s.length = static_cast<uint32_t>(rng() % (kMaxPayload + 1)); break;
            case 6: l->doorbell.sleeping = static_cast<uint32_t>(rng()); break;
            case 7: reinterpret_cast<uint8_t*>(&l->header)[rng() % sizeof(l->header)] =
                        static_cast<uint8_t>(rng()); break;
          }
          RevocationSlot& r = l->revocations[rng() % kRevocationSlots];
          reinterpret_cast<uint8_t*>(&r)[rng() % sizeof(r)] = static_cast<uint8_t>(rng());
        }
        RequestSlot& s = l->slots[rng() % kRequestSlots];
        s.length = static_cast<uint32_t>(rng() % (kMaxPayload + 1));
        std::atomic_ref<uint32_t>(s.state).store(kSlotRequest);
        std::atomic_ref<uint32_t>(l->doorbell.count).fetch_add(1);
        FutexWakeAll(&l->doorbell.count);
      }
      // ...then one no honest client writes.
      RequestSlot& s = l->slots[0];
      s.length = 0xFFFFFFF0u;
      std::atomic_ref<uint32_t>(s.state).store(kSlotRequest);
      std::atomic_ref<uint32_t>(l->doorbell.count).fetch_add(1);
      FutexWakeAll(&l->doorbell.count);
    });
  });
  const auto start = std::chrono::steady_clock::now();
  Start();
  EXPECT_TRUE(KilledBy(Reap(hostile), SIGKILL)) << "the server should have killed it";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms) << "dropped before the bad length";
  EXPECT_TRUE(ExitedWith(Reap(honest), kOk));
  ASSERT_TRUE(WaitFor([&] { return Disconnects().size() == 2; }, 5s));
  int protocol_errors = 0;
  for (const Status& s : Disconnects()) protocol_errors += s.err() == EPROTO;
  EXPECT_EQ(protocol_errors, 1);
  EXPECT_GE(server_->kills(), 1u);
}

TEST_F(Process, RevocationAgainstAForgedAckTimesOut) {
  // A client that writes "acked" with the wrong sequence number has not acked.
  Child hostile = Fork([&] {
    return Hostile(path_, [&](ChannelLayout* l, int) {
      for (;;) {
        for (RevocationSlot& r : l->revocations) {
          if (std::atomic_ref<uint32_t>(r.state).load() == kRevPosted) {
            r.ack_seq = r.seq + 1;
            std::atomic_ref<uint32_t>(r.state).store(kRevAcked);
            FutexWakeAll(&r.state);
          }
        }
        std::this_thread::sleep_for(1ms);
      }
    });
  });
  Start();
  ASSERT_TRUE(WaitFor([&] { return server_->Clients().size() == 1; }, 10s));
  Revocation one{0, 4096, 0};
  auto r = server_->Revoke({&one, 1}, 100ms);
  const bool killed = r.has_value() && r->killed == 1;
  EXPECT_TRUE(killed) << "a forged ack was taken for an acknowledgement";
  EXPECT_TRUE(HasExited(hostile.pid));
  if (!killed) ::kill(hostile.pid, SIGKILL);  // do not hang in Reap
  EXPECT_TRUE(KilledBy(Reap(hostile), SIGKILL));
}

TEST_F(Process, WritingOnTheSocketAfterTheHandshakeIsPunished) {
  Child hostile = Fork([&] {
    return Hostile(path_, [](ChannelLayout*, int sock) {
      [[maybe_unused]] ssize_t n = ::send(sock, "junk", 4, MSG_NOSIGNAL);
    });
  });
  Start();
  EXPECT_TRUE(KilledBy(Reap(hostile), SIGKILL));
  ASSERT_TRUE(WaitFor([&] { return Disconnects().size() == 1; }, 5s));
  EXPECT_EQ(Disconnects()[0].err(), EPROTO) << Disconnects()[0].ToString();
}

// ---- other uids ----------------------------------------------------------------

constexpr uid_t kNobody = 65534;

bool BecomeNobody() {
  return ::setgroups(0, nullptr) == 0 && ::setgid(kNobody) == 0 && ::setuid(kNobody) == 0;
}

TEST_F(Process, OtherUidIsRefusedWithEacces) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another uid";
  Child c = Fork([&] {
    if (!BecomeNobody()) return kNoConnect;
    auto cl = Client::Connect(path_);
    if (cl.has_value()) return kNotRefused;
    const Status& e = cl.error();
    bool clear = e.err() == EACCES && e.message().find("uid 65534") != std::string::npos &&
                 e.message().find("through the mount") != std::string::npos;
    return clear ? kOk : kBadCall;
  });
  Start();
  EXPECT_TRUE(ExitedWith(Reap(c), kOk));
  EXPECT_TRUE(server_->Clients().empty());
  EXPECT_TRUE(Disconnects().empty());  // never admitted
}

TEST_F(Process, OtherUidInTheDevicesGroupIsAdmitted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another uid";
  ASSERT_EQ(::fchown(device_fd_.get(), 0, kNobody), 0);
  ASSERT_EQ(::fchmod(device_fd_.get(), 0660), 0);
  Child c = Fork([&] {
    if (!BecomeNobody()) return kNoConnect;
    auto cl = Client::Connect(path_);
    if (!cl) return kNoConnect;
    std::vector<uint8_t> out;
    return (*cl)->Call(kOpEcho, Bytes("member"), &out).ok() ? kOk : kBadCall;
  });
  Start();
  EXPECT_TRUE(ExitedWith(Reap(c), kOk));
}

}  // namespace
}  // namespace udax::share::testing
