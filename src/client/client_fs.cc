// client/client_fs.cc — ClientFs (see client_fs.h): connecting, requests,
// revocations, and the Filesystem calls, each one request to the mount.
#include "client/client_fs.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <pthread.h>

#include <algorithm>
#include <set>
#include <thread>

#include "client/client_file.h"
#include "client/connect.h"
#include "client/paged.h"

namespace udax::client {

using proto::Reader;
using proto::Writer;

namespace {

thread_local bool tls_handling_disconnect = false;  // inside Disconnect (its callbacks)

std::vector<uint8_t> PathRequest(const PathAt& p) {
  std::vector<uint8_t> b;
  Writer w(&b);
  proto::PutPath(w, p);
  return b;
}

}  // namespace

Result<std::shared_ptr<FsBackend>> ConnectToMount(const std::string& mountpoint) {
  ASSIGN_OR_RETURN(auto fs, ClientFs::Connect(mountpoint));
  return std::shared_ptr<FsBackend>(std::move(fs));
}

ClientHandle::~ClientHandle() {
  fs->ReleaseInode(ip.get());
  if (fs->CheckLive().ok()) fs->CloseLater(handle);
}

void ClientFs::CloseLater(uint64_t handle) {
  {
    std::lock_guard<std::mutex> g(closes_mu_);
    if (closes_.size() < proto::kMaxRiderCloses) {
      closes_.push_back(handle);
      closes_pending_.store(true, std::memory_order_release);
      return;
    }
  }
  std::vector<uint8_t> b;  // full: a close of its own carries them
  Writer(&b).Put(handle);
  Call(proto::kClose, b).status().IgnoreError();
}

namespace {
// Every live connection of this process: a forked child is not the client
// the mount admitted (its pid differs, and the channel and the device are
// not inherited: MADV_DONTFORK), so in the child each one is gone.
std::mutex g_live_mu;
std::set<ClientFs*>* g_live = nullptr;

void ForkPrepare() { g_live_mu.lock(); }
void ForkParent() { g_live_mu.unlock(); }
void ForkChild() {
  if (g_live)
    for (ClientFs* fs : *g_live) fs->MarkForkedAway();
  g_live_mu.unlock();
}

void Register(ClientFs* fs) {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(ForkPrepare, ForkParent, ForkChild); });
  std::lock_guard<std::mutex> g(g_live_mu);
  if (!g_live) g_live = new std::set<ClientFs*>();
  g_live->insert(fs);
}

void Unregister(ClientFs* fs) {
  std::lock_guard<std::mutex> g(g_live_mu);
  if (g_live) g_live->erase(fs);
}
}  // namespace

void ClientFs::MarkForkedAway() {
  state_.store(kForked, std::memory_order_release);
  if (dev_) dev_->CloseInForkedChild();
}

Result<std::shared_ptr<ClientFs>> ClientFs::Connect(const std::string& mountpoint) {
  std::shared_ptr<ClientFs> fs(new ClientFs());
  Register(fs.get());
  fs->mountpoint_ = mountpoint;
  share::ClientOptions o;
  ClientFs* self = fs.get();  // the connection is torn down first in ~ClientFs
  o.on_revoke = [self](const share::Revocation& r) { self->OnRevoke(r); };
  o.on_disconnect = [self] { self->OnDisconnect(); };
  ASSIGN_OR_RETURN(fs->conn_, share::Client::ConnectToMount(mountpoint, std::move(o)));
  DeviceOptions dopts;
  dopts.exclusive = false;  // the mount holds the device's lock (and so, while open, do we)
  ASSIGN_OR_RETURN(fs->dev_, PmemDevice::Adopt(fs->conn_->TakeDevice().Release(),
                                               "the device of " + mountpoint, dopts));
  fs->dev_->ExcludeFromFork();
  fs->ready_.store(true, std::memory_order_release);
  return fs;
}

ClientFs::~ClientFs() {
  ready_.store(true, std::memory_order_release);  // a failed Connect: let waiting handlers return
  Unregister(this);
  if (state_.load() == kForked) {
    // A forked child's copy: the threads and the mappings are the parent's.
    (void)conn_.release();
    (void)dev_.release();
    return;
  }
  conn_.reset();  // its threads call OnRevoke / OnDisconnect: stop them first
}

Status ClientFs::CheckLive() const {
  switch (state_.load(std::memory_order_acquire)) {
    case kLive: return Status::Ok();
    case kRemoved: return Errno(ENODEV, "filesystem shut down: device removed");
    case kForked: return Errno(ENOTCONN, "a forked child is not a client of the mount: connect again");
    default: return Errno(ENOTCONN, "the udax mount at " + mountpoint_ + " is gone");
  }
}

Result<std::vector<uint8_t>> ClientFs::Call(uint32_t op, const std::vector<uint8_t>& request) {
  RETURN_IF_ERROR(CheckLive());
  requests_.fetch_add(1, std::memory_order_relaxed);
  std::vector<uint8_t> framed;  // the closes riding on this request, then the request
  if (closes_pending_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> g(closes_mu_);
    if (!closes_.empty()) {
      Writer w(&framed);
      w.Put(static_cast<uint32_t>(closes_.size()));
      for (uint64_t h : closes_) w.Put(h);
      framed.insert(framed.end(), request.begin(), request.end());
      closes_.clear();
      closes_pending_.store(false, std::memory_order_relaxed);
      op |= proto::kWithCloses;
    }
  }
  std::vector<uint8_t> response;
  Status st = conn_->Call(op, (op & proto::kWithCloses) ? framed : request, &response);
  if (!st.ok()) {
    if (st.err() == ENOTCONN) {
      // The mount is gone: say so only once this process reaches nothing
      // of it any more (OnDisconnect revoked everything).
      WaitDisconnectHandled();
      RETURN_IF_ERROR(CheckLive());  // removal says ENODEV
    }
    return st;
  }
  return response;
}

void ClientFs::WaitDisconnectHandled() {
  if (tls_handling_disconnect) return;  // a callback of the revocation itself
  std::unique_lock<std::mutex> g(disconnect_mu_);
  disconnect_cv_.wait_for(g, std::chrono::seconds(10), [&] { return disconnect_handled_; });
}

Status ClientFs::Simple(uint32_t op, const std::vector<uint8_t>& request) {
  ASSIGN_OR_RETURN(auto r, Call(op, request));
  return Status::Ok();
}

std::shared_ptr<ClientInode> ClientFs::FindInode(uint64_t ino) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second;
}

std::shared_ptr<ClientInode> ClientFs::InodeFor(uint64_t ino) {
  std::lock_guard<std::mutex> g(mu_);
  auto& slot = inodes_[ino];
  if (!slot) slot = std::make_shared<ClientInode>(ino);
  slot->handles++;
  return slot;
}

void ClientFs::ReleaseInode(ClientInode* ip) {
  std::lock_guard<std::mutex> g(mu_);
  if (--ip->handles == 0) inodes_.erase(ip->ino);
}

namespace {
// `b` continues `a` in the file and on the device, with the same flags.
bool Continues(const proto::LeaseSegment& a, const proto::LeaseSegment& b) {
  return a.file_off + a.len == b.file_off && a.dev_off + a.len == b.dev_off && a.flags == b.flags;
}
}  // namespace

void CacheSegment(ClientInode& ip, proto::LeaseSegment s) {
  // Whatever the cache held over this range is replaced (it may have been
  // cut differently); neighbours that continue it are merged into one entry,
  // so a file leased window by window stays a few entries long.
  auto it = ip.segs.lower_bound(s.file_off);
  if (it != ip.segs.begin() && std::prev(it)->second.file_off + std::prev(it)->second.len > s.file_off) --it;
  while (it != ip.segs.end() && it->second.file_off < s.file_off + s.len) it = ip.segs.erase(it);
  if (it != ip.segs.begin() && Continues(std::prev(it)->second, s)) {
    --it;
    it->second.len += s.len;
  } else {
    it = ip.segs.emplace(s.file_off, s).first;
  }
  auto next = std::next(it);
  if (next != ip.segs.end() && Continues(it->second, next->second)) {
    it->second.len += next->second.len;
    ip.segs.erase(next);
  }
}

void RevokeInodeRange(ClientInode& ip, uint64_t off, uint64_t len, uint64_t seq, InvalidateReason why,
                      bool notify) {
  {
    std::unique_lock<std::shared_mutex> b(ip.barrier);  // no copy or install in flight
    std::lock_guard<std::mutex> g(ip.mu);
    uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
    for (auto it = ip.segs.begin(); it != ip.segs.end();) {
      const proto::LeaseSegment& s = it->second;
      bool overlaps = s.file_off < end && off < s.file_off + s.len;
      it = overlaps ? ip.segs.erase(it) : std::next(it);
    }
    ip.size_known = false;
    if (seq > ip.revoked_seq.load(std::memory_order_relaxed)) ip.revoked_seq.store(seq, std::memory_order_release);
  }
  ip.mappings.Invalidate(ip.ino, off, len, why, notify);
}

void ClientFs::WaitReady() const {
  // The connection's threads start before Connect has adopted the device.
  while (!ready_.load(std::memory_order_acquire)) std::this_thread::yield();
}

void ClientFs::OnRevoke(const share::Revocation& rev) {
  WaitReady();
  auto why = static_cast<InvalidateReason>(rev.reason & proto::kRevokeReasonMask);
  bool notify = rev.reason & proto::kRevokeNotify;
  if (rev.ino == 0) {  // the whole filesystem
    Disconnect(why, notify, (rev.reason & proto::kRevokeUnmount) ? kGone : kRemoved);
    return;
  }
  if (why == InvalidateReason::kRemoved) {  // the device is going away: refuse new work first
    int expected = kLive;
    state_.compare_exchange_strong(expected, kRemoved);
  }
  if (auto ip = FindInode(rev.ino)) RevokeInodeRange(*ip, rev.offset, rev.length, rev.seq, why, notify);
}

void ClientFs::DropDevice() {
  // Nothing leased is left (RevokeEverything) and every later call fails
  // (state_), so no access to device memory can follow. Closing our
  // descriptor releases the device's lock: a new mount can take it.
  if (dev_) dev_->Remove().IgnoreError();
}

void ClientFs::RevokeEverything(InvalidateReason why, bool notify) {
  std::vector<std::shared_ptr<ClientInode>> all;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [ino, ip] : inodes_) all.push_back(ip);
  }
  for (auto& ip : all) RevokeInodeRange(*ip, 0, UINT64_MAX, UINT64_MAX, why, notify);
}

void ClientFs::OnDisconnect() {
  WaitReady();
  // The mount died (or dropped us): nothing it leased may be used any more.
  Disconnect(InvalidateReason::kRemoved, /*notify=*/true, kGone);
}

void ClientFs::Disconnect(InvalidateReason why, bool notify, int final_state) {
  // Calls fail once the state says so, or the channel does (ENOTCONN), but
  // return only once this is done (WaitDisconnectHandled): an error means
  // nothing of the mount is reachable any more. Once is enough: the mount
  // that stopped serving (or lost its device) then also closes the socket.
  {
    std::lock_guard<std::mutex> g(disconnect_mu_);
    if (disconnect_handled_) return;
  }
  tls_handling_disconnect = true;
  RevokeEverything(why, notify);
  DropDevice();
  int expected = kLive;
  state_.compare_exchange_strong(expected, final_state);
  tls_handling_disconnect = false;
  {
    std::lock_guard<std::mutex> g(disconnect_mu_);
    disconnect_handled_ = true;
  }
  disconnect_cv_.notify_all();
}

Status ClientFs::Unmount() {
  if (!conn_) return Status::Ok();
  state_.store(kGone);
  RevokeEverything(InvalidateReason::kRemoved, /*notify=*/false);
  conn_.reset();
  DropDevice();
  return Status::Ok();
}

Result<bool> ClientFs::Lease(ClientHandle& h, uint64_t off, uint64_t len, proto::LeaseHeader* header,
                             std::vector<proto::LeaseSegment>* segs) {
  std::vector<uint8_t> b;
  Writer(&b).Put(h.handle).Put(off).Put(len);
  ASSIGN_OR_RETURN(auto resp, Call(proto::kLease, b));
  Reader r(resp);
  *header = r.Get<proto::LeaseHeader>();
  if (!r.ok() || header->nsegs > proto::kMaxSegments) return Errno(EPROTO, "malformed lease answer");
  segs->resize(header->nsegs);
  for (auto& s : *segs) s = r.Get<proto::LeaseSegment>();
  RETURN_IF_ERROR(r.Finish("lease"));
  ClientInode& ip = *h.ip;
  std::shared_lock<std::shared_mutex> barrier(ip.barrier);
  if (ip.revoked_seq.load(std::memory_order_acquire) > header->rev_seq) return false;  // stale
  std::lock_guard<std::mutex> g(ip.mu);
  for (const auto& s : *segs)
    if (s.kind == proto::kSegData) CacheSegment(ip, s);
  ip.size_known = true;
  ip.size = header->size;
  ip.mode = header->mode;
  ip.atime_due = header->atime_due != 0;
  return true;
}

Result<std::unique_ptr<FileBackend>> ClientFs::Open(const PathAt& path, int flags, uint32_t mode) {
  std::vector<uint8_t> b;
  Writer w(&b);
  proto::PutPath(w, path);
  w.Put(static_cast<int32_t>(flags)).Put(mode);
  ASSIGN_OR_RETURN(auto resp, Call(proto::kOpen, b));
  Reader r(resp);
  auto rep = r.Get<proto::OpenReply>();
  RETURN_IF_ERROR(r.Finish("open"));
  auto h = std::make_shared<ClientHandle>(shared_from_this(), rep.handle, InodeFor(rep.ino), rep.type);
  return std::unique_ptr<FileBackend>(new ClientFile(std::move(h)));
}

Status ClientFs::Mkdir(const PathAt& p, uint32_t mode) {
  auto b = PathRequest(p);
  Writer(&b).Put(mode);
  return Simple(proto::kMkdir, b);
}
Status ClientFs::Rmdir(const PathAt& p) { return Simple(proto::kRmdir, PathRequest(p)); }
Status ClientFs::Unlink(const PathAt& p) { return Simple(proto::kUnlink, PathRequest(p)); }
Status ClientFs::Rename(const PathAt& a, const PathAt& to) {
  auto b = PathRequest(a);
  Writer w(&b);
  proto::PutPath(w, to);
  return Simple(proto::kRename, b);
}
Status ClientFs::Link(const PathAt& a, const PathAt& to) {
  auto b = PathRequest(a);
  Writer w(&b);
  proto::PutPath(w, to);
  return Simple(proto::kLink, b);
}
Status ClientFs::Symlink(const std::string& target, const PathAt& p) {
  std::vector<uint8_t> b;
  Writer w(&b);
  w.PutString(target);
  proto::PutPath(w, p);
  return Simple(proto::kSymlink, b);
}
Result<std::string> ClientFs::Readlink(const PathAt& p) {
  ASSIGN_OR_RETURN(auto resp, Call(proto::kReadlink, PathRequest(p)));
  Reader r(resp);
  std::string s(r.GetString(kMaxPathLen));
  RETURN_IF_ERROR(r.Finish("readlink"));
  return s;
}
Result<Stat> ClientFs::GetStat(const PathAt& p, bool follow) {
  auto b = PathRequest(p);
  Writer(&b).Put(static_cast<uint8_t>(follow));
  ASSIGN_OR_RETURN(auto resp, Call(proto::kGetStat, b));
  Reader r(resp);
  Stat st = r.Get<Stat>();
  RETURN_IF_ERROR(r.Finish("stat"));
  return st;
}
Status ClientFs::Chmod(const PathAt& p, uint32_t mode) {
  auto b = PathRequest(p);
  Writer(&b).Put(mode);
  return Simple(proto::kChmod, b);
}
Status ClientFs::Chown(const PathAt& p, uint32_t uid, uint32_t gid, bool follow) {
  auto b = PathRequest(p);
  Writer(&b).Put(uid).Put(gid).Put(static_cast<uint8_t>(follow));
  return Simple(proto::kChown, b);
}
Status ClientFs::Utimens(const PathAt& p, Timespec a, Timespec m, bool follow) {
  auto b = PathRequest(p);
  Writer(&b).Put(a).Put(m).Put(static_cast<uint8_t>(follow));
  return Simple(proto::kUtimens, b);
}
Status ClientFs::Truncate(const PathAt& p, uint64_t len) {
  auto b = PathRequest(p);
  Writer(&b).Put(len);
  return Simple(proto::kTruncatePath, b);
}

Result<std::vector<DirEntry>> ClientFs::ReadDir(const PathAt& p) {
  return ReadPaged<DirEntry>(
      *this, proto::kReadDir, "readdir",
      [&](uint64_t first) {
        auto b = PathRequest(p);
        Writer(&b).Put(first);
        return b;
      },
      [](Reader& r) {
        DirEntry e;
        e.name = std::string(r.GetString(kMaxNameLen));
        e.ino = r.Get<uint64_t>();
        e.type = r.Get<uint32_t>();
        return e;
      });
}

namespace {
template <typename T>
Result<T> Fixed(ClientFs& fs, uint32_t op, const char* what) {
  ASSIGN_OR_RETURN(auto resp, fs.Call(op, {}));
  Reader r(resp);
  T v = r.Get<T>();
  RETURN_IF_ERROR(r.Finish(what));
  return v;
}
}  // namespace

Result<StatFs> ClientFs::GetStatFs() { return Fixed<StatFs>(*this, proto::kStatFs, "statfs"); }
Result<FsStats> ClientFs::GetStats() { return Fixed<FsStats>(*this, proto::kStats, "stats"); }
Status ClientFs::Sync() { return Simple(proto::kSync, {}); }
Status ClientFs::RemoveDevice() { return Simple(proto::kRemoveDevice, {}); }
Status ClientFs::InjectPoison(uint64_t off, uint64_t len) {
  std::vector<uint8_t> b;
  Writer(&b).Put(off).Put(len);
  return Simple(proto::kInjectPoison, b);
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> ClientFs::BadBlocks() {
  return ReadPaged<std::pair<uint64_t, uint64_t>>(
      *this, proto::kBadBlocks, "bad blocks",
      [](uint64_t first) {
        std::vector<uint8_t> b;
        Writer(&b).Put(first);
        return b;
      },
      [](Reader& r) {
        uint64_t o = r.Get<uint64_t>();
        return std::make_pair(o, r.Get<uint64_t>());
      });
}

Result<std::vector<BlockOwner>> ClientFs::QueryRmap(uint64_t off, uint64_t len) {
  return ReadPaged<BlockOwner>(
      *this, proto::kQueryRmap, "rmap",
      [&](uint64_t first) {
        std::vector<uint8_t> b;
        Writer(&b).Put(off).Put(len).Put(first);
        return b;
      },
      [](Reader& r) {
        auto w = r.Get<proto::WireOwner>();
        BlockOwner o;
        o.device_offset = w.device_offset;
        o.length = w.length;
        o.kind = static_cast<BlockOwner::Kind>(w.kind);
        o.ino = w.ino;
        o.file_offset = w.file_offset;
        constexpr uint32_t kNames = sizeof(proto::kMetadataNames) / sizeof(proto::kMetadataNames[0]);
        o.metadata = w.metadata < kNames ? proto::kMetadataNames[w.metadata] : "?";
        return o;
      });
}

Result<SharingStatus> ClientFs::GetSharingStatus() {
  ASSIGN_OR_RETURN(auto resp, Call(proto::kServerStatus, {}));
  Reader r(resp);
  auto h = r.Get<proto::WireStatusHeader>();
  SharingStatus st;
  st.socket = std::string(r.GetString(kMaxPathLen));
  st.revoke_ms = h.revoke_ms;
  st.revocations = h.revocations;
  st.acknowledgements = h.acknowledgements;
  st.kills = h.kills;
  if (h.nclients > 4096) return Errno(EPROTO, "malformed status answer");
  for (uint32_t i = 0; i < h.nclients && r.ok(); ++i) st.clients.push_back(r.Get<DirectClientInfo>());
  RETURN_IF_ERROR(r.Finish("status"));
  return st;
}

}  // namespace udax::client
