// dax/local_mapping.cc — LocalMapping (see local_mapping.h).
#include "dax/local_mapping.h"

#include "dax/mapping_impl.h"

namespace udax {

Result<std::unique_ptr<MappingImpl>> LocalMapping::Create(std::shared_ptr<FsImpl> fs,
                                                          std::shared_ptr<Inode> inode, uint64_t off,
                                                          size_t len, Prot prot) {
  std::unique_ptr<LocalMapping> m(new LocalMapping());
  RETURN_IF_ERROR(m->Reserve(off, len, prot));
  m->fs_ = std::move(fs);
  m->inode_ = std::move(inode);
  m->inode_->mappings.Add(m.get());
  return std::unique_ptr<MappingImpl>(std::move(m));
}

LocalMapping::~LocalMapping() { Unmap().IgnoreError(); }

void LocalMapping::StopRevocations() { inode_->mappings.Remove(this); }

void LocalMapping::ReleaseBacking() {
  fs_->store().Release(inode_.get());
  inode_.reset();
}

Status LocalMapping::HandleFault(uint8_t* addr, bool write) {
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
                                   return MapZeroPages(va, d.len);
                                 });
}

Status LocalMapping::Persist(const void* p, size_t len) const {
  RETURN_IF_ERROR(CheckRange(p, len));
  if (len == 0) return Status::Ok();
  auto* b = static_cast<const uint8_t*>(p);
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

std::function<void()> LocalMapping::MemoryFailureReporter(const void* addr) {
  uint64_t file_off = file_off_ + static_cast<uint64_t>(static_cast<const uint8_t*>(addr) - base_);
  return [fs = fs_, inode = inode_, file_off] {
    auto ranges = fs->dax().DeviceRanges(inode.get(), file_off / kPageSize * kPageSize, kPageSize);
    if (!ranges.has_value() || ranges->empty() || !fs->device()) return;
    fs->device()->ReportPoison(ranges->front().first, kPageSize).IgnoreError();
  };
}

}  // namespace udax
