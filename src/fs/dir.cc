// fs/dir.cc — directory entries (see dir.h).
#include "fs/dir.h"

#include <cstring>

#include "util/crc32c.h"

namespace udax {

using media::DirRec;

namespace {

const media::TreeShape& DirShape() { return *media::ShapeForMagic(media::kDirMagic); }

bool NameIs(const DirRec& r, std::string_view name) {
  return r.name_len == name.size() && std::memcmp(r.name, name.data(), name.size()) == 0;
}

// Finds the entry for `name`; also reports the highest sequence in its hash chain.
Result<bool> FindEntry(Btree& tree, std::string_view name, DirRec* out, uint64_t* max_seq) {
  uint64_t h = NameHash(name);
  uint64_t key[2] = {h, 0};
  bool found = false;
  if (max_seq) *max_seq = 0;
  RETURN_IF_ERROR(tree.Scan(key, [&](const void* p) {
    const auto* r = static_cast<const DirRec*>(p);
    if (r->hash != h) return false;
    if (max_seq) *max_seq = r->seq;
    if (NameIs(*r, name)) {
      *out = *r;
      found = true;
      return max_seq != nullptr;  // keep going only to learn the chain's end
    }
    return true;
  }));
  return found;
}

}  // namespace

uint64_t NameHash(std::string_view name) {
  uint64_t hi = Crc32cExtend(0x5ed5, name.data(), name.size());
  uint64_t lo = Crc32c(name.data(), name.size());
  return (hi << 32) | lo;
}

Result<bool> DirLookup(Transaction& tx, const media::InodeRec& dir, std::string_view name,
                       DirHit* hit, bool for_change) {
  media::BtreeRoot root = dir.data;
  Btree tree(&tx, DirShape(), &root, dir.ino, nullptr);
  DirRec r;
  uint64_t max_seq = 0;
  ASSIGN_OR_RETURN(bool found, FindEntry(tree, name, &r, for_change ? &max_seq : nullptr));
  if (found) {
    hit->ino = r.ino;
    hit->type = static_cast<uint32_t>(r.type) << 12;
  }
  if (for_change) {
    hit->hash = NameHash(name);
    hit->seq = found ? r.seq : max_seq + 1;
  }
  return found;
}

Status DirAdd(FsImpl* fs, FsTxn& t, media::InodeRec& dir, std::string_view name, uint64_t ino,
              uint32_t type, const DirHit* absent) {
  if (name.empty() || name.size() > kMaxNameLen) return Errno(ENAMETOOLONG, "name too long");
  Btree tree(&t.tx, DirShape(), &dir.data, dir.ino, fs->allocator());
  tree.KeepEmptyRoot();
  DirRec r;
  uint64_t hash, seq;
  if (absent) {
    hash = absent->hash;
    seq = absent->seq;
  } else {
    uint64_t max_seq = 0;
    ASSIGN_OR_RETURN(bool found, FindEntry(tree, name, &r, &max_seq));
    if (found) return Errno(EEXIST, "file exists");
    hash = NameHash(name);
    seq = max_seq + 1;
  }
  std::memset(&r, 0, sizeof r);
  r.hash = hash;
  r.seq = seq;
  r.ino = ino;
  r.type = static_cast<uint8_t>(type >> 12);
  r.name_len = static_cast<uint8_t>(name.size());
  std::memcpy(r.name, name.data(), name.size());
  RETURN_IF_ERROR(tree.Insert(&r));
  dir.dir_entries++;
  return Status::Ok();
}

Status DirRemove(FsImpl* fs, FsTxn& t, media::InodeRec& dir, std::string_view name, const DirHit* found) {
  Btree tree(&t.tx, DirShape(), &dir.data, dir.ino, fs->allocator());
  tree.KeepEmptyRoot();
  uint64_t key[2];
  if (found) {
    key[0] = found->hash;
    key[1] = found->seq;
  } else {
    DirRec r;
    ASSIGN_OR_RETURN(bool present, FindEntry(tree, name, &r, nullptr));
    if (!present) return Errno(ENOENT, "no such file or directory");
    key[0] = r.hash;
    key[1] = r.seq;
  }
  RETURN_IF_ERROR(tree.Delete(key));
  dir.dir_entries--;
  return Status::Ok();
}

Status DirReplace(FsImpl* fs, FsTxn& t, media::InodeRec& dir, std::string_view name,
                  uint64_t ino, uint32_t type) {
  Btree tree(&t.tx, DirShape(), &dir.data, dir.ino, fs->allocator());
  tree.KeepEmptyRoot();
  DirRec r;
  ASSIGN_OR_RETURN(bool found, FindEntry(tree, name, &r, nullptr));
  if (!found) return Errno(ENOENT, "no such file or directory");
  r.ino = ino;
  r.type = static_cast<uint8_t>(type >> 12);
  return tree.Update(&r);
}

Status DirDestroy(FsImpl* fs, FsTxn& t, media::InodeRec& dir) {
  Btree tree(&t.tx, DirShape(), &dir.data, dir.ino, fs->allocator());
  return tree.FreeEmptyRoot().Prefixed("directory " + std::to_string(dir.ino));
}

Status DirList(Transaction& tx, const media::InodeRec& dir,
               const std::function<bool(const DirRec&)>& fn) {
  media::BtreeRoot root = dir.data;
  Btree tree(&tx, DirShape(), &root, dir.ino, nullptr);
  return tree.Scan(nullptr, [&](const void* p) { return fn(*static_cast<const DirRec*>(p)); });
}

}  // namespace udax
