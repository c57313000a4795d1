// dax/mapping.cc — MappingImpl (see mapping_impl.h) and the public Mapping
// handle. (File::Map, which creates one, is with the rest of File in
// api/filesystem.cc.)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>

#include "dax/arena.h"
#include "dax/mapping_impl.h"
#include "util/tsan.h"

namespace udax {

namespace {

// Revokes a range. Without MAP_NORESERVE (a PROT_NONE private mapping is not
// accounted either way) the kernel does not merge it into the neighbouring
// arena reservation on every revoke — about a third of a revoke's cost; the
// range merges back when the mapping is released (Arena::Release).
void ProtNone(uint8_t* addr, size_t len) {
  ScopedTsanIgnore remap;
  mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}
}  // namespace

Result<std::unique_ptr<MappingImpl>> MappingImpl::Create(std::shared_ptr<FsImpl> fs,
                                                         std::shared_ptr<Inode> inode, uint64_t off,
                                                         size_t len, Prot prot) {
  if (len == 0) return Errno(EINVAL, "mapping length must be positive");
  if (off % kPageSize) return Errno(EINVAL, "mapping offset must be page-aligned");
  uint32_t p = static_cast<uint32_t>(prot);
  if (p == 0 || (p & ~3u)) return Errno(EINVAL, "bad protection");
  if (off > kMaxFileSize || len > kMaxFileSize - off) return Errno(EINVAL, "mapping past the maximum file size");
  if (len > Arena::kSize / 4) return Errno(EINVAL, "mapping too large");
  Arena* arena = Arena::Get();
  if (!arena) return Errno(ENOMEM, "cannot reserve DAX address space");
  InstallFaultHandlers();
  std::unique_ptr<MappingImpl> m(new MappingImpl());
  m->fs_ = std::move(fs);
  m->inode_ = std::move(inode);
  m->file_off_ = off;
  m->prot_ = prot;
  m->size_ = (len + kPageSize - 1) / kPageSize * kPageSize;
  m->reserved_ = Arena::RoundUp(m->size_);
  ASSIGN_OR_RETURN(m->base_, arena->Reserve(m->size_, m.get()));
  m->inode_->mappings.Add(m.get());
  return m;
}

MappingImpl::~MappingImpl() { Unmap().IgnoreError(); }

Status MappingImpl::HandleFault(uint8_t* addr, bool write) {
  // The fault holds a device reference while it maps (removal waits for it);
  // once removal began it fails at once. A fault nested in a udax operation
  // (copying a user buffer) is covered by that operation's reference.
  DeviceRef ref;
  if (tls_meta_lock_depth == 0) {
    auto r = fs_->BeginOperation();
    if (!r.has_value()) return r.error();
    ref = std::move(*r);
  }
  uint64_t page_va = reinterpret_cast<uintptr_t>(addr) & ~(kPageSize - 1);
  uint64_t off = file_off_ + (page_va - reinterpret_cast<uintptr_t>(base_));
  PmemDevice* dev = fs_->device();
  return fs_->dax().ResolveFault(inode_.get(), off, write, writable(), file_off_, file_off_ + size_,
                       [&](const InstallRange& d) -> Status {
                         uint8_t* va = base_ + (d.file_off - file_off_);
                         if (d.kind == InstallRange::kDevice)
                           return dev->MapFixed(va, d.dev_off, d.len, d.writable);
                         ScopedTsanIgnore remap;
                         void* p = mmap(va, d.len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                         return p == MAP_FAILED ? Errno(errno, "mmap of zero pages failed") : Status::Ok();
                       });
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
  inode_->mappings.Remove(this);
  Arena::Get()->Release(base_, size_);
  base_ = nullptr;
  fs_->store().Release(inode_.get());
  inode_.reset();
  return Status::Ok();
}

Status MappingImpl::Persist(const void* p, size_t len) const {
  if (!base_) return Errno(EINVAL, "not mapped");
  auto* b = static_cast<const uint8_t*>(p);
  if (b < base_ || len > size_ || b + len > base_ + size_) return Errno(EINVAL, "range outside the mapping");
  if (len == 0) return Status::Ok();
  ASSIGN_OR_RETURN(DeviceRef ref, fs_->BeginOperation());  // the memory stays while it is flushed
  PmemDevice* dev = fs_->device();
  if (dev->observed()) {
    // Crash tests: report the flush in device terms so the recorder sees it.
    uint64_t off = file_off_ + static_cast<uint64_t>(b - base_);
    ASSIGN_OR_RETURN(auto ranges, fs_->dax().DeviceRanges(inode_.get(), off, len));
    for (auto [dev_off, n] : ranges) RETURN_IF_ERROR(dev->Flush(dev_off, n));
    dev->Drain();
    return Status::Ok();
  }
  // A fault in the flush (a failed block, a page past EOF) inside the
  // caller's Guarded would jump past `ref`'s release: the flush gets a guard
  // of its own, and the fault becomes this call's error.
  if (InsideGuarded()) return Guarded([&] { dev->PersistMapped(p, len); });
  dev->PersistMapped(p, len);
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
