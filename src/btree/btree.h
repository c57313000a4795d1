// btree/btree.h — the one B+tree engine of udax, over device blocks.
//
// Every tree kind (extent map, free space by block / by size, inodes,
// directories, orphans) is this engine specialised by a media::TreeShape:
// fixed-size records whose first `key_words` u64s are the key, compared
// lexicographically. Nodes are 4 KiB blocks (media::BtreeNodeHeader):
//   leaf (level 0):     nrecs records of shape.rec_size bytes, keys ascending;
//   interior (level>0): nrecs entries {key (key_words u64), child block (u64)}.
// Interior key i is a lower bound of every key in child i's subtree and
// every key in child i is below key i+1. Lookups descend to the child with the
// largest key <= the search key (child 0 when none is).
//
// Changes: insert splits full nodes (a full root grows the tree by a level);
// delete removes the record, frees a node that becomes empty (removing its
// entry from the parent) and collapses a root with a single child. Nodes are
// not merged otherwise: depth stays O(log of the largest size the tree
// reached), which keeps every operation O(log n).
//
// All block access goes through a Transaction (journal/); node blocks come
// from and return to a NodeAllocator (the filesystem's free list), which never
// touches a tree during AllocNode/FreeNode.
//
// The root lives in a structure the caller owns (root block, inode record):
// the Btree updates the caller's BtreeRoot in DRAM and the caller writes it
// back in the same transaction when root_changed().
//
// Thread safety: none; the caller's lock covers the transaction.
#pragma once

#include <cstdint>
#include <functional>

#include "journal/journal.h"
#include "media/format.h"
#include "media/verify.h"
#include "udax/status.h"

namespace udax {

class NodeAllocator {
 public:
  virtual ~NodeAllocator() = default;
  // A block for a new node of the tree `shape` owned by `owner` (its content
  // is set by the caller through tx.New). The allocator records the owner
  // (reverse mapping).
  virtual Result<uint64_t> AllocNode(Transaction& tx, const media::TreeShape& shape, uint64_t owner) = 0;
  // A node block no longer used.
  virtual Status FreeNode(Transaction& tx, uint64_t bno, const media::TreeShape& shape, uint64_t owner) = 0;
};

class Btree {
 public:
  // `root` must outlive the Btree. `alloc` may be null for read-only use.
  Btree(Transaction* tx, const media::TreeShape& shape, media::BtreeRoot* root, uint64_t owner,
        NodeAllocator* alloc)
      : tx_(tx), shape_(shape), root_(root), owner_(owner), alloc_(alloc) {}

  // Exact match: true and *rec_out filled when found.
  Result<bool> Lookup(const uint64_t* key, void* rec_out);
  // Greatest record with key <= `key`.
  Result<bool> LookupLE(const uint64_t* key, void* rec_out);
  // Smallest record with key >= `key`.
  Result<bool> LookupGE(const uint64_t* key, void* rec_out);
  // Smallest record with key > `key`.
  Result<bool> LookupGT(const uint64_t* key, void* rec_out);

  Status Insert(const void* rec);      // EEXIST when the key is present
  Status Update(const void* rec);      // same key must exist (ENOENT otherwise)
  Status Delete(const uint64_t* key);  // ENOENT when absent

  // Calls fn on each record with key >= start (all records when start is
  // null), ascending, until fn returns false. fn must not modify the tree.
  Status Scan(const uint64_t* start, const std::function<bool(const void* rec)>& fn);

  // Visits every node top-down (fsck): fn(bno, node block, parent low key or
  // null, parent high key or null). Stops at the first error fn returns.
  Status VisitNodes(const std::function<Status(uint64_t bno, const uint8_t* node,
                                               const uint64_t* lo, const uint64_t* hi)>& fn);

  uint64_t CountRecords();  // for tests and fsck (0 on read error)
  bool root_changed() const { return root_changed_; }
  const media::TreeShape& shape() const { return shape_; }

 private:
  Transaction* tx_;
  const media::TreeShape& shape_;
  media::BtreeRoot* root_;
  uint64_t owner_;
  NodeAllocator* alloc_;
  bool root_changed_ = false;
};

}  // namespace udax
