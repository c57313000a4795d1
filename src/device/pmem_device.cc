// device/pmem_device.cc — PmemDevice over libpmem2 (see pmem_device.h).
#include "device/pmem_device.h"
#include "udax/types.h"  // kPageSize
#include "util/assert.h"
#include "util/tsan.h"

#include <fcntl.h>
#include <libpmem2.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace udax {
namespace {

Status Pmem2Error(const char* what) {
  return Errno(EIO, std::string(what) + ": " + pmem2_errormsg());
}

// An emulated device models pmem without eADR: cache-line flush + fence per
// persist (not an msync). libpmem2 reads this once per mapping.
void ForceCacheLineGranularity() { setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 0); }

thread_local int tls_refs = 0;  // references held by this thread

// Every open device, for routing a memory-failure address (not async-signal
// code: the routing thread reads it).
std::mutex g_devices_mu;
std::vector<PmemDevice*>& Devices() {
  static std::vector<PmemDevice*> devices;
  return devices;
}

constexpr uint64_t kHugePage = 2ull << 20;

// A 2 MiB-aligned address with `len` free bytes after it (a hint: another
// thread may take it before it is used, and then the caller goes without).
void* AlignedHint(size_t len) {
  void* p = mmap(nullptr, len + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  munmap(p, len + kHugePage);
  return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage);
}

}  // namespace

DeviceRef::DeviceRef(PmemDevice* dev) : dev_(dev), owner_(pthread_self()) { tls_refs++; }

void PmemDevice::PutRef() {
  [[maybe_unused]] int64_t had = refs_.fetch_sub(1, std::memory_order_acq_rel);
  UDAX_ASSERT_MSG(had > 0, "device " + path_ + ": reference released more often than taken (released twice?)");
}

int PmemDevice::thread_refs() { return tls_refs; }

DeviceRef& DeviceRef::operator=(DeviceRef&& o) noexcept {
  if (this != &o) {
    Release();
    dev_ = o.dev_;
    owner_ = o.owner_;
    o.dev_ = nullptr;
  }
  return *this;
}

void DeviceRef::Release() {
  if (!dev_) return;
  if (pthread_equal(owner_, pthread_self())) tls_refs--;
  UDAX_ASSERT_MSG(tls_refs >= 0, "device reference released more often than this thread took one (released twice?)");
  dev_->PutRef();
  dev_ = nullptr;
}

Result<std::unique_ptr<PmemDevice>> PmemDevice::Open(const std::string& path,
                                                     const DeviceOptions& opts) {
  if (opts.read_only && (opts.create || opts.size))
    return Errno(EINVAL, "device " + path + ": a read-only open cannot create or size it");
  int flags = (opts.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (opts.create) {
    // A planted symlink must not make mkfs write over what it points to; a
    // link to a device (/dev/disk/by-id/...) is how devices are named.
    struct stat target;
    bool names_device = ::stat(path.c_str(), &target) == 0 && (S_ISCHR(target.st_mode) || S_ISBLK(target.st_mode));
    flags |= O_CREAT | (names_device ? 0 : O_NOFOLLOW);
  }
  int fd = ::open(path.c_str(), flags, 0600);  // images are private: they hold every user's files
  if (fd < 0 && errno == ELOOP && opts.create)
    return Errno(ELOOP, path + " is a symbolic link to a file: refusing to follow it (give the file's own path)");
  if (fd < 0) return Errno(errno, "cannot open device " + path + ": " + strerror(errno));
  return Adopt(fd, path, opts);
}

Result<std::unique_ptr<PmemDevice>> PmemDevice::Adopt(int fd, const std::string& path,
                                                      const DeviceOptions& opts) {
  ForceCacheLineGranularity();
  std::unique_ptr<PmemDevice> dev(new PmemDevice());
  dev->fd_ = fd;
  dev->path_ = path;
  dev->read_only_ = opts.read_only;
  // Readers share the device; a writer has it alone.
  if (opts.exclusive && ::flock(fd, (opts.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    return Errno(EBUSY, "device busy: " + path + " is in use by another udax instance" +
                            (opts.read_only ? " (read-write)" : ""));
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
  if (opts.read_only && pmem2_config_set_protection(cfg, PMEM2_PROT_READ)) {
    pmem2_config_delete(&cfg);
    return Pmem2Error("pmem2_config_set_protection");
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
  // Map 2 MiB-aligned: a backing with huge pages (devdax, fsdax, a tmpfs
  // mounted huge=always) can then map the device with them, as the kernel
  // maps real pmem — one TLB entry per 2 MiB instead of 512.
  if (void* hint = AlignedHint(src_size);
      hint && pmem2_vm_reservation_new(&dev->rsv_, hint, src_size) == 0)
    pmem2_config_set_vm_reservation(cfg, dev->rsv_, 0);
  int rc = pmem2_map_new(&dev->map_, cfg, src);
  pmem2_source_delete(&src);
  pmem2_config_delete(&cfg);
  if (rc) return Pmem2Error(("cannot map " + path).c_str());
  dev->base_ = static_cast<uint8_t*>(pmem2_map_get_address(dev->map_));
  dev->size_ = pmem2_map_get_size(dev->map_);
  madvise(dev->base_, dev->size_, MADV_HUGEPAGE);  // where the backing can (THP "madvise" mode)
  dev->flush_ = pmem2_get_flush_fn(dev->map_);
  dev->drain_ = pmem2_get_drain_fn(dev->map_);
  dev->memcpy_ = pmem2_get_memcpy_fn(dev->map_);
  dev->memset_ = pmem2_get_memset_fn(dev->map_);
  std::lock_guard<std::mutex> g(g_devices_mu);
  Devices().push_back(dev.get());
  return dev;
}

namespace {
bool AllZero(const uint8_t* p, uint64_t n) {
  constexpr uint64_t kChunk = 64 * 1024;
  static const uint8_t kZeros[kChunk] = {};
  for (uint64_t done = 0; done < n; done += kChunk)
    if (std::memcmp(p + done, kZeros, std::min(kChunk, n - done)) != 0) return false;
  return true;
}
}  // namespace

bool PmemDevice::HoldsData() const {
  struct stat st;
  if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return !AllZero(base_, std::min<uint64_t>(size_, 1ull << 20));
  for (off_t pos = 0; static_cast<uint64_t>(pos) < size_;) {
    off_t data = ::lseek(fd_, pos, SEEK_DATA);
    if (data < 0) return errno != ENXIO && !AllZero(base_ + pos, size_ - pos);  // ENXIO: holes to the end
    off_t hole = ::lseek(fd_, data, SEEK_HOLE);
    uint64_t end = hole < 0 ? size_ : std::min<uint64_t>(size_, static_cast<uint64_t>(hole));
    if (!AllZero(base_ + data, end - data)) return true;
    pos = static_cast<off_t>(end);
  }
  return false;
}

PmemDevice::~PmemDevice() {
  UDAX_ASSERT_MSG(refs_.load() == 0, "device " + path_ + " destroyed while " + std::to_string(refs_.load()) +
                                         " reference(s) are held (they would release into freed memory)");
  {
    std::lock_guard<std::mutex> g(g_devices_mu);
    auto& d = Devices();
    d.erase(std::remove(d.begin(), d.end(), this), d.end());
  }
  if (map_) pmem2_map_delete(&map_);  // also unmaps a PROT_NONE placeholder
  if (rsv_) pmem2_vm_reservation_delete(&rsv_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::span<uint8_t>> PmemDevice::Range(uint64_t off, uint64_t len) {
  if (!Contains(off, len))
    return Errno(EFAULT, "device range [" + std::to_string(off) + ", +" + std::to_string(len) +
                             ") is outside the device");
  if (state() == DeviceState::kDead) return Errno(ENODEV, "device removed");
  if (any_poison_.load(std::memory_order_acquire) && IsPoisoned(off, len))
    return Errno(EIO, "memory failure: device range [" + std::to_string(off) + ", +" + std::to_string(len) +
                          ") is poisoned");
  return std::span<uint8_t>(base_ + off, len);
}

Status PmemDevice::CheckWritable() const {
  if (read_only_) return Errno(EROFS, "device " + path_ + " is open read-only");
  return Status::Ok();
}

Status PmemDevice::CopyIn(uint64_t off, const void* src, uint64_t len, bool drain) {
  RETURN_IF_ERROR(CheckWritable());
  ASSIGN_OR_RETURN(auto span, Range(off, len));
  memcpy_(span.data(), src, len, PMEM2_F_MEM_NODRAIN);
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
  RETURN_IF_ERROR(CheckWritable());
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
  if (writable) RETURN_IF_ERROR(CheckWritable());
  if (state() != DeviceState::kLive) return Errno(ENODEV, "device " + path_ + " is being removed");
  if (any_poison_.load(std::memory_order_acquire) && IsPoisoned(off, len))
    return Errno(EIO, "memory failure: refusing to map a poisoned device range");
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

Status PmemDevice::DrainRefs(uint64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (int spins = 0; refs_.load(std::memory_order_acquire) > 0; spins++) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Errno(ETIMEDOUT, "device " + path_ + " removal: " +
                                  std::to_string(refs_.load()) + " operation(s) still in progress after " +
                                  std::to_string(timeout_ms) + " ms; the device stays dying, call Remove() again");
    if (spins < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  return Status::Ok();
}

void PmemDevice::TakeMemoryAway() {
  // The pages go (the kernel drops them from this process); the address
  // range stays reserved PROT_NONE so that a stale pointer faults instead of
  // landing in whatever the next mmap puts there.
  UDAX_ASSERT_MSG(state() == DeviceState::kDying, "device memory taken away from a device that is not dying");
  UDAX_ASSERT_MSG(refs_.load() == 0, "device memory taken away while references are held");
  ScopedTsanIgnore remap;
  mmap(base_, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  state_.store(DeviceState::kDead, std::memory_order_release);
  if (fd_ >= 0) ::close(fd_);  // drops the lock: the image can be re-attached
  fd_ = -1;
}

void PmemDevice::ExcludeFromFork() { madvise(base_, size_, MADV_DONTFORK); }

void PmemDevice::CloseInForkedChild() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status PmemDevice::Remove(uint64_t drain_timeout_ms) {
  if (tls_refs > 0)
    return Errno(EDEADLK, "device " + path_ + " removal requested from inside a udax operation");
  std::lock_guard<std::mutex> g(remove_mu_);
  if (state() == DeviceState::kDead) return Errno(ENODEV, "device " + path_ + " is already removed");
  Kill();                                        // 1. no new references, mappings, faults
  RETURN_IF_ERROR(DrainRefs(drain_timeout_ms));  // 2. in-flight operations finish
  UDAX_ASSERT_MSG(state() == DeviceState::kDying && refs_.load() == 0,
                  "device " + path_ + ": the holder is told of removal only once it is dying and unreferenced");
  if (DeviceHolder* h = holder())                 // 3. the holder shuts down, revokes mappings
    h->NotifyFailure(0, size_, FailureFlags::kPreRemove);
  TakeMemoryAway();                              // 4. only then: the memory goes
  return Status::Ok();
}

Status PmemDevice::InjectPoison(uint64_t off, uint64_t len) {
  if (len == 0 || off % kPageSize || len % kPageSize)
    return Errno(EINVAL, "poison range [" + std::to_string(off) + ", +" + std::to_string(len) +
                             ") must be page-aligned (4096) and non-empty");
  if (!Contains(off, len))
    return Errno(EINVAL, "poison range [" + std::to_string(off) + ", +" + std::to_string(len) +
                             ") is past the end of the device (" + std::to_string(size_) + " bytes)");
  ASSIGN_OR_RETURN(DeviceRef ref, TryRef());
  RecordPoison(off, len);  // from now on every checked access refuses it
  // The reference is held while the holder handles it: a removal waits.
  if (DeviceHolder* h = holder()) {
    h->NotifyFailure(off, len, FailureFlags::kMemoryFailure);  // protects, when nobody is inside
  } else {
    ProtectPoisoned();
  }
  return Status::Ok();
}

void PmemDevice::RecordPoison(uint64_t off, uint64_t len) {
  off = off / kPageSize * kPageSize;
  len = (len + kPageSize - 1) / kPageSize * kPageSize;
  if (!Contains(off, len)) return;
  std::lock_guard<std::mutex> g(poison_mu_);
  poisoned_.emplace_back(off, len);
  any_poison_.store(true, std::memory_order_release);
}

void PmemDevice::ProtectPoisoned() {
  std::lock_guard<std::mutex> g(poison_mu_);
  ScopedTsanIgnore remap;
  for (; protected_count_ < poisoned_.size(); protected_count_++) {
    auto [off, len] = poisoned_[protected_count_];
    mprotect(base_ + off, len, PROT_NONE);  // the memory is gone for everyone
  }
}

void PmemDevice::MarkPoisoned(uint64_t off, uint64_t len) {
  RecordPoison(off, len);
  ProtectPoisoned();
}

bool PmemDevice::IsPoisoned(uint64_t off, uint64_t len) const {
  std::lock_guard<std::mutex> g(poison_mu_);
  for (auto [o, l] : poisoned_)
    if (off < o + l && o < off + len) return true;
  return false;
}

PmemDevice* PmemDevice::FindByAddress(const void* addr, uint64_t* off) {
  auto a = reinterpret_cast<uintptr_t>(addr);
  std::lock_guard<std::mutex> g(g_devices_mu);
  for (PmemDevice* d : Devices()) {
    auto b = reinterpret_cast<uintptr_t>(d->base_);
    if (a >= b && a < b + d->size_) {
      *off = a - b;
      return d;
    }
  }
  return nullptr;
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
