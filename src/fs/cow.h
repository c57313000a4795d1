// fs/cow.h — CopyOnWrite: writes into mapped blocks that may be shared
// (reflinked) or failed, for write(), zeroing and DAX write faults.
//
// A shared block (refcount >= 2) is never written in place. CowBlocks
// allocates private blocks, copies the old content into them, drops this
// file's reference to the shared blocks (UnmapRange: extent map, rmap and
// refcount change together; this file's mappings of the range are revoked
// with reason CopyOnWrite, through the space layer's RangeObserver, before
// the old blocks lose the reference) and maps the copies — all in the
// caller's transaction, so the switch is atomic. Other sharers keep the old
// blocks and their mappings never notice.
//
// Failed (poisoned) blocks are replaced the same way, without the copy: a
// write of whole blocks over them gets fresh blocks (OverwriteBad), a partial
// write gets EIO — the old bytes are gone and are never read.
//
// Locking: every call runs inside the caller's transaction, meta_mu_
// exclusive; none commits except where noted (a roll).
#pragma once

#include <cstddef>
#include <cstdint>

#include "fs/fs_txn.h"
#include "media/format.h"

namespace udax {

class FsImpl;
struct ExtentOrHole;

class CopyOnWrite {
 public:
  explicit CopyOnWrite(FsImpl& fs) : fs_(fs) {}

  // Replaces up to n shared blocks of `rec` from file block fblk with private
  // copies; returns how many (>= 1). Caller commits.
  // copy=false: the old blocks failed; the copies are zeroed instead.
  Result<uint64_t> CowBlocks(FsTxn& t, media::InodeRec& rec, uint64_t fblk, uint64_t n, bool copy = true);
  // Writes into the mapped extent `e` at pos (copying shared blocks first);
  // returns the bytes written (up to the end of a shared/unshared run).
  Result<size_t> WriteMapped(FsTxn& t, media::InodeRec& rec, const ExtentOrHole& e,
                             const uint8_t* src, size_t len, uint64_t pos);
  // Gives the file private copies of every shared block overlapping [a, b)
  // (content unchanged; may commit along the way). After it, zeroing in the
  // range allocates nothing, so cannot fail half-way with ENOSPC.
  Status UnshareRange(FsTxn& t, media::InodeRec& rec, uint64_t a, uint64_t b);
  // Zeroes file bytes [a, b) of mapped blocks in place (holes stay holes),
  // copying shared blocks first. May roll the transaction.
  Status ZeroMapped(FsTxn& t, media::InodeRec& rec, uint64_t a, uint64_t b);

 private:
  // A write starting at a failed block (bad_run bad blocks from pos): whole
  // blocks are replaced by fresh ones and written; a partial block is EIO.
  Result<size_t> OverwriteBad(FsTxn& t, media::InodeRec& rec, const uint8_t* src, size_t len, uint64_t pos,
                              uint64_t bad_run);

  FsImpl& fs_;
};

}  // namespace udax
