// share/wire.cc — one message with file descriptors over a Unix stream socket.
#include "share/wire.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <cstring>

#include "share/sys_error.h"

namespace udax::share {

namespace {
constexpr size_t kMaxFds = 4;
}

Status SendMessage(int sock, const void* msg, size_t len, std::span<const int> fds) {
  if (fds.size() > kMaxFds) return Errno(EINVAL, "too many fds for one message");
  iovec iov{const_cast<void*>(msg), len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (!fds.empty()) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return SysError("sendmsg");
  if (static_cast<size_t>(n) != len) return Errno(EPROTO, "short send of a handshake message");
  return Status::Ok();
}

Status RecvMessage(int sock, void* msg, size_t len, size_t max_fds, std::vector<UniqueFd>* fds,
                   std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  if (::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
    return SysError("setsockopt SO_RCVTIMEO");
  iovec iov{msg, len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (max_fds > 0) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * std::min(max_fds, kMaxFds));
  }
  ssize_t n;
  do {
    n = ::recvmsg(sock, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  std::vector<UniqueFd> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); max_fds > 0 && c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      got.emplace_back(fd);  // owned now: closed on every error below
    }
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return Errno(ETIMEDOUT, "no handshake message within " + std::to_string(timeout.count()) + " ms");
    return SysError("recvmsg");
  }
  if (n == 0) return Errno(EPROTO, "peer closed the socket during the handshake");
  if (static_cast<size_t>(n) != len)
    return Errno(EPROTO, "short handshake message (" + std::to_string(n) + " of " +
                             std::to_string(len) + " bytes)");
  if ((mh.msg_flags & MSG_CTRUNC) || got.size() > max_fds)
    return Errno(EPROTO, "handshake message carries more file descriptors than expected");
  if (fds) *fds = std::move(got);
  return Status::Ok();
}

}  // namespace udax::share
