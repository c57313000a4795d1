// serve/session.h — Session: one direct client's state in the mount: its
// credentials as a Caller, its handle table (u64 → an open file of the
// mount's filesystem) and its leases (one RemoteLease per in-core inode it
// holds anything of).
//
// Invariants:
//  * handles are never reused within a session (a counter from 1); a handle
//    not in the table is EBADF;
//  * while a handle of an inode is open the client's open file keeps the
//    inode in core, and so its RemoteLease registered; the last close of an
//    inode drops its lease — unless a mapping window outlives it (a client
//    that closed before unmapping), when the lease keeps that file open
//    (Pin) until the session ends;
//  * Close() (disconnect, Stop) unregisters every lease before it closes
//    any file, so an unlinked file is reclaimed with no lease left on it.
// Threads: the table and the leases change on the client's session thread
// (its requests, served one at a time) and in Close(), which runs once that
// thread has ended; mu_ guards both structures against readers on other
// threads (status) and Close.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "api/backend.h"
#include "fs/inode.h"
#include "serve/remote_lease.h"
#include "share/server.h"
#include "udax/fs.h"

namespace udax::serve {

struct OpenFile {
  std::unique_ptr<FileBackend> file;
  std::shared_ptr<Inode> ip;  // in core while `file` is open
  int flags = 0;              // open flags (access mode checked per call)
};

class Session {
 public:
  Session(const share::ClientInfo& info, share::Server* server, std::chrono::milliseconds revoke_timeout);
  ~Session();  // Close()

  const share::ClientInfo& info() const { return info_; }
  // The client as udax's Caller (CallerScope): its uid/gid from the
  // connection; CAP_FSETID and supplementary groups read from
  // /proc/PID/status when a file with setuid/setgid asks.
  const Caller& caller() const { return caller_; }

  uint64_t Add(OpenFile f);
  // The open file of `handle`, or EBADF. Session thread only; valid until
  // that handle's Remove.
  Result<OpenFile*> Get(uint64_t handle);
  // Closes `handle` (EBADF when not open) and, when it was the inode's last
  // handle, drops or pins its lease.
  Status Remove(uint64_t handle);
  // The lease on `f`'s inode, created and registered at first need.
  RemoteLease& LeaseOf(const OpenFile& f);

  // Drops every lease (unregistered first), then closes every file.
  void Close();

  struct Counts {
    uint64_t files = 0, mappings = 0, leased_bytes = 0;
  };
  Counts counts() const;

 private:
  const share::ClientInfo info_;
  share::Server* const server_;
  const std::chrono::milliseconds revoke_timeout_;
  Caller caller_;

  mutable std::mutex mu_;  // guards files_ and leases_ (see the top)
  uint64_t next_handle_ = 1;
  std::map<uint64_t, OpenFile> files_;
  std::map<uint64_t, std::unique_ptr<RemoteLease>> leases_;  // by inode number
};

}  // namespace udax::serve
