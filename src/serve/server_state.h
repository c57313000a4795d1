// serve/server_state.h — DirectServer::Impl: what the mount's service to
// direct clients holds (direct_server.cc runs it; handlers.cc answers the
// requests with it).
//
// Invariants:
//  * a Session exists for every admitted client that sent a request, from
//    its first request until its disconnect, when Session::Close (on the
//    closer thread, never the share::Server's poller: closing a file may
//    wait for meta_mu_) drops its leases and files;
//  * once `stopping` is set no new lease or fault is answered (ESHUTDOWN),
//    so after Stop's revocation no client reaches anything;
//  * the FsImpl and the Filesystem's backend are kept alive by shared
//    pointers; the Filesystem itself must outlive the server.
// Thread safety: sessions_mu guards sessions and the closer's queue; the
// rest is set before the share::Server starts and read-only after.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "api/backend.h"
#include "fs/fs_impl.h"
#include "serve/session.h"
#include "share/fd.h"
#include "share/server.h"
#include "udax/serve.h"

namespace udax {

struct DirectServer::Impl {
  std::shared_ptr<FsBackend> backend;  // the Filesystem's: the library's calls
  std::shared_ptr<FsImpl> fs;          // leases, faults, touch
  DirectServerOptions opts;
  share::UniqueFd device_fd;           // a dup of the mount's open device
  std::string socket;
  std::unique_ptr<share::Server> server;
  std::atomic<bool> stopping{false};
  std::atomic<bool> ready{false};  // `server` is set: handlers may run

  mutable std::mutex sessions_mu;
  std::condition_variable closer_cv;
  std::map<uint64_t, std::shared_ptr<serve::Session>> sessions;  // by client id
  std::deque<std::shared_ptr<serve::Session>> to_close;
  bool closer_quit = false;
  std::thread closer;

  // The session of `client`, made at its first request.
  std::shared_ptr<serve::Session> SessionOf(const share::ClientInfo& client);
  // on_disconnect: queues the session for the closer thread.
  void Disconnected(const share::ClientInfo& client);
  void RunCloser();
  // FsImpl's shutdown listener (meta_mu_ held): a removal is broadcast to
  // every client (the whole filesystem revoked, reason Removed).
  void OnShutdown(InvalidateReason why);
  // What kServerStatus and GetStatus answer (`except`: the asker's id).
  SharingStatus Sharing(uint64_t except) const;
};

namespace serve {
// Answers one request of `session` (handlers.cc).
Status HandleRequest(DirectServer::Impl& srv, Session& session, uint32_t opcode,
                     std::span<const uint8_t> request, std::vector<uint8_t>* response);
}  // namespace serve

}  // namespace udax
