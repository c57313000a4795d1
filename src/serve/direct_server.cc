// serve/direct_server.cc — DirectServer (udax/serve.h): the share::Server
// with the request handler (handlers.cc), one Session per client, the closer
// thread that ends sessions, and Stop.
//
// Stop, in order: no new lease or fault is answered (`stopping`); every
// client is told (Revocation {ino 0, 0, UINT64_MAX, kRemoved | kRevokeNotify
// | kRevokeUnmount}) and waited for — acknowledged, gone, or killed and dead;
// the share::Server stops (each session thread ends; on_disconnect queues
// each session; the socket is removed); the closer drops every lease and
// closes every file. After Stop the Filesystem can be unmounted.
//
// Why a closer thread: on_disconnect runs on the share::Server's poller,
// which also notices the deaths that end other revocation waits; closing a
// file may wait for meta_mu_, held by a truncate that waits for such a
// revocation — so the poller only queues, and the closer closes.
#include <fcntl.h>

#include <cstdio>

#include "fs/fs_impl.h"
#include "proto/ops.h"
#include "serve/server_state.h"
#include "share/rendezvous.h"
#include "share/sys_error.h"

namespace udax {

std::shared_ptr<serve::Session> DirectServer::Impl::SessionOf(const share::ClientInfo& client) {
  std::lock_guard<std::mutex> g(sessions_mu);
  auto& slot = sessions[client.id];
  if (!slot) slot = std::make_shared<serve::Session>(client, server.get(), opts.revoke_timeout);
  return slot;
}

void DirectServer::Impl::Disconnected(const share::ClientInfo& client) {
  std::lock_guard<std::mutex> g(sessions_mu);
  auto it = sessions.find(client.id);
  if (it == sessions.end()) return;  // it never asked for anything
  to_close.push_back(std::move(it->second));
  sessions.erase(it);
  closer_cv.notify_one();
}

void DirectServer::Impl::RunCloser() {
  std::unique_lock<std::mutex> lk(sessions_mu);
  for (;;) {
    closer_cv.wait(lk, [&] { return closer_quit || !to_close.empty(); });
    if (to_close.empty()) return;  // quit, and nothing left
    std::shared_ptr<serve::Session> s = std::move(to_close.front());
    to_close.pop_front();
    lk.unlock();
    s->Close();
    s.reset();
    lk.lock();
  }
}

SharingStatus DirectServer::Impl::Sharing(uint64_t except) const {
  SharingStatus st;
  st.socket = socket;
  st.revoke_ms = static_cast<uint32_t>(opts.revoke_timeout.count());
  if (!server) return st;
  st.revocations = server->revocations();
  st.acknowledgements = server->acknowledgements();
  st.kills = server->kills();
  for (const share::ClientInfo& ci : server->Clients()) {
    if (ci.id == except) continue;
    DirectClientInfo c;
    c.pid = static_cast<uint32_t>(ci.pid);
    c.uid = ci.uid;
    c.gid = ci.gid;
    c.revocations = ci.revocations_posted;
    c.acknowledgements = ci.revocations_acked;
    std::shared_ptr<serve::Session> s;
    {
      std::lock_guard<std::mutex> g(sessions_mu);
      auto it = sessions.find(ci.id);
      if (it != sessions.end()) s = it->second;
    }
    if (s) {
      serve::Session::Counts n = s->counts();
      c.files_open = n.files;
      c.mappings = n.mappings;
      c.leased_bytes = n.leased_bytes;
    }
    st.clients.push_back(c);
  }
  return st;
}

Result<std::unique_ptr<DirectServer>> DirectServer::Start(Filesystem& fs, const std::string& mountpoint,
                                                          const DirectServerOptions& opts) {
  auto impl = std::make_unique<Impl>();
  impl->backend = fs.impl_;
  FsImpl* local = LocalImplOf(impl->backend.get());
  if (!local) return Errno(EINVAL, "only the process that mounted the filesystem can serve it");
  if (!local->mounted() || !local->device()) return Errno(EINVAL, "the filesystem is not mounted");
  impl->fs = local->shared_from_this();
  impl->opts = opts;
  if (impl->opts.device.empty()) impl->opts.device = local->device()->path();
  // A dup shares the mount's open file description, and so its flock
  // (docs/shared.md, "Handshake and admission").
  impl->device_fd = share::UniqueFd(::fcntl(local->device()->fd(), F_DUPFD_CLOEXEC, 0));
  if (!impl->device_fd.valid()) return share::SysError("dup of the device");
  ASSIGN_OR_RETURN(impl->socket, share::ServerSocketPath(mountpoint));
  ASSIGN_OR_RETURN(share::Listener listener, share::Listener::Create(impl->socket));

  Impl* self = impl.get();
  share::ServerOptions so;
  so.device_fd = impl->device_fd.get();
  so.device_name = impl->opts.device;
  so.handler = [self](const share::ClientInfo& client, uint32_t op, std::span<const uint8_t> in,
                      std::vector<uint8_t>* out) -> udax::Status {
    while (!self->ready.load(std::memory_order_acquire)) std::this_thread::yield();  // Start's last step
    std::shared_ptr<serve::Session> s = self->SessionOf(client);
    return serve::HandleRequest(*self, *s, op, in, out);
  };
  so.on_disconnect = [self](const share::ClientInfo& client, const udax::Status&) {
    self->Disconnected(client);
  };
  impl->closer = std::thread([self] { self->RunCloser(); });
  auto server = share::Server::Start(std::move(listener), std::move(so));
  if (!server.has_value()) {
    {
      std::lock_guard<std::mutex> g(impl->sessions_mu);
      impl->closer_quit = true;
    }
    impl->closer_cv.notify_all();
    impl->closer.join();
    return server.error();
  }
  impl->server = std::move(server).value();
  impl->ready.store(true, std::memory_order_release);
  {
    // A removal tells every client, leases or not: each lets go of the
    // device (and its lock) before the mount's removal goes on.
    MetaWriteLock lk(local->meta_mu());
    local->SetShutdownListener([self](InvalidateReason why) { self->OnShutdown(why); });
  }
  return std::unique_ptr<DirectServer>(new DirectServer(std::move(impl)));
}

DirectServer::DirectServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DirectServer::~DirectServer() { Stop(); }

void DirectServer::Impl::OnShutdown(InvalidateReason why) {
  if (why != InvalidateReason::kRemoved) return;  // other shutdowns: every later answer says why
  share::Revocation all;
  all.ino = 0;
  all.offset = 0;
  all.length = UINT64_MAX;
  all.reason = static_cast<uint32_t>(InvalidateReason::kRemoved) | proto::kRevokeNotify;
  auto report = server->Revoke({&all, 1}, opts.revoke_timeout);
  if (!report.has_value())
    std::fprintf(stderr, "udax: telling direct clients of the removal: %s\n", report.error().ToString().c_str());
}

void DirectServer::Stop() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  {
    MetaWriteLock lk(s.fs->meta_mu());
    s.fs->SetShutdownListener(nullptr);
  }
  share::Revocation all;
  all.ino = 0;
  all.offset = 0;
  all.length = UINT64_MAX;
  all.reason = static_cast<uint32_t>(InvalidateReason::kRemoved) | proto::kRevokeNotify | proto::kRevokeUnmount;
  auto report = s.server->Revoke({&all, 1}, s.opts.revoke_timeout);
  if (!report.has_value())
    std::fprintf(stderr, "udax: stopping direct clients: %s\n", report.error().ToString().c_str());
  s.server->Stop();  // every session thread ended; every session queued for the closer
  {
    std::lock_guard<std::mutex> g(s.sessions_mu);
    for (auto& [id, session] : s.sessions) s.to_close.push_back(std::move(session));
    s.sessions.clear();
    s.closer_quit = true;
  }
  s.closer_cv.notify_all();
  s.closer.join();
  s.device_fd.Reset();  // our share of the device's lock: the image can be mounted again
}

SharingStatus DirectServer::GetStatus() const { return impl_->Sharing(0); }

const std::string& DirectServer::socket_path() const { return impl_->socket; }

}  // namespace udax
