// share/server.h — the mount's server for direct clients: accepts on the
// Listener, admits (admission.h), hands each admitted client the device and
// its own channel, serves its requests on a thread of its own, revokes ranges
// in clients, and notices their death.
//
// Threads: one poller (accepts; watches every admitted client's socket and
// pidfd: EOF, garbage on the socket, or exit shuts that client's channel
// down; reaps finished sessions), and one thread per client (the handshake,
// then its requests in order). The handler runs on the client's thread, so
// different clients' requests run concurrently: it must be thread-safe.
//
// Invariants:
//  * a client is admitted only after the handshake and the admission rule;
//    a refused one gets a Welcome with the errno and a message, and no fd;
//  * a client that breaks the protocol (bad hello, a request too long,
//    anything written on the socket after the handshake) is disconnected;
//    nothing it does can crash the server or make it wait without bound;
//  * Revoke returns only when every client it asked has acknowledged, is
//    gone, or was killed and is dead (or KillAndWait gave up: then its error
//    says so, and what that client could reach must stay reserved);
//  * a client's socket is closed only after its thread stopped touching its
//    channel, so once a client sees EOF the server writes nothing more.
// Thread safety: every public method may be called from any thread.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "share/fd.h"
#include "share/rendezvous.h"
#include "share/server_channel.h"
#include "udax/status.h"

namespace udax::share {

struct ClientInfo {
  uint64_t id = 0;  // this server's number for the client, never reused
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t revocations_posted = 0;
  uint64_t revocations_acked = 0;
};

// Answers one request: a Status (errno and message go back to the client),
// and on success the response payload (at most kMaxPayload bytes).
using RequestHandler = std::function<Status(const ClientInfo& client, uint32_t opcode,
                                            std::span<const uint8_t> request,
                                            std::vector<uint8_t>* response)>;

struct ServerOptions {
  int device_fd = -1;            // passed to admitted clients (dup'ed by SCM_RIGHTS)
  std::string device_name;       // for messages
  RequestHandler handler;        // opcodes other than kOpNull
  size_t max_clients = 64;       // connections at once, handshakes included
  std::chrono::milliseconds handshake_timeout{1000};
  std::chrono::nanoseconds spin{std::chrono::microseconds(50)};  // per client thread
  std::chrono::milliseconds kill_wait{10000};  // SIGKILL → dead, at most
  // A client left or died (why: ok), or was dropped (why: the reason); its
  // thread has stopped. A client dropped for breaking the protocol after its
  // admission is also killed: it may hold mappings it can no longer be asked
  // to give up.
  std::function<void(const ClientInfo&, const Status& why)> on_disconnect;
};

struct RevokeReport {
  size_t clients = 0;  // asked
  size_t acked = 0;    // acknowledged every range
  size_t gone = 0;     // went away before acknowledging
  size_t killed = 0;   // missed the deadline, killed, and dead
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Start(Listener listener, ServerOptions options);
  ~Server();  // Stop()

  // Disconnects every client, stops every thread, removes the socket.
  void Stop();

  std::vector<ClientInfo> Clients() const;

  // Revokes `ranges` in every admitted client (or only client `only_id`),
  // each acknowledging within `deadline`; a client that does not is killed,
  // and Revoke returns once it is dead. ETIMEDOUT when a killed client did
  // not die within kill_wait (the report is then in the message only).
  Result<RevokeReport> Revoke(std::span<const Revocation> ranges, std::chrono::milliseconds deadline,
                              uint64_t only_id = 0);

  // The number of the last revocation posted to client `id` (0: none, or
  // no such client): see ServerChannel::last_revocation_seq.
  uint64_t LastRevocationSeq(uint64_t id) const;

  uint64_t revocations() const { return revocations_.load(); }
  uint64_t acknowledgements() const { return acks_.load(); }
  uint64_t kills() const { return kills_.load(); }

 private:
  struct Session;
  Server() = default;
  void Poll();
  void Accept();
  void RunSession(const std::shared_ptr<Session>& s);
  Status Admit(Session& s);
  void Nudge();
  void Reap(bool all);

  ServerOptions options_;
  struct stat device_stat_{};
  Listener listener_;
  UniqueFd wake_;  // eventfd: nudges the poller
  std::thread poller_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> revocations_{0}, acks_{0}, kills_{0};

  mutable std::mutex mu_;  // guards sessions_ and next_id_
  std::map<uint64_t, std::shared_ptr<Session>> sessions_;
  uint64_t next_id_ = 1;
};

}  // namespace udax::share
