// share/client.h — a direct client's connection to the mount: the handshake
// (it receives the open device and its channel), calls, and its two threads.
//
// A Client runs
//  * a watcher thread, blocked in poll() on the socket: EOF means the server
//    is gone (it died, stopped, or dropped us), and then every waiting and
//    later Call fails with ENOTCONN and on_disconnect runs, once;
//  * a service thread serving revocations (ClientChannel::ServeRevocations),
//    which runs on_revoke and acknowledges, and does nothing else.
// Both sleep in the kernel when there is nothing to do.
// Thread safety: Call from any number of threads; the destructor must not
// race with a Call.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "share/channel.h"
#include "share/client_channel.h"
#include "share/fd.h"
#include "udax/status.h"

namespace udax::share {

struct ClientOptions {
  std::chrono::milliseconds handshake_timeout{2000};
  // How long a Call spins before it sleeps on its futex.
  std::chrono::nanoseconds spin{std::chrono::microseconds(20)};
  // Runs on the service thread for each revocation, before the ack.
  std::function<void(const Revocation&)> on_revoke;
  // Runs on the watcher thread once the server is gone.
  std::function<void()> on_disconnect;
};

// What the handshake hands an admitted client (exposed for tests that play
// a hostile client).
struct Admission {
  UniqueFd socket;
  UniqueFd device;
  UniqueFd channel;        // the memfd
  size_t channel_bytes = 0;
};
// Connects to `socket_path` and does the handshake. The server's refusal
// comes back as its status (EACCES with its message for a client that may
// not use the device), ENOTCONN when nobody serves there.
Result<Admission> Handshake(const std::string& socket_path, std::chrono::milliseconds timeout);
// The same over a socket already connected to the mount (`socket_path`
// names it in messages).
Result<Admission> HandshakeOn(UniqueFd sock, const std::string& socket_path,
                              std::chrono::milliseconds timeout);

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const std::string& socket_path,
                                                 ClientOptions options = {});
  // FindSocket(mountpoint), then Connect.
  static Result<std::unique_ptr<Client>> ConnectToMount(const std::string& mountpoint,
                                                        ClientOptions options = {});
  ~Client();

  Status Call(uint32_t opcode, std::span<const uint8_t> request, std::vector<uint8_t>* response) {
    return channel_->Call(opcode, request, response);
  }
  // The open device (read-write), for the client to map; -1 once taken.
  int device_fd() const { return admission_.device.get(); }
  // Hands the device descriptor over (the caller closes it when done: its
  // lock on the device goes with the last descriptor of it).
  UniqueFd TakeDevice() { return std::move(admission_.device); }
  bool connected() const { return !channel_->server_gone(); }

 private:
  Client() = default;
  void Watch();

  ClientOptions options_;
  Admission admission_;
  ChannelMapping mapping_;
  std::unique_ptr<ClientChannel> channel_;
  UniqueFd wake_;  // eventfd: tells the watcher to return (destructor)
  std::thread watcher_, service_;
};

}  // namespace udax::share
