// share/server_channel.cc — the mount's side of a channel (see server_channel.h).
#include "share/server_channel.h"

#include <bit>
#include <cstring>
#include <string>

#include "share/futex.h"

namespace udax::share {

namespace {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::microseconds;

constexpr auto kDoorbellBackstop = std::chrono::seconds(1);
constexpr auto kAckSlice = milliseconds(10);
constexpr auto kAckSpin = microseconds(20);
static_assert(kRevocationSlots <= 64, "free_rev_ is one 64-bit mask");
constexpr uint64_t kAllRevocationSlots =
    kRevocationSlots == 64 ? ~0ull : (1ull << kRevocationSlots) - 1;
}  // namespace

ServerChannel::ServerChannel(ChannelLayout* layout, std::chrono::nanoseconds spin)
    : l_(layout), spin_(spin), request_buf_(kMaxPayload), free_rev_(kAllRevocationSlots) {}

bool ServerChannel::AnyReady() const {
  for (RequestSlot& s : l_->slots)
    if (Word(s.state).load(std::memory_order_seq_cst) == kSlotRequest) return true;
  return false;
}

bool ServerChannel::TakeReady(Request* req, Status* bad) {
  for (uint32_t k = 0; k < kRequestSlots; ++k) {
    const uint32_t i = (next_scan_ + k) % kRequestSlots;
    RequestSlot& s = l_->slots[i];
    uint32_t expect = kSlotRequest;
    if (!Word(s.state).compare_exchange_strong(expect, kSlotBusy, std::memory_order_acq_rel))
      continue;
    // Each field once, into our own memory; only the copies are used.
    const uint64_t seq = Word64(s.seq).load(std::memory_order_relaxed);
    const uint32_t opcode = Word(s.opcode).load(std::memory_order_relaxed);
    const uint32_t length = Word(s.length).load(std::memory_order_relaxed);
    if (length > kMaxPayload) {
      *bad = Errno(EPROTO, "client wrote a request of " + std::to_string(length) +
                               " bytes in slot " + std::to_string(i) + " (at most " +
                               std::to_string(kMaxPayload) + ")");
      return false;
    }
    std::memcpy(request_buf_.data(), s.payload, length);
    *req = Request{i, seq, opcode, std::span<const uint8_t>(request_buf_.data(), length)};
    next_scan_ = i + 1;
    return true;
  }
  return false;
}

Result<bool> ServerChannel::NextRequest(Request* req) {
  DoorbellLine& d = l_->doorbell;
  for (;;) {
    if (shut_down()) return false;
    Status bad;
    if (TakeReady(req, &bad)) return true;
    if (!bad.ok()) return bad;
    PublishCpu(d.receiver_cpu);
    if (SpinUntil(spin_, [&] { return shut_down() || AnyReady(); }, d.poster_cpu)) continue;
    // Sleep. The client stores a slot's state, bumps the count, and
    // wakes us if it sees `sleeping`; we store `sleeping`, then look at
    // the slots again (all seq_cst): one of us sees the other. A bump after `seen` makes
    // the wait return at once.
    const uint32_t seen = Word(d.count).load(std::memory_order_acquire);
    Word(d.sleeping).store(1, std::memory_order_seq_cst);
    if (!shut_down() && !AnyReady()) FutexWait(&d.count, seen, kDoorbellBackstop);
    Word(d.sleeping).store(0, std::memory_order_relaxed);
  }
}

void ServerChannel::Respond(const Request& req, const Status& status,
                            std::span<const uint8_t> payload) {
  RequestSlot& s = l_->slots[req.slot];  // req.slot is ours, bounded by TakeReady
  Status st = status;
  if (st.ok() && payload.size() > kMaxPayload)
    st = Errno(EOVERFLOW, "response of " + std::to_string(payload.size()) + " bytes (at most " +
                              std::to_string(kMaxPayload) + ")");
  std::span<const uint8_t> body = payload;
  if (!st.ok()) {
    const std::string& m = st.message();
    body = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(m.data()),
                                    std::min<size_t>(m.size(), kMaxPayload));
  }
  if (!body.empty()) std::memcpy(s.payload, body.data(), body.size());
  Word(s.length).store(static_cast<uint32_t>(body.size()), std::memory_order_relaxed);
  s.status = st.err();
  Word64(s.seq).store(req.seq, std::memory_order_relaxed);
  Word(s.state).store(kSlotResponse, std::memory_order_seq_cst);
  if (Word(s.client_sleeping).load(std::memory_order_seq_cst)) FutexWakeAll(&s.state);
}

bool ServerChannel::GrabRevocationSlot(uint32_t* slot, Clock::time_point deadline) {
  std::unique_lock lk(rev_mu_);
  if (!rev_cv_.wait_until(lk, deadline, [&] { return free_rev_ != 0 || shut_down(); }) ||
      shut_down())
    return false;
  *slot = static_cast<uint32_t>(std::countr_zero(free_rev_));
  free_rev_ &= ~(1ull << *slot);
  return true;
}

void ServerChannel::ReleaseRevocationSlot(uint32_t slot) {
  Word(l_->revocations[slot].state).store(kRevFree, std::memory_order_release);
  {
    std::lock_guard lk(rev_mu_);
    free_rev_ |= 1ull << slot;
  }
  rev_cv_.notify_one();
}

bool ServerChannel::Acked(uint32_t slot, uint64_t seq) const {
  RevocationSlot& r = l_->revocations[slot];
  return Word(r.state).load(std::memory_order_acquire) == kRevAcked &&
         Word64(r.ack_seq).load(std::memory_order_relaxed) == seq;
}

Status ServerChannel::WaitAck(uint32_t slot, uint64_t seq, Clock::time_point deadline) {
  RevocationSlot& r = l_->revocations[slot];
  SpinUntil(kAckSpin, [&] { return Acked(slot, seq) || shut_down(); }, l_->rev_doorbell.receiver_cpu);
  for (;;) {
    if (Acked(slot, seq)) {
      acked_.fetch_add(1, std::memory_order_relaxed);
      return Status::Ok();
    }
    if (shut_down()) return Errno(ENOTCONN, "client gone before it acknowledged a revocation");
    const auto now = Clock::now();
    if (now >= deadline) return Errno(ETIMEDOUT, "client did not acknowledge a revocation in time");
    const uint32_t observed = Word(r.state).load(std::memory_order_acquire);
    if (observed == kRevAcked && Acked(slot, seq)) continue;  // acked since the check
    FutexWait(&r.state, observed, std::min<Clock::duration>(deadline - now, kAckSlice));
  }
}

void ServerChannel::Post(RevokeOp& op, Clock::time_point deadline) {
  while (op.next < op.ranges.size()) {
    // Block for a free slot only with nothing of ours to wait for.
    uint32_t slot;
    if (!GrabRevocationSlot(&slot, op.inflight.empty() ? deadline : Clock::now())) return;
    uint64_t seq;
    {
      std::lock_guard lk(rev_mu_);
      seq = ++rev_seq_;
    }
    const Revocation& want = op.ranges[op.next++];
    RevocationSlot& r = l_->revocations[slot];
    Word64(r.ino).store(want.ino, std::memory_order_relaxed);
    Word64(r.offset).store(want.offset, std::memory_order_relaxed);
    Word64(r.length).store(want.length, std::memory_order_relaxed);
    Word(r.reason).store(want.reason, std::memory_order_relaxed);
    Word64(r.seq).store(seq, std::memory_order_relaxed);
    Word(r.state).store(kRevPosted, std::memory_order_seq_cst);
    op.inflight.push_back({slot, seq});
    posted_.fetch_add(1, std::memory_order_relaxed);
    // As for requests: count bumped after the state, the sleeper woken if seen.
    DoorbellLine& d = l_->rev_doorbell;
    PublishCpu(d.poster_cpu);
    Word(d.count).fetch_add(1, std::memory_order_seq_cst);
    if (Word(d.sleeping).load(std::memory_order_seq_cst)) FutexWakeAll(&d.count);
  }
}

Status ServerChannel::Finish(RevokeOp& op, Clock::time_point deadline) {
  Status result;
  while (result.ok() && (op.next < op.ranges.size() || !op.inflight.empty())) {
    Post(op, deadline);
    if (op.inflight.empty()) {
      result = shut_down() ? Errno(ENOTCONN, "client gone")
                           : Errno(ETIMEDOUT, "no free revocation slot before the deadline");
      break;
    }
    result = WaitAck(op.inflight.front().slot, op.inflight.front().seq, deadline);
    if (result.ok()) {
      ReleaseRevocationSlot(op.inflight.front().slot);
      op.inflight.erase(op.inflight.begin());
    }
  }
  for (const RevokeOp::Posted& p : op.inflight) ReleaseRevocationSlot(p.slot);
  op.inflight.clear();
  return result;
}

Status ServerChannel::Revoke(std::span<const Revocation> ranges, Clock::time_point deadline) {
  RevokeOp op;
  op.ranges = ranges;
  Post(op, deadline);
  return Finish(op, deadline);
}

void ServerChannel::Shutdown() {
  {
    std::lock_guard lk(rev_mu_);
    gone_.store(true, std::memory_order_release);
  }
  rev_cv_.notify_all();
  Word(l_->doorbell.count).fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(&l_->doorbell.count);
  for (RevocationSlot& r : l_->revocations) FutexWakeAll(&r.state);
}

}  // namespace udax::share
