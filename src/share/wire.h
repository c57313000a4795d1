// share/wire.h — the two messages on the Unix socket (the handshake), and
// sending/receiving a message with file descriptors (SCM_RIGHTS).
//
//   client → server  Hello    {magic "UDXH", version, flags}
//   server → client  Welcome  {magic "UDXW", version, status, channel_bytes,
//                              message}  + fds [device, channel memfd] when
//                              status == 0
// Nothing else is ever sent: after the handshake the socket only tells each
// side that the other is alive (EOF when it is not); the server disconnects
// a client that writes anything more. Fixed sizes, so a message is read
// whole or refused; a received message is checked before it is used.
// Thread safety: the functions are thread-safe; one socket, one user.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "share/fd.h"
#include "udax/status.h"

namespace udax::share {

constexpr uint32_t kHelloMagic = 0x48584455;    // "UDXH" in memory order
constexpr uint32_t kWelcomeMagic = 0x57584455;  // "UDXW"
constexpr uint16_t kProtocolVersion = 1;
constexpr uint16_t kHelloWantDirect = 1;        // the only kind of client today
constexpr uint32_t kMaxWelcomeMessage = 472;

struct Hello {
  uint32_t magic;
  uint16_t version;
  uint16_t flags;
  uint64_t reserved;  // zero
};

struct Welcome {
  uint32_t magic;
  uint16_t version;
  uint16_t nfds;          // 2 when status == 0, else 0
  int32_t status;         // 0, or the errno of the refusal
  uint32_t message_len;   // bytes of message used (<= kMaxWelcomeMessage)
  uint64_t channel_bytes; // size of the channel memfd
  uint64_t reserved[2];
  char message[kMaxWelcomeMessage];
};

static_assert(sizeof(Hello) == 16);
static_assert(sizeof(Welcome) == 512);

// Sends `len` bytes as one message, with `fds` attached to it.
Status SendMessage(int sock, const void* msg, size_t len, std::span<const int> fds);
// Receives exactly `len` bytes within `timeout`, and at most `max_fds` file
// descriptors (close-on-exec; more, or a truncated control message, is an
// error and every received fd is closed). EPROTO on EOF or a short message.
Status RecvMessage(int sock, void* msg, size_t len, size_t max_fds, std::vector<UniqueFd>* fds,
                   std::chrono::milliseconds timeout);

}  // namespace udax::share
