// device/pmem_device.h — PmemDevice: the only code that touches device memory
// directly and the only code that knows libpmem2.
//
// Owns: the mapping of the whole device (a regular file emulating pmem, a
// memfd, or a devdax character device, all through libpmem2), persistence
// (flush / drain / non-temporal copies), bounds-checked access, the lock
// (flock: exclusive for a read-write open, shared for a read-only one, so
// readers exclude a writer and the writer excludes everyone), the lifecycle
// Live -> Dying -> Dead with cheap references, the single holder that is
// told about failures, removal (Remove) and emulated memory failure
// (InjectPoison). See docs/failure.md.
//
// Invariants:
//  * every access is bounds-checked: callers name (offset, length) and get a
//    span only when it lies inside the device;
//  * a read-only device (DeviceOptions::read_only) is opened O_RDONLY and
//    mapped PROT_READ: every write (CopyIn, Fill, a writable MapFixed) fails
//    with EROFS before it touches memory, never a fault;
//  * after Kill() no new reference can be taken (ENODEV);
//  * Remove() tells the holder only after every reference was dropped, and
//    takes the memory away only after the holder returned: a stale access
//    then faults (the range is PROT_NONE), it never reads old bytes;
//  * poisoned pages are refused by every checked access (Range, BlockPtr,
//    MapFixed) from the moment they are recorded, and become PROT_NONE in the
//    device's own mapping once the holder says nobody is inside them, so code
//    that reads a poisoned block without asking crashes in tests.
//  * a PersistObserver, when installed, sees every flush and every drain in
//    program order (the crash-recording test device uses it);
//  * the state only moves forward (Live -> Dying -> Dead); the reference
//    count never goes below zero and is zero when the memory is taken away
//    and when the device is destroyed (a reference outliving its device
//    would release into freed memory). Builds with UDAX_ASSERTS check these
//    (util/assert.h).
// Thread safety: all methods may be called concurrently; data races on device
// bytes are the callers' business (the filesystem's locks).
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "udax/status.h"

struct pmem2_map;
struct pmem2_vm_reservation;

namespace udax {

// Sees every flush and fence, in order (crash testing).
class PersistObserver {
 public:
  virtual ~PersistObserver() = default;
  virtual void OnFlush(uint64_t off, uint64_t len) = 0;
  virtual void OnDrain() = 0;
};

// The one holder of a device (the filesystem), told about failures.
enum class FailureFlags : uint32_t { kPreRemove = 1, kMemoryFailure = 2 };
class DeviceHolder {
 public:
  virtual ~DeviceHolder() = default;
  virtual void NotifyFailure(uint64_t off, uint64_t len, FailureFlags flags) = 0;
};

enum class DeviceState { kLive, kDying, kDead };

struct DeviceOptions {
  // mkfs: create the file if missing, mode 0600 (an existing file keeps its
  // mode); a symbolic link is followed only to a device (O_NOFOLLOW).
  bool create = false;
  uint64_t size = 0;       // when non-zero: size (or resize) a regular file
  bool exclusive = true;   // take the flock; fail with EBUSY when held
  // O_RDONLY, a PROT_READ mapping and a shared flock (LOCK_SH): any number
  // of read-only opens at once, none while a read-write one holds the device
  // (and none of those while a read-only one does). Not with create or size.
  bool read_only = false;
};

class PmemDevice;

// A held reference: the device cannot finish dying while one exists. Only
// PmemDevice::TryRef makes one (it counts it first).
class DeviceRef {
 public:
  DeviceRef() = default;
  DeviceRef(DeviceRef&& o) noexcept : dev_(o.dev_), owner_(o.owner_) { o.dev_ = nullptr; }
  DeviceRef& operator=(DeviceRef&& o) noexcept;
  DeviceRef(const DeviceRef&) = delete;
  DeviceRef& operator=(const DeviceRef&) = delete;
  ~DeviceRef() { Release(); }
  void Release();
  explicit operator bool() const { return dev_ != nullptr; }

 private:
  friend class PmemDevice;
  explicit DeviceRef(PmemDevice* dev);
  PmemDevice* dev_ = nullptr;
  pthread_t owner_{};  // the thread that took it (counted in its thread_refs())
};

class PmemDevice {
 public:
  static Result<std::unique_ptr<PmemDevice>> Open(const std::string& path,
                                                  const DeviceOptions& opts);
  // The same over a descriptor already open (a direct client's, received
  // from the mount): takes ownership of `fd` (closed on every error too);
  // `name` is for messages. Not with create; exclusive is the caller's choice.
  static Result<std::unique_ptr<PmemDevice>> Adopt(int fd, const std::string& name,
                                                   const DeviceOptions& opts);
  ~PmemDevice();
  PmemDevice(const PmemDevice&) = delete;
  PmemDevice& operator=(const PmemDevice&) = delete;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // The open device file (held while the device is): the mount hands
  // a dup of it to direct clients, who then share its open file description
  // and flock (docs/shared.md).
  int fd() const { return fd_; }
  bool read_only() const { return read_only_; }
  // Whether any byte is non-zero (mkfs: "holds data"). A regular file is read
  // only where SEEK_DATA finds data (holes cost nothing); a device only in its
  // first MiB, where every filesystem and partition table has its label.
  bool HoldsData() const;

  // Checked access: the span [off, off+len) of device memory, or EIO/EFAULT
  // style error when it is outside the device or the device is dead.
  Result<std::span<uint8_t>> Range(uint64_t off, uint64_t len);
  bool Contains(uint64_t off, uint64_t len) const {
    return off <= size_ && len <= size_ - off;
  }
  // Fast checked block access for metadata readers (nullptr when out of
  // range or poisoned: IsPoisoned tells which).
  uint8_t* BlockPtr(uint64_t bno, uint32_t block_size) {
    uint64_t off = bno * block_size;
    if (bno >= size_ / block_size) return nullptr;
    if (any_poison_.load(std::memory_order_acquire) && IsPoisoned(off, block_size)) return nullptr;
    return base_ + off;
  }

  // Persistence. *NoDrain variants leave the data pending until Drain().
  Status CopyIn(uint64_t off, const void* src, uint64_t len, bool drain);
  Status CopyOut(void* dst, uint64_t off, uint64_t len);
  Status Fill(uint64_t off, int byte, uint64_t len, bool drain);
  Status Flush(uint64_t off, uint64_t len);
  void Drain();
  Status Persist(uint64_t off, uint64_t len) {
    RETURN_IF_ERROR(Flush(off, len));
    Drain();
    return Status::Ok();
  }
  uint64_t fence_count() const { return fences_.load(std::memory_order_relaxed); }

  void SetPersistObserver(PersistObserver* obs) { observer_ = obs; }
  bool observed() const { return observer_ != nullptr; }

  // DAX: maps device bytes [off, off+len) at `addr` (MAP_FIXED | MAP_SHARED),
  // replacing whatever was there. off, len and addr must be page-aligned.
  Status MapFixed(void* addr, uint64_t off, uint64_t len, bool writable);
  // Flush + fence for memory mapped by MapFixed (or the device's own mapping).
  void PersistMapped(const void* addr, size_t len) {
    flush_(addr, len);
    Drain();
  }

  // Lifecycle.
  DeviceState state() const { return state_.load(std::memory_order_acquire); }
  // Takes a reference, or ENODEV once the device is dying.
  Result<DeviceRef> TryRef();
  // Live -> Dying: new references fail from this instant.
  void Kill();
  // Removal (unbind), in the seed's order: Kill; wait until every reference
  // is dropped (at most `drain_timeout`; ETIMEDOUT leaves the device Dying and
  // a later Remove() resumes); holder->NotifyFailure(0, size, kPreRemove);
  // then the memory is taken away (PROT_NONE) and the file closed (the image
  // stays intact and can be opened again). ENODEV when already removed,
  // EDEADLK when the calling thread holds a reference itself.
  Status Remove(uint64_t drain_timeout_ms = kDrainTimeoutMs);
  static constexpr uint64_t kDrainTimeoutMs = 10'000;
  // References held by the calling thread (an operation in progress).
  static int thread_refs();

  // Memory failure (emulated): [off, off+len) — page-aligned, inside the
  // device — becomes poisoned: its pages are taken away (PROT_NONE) in the
  // device's own mapping, then the holder is told (kMemoryFailure). EINVAL for
  // a bad range, ENODEV after removal.
  Status InjectPoison(uint64_t off, uint64_t len);
  // A real memory failure at device offset `off` (a SIGBUS with
  // BUS_MCEERR_*): recorded and routed like InjectPoison.
  Status ReportPoison(uint64_t off, uint64_t len) { return InjectPoison(off, len); }
  bool IsPoisoned(uint64_t off, uint64_t len) const;
  // Marks a range poisoned and protected at once, without telling the holder
  // (the holder's own persistent bad-block list, applied at mount).
  void MarkPoisoned(uint64_t off, uint64_t len);
  // A forked child does not inherit the device's mapping (MADV_DONTFORK):
  // a direct client's child cannot reach memory the mount cannot revoke.
  void ExcludeFromFork();
  // In a forked child of a process holding this device: closes the
  // inherited descriptor (its lock stays the parent's business). The object
  // must then be leaked, not destroyed: its mapping is the parent's.
  void CloseInForkedChild();
  // Takes recorded poisoned pages away (PROT_NONE in the device's mapping).
  // InjectPoison leaves this to the holder, which calls it once no operation
  // is inside device memory (its exclusive lock): an access that passed its
  // checks before the failure was recorded finishes instead of faulting.
  void ProtectPoisoned();
  // The device whose own mapping contains `addr`, if any (memory-failure routing).
  static PmemDevice* FindByAddress(const void* addr, uint64_t* off);

  // Holder.
  Status SetHolder(DeviceHolder* holder);
  void ClearHolder(DeviceHolder* holder);
  DeviceHolder* holder() const {
    std::lock_guard<std::mutex> g(holder_mu_);
    return holder_;
  }

 private:
  friend class DeviceRef;
  PmemDevice() = default;
  void PutRef();
  Status DrainRefs(uint64_t timeout_ms);
  void TakeMemoryAway();
  void RecordPoison(uint64_t off, uint64_t len);

  Status CheckWritable() const;

  std::string path_;
  bool read_only_ = false;
  int fd_ = -1;
  pmem2_map* map_ = nullptr;
  pmem2_vm_reservation* rsv_ = nullptr;  // the 2 MiB-aligned address range of map_
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void (*flush_)(const void*, size_t) = nullptr;
  void (*drain_)(void) = nullptr;
  void* (*memcpy_)(void*, const void*, size_t, unsigned) = nullptr;
  void* (*memset_)(void*, int, size_t, unsigned) = nullptr;
  std::atomic<uint64_t> fences_{0};
  PersistObserver* observer_ = nullptr;
  std::atomic<DeviceState> state_{DeviceState::kLive};
  std::atomic<int64_t> refs_{0};
  mutable std::mutex holder_mu_;
  DeviceHolder* holder_ = nullptr;
  std::mutex remove_mu_;  // one Remove() at a time
  mutable std::mutex poison_mu_;
  std::vector<std::pair<uint64_t, uint64_t>> poisoned_;
  std::atomic<bool> any_poison_{false};
  size_t protected_count_ = 0;  // poisoned_[0, protected_count_) are PROT_NONE  // (offset, length), page-aligned
};

}  // namespace udax
