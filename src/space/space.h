// space/space.h — Space: the block space a mounted filesystem allocates
// from (the allocator, the data area's bounds, the bad-block list), and
// RangeObserver, the one thing the space layer asks of the layer above.
//
// The space layer (src/space/: the allocator, extent maps, directories,
// rmap, refcount, bad blocks) knows transactions, B+trees and the media
// format — never the filesystem. Where an extent-map change must reach the
// live DAX mappings of a file, it tells the RangeObserver the fs registered,
// and the fs revokes the mappings (fs/ implements it; libxfs's record code
// and the VFS above it are the model).
//
// Invariants: data_start <= data_end once the filesystem is mounted (set
// once, before any transaction); every block the allocator hands out lies in
// [data_start, data_end). Thread safety: as its parts — the allocator and
// the observer are used under the fs's metadata lock held exclusive; the
// bad-block list may be read from any thread (badblocks.h).
#pragma once

#include <cstdint>

#include "space/alloc.h"
#include "space/badblocks.h"
#include "udax/types.h"

namespace udax {

// Told when the device blocks behind a file range changed (mapped over a
// hole, unmapped, replaced by copies): every live mapping of the range must
// fault again. Called with the metadata lock held exclusive, inside the
// transaction that makes the change.
class RangeObserver {
 public:
  // [off, off+len) of inode `ino` changed for reason `why`; `notify`: tell
  // the program (false when only zero pages over a hole are replaced).
  virtual void FileRangeChanged(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                                bool notify) = 0;

 protected:
  ~RangeObserver() = default;
};

class Space {
 public:
  Space() : alloc_(this) {}
  Space(const Space&) = delete;
  Space& operator=(const Space&) = delete;

  // At mount or mkfs, before any transaction: the allocatable blocks are
  // [start, end) (after the journal, before the secondary superblock).
  void SetDataRange(uint64_t start, uint64_t end) {
    data_start_ = start;
    data_end_ = end;
  }
  // The layer above that hears of changed file ranges (none: nobody maps).
  void SetObserver(RangeObserver* observer) { observer_ = observer; }

  Allocator* allocator() { return &alloc_; }
  uint64_t data_start() const { return data_start_; }
  uint64_t data_end() const { return data_end_; }
  BadBlockList& bad_blocks() { return bad_; }
  const BadBlockList& bad_blocks() const { return bad_; }

  // The extent-map code's report of a changed file range (RangeObserver).
  void FileRangeChanged(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why, bool notify) {
    if (observer_) observer_->FileRangeChanged(ino, off, len, why, notify);
  }

 private:
  uint64_t data_start_ = 0, data_end_ = 0;
  BadBlockList bad_;
  Allocator alloc_;  // after bad_: it reads the list and the data range
  RangeObserver* observer_ = nullptr;
};

}  // namespace udax
