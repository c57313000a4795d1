// share/client.cc — the handshake, and a Client's watcher and service threads.
#include "share/client.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstring>

#include "share/rendezvous.h"
#include "share/sys_error.h"
#include "share/wire.h"

namespace udax::share {

Result<Admission> Handshake(const std::string& socket_path, std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(UniqueFd sock, ConnectUnix(socket_path));
  return HandshakeOn(std::move(sock), socket_path, timeout);
}

Result<Admission> HandshakeOn(UniqueFd sock, const std::string& socket_path,
                              std::chrono::milliseconds timeout) {
  Hello hello{};
  hello.magic = kHelloMagic;
  hello.version = kProtocolVersion;
  hello.flags = kHelloWantDirect;
  // A server that refuses at accept (too many clients) may answer and close
  // before the hello is sent: the send then fails (EPIPE), and its refusal,
  // already in our receive queue, is the reason to report.
  Status sent = SendMessage(sock.get(), &hello, sizeof(hello), {}).Prefixed("handshake");
  if (!sent.ok() && sent.err() != EPIPE && sent.err() != ECONNRESET) return sent;
  Welcome w{};
  std::vector<UniqueFd> fds;
  Status got = RecvMessage(sock.get(), &w, sizeof(w), 2, &fds, timeout).Prefixed("handshake");
  if (!got.ok()) return sent.ok() ? got : sent;
  if (w.magic != kWelcomeMagic || w.version != kProtocolVersion)
    return Errno(EPROTO, "handshake: the server at " + socket_path + " speaks another protocol");
  if (w.status != 0) {
    std::string msg(w.message, std::min(w.message_len, kMaxWelcomeMessage));
    return Errno(w.status, msg.empty() ? "refused by the mount" : msg);
  }
  if (w.nfds != 2 || fds.size() != 2)
    return Errno(EPROTO, "handshake: expected the device and the channel, got " +
                             std::to_string(fds.size()) + " file descriptors");
  Admission a;
  a.socket = std::move(sock);
  a.device = std::move(fds[0]);
  a.channel = std::move(fds[1]);
  a.channel_bytes = w.channel_bytes;
  return a;
}

Result<std::unique_ptr<Client>> Client::Connect(const std::string& socket_path,
                                                ClientOptions options) {
  std::unique_ptr<Client> c(new Client());
  c->options_ = std::move(options);
  ASSIGN_OR_RETURN(c->admission_, Handshake(socket_path, c->options_.handshake_timeout));
  ASSIGN_OR_RETURN(c->mapping_,
                   OpenChannel(c->admission_.channel.get(), c->admission_.channel_bytes));
  c->channel_ = std::make_unique<ClientChannel>(c->mapping_.layout(), c->options_.spin);
  c->wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!c->wake_.valid()) return SysError("eventfd");
  Client* self = c.get();
  c->service_ = std::thread([self] { self->channel_->ServeRevocations(self->options_.on_revoke); });
  c->watcher_ = std::thread([self] { self->Watch(); });
  return c;
}

Result<std::unique_ptr<Client>> Client::ConnectToMount(const std::string& mountpoint,
                                                       ClientOptions options) {
  ASSIGN_OR_RETURN(std::string path, FindSocket(mountpoint));
  return Connect(path, std::move(options));
}

void Client::Watch() {
  pollfd p[2] = {{admission_.socket.get(), POLLIN | POLLRDHUP, 0}, {wake_.get(), POLLIN, 0}};
  for (;;) {
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0 && p[1].revents) return;  // closing
    // EOF, an error, or a byte the server never sends: either way it is gone.
    channel_->MarkServerGone();
    if (options_.on_disconnect) options_.on_disconnect();
    return;
  }
}

Client::~Client() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
    watcher_.join();
  }
  if (service_.joinable()) {
    channel_->Stop();
    service_.join();
  }
}

}  // namespace udax::share
