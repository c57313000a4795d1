// share/client_channel.cc — a direct client's side of a channel
// (see client_channel.h).
#include "share/client_channel.h"

#include <bit>
#include <cstring>
#include <string>

#include "share/futex.h"

namespace udax::share {

namespace {
constexpr auto kCallBackstop = std::chrono::seconds(1);
constexpr auto kServiceSpin = std::chrono::microseconds(20);
static_assert(kRequestSlots <= 32, "free_ is one 32-bit mask");
constexpr uint32_t kAllRequestSlots = kRequestSlots == 32 ? ~0u : (1u << kRequestSlots) - 1;

Status Gone() { return Errno(ENOTCONN, "the udax mount is gone"); }
}  // namespace

ClientChannel::ClientChannel(ChannelLayout* layout, std::chrono::nanoseconds spin)
    : l_(layout), spin_(spin), free_(kAllRequestSlots) {}

uint32_t ClientChannel::GrabSlot() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return free_ != 0 || server_gone(); });
  if (server_gone()) return kRequestSlots;
  const uint32_t slot = static_cast<uint32_t>(std::countr_zero(free_));
  free_ &= ~(1u << slot);
  return slot;
}

void ClientChannel::ReleaseSlot(uint32_t slot) {
  {
    std::lock_guard lk(mu_);
    free_ |= 1u << slot;
  }
  cv_.notify_one();
}

Status ClientChannel::Call(uint32_t opcode, std::span<const uint8_t> request,
                           std::vector<uint8_t>* response) {
  if (request.size() > kMaxPayload)
    return Errno(EMSGSIZE, "request of " + std::to_string(request.size()) + " bytes (at most " +
                               std::to_string(kMaxPayload) + ")");
  if (server_gone()) return Gone();
  const uint32_t i = GrabSlot();
  if (i == kRequestSlots) return Gone();
  RequestSlot& s = l_->slots[i];
  const uint64_t seq = seq_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (!request.empty()) std::memcpy(s.payload, request.data(), request.size());
  Word(s.opcode).store(opcode, std::memory_order_relaxed);
  Word(s.length).store(static_cast<uint32_t>(request.size()), std::memory_order_relaxed);
  Word64(s.seq).store(seq, std::memory_order_relaxed);
  Word(s.state).store(kSlotRequest, std::memory_order_seq_cst);
  // The doorbell: see ServerChannel::NextRequest for the other half.
  DoorbellLine& d = l_->doorbell;
  PublishCpu(d.poster_cpu);
  Word(d.count).fetch_add(1, std::memory_order_seq_cst);
  if (Word(d.sleeping).load(std::memory_order_seq_cst)) FutexWakeAll(&d.count);
  // MarkServerGone stores gone_ and then turns waiting slots Dead: if it did
  // so before our store, we see gone_ here (both sides are seq_cst).
  if (server_gone()) return Gone();  // the slot stays taken: the channel is dead

  auto answered = [&] {
    uint32_t st = Word(s.state).load(std::memory_order_acquire);
    return st == kSlotResponse || st == kSlotDead;
  };
  if (!SpinUntil(spin_, answered, d.receiver_cpu)) {
    for (;;) {
      Word(s.client_sleeping).store(1, std::memory_order_seq_cst);
      const uint32_t st = Word(s.state).load(std::memory_order_seq_cst);
      if (st == kSlotResponse || st == kSlotDead || server_gone()) break;
      FutexWait(&s.state, st, kCallBackstop);
    }
    Word(s.client_sleeping).store(0, std::memory_order_relaxed);
  }
  if (Word(s.state).load(std::memory_order_acquire) != kSlotResponse) return Gone();  // slot kept
  const int32_t status = s.status;
  const uint32_t length = std::min(Word(s.length).load(std::memory_order_relaxed), kMaxPayload);
  const uint64_t echoed = Word64(s.seq).load(std::memory_order_relaxed);
  Status result;
  if (echoed != seq) {
    result = Errno(EPROTO, "response to request " + std::to_string(echoed) + " in the slot of " +
                               std::to_string(seq));
  } else if (status != 0) {
    result = Errno(status, std::string(reinterpret_cast<const char*>(s.payload), length));
  } else if (response) {
    response->assign(s.payload, s.payload + length);
  }
  Word(s.state).store(kSlotIdle, std::memory_order_release);
  ReleaseSlot(i);
  return result;
}

bool ClientChannel::AnyPosted() const {
  for (RevocationSlot& r : l_->revocations)
    if (Word(r.state).load(std::memory_order_seq_cst) == kRevPosted) return true;
  return false;
}

void ClientChannel::ServeRevocations(const std::function<void(const Revocation&)>& handler) {
  DoorbellLine& d = l_->rev_doorbell;
  auto done = [&] { return stop_.load(std::memory_order_acquire) || server_gone(); };
  while (!done()) {
    bool served = false;
    for (RevocationSlot& r : l_->revocations) {
      if (Word(r.state).load(std::memory_order_acquire) != kRevPosted) continue;
      Revocation rev;
      rev.ino = Word64(r.ino).load(std::memory_order_relaxed);
      rev.offset = Word64(r.offset).load(std::memory_order_relaxed);
      rev.length = Word64(r.length).load(std::memory_order_relaxed);
      rev.reason = Word(r.reason).load(std::memory_order_relaxed);
      const uint64_t seq = Word64(r.seq).load(std::memory_order_relaxed);
      rev.seq = seq;
      if (handler) handler(rev);
      Word64(r.ack_seq).store(seq, std::memory_order_relaxed);
      Word(r.state).store(kRevAcked, std::memory_order_release);
      FutexWakeAll(&r.state);
      served = true;
    }
    if (served) continue;
    PublishCpu(d.receiver_cpu);
    if (SpinUntil(kServiceSpin, [&] { return done() || AnyPosted(); }, d.poster_cpu)) continue;
    const uint32_t seen = Word(d.count).load(std::memory_order_acquire);
    Word(d.sleeping).store(1, std::memory_order_seq_cst);
    if (!done() && !AnyPosted()) FutexWait(&d.count, seen, std::chrono::nanoseconds(-1));
    Word(d.sleeping).store(0, std::memory_order_relaxed);
  }
}

void ClientChannel::WakeService() {
  // A bump after the service thread read the count makes its wait return.
  Word(l_->rev_doorbell.count).fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(&l_->rev_doorbell.count);
}

void ClientChannel::MarkServerGone() {
  {
    std::lock_guard lk(mu_);
    gone_.store(true, std::memory_order_seq_cst);
  }
  cv_.notify_all();
  for (RequestSlot& s : l_->slots) {
    for (uint32_t from : {uint32_t{kSlotRequest}, uint32_t{kSlotBusy}}) {
      uint32_t expect = from;
      if (Word(s.state).compare_exchange_strong(expect, kSlotDead, std::memory_order_acq_rel)) {
        FutexWakeAll(&s.state);
        break;
      }
    }
  }
  WakeService();
}

void ClientChannel::Stop() {
  stop_.store(true, std::memory_order_seq_cst);
  WakeService();
}

}  // namespace udax::share
