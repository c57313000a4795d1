// device/pmem_device.cc — PmemDevice over libpmem2 (see pmem_device.h).
#include "device/pmem_device.h"
#include "util/tsan.h"

#include <fcntl.h>
#include <libpmem2.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace udax {
namespace {

Status Pmem2Error(const char* what) {
  return Errno(EIO, std::string(what) + ": " + pmem2_errormsg());
}

// An emulated device models pmem without eADR: cache-line flush + fence per
// persist (not an msync). libpmem2 reads this once per mapping.
void ForceCacheLineGranularity() { setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 0); }

}  // namespace

DeviceRef& DeviceRef::operator=(DeviceRef&& o) noexcept {
  if (this != &o) {
    Release();
    dev_ = o.dev_;
    o.dev_ = nullptr;
  }
  return *this;
}

void DeviceRef::Release() {
  if (dev_) dev_->PutRef();
  dev_ = nullptr;
}

Result<std::unique_ptr<PmemDevice>> PmemDevice::Open(const std::string& path,
                                                     const DeviceOptions& opts) {
  ForceCacheLineGranularity();
  int flags = O_RDWR | O_CLOEXEC | (opts.create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return Errno(errno, "cannot open device " + path + ": " + strerror(errno));
  std::unique_ptr<PmemDevice> dev(new PmemDevice());
  dev->fd_ = fd;
  dev->path_ = path;
  if (opts.exclusive && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return Errno(EBUSY, "device busy: " + path + " is in use by another udax instance");
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return Errno(errno, "cannot stat device " + path);
  if (S_ISREG(st.st_mode) && opts.size != 0 && static_cast<uint64_t>(st.st_size) != opts.size) {
    if (ftruncate(fd, static_cast<off_t>(opts.size)) != 0)
      return Errno(errno, "cannot size device " + path + ": " + strerror(errno));
  }
  pmem2_config* cfg = nullptr;
  pmem2_source* src = nullptr;
  if (pmem2_config_new(&cfg)) return Pmem2Error("pmem2_config_new");
  if (pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE)) {
    pmem2_config_delete(&cfg);
    return Pmem2Error("pmem2_config_set_required_store_granularity");
  }
  if (pmem2_source_from_fd(&src, fd)) {
    pmem2_config_delete(&cfg);
    return Pmem2Error(("cannot use " + path + " as a device").c_str());
  }
  size_t src_size = 0;
  if (pmem2_source_size(src, &src_size) || src_size == 0) {
    pmem2_source_delete(&src);
    pmem2_config_delete(&cfg);
    return Errno(EINVAL, "device " + path + " is empty (0 bytes): give mkfs a size (-s)");
  }
  int rc = pmem2_map_new(&dev->map_, cfg, src);
  pmem2_source_delete(&src);
  pmem2_config_delete(&cfg);
  if (rc) return Pmem2Error(("cannot map " + path).c_str());
  dev->base_ = static_cast<uint8_t*>(pmem2_map_get_address(dev->map_));
  dev->size_ = pmem2_map_get_size(dev->map_);
  dev->flush_ = pmem2_get_flush_fn(dev->map_);
  dev->drain_ = pmem2_get_drain_fn(dev->map_);
  dev->memcpy_ = pmem2_get_memcpy_fn(dev->map_);
  dev->memset_ = pmem2_get_memset_fn(dev->map_);
  return dev;
}

PmemDevice::~PmemDevice() {
  if (map_) pmem2_map_delete(&map_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::span<uint8_t>> PmemDevice::Range(uint64_t off, uint64_t len) {
  if (!Contains(off, len))
    return Errno(EFAULT, "device range [" + std::to_string(off) + ", +" + std::to_string(len) +
                             ") is outside the device");
  if (state() == DeviceState::kDead) return Errno(ENODEV, "device removed");
  return std::span<uint8_t>(base_ + off, len);
}

Status PmemDevice::CopyIn(uint64_t off, const void* src, uint64_t len, bool drain) {
  ASSIGN_OR_RETURN(auto span, Range(off, len));
  memcpy_(span.data(), src, len, PMEM2_F_MEM_NODRAIN);
  if (observer_) observer_->OnFlush(off, len);
  if (drain) Drain();
  return Status::Ok();
}

Status PmemDevice::CopyInCached(uint64_t off, const void* src, uint64_t len, bool drain) {
  ASSIGN_OR_RETURN(auto span, Range(off, len));
  memcpy_(span.data(), src, len, PMEM2_F_MEM_TEMPORAL | PMEM2_F_MEM_NODRAIN);
  if (observer_) observer_->OnFlush(off, len);
  if (drain) Drain();
  return Status::Ok();
}

Status PmemDevice::CopyOut(void* dst, uint64_t off, uint64_t len) {
  ASSIGN_OR_RETURN(auto span, Range(off, len));
  std::memcpy(dst, span.data(), len);
  return Status::Ok();
}

Status PmemDevice::Fill(uint64_t off, int byte, uint64_t len, bool drain) {
  ASSIGN_OR_RETURN(auto span, Range(off, len));
  memset_(span.data(), byte, len, PMEM2_F_MEM_NODRAIN);
  if (observer_) observer_->OnFlush(off, len);
  if (drain) Drain();
  return Status::Ok();
}

Status PmemDevice::Flush(uint64_t off, uint64_t len) {
  ASSIGN_OR_RETURN(auto span, Range(off, len));
  flush_(span.data(), len);
  if (observer_) observer_->OnFlush(off, len);
  return Status::Ok();
}

void PmemDevice::Drain() {
  drain_();
  fences_.fetch_add(1, std::memory_order_relaxed);
  if (observer_) observer_->OnDrain();
}

Status PmemDevice::MapFixed(void* addr, uint64_t off, uint64_t len, bool writable) {
  const uint64_t page = 4096;
  if (!Contains(off, len) || off % page || len % page || reinterpret_cast<uintptr_t>(addr) % page)
    return Errno(EINVAL, "device mapping out of range or unaligned");
  if (state() != DeviceState::kLive) return Errno(ENODEV, "device " + path_ + " is being removed");
  ScopedTsanIgnore remap;  // see util/tsan.h
  void* p = ::mmap(addr, len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED | MAP_FIXED, fd_,
                   static_cast<off_t>(off));
  if (p == MAP_FAILED) return Errno(errno, std::string("mmap of device failed: ") + strerror(errno));
  return Status::Ok();
}

Result<DeviceRef> PmemDevice::TryRef() {
  if (state() != DeviceState::kLive) return Errno(ENODEV, "device " + path_ + " is being removed");
  refs_.fetch_add(1, std::memory_order_acq_rel);
  if (state() != DeviceState::kLive) {
    PutRef();
    return Errno(ENODEV, "device " + path_ + " is being removed");
  }
  return DeviceRef(this);
}

void PmemDevice::Kill() {
  DeviceState expected = DeviceState::kLive;
  state_.compare_exchange_strong(expected, DeviceState::kDying, std::memory_order_acq_rel);
}

Status PmemDevice::SetHolder(DeviceHolder* holder) {
  std::lock_guard<std::mutex> g(holder_mu_);
  if (holder_ && holder_ != holder) return Errno(EBUSY, "device " + path_ + " already has a holder");
  holder_ = holder;
  return Status::Ok();
}

void PmemDevice::ClearHolder(DeviceHolder* holder) {
  std::lock_guard<std::mutex> g(holder_mu_);
  if (holder_ == holder) holder_ = nullptr;
}

}  // namespace udax
