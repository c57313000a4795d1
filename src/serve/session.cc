// serve/session.cc — one direct client's handles and leases (see session.h).
#include "serve/session.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "share/peer.h"

namespace udax::serve {
namespace {

// /proc/PID/status of the client, read when asked (only for files with
// setuid/setgid bits): the client is alive while it waits for its answer.
std::string ProcStatus(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool HasFsetid(pid_t pid) {
  std::istringstream in(ProcStatus(pid));
  for (std::string line; std::getline(in, line);) {
    unsigned long long caps = 0;
    if (std::sscanf(line.c_str(), "CapEff: %llx", &caps) == 1) return caps & (1ULL << 4);  // CAP_FSETID
  }
  return false;
}

bool InGroup(pid_t pid, uint32_t gid) {
  auto groups = share::ParseSupplementaryGroups(ProcStatus(pid));
  if (!groups.has_value()) return false;
  for (gid_t g : *groups)
    if (g == gid) return true;
  return false;
}

}  // namespace

Session::Session(const share::ClientInfo& info, share::Server* server,
                 std::chrono::milliseconds revoke_timeout)
    : info_(info), server_(server), revoke_timeout_(revoke_timeout) {
  caller_.uid = info.uid;
  caller_.gid = info.gid;
  pid_t pid = info.pid;
  caller_.has_fsetid = [pid] { return HasFsetid(pid); };
  caller_.in_group = [pid](uint32_t gid) { return InGroup(pid, gid); };
}

Session::~Session() { Close(); }

uint64_t Session::Add(OpenFile f) {
  std::lock_guard<std::mutex> g(mu_);
  uint64_t h = next_handle_++;
  files_.emplace(h, std::move(f));
  return h;
}

Result<OpenFile*> Session::Get(uint64_t handle) {
  auto it = files_.find(handle);
  if (it == files_.end()) return Errno(EBADF, "no open file with handle " + std::to_string(handle));
  return &it->second;
}

Status Session::Remove(uint64_t handle) {
  OpenFile f;
  std::unique_ptr<RemoteLease> lease;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = files_.find(handle);
    if (it == files_.end()) return Errno(EBADF, "no open file with handle " + std::to_string(handle));
    f = std::move(it->second);
    files_.erase(it);
    bool last = true;
    for (const auto& [h, o] : files_)
      if (o.ip == f.ip) last = false;
    auto l = leases_.find(f.ip->ino);
    if (last && l != leases_.end()) {
      if (l->second->windows() == 0) {
        lease = std::move(l->second);
        leases_.erase(l);
      } else {
        l->second->Pin(std::move(f.file));  // closed when the session ends
      }
    }
  }
  lease.reset();  // unregistered before the file closes
  if (f.file) f.file->Close();
  return Status::Ok();
}

RemoteLease& Session::LeaseOf(const OpenFile& f) {
  std::lock_guard<std::mutex> g(mu_);
  auto& slot = leases_[f.ip->ino];
  if (!slot) {
    slot = std::make_unique<RemoteLease>(server_, info_.id, revoke_timeout_, f.ip);
    slot->Register();
  }
  return *slot;
}

void Session::Close() {
  std::map<uint64_t, OpenFile> files;
  std::map<uint64_t, std::unique_ptr<RemoteLease>> leases;
  {
    std::lock_guard<std::mutex> g(mu_);
    files.swap(files_);
    leases.swap(leases_);
  }
  leases.clear();  // unregistered (and pinned files closed) first
  for (auto& [h, f] : files) f.file->Close();
}

Session::Counts Session::counts() const {
  std::lock_guard<std::mutex> g(mu_);
  Counts c;
  c.files = files_.size();
  for (const auto& [ino, l] : leases_) {
    c.mappings += l->windows();
    c.leased_bytes += l->held_bytes();
  }
  return c;
}

}  // namespace udax::serve
