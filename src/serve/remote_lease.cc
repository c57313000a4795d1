// serve/remote_lease.cc — a client's lease on an in-core inode (see
// remote_lease.h).
#include "serve/remote_lease.h"

#include <cstdio>

#include "proto/ops.h"

namespace udax::serve {

RemoteLease::RemoteLease(share::Server* server, uint64_t client_id, std::chrono::milliseconds timeout,
                         std::shared_ptr<Inode> ip)
    : server_(server), client_id_(client_id), timeout_(timeout), ip_(std::move(ip)) {}

RemoteLease::~RemoteLease() {
  Unregister();
  std::unique_ptr<FileBackend> pin;
  {
    std::lock_guard<std::mutex> g(mu_);
    pin = std::move(pin_);
  }
  if (pin) pin->Close();
}

void RemoteLease::Register() {
  if (registered_) return;
  ip_->mappings.Add(this);
  registered_ = true;
}

void RemoteLease::Unregister() {
  if (!registered_) return;
  ip_->mappings.Remove(this);
  registered_ = false;
}

void RemoteLease::Hold(uint64_t off, uint64_t len) {
  std::lock_guard<std::mutex> g(mu_);
  held_.Add(off, len);
}

void RemoteLease::AddWindow(uint64_t off, uint64_t len) {
  std::lock_guard<std::mutex> g(mu_);
  windows_.emplace(off, len);
}

bool RemoteLease::DropWindow(uint64_t off, uint64_t len) {
  std::lock_guard<std::mutex> g(mu_);
  auto [lo, hi] = windows_.equal_range(off);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == len) {
      windows_.erase(it);
      return true;
    }
  }
  return false;
}

uint64_t RemoteLease::held_bytes() const {
  std::lock_guard<std::mutex> g(mu_);
  return held_.Bytes();
}

uint64_t RemoteLease::windows() const {
  std::lock_guard<std::mutex> g(mu_);
  return windows_.size();
}

void RemoteLease::Pin(std::unique_ptr<FileBackend> file) {
  std::unique_ptr<FileBackend> old;
  {
    std::lock_guard<std::mutex> g(mu_);
    old = std::move(pin_);
    pin_ = std::move(file);
  }
  if (old) old->Close();
}

void RemoteLease::InvalidateFileRange(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                                      bool notify) {
  if (len == 0) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
    bool in_window = false;
    for (const auto& [w_off, w_len] : windows_) {
      uint64_t w_end = w_len > UINT64_MAX - w_off ? UINT64_MAX : w_off + w_len;
      if (w_off < end && off < w_end) {
        in_window = true;
        break;
      }
    }
    // Pages it installed or extents it cached must go whatever the reason;
    // a window not faulted there has nothing to drop, and only needs to
    // hear what its program is told (notify).
    bool held = held_.Remove(off, len);
    if (!held && !(notify && in_window)) return;
  }
  share::Revocation r;
  r.ino = ino;
  r.offset = off;
  r.length = len;
  r.reason = static_cast<uint32_t>(why) | (notify ? proto::kRevokeNotify : 0);
  auto report = server_->Revoke({&r, 1}, timeout_, client_id_);
  if (!report.has_value()) {
    // Killed, and not dead within the server's kill_wait (a process stuck in
    // the kernel): nothing more can be done here; say so (docs/shared.md,
    // "Leases": the known limit).
    std::fprintf(stderr, "udax: direct client %llu: revocation of inode %llu: %s\n",
                 static_cast<unsigned long long>(client_id_), static_cast<unsigned long long>(ino),
                 report.error().ToString().c_str());
  }
}

}  // namespace udax::serve
