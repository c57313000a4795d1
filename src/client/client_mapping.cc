// client/client_mapping.cc — ClientMapping (see client_mapping.h).
#include "client/client_mapping.h"

#include <sys/mman.h>

namespace udax::client {

using proto::Reader;
using proto::Writer;

namespace {
constexpr int kFaultAttempts = 8;  // stale answers (a revocation raced) asked again
}  // namespace

Result<std::unique_ptr<MappingImpl>> ClientMapping::Create(std::shared_ptr<ClientHandle> h, uint64_t off,
                                                           size_t len, Prot prot) {
  std::unique_ptr<ClientMapping> m(new ClientMapping());
  RETURN_IF_ERROR(m->Reserve(off, len, prot));
  m->h_ = std::move(h);
  m->h_->ip->mappings.Add(m.get());
  // The mount counts it, and revokes its window's ranges from now on.
  if (Status st = m->h_->fs->Call(proto::kMapAdd, m->WindowRequest()).status(); !st.ok()) return st;
  return std::unique_ptr<MappingImpl>(std::move(m));
}

ClientMapping::~ClientMapping() { Unmap().IgnoreError(); }

std::vector<uint8_t> ClientMapping::WindowRequest() const {
  std::vector<uint8_t> b;
  Writer(&b).Put(h_->handle).Put(file_off_).Put(static_cast<uint64_t>(size_));
  return b;
}

void ClientMapping::StopRevocations() { h_->ip->mappings.Remove(this); }

void ClientMapping::ReleaseBacking() {
  if (h_->fs->CheckLive().ok()) h_->fs->Call(proto::kMapDrop, WindowRequest()).status().IgnoreError();
  h_.reset();
}

Status ClientMapping::HandleFault(uint8_t* addr, bool write) {
  ClientFs& fs = *h_->fs;
  ClientInode& ip = *h_->ip;
  uint64_t page_va = reinterpret_cast<uintptr_t>(addr) & ~(kPageSize - 1);
  uint64_t off = file_off_ + (page_va - reinterpret_cast<uintptr_t>(base_));
  for (int attempt = 0; attempt < kFaultAttempts; ++attempt) {
    std::vector<uint8_t> b;
    Writer(&b).Put(h_->handle).Put(off).Put(static_cast<uint8_t>(write)).Put(static_cast<uint8_t>(writable()))
        .Put(file_off_).Put(file_off_ + size_);
    ASSIGN_OR_RETURN(auto resp, fs.Call(proto::kFault, b));
    Reader r(resp);
    auto hdr = r.Get<proto::FaultHeader>();
    if (!r.ok() || hdr.n > proto::kMaxSegments) return Errno(EPROTO, "malformed fault answer");
    std::vector<proto::WireInstall> installs(hdr.n);
    for (auto& in : installs) in = r.Get<proto::WireInstall>();
    RETURN_IF_ERROR(r.Finish("fault"));
    std::shared_lock<std::shared_mutex> barrier(ip.barrier);
    if (ip.revoked_seq.load(std::memory_order_acquire) > hdr.rev_seq) continue;  // stale: ask again
    for (const auto& in : installs) {
      if (in.file_off < file_off_ || in.len > size_ || in.file_off - file_off_ > size_ - in.len ||
          in.file_off % kPageSize || in.len % kPageSize)
        return Errno(EPROTO, "fault answer outside the mapping");
      uint8_t* va = base_ + (in.file_off - file_off_);
      if (in.kind == 0) {
        RETURN_IF_ERROR(fs.device()->MapFixed(va, in.dev_off, in.len, in.writable && writable()));
      } else {
        RETURN_IF_ERROR(MapZeroPages(va, in.len));
      }
    }
    return Status::Ok();
  }
  return Errno(EAGAIN, "fault: revoked again and again while being served");
}

Status ClientMapping::Persist(const void* p, size_t len) const {
  RETURN_IF_ERROR(CheckRange(p, len));
  if (len == 0) return Status::Ok();
  RETURN_IF_ERROR(h_->fs->CheckLive());
  PmemDevice* dev = h_->fs->device();
  if (InsideGuarded()) return Guarded([&] { dev->PersistMapped(p, len); });
  dev->PersistMapped(p, len);
  return Status::Ok();
}

std::function<void()> ClientMapping::MemoryFailureReporter(const void* addr) {
  // The mount owns the bad-block list: find the device page behind the
  // address (a lease of that page) and report it there.
  uint64_t file_off = (file_off_ + static_cast<uint64_t>(static_cast<const uint8_t*>(addr) - base_)) /
                      kPageSize * kPageSize;
  return [h = h_, file_off] {
    proto::LeaseHeader hdr;
    std::vector<proto::LeaseSegment> segs;
    auto fresh = h->fs->Lease(*h, file_off, kPageSize, &hdr, &segs);
    if (!fresh.has_value() || segs.empty() || segs[0].kind != proto::kSegData) return;
    h->fs->InjectPoison(segs[0].dev_off + (file_off - segs[0].file_off), kPageSize).IgnoreError();
  };
}

}  // namespace udax::client
