// client/client_fs.h — a direct client's filesystem (api/backend.h): the
// connection to the mount, the device this process maps itself, and the
// client's in-core inodes with what the mount leased of them.
//
// Data path: a file's data is read and written in device memory through
// leased segments (proto/ops.h, kLease); everything else — metadata, and
// data where no lease serves (holes, shared or unwritten blocks, appends,
// past the cached size, a failed block, setuid files) — is a request the
// mount runs as its own call (kPread/kPwrite included), so every answer is
// the library's.
//
// Revocation (docs/shared.md, "Leases"): the mount posts (ino, range,
// reason) on the channel; OnRevoke, on the connection's service thread,
// takes the inode's `barrier` exclusive — so no copy or install using the
// old segments is in progress — drops every cached segment of the inode,
// forgets its size, records the revocation's sequence number, then returns
// the mappings' range to PROT_NONE (telling the program when asked) and
// acknowledges. An answer stamped with an older sequence number than the
// inode's last revocation is stale and asked for again.
//
// Locking: ClientInode::barrier (shared: an I/O or fault install using
// leased segments; exclusive: a revocation) → ClientInode::mu (the cache) →
// ClientFs::mu_ (the inode table). No lock is held across a request to the
// mount: a request may make the mount revoke, and the revocation needs the
// barrier.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/backend.h"
#include "device/pmem_device.h"
#include "fs/address_space.h"
#include "proto/ops.h"
#include "share/client.h"

namespace udax::client {

class ClientFs;

// What this client knows of one inode while it holds a handle of it.
struct ClientInode {
  explicit ClientInode(uint64_t i) : ino(i) {}
  const uint64_t ino;
  std::shared_mutex barrier;  // see the top of the file
  std::mutex mu;              // guards the fields below
  std::map<uint64_t, proto::LeaseSegment> segs;  // data segments by file offset
  bool size_known = false;
  uint64_t size = 0;
  uint32_t mode = 0;
  bool atime_due = true;
  std::atomic<uint64_t> revoked_seq{0};  // last revocation applied (under barrier exclusive)
  std::atomic<int64_t> touched_at{-1};   // coarse clock of the last kTouch sent
  AddressSpace mappings;                 // this process's live mappings of it
  int handles = 0;                       // guarded by ClientFs::mu_
};

// One handle the mount gave this client (kOpen); closed (kClose) when the
// last File or Mapping using it is gone.
struct ClientHandle {
  ClientHandle(std::shared_ptr<ClientFs> f, uint64_t h, std::shared_ptr<ClientInode> i, uint32_t t)
      : fs(std::move(f)), handle(h), ip(std::move(i)), type(t) {}
  ~ClientHandle();
  std::shared_ptr<ClientFs> fs;
  const uint64_t handle;
  std::shared_ptr<ClientInode> ip;
  const uint32_t type;
};

class ClientFs final : public FsBackend, public std::enable_shared_from_this<ClientFs> {
 public:
  static Result<std::shared_ptr<ClientFs>> Connect(const std::string& mountpoint);
  ~ClientFs() override;

  // A request and its answer. ENOTCONN once the mount is gone or this
  // client unmounted; ENODEV once the device was removed.
  Result<std::vector<uint8_t>> Call(uint32_t op, const std::vector<uint8_t>& request);
  Status CheckLive() const;
  // In a forked child (pthread_atfork): every call fails, nothing is torn down.
  void MarkForkedAway();
  // Requests sent so far (tests: the data path sends none).
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  PmemDevice* device() const { return dev_.get(); }

  // Asks the mount for a lease on [off, off+len) of the handle's file and
  // records it (unless stale: then false). The answer is decoded into
  // *header / *segs for the caller to use under the barrier.
  Result<bool> Lease(ClientHandle& h, uint64_t off, uint64_t len, proto::LeaseHeader* header,
                     std::vector<proto::LeaseSegment>* segs);
  void ReleaseInode(ClientInode* ip);
  // A handle this client is done with: closed by the mount before it answers
  // the next request (proto/ops.h, kWithCloses).
  void CloseLater(uint64_t handle);

  // FsBackend
  Status Unmount() override;
  Result<std::unique_ptr<FileBackend>> Open(const PathAt& path, int flags, uint32_t mode) override;
  Status Mkdir(const PathAt& path, uint32_t mode) override;
  Status Rmdir(const PathAt& path) override;
  Status Unlink(const PathAt& path) override;
  Status Rename(const PathAt& from, const PathAt& to) override;
  Status Link(const PathAt& existing, const PathAt& new_path) override;
  Status Symlink(const std::string& target, const PathAt& path) override;
  Result<std::string> Readlink(const PathAt& path) override;
  Result<Stat> GetStat(const PathAt& path, bool follow) override;
  Status Chmod(const PathAt& path, uint32_t mode) override;
  Status Chown(const PathAt& path, uint32_t uid, uint32_t gid, bool follow) override;
  Status Utimens(const PathAt& path, Timespec atime, Timespec mtime, bool follow) override;
  Status Truncate(const PathAt& path, uint64_t len) override;
  Result<std::vector<DirEntry>> ReadDir(const PathAt& path) override;
  Result<StatFs> GetStatFs() override;
  Result<FsStats> GetStats() override;
  Result<SharingStatus> GetSharingStatus() override;
  Status Sync() override;
  Status RemoveDevice() override;
  Status InjectPoison(uint64_t device_offset, uint64_t len) override;
  Result<std::vector<std::pair<uint64_t, uint64_t>>> BadBlocks() override;
  Result<std::vector<BlockOwner>> QueryRmap(uint64_t device_offset, uint64_t len) override;

 private:
  enum State : int { kLive = 0, kGone = 1, kRemoved = 2, kForked = 3 };
  ClientFs() = default;
  void OnRevoke(const share::Revocation& rev);
  void OnDisconnect();
  void WaitReady() const;
  // Revokes everything, lets go of the device, then moves to `final_state`
  // (the mount died or stops serving: kGone; the device was removed: kRemoved).
  void Disconnect(InvalidateReason why, bool notify, int final_state);
  // Revokes everything locally: every cached segment and mapping (the
  // mount is gone, or unmounting).
  void RevokeEverything(InvalidateReason why, bool notify);
  // Lets go of the device (unmapped, descriptor closed) once nothing may
  // reach it: the mount is gone, stopped serving, or the device was removed.
  void DropDevice();
  // A call that found the mount gone waits until OnDisconnect revoked
  // everything (bounded), so "ENOTCONN" means "nothing of it is reachable".
  void WaitDisconnectHandled();
  std::shared_ptr<ClientInode> FindInode(uint64_t ino);
  std::shared_ptr<ClientInode> InodeFor(uint64_t ino);
  Status Simple(uint32_t op, const std::vector<uint8_t>& request);

  std::string mountpoint_;
  std::unique_ptr<PmemDevice> dev_;
  std::unique_ptr<share::Client> conn_;
  std::atomic<int> state_{kLive};
  std::atomic<bool> ready_{false};  // dev_ is set (or Connect failed): handlers may run
  std::atomic<uint64_t> requests_{0};
  std::mutex closes_mu_;  // guards closes_
  std::vector<uint64_t> closes_;  // handles to close with the next request
  std::atomic<bool> closes_pending_{false};
  std::mutex disconnect_mu_;  // guards disconnect_handled_
  std::condition_variable disconnect_cv_;
  bool disconnect_handled_ = false;
  std::mutex mu_;  // guards inodes_
  std::unordered_map<uint64_t, std::shared_ptr<ClientInode>> inodes_;
};

// Records a leased data segment in `ip`'s cache (ip.mu held), merged with
// the neighbours it continues.
void CacheSegment(ClientInode& ip, proto::LeaseSegment s);

// Revokes [off, off+len) of `ip` in this process (see the top of the file).
void RevokeInodeRange(ClientInode& ip, uint64_t off, uint64_t len, uint64_t seq, InvalidateReason why,
                      bool notify);

}  // namespace udax::client
