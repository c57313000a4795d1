// dax/mapping.cc — the shared part of MappingImpl (see mapping_impl.h) and
// the public Mapping handle. (File::Map, which creates one, is with the rest of File in
// api/filesystem.cc.)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>

#include "dax/arena.h"
#include "dax/mapping_impl.h"
#include "udax/fs.h"
#include "util/tsan.h"

namespace udax {

// Revokes a range. Without MAP_NORESERVE (a PROT_NONE private mapping is not
// accounted either way) the kernel does not merge it into the neighbouring
// arena reservation on every revoke — about a third of a revoke's cost; the
// range merges back when the mapping is released (Arena::Release).
void MappingImpl::ProtNone(uint8_t* addr, size_t len) {
  ScopedTsanIgnore remap;
  mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

Status MappingImpl::MapZeroPages(uint8_t* va, size_t len) {
  ScopedTsanIgnore remap;
  void* p = mmap(va, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? Errno(errno, "mmap of zero pages failed") : Status::Ok();
}

Status MappingImpl::Reserve(uint64_t off, size_t len, Prot prot) {
  if (len == 0) return Errno(EINVAL, "mapping length must be positive");
  if (off % kPageSize) return Errno(EINVAL, "mapping offset must be page-aligned");
  uint32_t p = static_cast<uint32_t>(prot);
  if (p == 0 || (p & ~3u)) return Errno(EINVAL, "bad protection");
  if (off > kMaxFileSize || len > kMaxFileSize - off) return Errno(EINVAL, "mapping past the maximum file size");
  if (len > Arena::kSize / 4) return Errno(EINVAL, "mapping too large");
  Arena* arena = Arena::Get();
  if (!arena) return Errno(ENOMEM, "cannot reserve DAX address space");
  InstallFaultHandlers();
  file_off_ = off;
  prot_ = prot;
  size_t size = (len + kPageSize - 1) / kPageSize * kPageSize;
  ASSIGN_OR_RETURN(base_, arena->Reserve(size, this));
  size_ = size;
  return Status::Ok();
}

Status MappingImpl::CheckRange(const void* p, size_t len) const {
  if (!base_) return Errno(EINVAL, "not mapped");
  auto* b = static_cast<const uint8_t*>(p);
  if (b < base_ || len > size_ || b + len > base_ + size_) return Errno(EINVAL, "range outside the mapping");
  return Status::Ok();
}

void MappingImpl::InvalidateFileRange(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                                      bool notify) {
  if (!base_) return;
  uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
  uint64_t lo = std::max(off, file_off_), hi = std::min<uint64_t>(end, file_off_ + size_);
  if (lo >= hi) return;
  lo = lo / kPageSize * kPageSize;
  hi = (hi + kPageSize - 1) / kPageSize * kPageSize;
  ProtNone(base_ + (lo - file_off_), hi - lo);
  if (!notify) return;
  std::lock_guard<std::mutex> g(cb_mu_);
  if (cb_) cb_(ino, lo, hi - lo, why);
}

Status MappingImpl::Unmap() {
  if (!base_) return Errno(EINVAL, "not mapped");
  StopRevocations();  // no revocation reaches this mapping any more
  Arena::Get()->Release(base_, size_);
  base_ = nullptr;
  ReleaseBacking();  // the blocks may be freed now: nothing maps them
  return Status::Ok();
}

// ---- public handle ----

Mapping::Mapping(std::unique_ptr<MappingImpl> impl) : impl_(std::move(impl)) {}
Mapping::Mapping() = default;
Mapping::Mapping(Mapping&&) noexcept = default;
Mapping& Mapping::operator=(Mapping&&) noexcept = default;
Mapping::~Mapping() = default;

bool Mapping::is_mapped() const { return impl_ && impl_->mapped(); }
uint8_t* Mapping::data() const { return is_mapped() ? impl_->base() : nullptr; }
size_t Mapping::size() const { return is_mapped() ? impl_->size() : 0; }
uint64_t Mapping::file_offset() const { return impl_ ? impl_->file_offset() : 0; }
Status Mapping::Persist(const void* p, size_t len) const {
  return impl_ ? impl_->Persist(p, len) : Errno(EINVAL, "not mapped");
}
Status Mapping::Sync() const {
  return is_mapped() ? impl_->Persist(impl_->base(), impl_->size()) : Errno(EINVAL, "not mapped");
}
Status Mapping::Unmap() { return impl_ ? impl_->Unmap() : Errno(EINVAL, "not mapped"); }
void Mapping::OnInvalidate(InvalidateCallback cb) {
  if (impl_) impl_->SetCallback(std::move(cb));
}

}  // namespace udax
