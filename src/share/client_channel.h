// share/client_channel.h — a direct client's side of its channel: calls
// (request, then wait for the response) and the revocation service loop.
//
// Calls: any thread may call; each call takes one of the kRequestSlots slots
// for its whole round trip (more callers wait for a slot), so up to
// kRequestSlots requests are in flight at once. A caller spins for `spin`,
// then sleeps on its slot's futex until the response, or until the server is
// gone: MarkServerGone turns every slot still waiting into Dead and wakes it,
// so a waiting call returns ENOTCONN, as does every later one.
//
// Revocations: ServeRevocations is the body of the client's own service
// thread, which does nothing else, so an acknowledgement never waits for a
// busy or blocked application thread. It runs the handler for each posted
// revocation (the handler must not wait for application threads either: it
// makes mappings PROT_NONE and drops cached extents, then returns) and
// acknowledges it.
// Thread safety: as above; MarkServerGone and Stop from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "share/channel_format.h"
#include "share/server_channel.h"
#include "udax/status.h"

namespace udax::share {

class ClientChannel {
 public:
  ClientChannel(ChannelLayout* layout, std::chrono::nanoseconds spin);

  // Sends `opcode` with `request` (at most kMaxPayload bytes, else EMSGSIZE)
  // and waits for the answer: the server's status (its message in the
  // Status), and on success the response payload in *response.
  // ENOTCONN once the server is gone.
  Status Call(uint32_t opcode, std::span<const uint8_t> request, std::vector<uint8_t>* response);

  // Serves revocations until Stop or MarkServerGone.
  void ServeRevocations(const std::function<void(const Revocation&)>& handler);

  // The server is gone: waiting and later calls fail with ENOTCONN, and
  // ServeRevocations returns. Idempotent.
  void MarkServerGone();
  bool server_gone() const { return gone_.load(std::memory_order_acquire); }
  // ServeRevocations returns (the client is closing).
  void Stop();

 private:
  bool AnyPosted() const;
  uint32_t GrabSlot();  // kRequestSlots when the server is gone
  void ReleaseSlot(uint32_t slot);
  void WakeService();

  ChannelLayout* const l_;
  const std::chrono::nanoseconds spin_;
  std::atomic<bool> gone_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> seq_{0};
  std::mutex mu_;                  // guards free_
  std::condition_variable cv_;
  uint32_t free_;                  // bit i: request slot i is free
};

}  // namespace udax::share
