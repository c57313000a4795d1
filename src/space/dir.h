// space/dir.h — directories: entries in a per-directory B+tree keyed by
// (64-bit name hash, collision sequence), so lookup, create and unlink are
// O(log n) however large the directory.
//
// Invariants: names are unique in a directory; "." and ".." are implicit
// (the inode's parent field); rec.dir_entries counts the entries. A
// directory's tree keeps its root leaf when it becomes empty (no node is
// allocated and freed by each create/unlink in an empty directory); the leaf
// is freed with the directory (DirDestroy).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "btree/btree.h"
#include "space/space.h"

namespace udax {

uint64_t NameHash(std::string_view name);

struct DirHit {
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits
  // The name's key: where the entry is (found), or where a new entry would
  // go (absent) — for DirAdd/DirRemove in the same transaction, before
  // anything else changes the directory.
  uint64_t hash = 0, seq = 0;
};

// Looks `name` up in directory `dir`; found=false when absent.
Result<bool> DirLookup(Transaction& tx, const media::InodeRec& dir, std::string_view name,
                       DirHit* hit);
// Adds an entry (EEXIST when present). Updates dir.dir_entries (caller writes
// dir). `absent`: a DirLookup of this name found it absent (the directory
// has not changed since), so the lookup is not repeated.
Status DirAdd(Space* space, SpaceTxn& t, media::InodeRec& dir, std::string_view name, uint64_t ino,
              uint32_t type, const DirHit* absent = nullptr);
// Removes an entry (ENOENT when absent). `found`: as for DirAdd, a DirLookup
// that found it.
Status DirRemove(Space* space, SpaceTxn& t, media::InodeRec& dir, std::string_view name,
                 const DirHit* found = nullptr);
// Points an existing entry at another inode (rename over a target).
Status DirReplace(Space* space, SpaceTxn& t, media::InodeRec& dir, std::string_view name,
                  uint64_t ino, uint32_t type);
// Frees the (empty) tree of a directory being deleted; EUCLEAN when it still
// has entries. Caller writes dir.
Status DirDestroy(Space* space, SpaceTxn& t, media::InodeRec& dir);
// Every entry in hash order.
Status DirList(Transaction& tx, const media::InodeRec& dir,
               const std::function<bool(const media::DirRec&)>& fn);

}  // namespace udax
