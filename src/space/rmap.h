// space/rmap.h — the reverse mapping (rmap) B+tree: for every used device
// block, its owners. Kept exact in the same transaction as every change of a
// block's owner (see docs/rmap-reflink.md).
//
// Records (media::RmapRec, key (start, owner, offset)):
//  * file data: owner = inode, offset = file block; one record per extent-map
//    record (same boundaries), so a record is found by its exact key;
//  * a node of an inode's extent map or directory tree: owner = inode,
//    flags = kRmapTreeBlock, length 1;
//  * other metadata: owner = kOwnStatic (superblocks, root block, journal),
//    kOwnAg (free list, free-space, rmap and refcount tree nodes),
//    kOwnInodeTree, kOwnOrphanTree; one record per block (static: one range).
// Shared blocks have one record per owner; their count is in the refcount tree.
#pragma once

#include <cstdint>
#include <vector>

#include "btree/btree.h"

namespace udax {

// The rmap owner of a node of the tree `magic` owned by `tree_owner`.
void RmapOwnerOfNode(uint32_t magic, uint64_t tree_owner, uint64_t* owner, uint32_t* flags);
bool IsAgOwned(uint32_t magic);

Status RmapInsert(NodeAllocator* alloc, Transaction& tx, const media::RmapRec& rec);
Status RmapDelete(NodeAllocator* alloc, Transaction& tx, uint64_t start, uint64_t owner, uint64_t offset);
// Changes the length of an existing record.
Status RmapSetLength(NodeAllocator* alloc, Transaction& tx, uint64_t start, uint64_t owner, uint64_t offset,
                     uint32_t length);

// Every owner record covering device block `bno` (empty for a free block).
// O(log n) plus one step per other record overlapping the block.
Result<std::vector<media::RmapRec>> RmapOwners(Transaction& tx, uint64_t bno);
// Every record overlapping [start, start+len), in key order.
Result<std::vector<media::RmapRec>> RmapQuery(Transaction& tx, uint64_t start, uint64_t len);

// A human-readable name of a metadata owner ("journal", "inode-btree", ...).
const char* RmapMetaName(uint64_t owner);

}  // namespace udax
