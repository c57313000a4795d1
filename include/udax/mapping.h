// udax/mapping.h — DAX mappings: a udax file mapped for direct loads and
// stores to device memory (no page cache, no system call on the data path).
//
// A Mapping reserves address space PROT_NONE; the first access to each extent
// faults, and udax's SIGSEGV handler maps the device blocks behind that extent
// (MAP_FIXED) and restarts the instruction. A write fault into a hole first
// allocates, zeroes and commits the blocks (MAP_SYNC semantics): after a store
// and Persist(), the data survives a crash with no msync or fsync.
//
// Errors are the kernel's: an access beyond EOF gets SIGBUS (BUS_ADRERR); a
// store through a read-only mapping gets SIGSEGV. Inside udax::Guarded(fn) a
// SIGBUS on a udax range (EOF, full device, revoked mapping) becomes an error
// Status instead of killing the program. See docs/dax.md.
//
// Thread safety: a Mapping may be used (loaded from, stored to) by any number
// of threads; Unmap/destruction must not race with other calls on the same
// Mapping object. Faults from many threads are served concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "udax/export.h"
#include "udax/status.h"
#include "udax/types.h"

namespace udax {

class MappingImpl;

enum class Prot : uint32_t { kRead = 1, kWrite = 2, kReadWrite = 3 };

// InvalidateReason (why a range was taken away) is in udax/types.h.
UDAX_EXPORT const char* InvalidateReasonName(InvalidateReason r);

// (inode number, file offset, length, reason)
using InvalidateCallback = std::function<void(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason)>;

class UDAX_EXPORT Mapping {
 public:
  Mapping();
  Mapping(Mapping&&) noexcept;
  Mapping& operator=(Mapping&&) noexcept;
  ~Mapping();  // unmaps

  bool is_mapped() const;
  uint8_t* data() const;
  size_t size() const;
  uint64_t file_offset() const;

  // Makes stores in [ptr, ptr+len) durable (cache-line flush + fence).
  Status Persist(const void* ptr, size_t len) const;
  // Persists the whole mapping.
  Status Sync() const;
  // Releases the address range; later calls fail with EINVAL ("not mapped").
  Status Unmap();
  // Called (from the thread that invalidates) when a range is taken away.
  void OnInvalidate(InvalidateCallback cb);

 private:
  friend class File;
  explicit Mapping(std::unique_ptr<MappingImpl> impl);
  std::unique_ptr<MappingImpl> impl_;
};

// Runs fn; a SIGBUS on a udax mapping inside it (access beyond EOF, a full
// device during a write fault, a revoked mapping) ends fn early and returns
// the error (EFAULT, ENOSPC, ENODEV, EIO...). Nestable; per thread.
UDAX_EXPORT Status Guarded(const std::function<void()>& fn);

}  // namespace udax
