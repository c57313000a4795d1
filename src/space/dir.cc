// space/dir.cc — directory entries (see dir.h).
#include "space/dir.h"

#include <cstring>

namespace udax {

using media::DirRec;

namespace {

const media::TreeShape& DirShape() { return *media::ShapeForMagic(media::kDirMagic); }

bool NameIs(const DirRec& r, std::string_view name) {
  return r.name_len == name.size() && std::memcmp(r.name, name.data(), name.size()) == 0;
}

// Finds the entry for `name` (its record in *out) and fills *key with where
// it is — or, when absent, where a new entry would go: the name's hash and
// one more than the highest sequence of its hash chain (the scan stops at the
// entry, else at the chain's end).
Result<bool> FindEntry(Btree& tree, std::string_view name, DirRec* out, DirHit* key) {
  const uint64_t h = NameHash(name);
  uint64_t start[2] = {h, 0}, max_seq = 0;
  bool found = false;
  RETURN_IF_ERROR(tree.Scan(start, [&](const void* p) {
    const auto* r = static_cast<const DirRec*>(p);
    if (r->hash != h) return false;
    max_seq = r->seq;
    if (NameIs(*r, name)) {
      *out = *r;
      found = true;
      return false;
    }
    return true;
  }));
  key->hash = h;
  key->seq = found ? out->seq : max_seq + 1;
  return found;
}

}  // namespace

uint64_t NameHash(std::string_view name) { return media::NameHash(name.data(), name.size()); }

Result<bool> DirLookup(Transaction& tx, const media::InodeRec& dir, std::string_view name,
                       DirHit* hit) {
  media::BtreeRoot root = dir.data;
  Btree tree(&tx, DirShape(), &root, dir.ino, nullptr);
  DirRec r;
  ASSIGN_OR_RETURN(bool found, FindEntry(tree, name, &r, hit));
  if (found) {
    hit->ino = r.ino;
    hit->type = static_cast<uint32_t>(r.type) << 12;
  }
  return found;
}

Status DirAdd(Space* space, SpaceTxn& t, media::InodeRec& dir, std::string_view name, uint64_t ino,
              uint32_t type, const DirHit* absent) {
  if (name.empty() || name.size() > media::kMaxNameLen) return Errno(ENAMETOOLONG, "name too long");
  Btree tree(&t.tx, DirShape(), &dir.data, dir.ino, space->allocator());
  tree.KeepEmptyRoot();
  DirRec r;
  DirHit key;
  if (!absent) {
    ASSIGN_OR_RETURN(bool found, FindEntry(tree, name, &r, &key));
    if (found) return Errno(EEXIST, "file exists");
    absent = &key;
  }
  std::memset(&r, 0, sizeof r);
  r.hash = absent->hash;
  r.seq = absent->seq;
  r.ino = ino;
  r.type = static_cast<uint8_t>(type >> 12);
  r.name_len = static_cast<uint8_t>(name.size());
  std::memcpy(r.name, name.data(), name.size());
  RETURN_IF_ERROR(tree.Insert(&r));
  dir.dir_entries++;
  return Status::Ok();
}

Status DirRemove(Space* space, SpaceTxn& t, media::InodeRec& dir, std::string_view name, const DirHit* found) {
  Btree tree(&t.tx, DirShape(), &dir.data, dir.ino, space->allocator());
  tree.KeepEmptyRoot();
  DirHit key;
  if (!found) {
    DirRec r;
    ASSIGN_OR_RETURN(bool present, FindEntry(tree, name, &r, &key));
    if (!present) return Errno(ENOENT, "no such file or directory");
    found = &key;
  }
  uint64_t k[2] = {found->hash, found->seq};
  RETURN_IF_ERROR(tree.Delete(k));
  dir.dir_entries--;
  return Status::Ok();
}

Status DirReplace(Space* space, SpaceTxn& t, media::InodeRec& dir, std::string_view name,
                  uint64_t ino, uint32_t type) {
  Btree tree(&t.tx, DirShape(), &dir.data, dir.ino, space->allocator());
  DirRec r;
  DirHit key;
  ASSIGN_OR_RETURN(bool found, FindEntry(tree, name, &r, &key));
  if (!found) return Errno(ENOENT, "no such file or directory");
  r.ino = ino;
  r.type = static_cast<uint8_t>(type >> 12);
  return tree.Update(&r);
}

Status DirDestroy(Space* space, SpaceTxn& t, media::InodeRec& dir) {
  Btree tree(&t.tx, DirShape(), &dir.data, dir.ino, space->allocator());
  return tree.FreeEmptyRoot().Prefixed("directory " + std::to_string(dir.ino));
}

Status DirList(Transaction& tx, const media::InodeRec& dir,
               const std::function<bool(const DirRec&)>& fn) {
  media::BtreeRoot root = dir.data;
  Btree tree(&tx, DirShape(), &root, dir.ino, nullptr);
  return tree.Scan(nullptr, [&](const void* p) { return fn(*static_cast<const DirRec*>(p)); });
}

}  // namespace udax
