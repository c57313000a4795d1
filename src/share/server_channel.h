// share/server_channel.h — the mount's side of one client's channel: take
// requests, answer them, post revocations and wait for their acknowledgements.
//
// The client may write anything into the channel at any time (it is a
// separate, possibly hostile, process): every request is copied into the
// server's own buffer and checked there, and no value read from the channel
// is used as an index or a length before it is bounded (channel_format.h).
//
// Waiting: the session thread spins for `spin` after its last request, then
// sleeps on the doorbell futex (an idle client costs no CPU; a backstop
// timeout of 1 s bounds how long a scribbling client can keep the thread from
// noticing Shutdown). An acknowledgement is awaited by spinning briefly, then
// sleeping on the slot's futex in slices of at most 10 ms, so a Shutdown (the
// client died) ends every wait promptly.
//
// Thread safety: NextRequest and Respond belong to one thread (the
// session's). Revoke and Shutdown may be called from any thread, concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "share/channel_format.h"
#include "udax/status.h"

namespace udax::share {

// A range the client must stop reaching, with the caller's codes (for the
// filesystem, proto/ops.h: an inode's file range and an InvalidateReason).
// `seq` is the server's number for it, filled in for the client's handler
// (numbers grow with each revocation posted to that client).
struct Revocation {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t reason = 0;
  uint64_t ino = 0;
  uint64_t seq = 0;
};

class ServerChannel {
 public:
  ServerChannel(ChannelLayout* layout, std::chrono::nanoseconds spin);

  // A request copied out of the channel; payload points into this object's
  // buffer and stays valid until the next NextRequest.
  struct Request {
    uint32_t slot = 0;
    uint64_t seq = 0;
    uint32_t opcode = 0;
    std::span<const uint8_t> payload;
  };
  // Waits for the next request: true with *req filled, false once Shutdown
  // was called, EPROTO when the client wrote a request no honest client
  // writes (length over kMaxPayload): the caller disconnects it.
  Result<bool> NextRequest(Request* req);
  // Answers `req`: status, and on success `payload` (EOVERFLOW instead when
  // it is longer than kMaxPayload); on an error, the message as the payload.
  void Respond(const Request& req, const Status& status, std::span<const uint8_t> payload);

  // Posts every range and waits until the client acknowledged all of them, at
  // most until `deadline`: ok, ETIMEDOUT (missed), ENOTCONN (shut down).
  Status Revoke(std::span<const Revocation> ranges, std::chrono::steady_clock::time_point deadline);

  // Revoke in two steps, so that one caller can post to every client before
  // it waits for any: Post fills the free slots without blocking (unless
  // none of op's is in flight), Finish posts the rest as slots free up and
  // waits; Finish releases every slot op holds, whatever it returns.
  struct RevokeOp {
    struct Posted {
      uint32_t slot;
      uint64_t seq;
    };
    std::span<const Revocation> ranges;
    size_t next = 0;
    std::vector<Posted> inflight;  // oldest first
  };
  void Post(RevokeOp& op, std::chrono::steady_clock::time_point deadline);
  Status Finish(RevokeOp& op, std::chrono::steady_clock::time_point deadline);

  // The client is gone (or being dropped): NextRequest returns false, every
  // Revoke returns ENOTCONN. Idempotent.
  void Shutdown();
  bool shut_down() const { return gone_.load(std::memory_order_acquire); }

  uint64_t revocations_posted() const { return posted_.load(std::memory_order_relaxed); }
  // The number of the last revocation posted (0: none yet).
  uint64_t last_revocation_seq() {
    std::lock_guard lk(rev_mu_);
    return rev_seq_;
  }
  uint64_t revocations_acked() const { return acked_.load(std::memory_order_relaxed); }

 private:
  bool TakeReady(Request* req, Status* bad);
  bool AnyReady() const;
  bool Acked(uint32_t slot, uint64_t seq) const;
  Status WaitAck(uint32_t slot, uint64_t seq, std::chrono::steady_clock::time_point deadline);
  bool GrabRevocationSlot(uint32_t* slot, std::chrono::steady_clock::time_point deadline);
  void ReleaseRevocationSlot(uint32_t slot);

  ChannelLayout* const l_;
  const std::chrono::nanoseconds spin_;
  std::atomic<bool> gone_{false};
  uint32_t next_scan_ = 0;                 // session thread only
  std::vector<uint8_t> request_buf_;       // session thread only

  std::mutex rev_mu_;                      // guards free_rev_ and rev_seq_
  std::condition_variable rev_cv_;
  uint64_t free_rev_;                      // bit i: revocation slot i is free
  uint64_t rev_seq_ = 0;
  std::atomic<uint64_t> posted_{0}, acked_{0};
};

}  // namespace udax::share
