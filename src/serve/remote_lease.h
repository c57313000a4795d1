// serve/remote_lease.h — RemoteLease: what one direct client may reach of
// one in-core inode, registered in the inode's AddressSpace like a local
// mapping, so every path that revokes mappings (truncate, punch, CoW, a
// hole filled, size changes, clone, memory failure, shutdown: see
// fs/inode_table.cc) revokes it too.
//
// It records
//  * `held`: file ranges the client may reach in device memory now — the
//    segments kLease handed out (holes included: the client caches that they
//    read as zeroes) and the ranges kFault installed (zero pages included);
//  * `windows`: the mapping windows kMapAdd announced (kMapDrop removes one),
//    so a change anywhere under a live mapping reaches the client even where
//    it has not faulted yet (the pages between EOF and the window's end).
//
// InvalidateFileRange (meta_mu_ held, the AddressSpace's mutex held): when
// the range overlaps `held` — or, for a revocation the program is told of
// (notify), a window — the overlap leaves `held` (not the windows), and a
// share::Revocation {ino, off, len, reason | kRevokeNotify when notify} goes
// to this client only; it returns when the client acknowledged, is gone, or
// was killed and is dead (Server::Revoke) — only then may the caller change
// the blocks. (A window where nothing was installed has nothing to drop: an
// internal revocation — a size change, zero pages replaced — skips it, as a
// local mapping's is a no-op there.)
//
// Thread safety: mu_ guards held_, windows_ and pin_; taken inside the
// AddressSpace's mutex, never around it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "api/backend.h"
#include "fs/inode.h"
#include "serve/range_set.h"
#include "share/server.h"

namespace udax::serve {

class RemoteLease final : public MappedRange {
 public:
  RemoteLease(share::Server* server, uint64_t client_id, std::chrono::milliseconds timeout,
              std::shared_ptr<Inode> ip);
  ~RemoteLease() override;  // Unregister()
  RemoteLease(const RemoteLease&) = delete;
  RemoteLease& operator=(const RemoteLease&) = delete;

  // Into / out of the inode's AddressSpace. Unregister waits for a
  // revocation running on this lease (the AddressSpace's mutex).
  void Register();
  void Unregister();

  void Hold(uint64_t off, uint64_t len);
  void AddWindow(uint64_t off, uint64_t len);
  // False when no such window was announced.
  bool DropWindow(uint64_t off, uint64_t len);
  uint64_t held_bytes() const;
  uint64_t windows() const;
  // Keeps the client's last open file of the inode open while a window
  // outlives its handle (a client that closed it before unmapping).
  void Pin(std::unique_ptr<FileBackend> file);

  void InvalidateFileRange(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                           bool notify) override;

 private:
  share::Server* const server_;
  const uint64_t client_id_;
  const std::chrono::milliseconds timeout_;
  const std::shared_ptr<Inode> ip_;
  bool registered_ = false;  // the owning session's thread only

  mutable std::mutex mu_;
  RangeSet held_;
  std::multimap<uint64_t, uint64_t> windows_;  // off → len
  std::unique_ptr<FileBackend> pin_;
};

}  // namespace udax::serve
