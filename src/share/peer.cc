// share/peer.cc — SO_PEERCRED / SO_PEERPIDFD, /proc/PID/status groups, pidfd
// liveness and SIGKILL.
#include "share/peer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "share/sys_error.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace udax::share {

namespace {

constexpr size_t kMaxStatusBytes = 1 << 20;  // 65536 groups of 7 digits fit

Result<std::string> ReadProcStatus(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return SysError("open " + path);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("read " + path);
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxStatusBytes)
      return Errno(E2BIG, path + " is larger than " + std::to_string(kMaxStatusBytes) + " bytes");
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

Result<UniqueFd> PidfdOf(int socket_fd, pid_t pid) {
  int pidfd = -1;
  socklen_t len = sizeof(pidfd);
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0)
    return UniqueFd(pidfd);
  if (errno != ENOPROTOOPT && errno != EINVAL) return SysError("getsockopt SO_PEERPIDFD");
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return SysError("pidfd_open " + std::to_string(pid));
  return UniqueFd(fd);
}

}  // namespace

Result<std::vector<gid_t>> ParseSupplementaryGroups(std::string_view text) {
  constexpr std::string_view kKey = "Groups:";
  std::string_view line;
  bool found = false;
  while (!text.empty() && !found) {
    size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (l.substr(0, kKey.size()) == kKey) {
      line = l.substr(kKey.size());
      found = true;
    }
  }
  if (!found) return Errno(EUCLEAN, "process status has no Groups: line");
  std::vector<gid_t> groups;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    unsigned long long v = 0;
    auto [end, ec] = std::from_chars(line.data() + i, line.data() + line.size(), v);
    if (ec != std::errc() || end == line.data() + i || v >= static_cast<gid_t>(-1))
      return Errno(EUCLEAN, "process status: bad Groups: entry at byte " + std::to_string(i));
    groups.push_back(static_cast<gid_t>(v));
    i = static_cast<size_t>(end - line.data());
  }
  return groups;
}

Result<Peer> IdentifyPeer(int socket_fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return SysError("getsockopt SO_PEERCRED");
  Peer peer;
  peer.creds.pid = cred.pid;
  peer.creds.uid = cred.uid;
  peer.creds.gid = cred.gid;
  ASSIGN_OR_RETURN(peer.pidfd, PidfdOf(socket_fd, cred.pid));
  auto dead = [&] {
    return Errno(ESRCH, "client pid " + std::to_string(cred.pid) + " exited while connecting");
  };
  if (IsDead(peer.pidfd.get())) return dead();
  ASSIGN_OR_RETURN(std::string status, ReadProcStatus(cred.pid));
  if (IsDead(peer.pidfd.get())) return dead();  // the text may be a successor's
  ASSIGN_OR_RETURN(peer.creds.groups, ParseSupplementaryGroups(status));
  return peer;
}

bool IsDead(int pidfd) { return WaitDead(pidfd, std::chrono::milliseconds(0)); }

bool WaitDead(int pidfd, std::chrono::milliseconds bound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  for (;;) {
    pollfd p{pidfd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (r > 0) return true;  // POLLIN: exited (POLLERR/POLLHUP: gone as well)
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

Status KillAndWait(int pidfd, pid_t pid, std::chrono::milliseconds bound) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
    return SysError("pidfd_send_signal SIGKILL to pid " + std::to_string(pid));
  if (!WaitDead(pidfd, bound))
    return Errno(ETIMEDOUT, "client pid " + std::to_string(pid) + " is not dead " +
                                std::to_string(bound.count()) + " ms after SIGKILL");
  return Status::Ok();
}

}  // namespace udax::share
