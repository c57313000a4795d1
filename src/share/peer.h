// share/peer.h — who is at the other end of a Unix socket, and the process
// handle (pidfd) the server keeps for it: credentials, liveness, killing.
//
// Invariants:
//  * IdentifyPeer returns credentials of the process that connected, with a
//    pidfd for that very process: from SO_PEERPIDFD (Linux >= 6.5), else from
//    pidfd_open(pid) — then a pid reused after the peer died could be named,
//    which is why the supplementary groups are read from /proc only while the
//    pidfd says the process is still alive, and checked again after;
//  * KillAndWait returns ok only once the process is dead (its pidfd is
//    readable: every thread has exited, so its address space is gone).
// Thread safety: all functions are thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "share/fd.h"
#include "udax/status.h"

namespace udax::share {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;  // effective uid at connect()
  gid_t gid = 0;  // effective gid at connect()
  std::vector<gid_t> groups;  // supplementary groups
};

struct Peer {
  PeerCredentials creds;
  UniqueFd pidfd;
};

Result<Peer> IdentifyPeer(int socket_fd);

// The "Groups:" line of a /proc/PID/status text; EUCLEAN when it is missing
// or not a list of numbers.
Result<std::vector<gid_t>> ParseSupplementaryGroups(std::string_view status_text);

// True when the process behind `pidfd` has exited.
bool IsDead(int pidfd);
// Waits until the process is dead, at most `bound`; false on timeout.
bool WaitDead(int pidfd, std::chrono::milliseconds bound);
// SIGKILLs the process and waits until it is dead, at most `bound`
// (ETIMEDOUT after it, with the process maybe still holding what it mapped).
Status KillAndWait(int pidfd, pid_t pid, std::chrono::milliseconds bound);

}  // namespace udax::share
