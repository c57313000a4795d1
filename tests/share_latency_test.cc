// tests/share_latency_test.cc — latency figures, printed, never asserted: the
// null round trip through the shared-memory channel (server in another
// process; spinning as configured, and with no spin at all so every wait
// sleeps on its futex) against a round trip of 64 bytes over a Unix stream
// socket between two processes. On a shared machine the figures move with
// its load; docs/shared.md quotes a run.
#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

#include "share_test_util.h"

namespace udax::share::testing {
namespace {

constexpr int kWarmup = 1000, kRounds = 10000;

struct Figures {
  double mean_us, p50_us, p99_us;
};

Figures Summarise(std::vector<double>& ns) {
  std::sort(ns.begin(), ns.end());
  double sum = 0;
  for (double v : ns) sum += v;
  return {sum / static_cast<double>(ns.size()) / 1000, ns[ns.size() / 2] / 1000,
          ns[ns.size() * 99 / 100] / 1000};
}

template <typename RoundTrip>
Figures Measure(RoundTrip rt) {
  for (int i = 0; i < kWarmup; ++i) rt();
  std::vector<double> ns;
  ns.reserve(kRounds);
  for (int i = 0; i < kRounds; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    rt();
    ns.push_back(static_cast<double>((std::chrono::steady_clock::now() - t0).count()));
  }
  return Summarise(ns);
}

void Print(const char* what, const Figures& f) {
  std::printf("  %-48s mean %7.2f us   p50 %7.2f us   p99 %7.2f us\n", what, f.mean_us, f.p50_us,
              f.p99_us);
}

class Latency : public ShareTest {
 protected:
  // A server in a child process, spinning `spin`; returns it once it serves.
  Child ServerChild(std::chrono::nanoseconds spin) {
    Gate up;
    Child c = Fork([&] {
      if (pin_) PinTo(1);
      ServerOptions o = Options();
      o.spin = spin;
      auto l = Listener::Create(path_);
      if (!l) return 1;
      auto s = Server::Start(std::move(l).value(), std::move(o));
      if (!s) return 1;
      up.Open();
      ::pause();
      return 0;
    });
    up.Wait();
    return c;
  }
  struct Gate {
    Gate() {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) == 0) rd = UniqueFd(p[0]), wr = UniqueFd(p[1]);
    }
    void Open() { [[maybe_unused]] ssize_t n = ::write(wr.get(), "x", 1); }
    void Wait() {
      char b;
      [[maybe_unused]] ssize_t n = ::read(rd.get(), &b, 1);
    }
    UniqueFd rd, wr;
  };

  static void PinTo(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof(set), &set);
  }
  bool pin_ = false;  // server on CPU 1, client on CPU 0

  Figures Channel(std::chrono::nanoseconds spin) {
    Child server = ServerChild(spin);
    cpu_set_t saved;
    ::sched_getaffinity(0, sizeof(saved), &saved);
    if (pin_) PinTo(0);
    ClientOptions o;
    o.spin = spin;
    auto c = Client::Connect(path_, o);
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
    Figures f{};
    if (c) {
      std::vector<uint8_t> out;
      f = Measure([&] { (*c)->Call(kOpNull, {}, &out).IgnoreError(); });
    }
    c = Errno(ECANCELED, "done");  // disconnect before the server goes
    ::kill(server.pid, SIGKILL);
    Reap(server);
    ::sched_setaffinity(0, sizeof(saved), &saved);
    return f;
  }
};

TEST_F(Latency, NullRoundTripChannelVersusUnixSocket) {
  std::printf("round trips between two processes (%d after %d warm-up; a shared 2-vCPU "
              "machine: other work disturbs these):\n", kRounds, kWarmup);
  using std::chrono::nanoseconds;
  const nanoseconds def = ClientOptions{}.spin;
  for (nanoseconds spin : {nanoseconds(0), nanoseconds(5000), def, nanoseconds(50000)}) {
    std::string what = "channel, null request, spin " + std::to_string(spin.count() / 1000) +
                       " us" + (spin == def ? " (default)" : spin.count() == 0 ? " (futex)" : "");
    Print(what.c_str(), Channel(spin));
  }
  if (::sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
    pin_ = true;
    Print("channel, null request, default spin, 2 CPUs", Channel(def));
    Print("channel, null request, futex, 2 CPUs", Channel(nanoseconds(0)));
    pin_ = false;
  }

  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd mine(sv[0]), theirs(sv[1]);
  Child echo = Fork([&] {
    mine.Reset();
    char buf[64];
    for (;;) {
      if (::recv(theirs.get(), buf, sizeof(buf), MSG_WAITALL) != sizeof(buf)) return 0;
      if (::send(theirs.get(), buf, sizeof(buf), MSG_NOSIGNAL) != sizeof(buf)) return 0;
    }
  });
  theirs.Reset();
  char buf[64] = {};
  Print("unix stream socket, 64 bytes each way", Measure([&] {
          [[maybe_unused]] ssize_t a = ::send(mine.get(), buf, sizeof(buf), MSG_NOSIGNAL);
          [[maybe_unused]] ssize_t b = ::recv(mine.get(), buf, sizeof(buf), MSG_WAITALL);
        }));
  mine.Reset();
  Reap(echo);
}

}  // namespace
}  // namespace udax::share::testing
