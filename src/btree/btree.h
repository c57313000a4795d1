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
// Changes: insert splits full nodes (a full root grows the tree by a level).
// Delete removes the record, then merges: while the node that lost an item
// and an adjacent sibling under the same parent fit in one node (nrecs_a +
// nrecs_b <= capacity), all items move into the left one, the right one is
// freed and its entry leaves the parent (the left one's key stays a lower
// bound). The merged node is checked again against its new neighbours, and a
// parent that lost entries is treated the same way, up to the root. Merging
// two interior nodes makes the left one's last child and the right one's
// first child siblings: they are merged too when they fit, and so on down
// that seam. An empty node with no sibling is freed; a root left with a
// single child is collapsed, an empty root leaves the tree empty — unless
// the tree keeps its empty root leaf (KeepEmptyRoot). Deletes never allocate.
// A delete thus re-checks every sibling pair it touches: a pair that would
// fit in one node survives only where an insert's split left it (a half next
// to a small sibling) and no delete has touched either node since. The node
// count follows the record count down (a tree grown from at most one leaf's
// worth of records and deleted back to them is a single leaf again, which
// tests/btree_test.cc checks over many workloads) and depth stays
// O(log n). A delete dirties the path plus, per level where merging happens,
// the left node of each merge; an error midway (a node that fails to read)
// leaves the transaction to be aborted, as for any failed change.
//
// All block access goes through a Transaction (journal/); node blocks come
// from and return to a NodeAllocator (the filesystem's free list), which never
// touches a tree during AllocNode/FreeNode.
//
// The root lives in a structure the caller owns (root block, inode record):
// the Btree updates the caller's BtreeRoot in DRAM and the caller writes it
// back in the same transaction when root_changed().
//
// Contracts: builds with UDAX_ASSERTS check every node the engine changes
// (order, fill, level; btree.cc says what and why it holds on any image).
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

  // Keep the root leaf when its last record is deleted (directories: a
  // create/unlink cycle in an empty directory then allocates and frees no
  // node). Such a tree is destroyed with FreeEmptyRoot.
  void KeepEmptyRoot() { keep_empty_root_ = true; }
  // Frees the root of a tree that holds no record (an empty root leaf, or no
  // node at all); EUCLEAN when it still has records.
  Status FreeEmptyRoot();

  uint64_t CountRecords();  // for tests and fsck (0 on read error)
  bool root_changed() const { return root_changed_; }
  const media::TreeShape& shape() const { return shape_; }

  // Deliberate engine bugs for the tests of its assertions
  // (tests/contracts_test.cc), for the calling thread's next operations;
  // honoured only in builds with UDAX_ASSERTS (util/assert.h).
  enum class Fault {
    kNone,
    kMisplaceInsert,  // a record goes one slot too far right
    kKeepEmptyNode,   // a delete leaves an emptied node beside its siblings
    kWrongRootLevel,  // a new root is given one level too many
  };
  static void InjectFaultForTesting(Fault f);

 private:
  Transaction* tx_;
  const media::TreeShape& shape_;
  media::BtreeRoot* root_;
  uint64_t owner_;
  NodeAllocator* alloc_;
  bool root_changed_ = false;
  bool keep_empty_root_ = false;
};

}  // namespace udax
