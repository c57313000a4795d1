// fs/failure.h — FailureHandler: the filesystem as the device's holder
// (DeviceHolder, the kernel's dax_holder_operations): what it does when the
// device is being removed (kPreRemove: shut down, revoke every mapping) and
// when part of its memory failed (kMemoryFailure: rmap query → owners; file
// owners lose their mappings of the range and read EIO there, free blocks
// are retired, a metadata owner shuts the filesystem down). The device calls
// in only after it stopped new references (removal) or marked the memory
// poisoned (failure). See docs/failure.md; xfs_notify_failure.c is the model.
//
// Locking: both paths take meta_mu_ exclusive, so no fault can map a range
// between its invalidation and the change that caused it; mapping callbacks
// run in the notifying thread with meta_mu_ held (they must not call udax).
#pragma once

#include <cstdint>

#include "device/pmem_device.h"

namespace udax {

class FsImpl;

class FailureHandler : public DeviceHolder {
 public:
  explicit FailureHandler(FsImpl& fs) : fs_(fs) {}

  void NotifyFailure(uint64_t off, uint64_t len, FailureFlags flags) override;
  // Device blocks [start, start+n) failed: file owners (every sharer) lose
  // their mappings of the range (reason MemoryFailure, callbacks run) and read
  // EIO there; free blocks are retired; a metadata block shuts the fs down.
  // The blocks join the persistent bad-block list.
  Status MemoryFailure(uint64_t start, uint64_t n);

 private:
  FsImpl& fs_;
};

}  // namespace udax
