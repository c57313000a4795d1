// share/server.cc — accepting, admitting and serving direct clients; revoking
// ranges in them (see server.h).
#include "share/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cstring>

#include "share/admission.h"
#include "share/channel.h"
#include "share/peer.h"
#include "share/sys_error.h"
#include "share/wire.h"

namespace udax::share {

using Clock = std::chrono::steady_clock;

struct Server::Session {
  uint64_t id = 0;
  UniqueFd sock;
  Peer peer;
  ClientInfo info;            // set before `admitted`
  NewChannel channel;
  std::unique_ptr<ServerChannel> chan;  // set before `admitted`
  std::thread thread;
  std::mutex mu;              // guards dropped, why, and chan's creation
  bool dropped = false;
  Status why;                 // the first reason the session ended, if not ok
  std::atomic<bool> kill{false};  // broke the protocol: the session thread kills it
  std::atomic<bool> admitted{false}, finished{false};

  void End(const Status& reason) {
    std::lock_guard lk(mu);
    if (why.ok()) why = reason;
  }
  Status Why() {
    std::lock_guard lk(mu);
    return why;
  }

  // Ends the session: a handshake is cut off (its socket shut down), a
  // serving thread stops at its next request.
  void Drop() {
    std::lock_guard lk(mu);
    dropped = true;
    if (chan) {
      chan->Shutdown();
    } else {
      ::shutdown(sock.get(), SHUT_RDWR);
    }
  }
};

namespace {

void Refuse(int sock, int err, const std::string& msg) {
  Welcome w{};
  w.magic = kWelcomeMagic;
  w.version = kProtocolVersion;
  w.status = err;
  w.message_len = static_cast<uint32_t>(std::min<size_t>(msg.size(), kMaxWelcomeMessage));
  std::memcpy(w.message, msg.data(), w.message_len);
  SendMessage(sock, &w, sizeof(w), {}).IgnoreError();  // it may have gone already
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(Listener listener, ServerOptions options) {
  std::unique_ptr<Server> s(new Server());
  if (::fstat(options.device_fd, &s->device_stat_) != 0) return SysError("fstat device");
  int fl = ::fcntl(listener.fd(), F_GETFL);
  if (fl < 0 || ::fcntl(listener.fd(), F_SETFL, fl | O_NONBLOCK) != 0)
    return SysError("nonblocking listener");
  s->options_ = std::move(options);
  s->listener_ = std::move(listener);
  s->wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->wake_.valid()) return SysError("eventfd");
  Server* self = s.get();
  s->poller_ = std::thread([self] { self->Poll(); });
  return s;
}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  Nudge();
  if (poller_.joinable()) poller_.join();
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : sessions_) s->Drop();
  }
  Reap(true);
  listener_ = Listener();  // removes the socket
}

void Server::Nudge() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
}

std::vector<ClientInfo> Server::Clients() const {
  std::vector<ClientInfo> out;
  std::lock_guard lk(mu_);
  for (const auto& [id, s] : sessions_) {
    if (!s->admitted.load(std::memory_order_acquire) || s->chan->shut_down()) continue;
    ClientInfo ci = s->info;
    ci.revocations_posted = s->chan->revocations_posted();
    ci.revocations_acked = s->chan->revocations_acked();
    out.push_back(ci);
  }
  return out;
}

void Server::Poll() {
  std::vector<pollfd> fds;
  std::vector<std::shared_ptr<Session>> watched;
  while (!stopping_.load()) {
    fds.assign({{listener_.fd(), POLLIN, 0}, {wake_.get(), POLLIN, 0}});
    watched.clear();
    {
      std::lock_guard lk(mu_);
      for (auto& [id, s] : sessions_) {
        if (!s->admitted.load(std::memory_order_acquire) || s->chan->shut_down()) continue;
        watched.push_back(s);
        fds.push_back({s->sock.get(), POLLIN | POLLRDHUP, 0});
        fds.push_back({s->peer.pidfd.get(), POLLIN, 0});
      }
    }
    int r = ::poll(fds.data(), fds.size(), -1);
    if (r < 0) {
      if (errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // ENOMEM
      continue;
    }
    if (stopping_.load()) break;
    if (fds[1].revents) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = ::read(wake_.get(), &v, sizeof(v));
    }
    if (fds[0].revents & POLLIN) Accept();
    for (size_t i = 0; i < watched.size(); ++i) {
      Session& s = *watched[i];
      const short sock_ev = fds[2 + 2 * i].revents, pid_ev = fds[3 + 2 * i].revents;
      if (!sock_ev && !pid_ev) continue;
      if (!pid_ev) {
        // EOF: it left. A byte: the protocol has nothing after the handshake.
        char b;
        ssize_t n = ::recv(s.sock.get(), &b, 1, MSG_DONTWAIT | MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR) &&
            !(sock_ev & (POLLHUP | POLLERR | POLLRDHUP)))
          continue;  // spurious
        if (n > 0) {
          s.End(Errno(EPROTO, "client wrote on the socket after the handshake"));
          s.kill.store(true);
        }
      }
      s.chan->Shutdown();
    }
    Reap(false);
  }
}

void Server::Accept() {
  UniqueFd fd(::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) {
    // Out of fds or memory: do not spin on the still-readable listener.
    if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return;
  }
  std::lock_guard lk(mu_);
  if (sessions_.size() >= options_.max_clients) {
    Refuse(fd.get(), EAGAIN,
           "the mount serves " + std::to_string(options_.max_clients) + " clients already");
    return;
  }
  auto s = std::make_shared<Session>();
  s->id = next_id_++;
  s->sock = std::move(fd);
  sessions_[s->id] = s;
  // The thread's copy of `s` dies when the thread function returns; Reap
  // joins it while holding its own.
  s->thread = std::thread([this, s] { RunSession(s); });
}

Status Server::Admit(Session& s) {
  Hello h{};
  RETURN_IF_ERROR(RecvMessage(s.sock.get(), &h, sizeof(h), 0, nullptr, options_.handshake_timeout)
                      .Prefixed("hello"));
  if (h.magic != kHelloMagic || h.version != kProtocolVersion || h.flags != kHelloWantDirect) {
    Refuse(s.sock.get(), EPROTO, "unknown handshake (udax protocol version " +
                                     std::to_string(kProtocolVersion) + " expected)");
    return Errno(EPROTO, "bad hello");
  }
  auto peer = IdentifyPeer(s.sock.get());
  if (!peer) {
    Refuse(s.sock.get(), peer.error().err(), peer.error().message());
    return peer.error();
  }
  s.peer = std::move(peer).value();
  const PeerCredentials& who = s.peer.creds;
  if (!MayReadWrite(who, device_stat_)) {
    std::string msg = RefusalMessage(who, options_.device_name);
    Refuse(s.sock.get(), EACCES, msg);
    return Errno(EACCES, msg);
  }
  auto ch = CreateChannel();
  if (!ch) {
    Refuse(s.sock.get(), ch.error().err(), ch.error().message());
    return ch.error();
  }
  {
    std::lock_guard lk(s.mu);
    if (s.dropped) return Errno(ECANCELED, "server stopping");
    s.channel = std::move(ch).value();
    s.chan = std::make_unique<ServerChannel>(s.channel.mapping.layout(), options_.spin);
    s.info.id = s.id;
    s.info.pid = who.pid;
    s.info.uid = who.uid;
    s.info.gid = who.gid;
  }
  Welcome w{};
  w.magic = kWelcomeMagic;
  w.version = kProtocolVersion;
  w.nfds = 2;
  w.channel_bytes = ChannelBytes();
  const int fds[2] = {options_.device_fd, s.channel.memfd.get()};
  RETURN_IF_ERROR(SendMessage(s.sock.get(), &w, sizeof(w), fds).Prefixed("welcome"));
  s.admitted.store(true, std::memory_order_release);
  Nudge();  // the poller watches its socket and pidfd from now on
  return Status::Ok();
}

void Server::RunSession(const std::shared_ptr<Session>& s) {
  Status admitted = Admit(*s);
  s->End(admitted);
  if (admitted.ok()) {
    ServerChannel::Request req;
    std::vector<uint8_t> response;
    for (;;) {
      auto next = s->chan->NextRequest(&req);
      if (!next.has_value()) {
        s->End(next.error());
        s->kill.store(true);
        break;
      }
      if (!*next) break;
      response.clear();
      Status st;
      if (req.opcode == kOpNull) {
        st = Status::Ok();
      } else if (options_.handler) {
        st = options_.handler(s->info, req.opcode, req.payload, &response);
      } else {
        st = Errno(ENOSYS, "no handler");
      }
      s->chan->Respond(req, st, response);
    }
    s->chan->Shutdown();
    if (s->kill.load()) {
      // It broke the protocol: it may hold mappings it can no longer be
      // asked to give up, so it goes.
      Status k = KillAndWait(s->peer.pidfd.get(), s->info.pid, options_.kill_wait);
      kills_.fetch_add(1);
      if (!k.ok()) s->End(k);
    }
  }
  s->finished.store(true, std::memory_order_release);
  Nudge();
}

void Server::Reap(bool all) {
  std::vector<std::shared_ptr<Session>> done;
  {
    std::lock_guard lk(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (all || it->second->finished.load(std::memory_order_acquire)) {
        done.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : done) {
    if (s->thread.joinable()) s->thread.join();
    s->sock.Reset();  // the client sees EOF only now: we write nothing more
    if (s->admitted.load() && options_.on_disconnect) options_.on_disconnect(s->info, s->Why());
  }
}

uint64_t Server::LastRevocationSeq(uint64_t id) const {
  std::shared_ptr<Session> s;
  {
    std::lock_guard lk(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || !it->second->admitted.load(std::memory_order_acquire)) return 0;
    s = it->second;
  }
  return s->chan->last_revocation_seq();
}

Result<RevokeReport> Server::Revoke(std::span<const Revocation> ranges,
                                    std::chrono::milliseconds deadline, uint64_t only_id) {
  const auto until = Clock::now() + deadline;
  std::vector<std::shared_ptr<Session>> targets;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : sessions_)
      if (s->admitted.load(std::memory_order_acquire) && (only_id == 0 || id == only_id))
        targets.push_back(s);
  }
  RevokeReport report;
  report.clients = targets.size();
  std::vector<ServerChannel::RevokeOp> ops(targets.size());
  std::vector<uint64_t> posted0(targets.size()), acked0(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {  // post to all, then wait for each
    posted0[i] = targets[i]->chan->revocations_posted();
    acked0[i] = targets[i]->chan->revocations_acked();
    ops[i].ranges = ranges;
    targets[i]->chan->Post(ops[i], until);
  }
  std::string failures;
  for (size_t i = 0; i < targets.size(); ++i) {
    Session& s = *targets[i];
    Status st = s.chan->Finish(ops[i], until);
    revocations_.fetch_add(s.chan->revocations_posted() - posted0[i]);
    acks_.fetch_add(s.chan->revocations_acked() - acked0[i]);
    if (st.ok()) {
      ++report.acked;
    } else if (st.err() == ENOTCONN) {
      ++report.gone;
    } else {
      // Missed the deadline: kill, and report only once it is dead.
      s.End(Errno(ETIMEDOUT, "missed the revocation deadline: killed"));
      Status k = KillAndWait(s.peer.pidfd.get(), s.info.pid, options_.kill_wait);
      s.chan->Shutdown();
      kills_.fetch_add(1);
      if (k.ok()) {
        ++report.killed;
      } else {
        failures += (failures.empty() ? "" : "; ") + k.message();
      }
    }
  }
  if (!failures.empty()) return Errno(ETIMEDOUT, failures);
  return report;
}

}  // namespace udax::share
