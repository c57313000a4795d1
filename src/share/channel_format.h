// share/channel_format.h — the layout of the shared-memory channel between the
// mount and one direct client (a sealed memfd, mapped MAP_SHARED by both).
// The same layout in prose: docs/shared.md, "The channel".
//
//   ChannelLayout
//   ├─ header        magic, version, sizes (written by the server before the
//   │                client sees the memfd; never read back by the server)
//   ├─ doorbell      client → server: bumped after each request is posted
//   ├─ rev_doorbell  server → client: bumped after each revocation is posted
//   ├─ slots[kRequestSlots]          one request/response each
//   └─ revocations[kRevocationSlots] one revocation/acknowledgement each
//
// A request slot's `state` walks Idle → Request (client) → Busy (server took a
// copy) → Response (server) → Idle (client); Dead (the client's own watcher,
// when the server is gone). A revocation slot's walks Free → Posted (server)
// → Acked (client) → Free (server).
//
// Invariants the server keeps, whatever the client writes here at any time:
//  * it reads each field of a slot once, into its own memory, after an
//    acquire load of the state, and checks the copy (length <= kMaxPayload);
//  * it never reads the header, never takes an index from shared memory, and
//    treats a revocation as acknowledged only when state == Acked and
//    ack_seq equals the sequence number it posted;
//  * the memfd is sealed (no shrink, no grow), so no access to it can fault.
#pragma once

#include <cstddef>
#include <cstdint>

namespace udax::share {

constexpr uint32_t kChannelMagic = 0x43584455;  // "UDXC" in memory order
constexpr uint32_t kChannelVersion = 1;

constexpr uint32_t kRequestSlots = 8;       // requests in flight per client
constexpr uint32_t kRevocationSlots = 32;   // revocations in flight per client
constexpr uint32_t kPathMax = 4096;         // PATH_MAX
// Inline payload of a request or response: two paths (rename, link) and a
// page of anything else.
constexpr uint32_t kMaxPayload = 2 * kPathMax + 4096;

// Opcode 0 is the transport's own null request (answered without the handler).
constexpr uint32_t kOpNull = 0;

enum SlotState : uint32_t {
  kSlotIdle = 0,
  kSlotRequest = 1,
  kSlotBusy = 2,
  kSlotResponse = 3,
  kSlotDead = 4,
};

enum RevocationState : uint32_t {
  kRevFree = 0,
  kRevPosted = 1,
  kRevAcked = 2,
};

struct ChannelHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t request_slots;
  uint32_t revocation_slots;
  uint32_t max_payload;
  uint32_t pad;
  uint64_t layout_bytes;   // sizeof(ChannelLayout)
};

struct alignas(64) RequestSlot {
  uint32_t state;            // SlotState; futex word the client sleeps on
  uint32_t client_sleeping;  // 1 while the client sleeps on `state`
  uint64_t seq;              // client's number; the server echoes it
  uint32_t opcode;           // request
  uint32_t length;           // payload bytes, request then response
  int32_t status;            // response: 0 or an errno value
  uint32_t pad[9];
  uint8_t payload[kMaxPayload];
};

struct alignas(64) RevocationSlot {
  uint32_t state;     // RevocationState; futex word the server sleeps on
  uint32_t reason;    // the caller's code (an InvalidateReason at integration)
  uint64_t seq;       // server's number
  uint64_t offset;    // byte range revoked (of file `ino`; of the device when 0)
  uint64_t length;
  uint64_t ack_seq;   // client: seq of the revocation it acknowledges
  uint64_t ino;       // the caller's: an inode number (proto/ops.h)
  uint64_t pad[2];
};

struct alignas(64) DoorbellLine {
  uint32_t count;     // futex word, bumped by the poster
  uint32_t sleeping;  // 1 while the receiver sleeps on `count`
  // The CPU each side last ran on (a scheduling hint, futex.h SpinUntil: a
  // waiter yields only to a peer on its own CPU). Never trusted for more.
  uint32_t poster_cpu;
  uint32_t receiver_cpu;
  uint32_t pad[12];
};

struct ChannelLayout {
  alignas(64) ChannelHeader header;
  DoorbellLine doorbell;       // client → server (requests)
  DoorbellLine rev_doorbell;   // server → client (revocations)
  RequestSlot slots[kRequestSlots];
  RevocationSlot revocations[kRevocationSlots];
};

static_assert(sizeof(RequestSlot) == 64 + kMaxPayload, "request slot layout");
static_assert(offsetof(RequestSlot, payload) == 64, "payload starts at a line");
static_assert(sizeof(RevocationSlot) == 64, "revocation slot is one line");
static_assert(sizeof(DoorbellLine) == 64, "doorbell is one line");
static_assert(sizeof(ChannelLayout) == 64 * 3 + kRequestSlots * sizeof(RequestSlot) +
                                           kRevocationSlots * sizeof(RevocationSlot),
              "channel layout");

}  // namespace udax::share
