// fs/dir.h — directories: entries in a per-directory B+tree keyed by
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

#include "fs/fs_impl.h"

namespace udax {

uint64_t NameHash(std::string_view name);

struct DirHit {
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits
};

// Looks `name` up in directory `dir`; found=false when absent.
Result<bool> DirLookup(Transaction& tx, const media::InodeRec& dir, std::string_view name,
                       DirHit* hit);
// Adds an entry (EEXIST when present). Updates dir.dir_entries (caller writes dir).
Status DirAdd(FsImpl* fs, FsTxn& t, media::InodeRec& dir, std::string_view name, uint64_t ino,
              uint32_t type);
// Removes an entry (ENOENT when absent).
Status DirRemove(FsImpl* fs, FsTxn& t, media::InodeRec& dir, std::string_view name);
// Points an existing entry at another inode (rename over a target).
Status DirReplace(FsImpl* fs, FsTxn& t, media::InodeRec& dir, std::string_view name,
                  uint64_t ino, uint32_t type);
// Frees the (empty) tree of a directory being deleted; EUCLEAN when it still
// has entries. Caller writes dir.
Status DirDestroy(FsImpl* fs, FsTxn& t, media::InodeRec& dir);
// Every entry in hash order.
Status DirList(Transaction& tx, const media::InodeRec& dir,
               const std::function<bool(const media::DirRec&)>& fn);

}  // namespace udax
