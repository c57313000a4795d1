// testing/fs_model.cc — see fs_model.h.
#include "testing/fs_model.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <deque>
#include <sstream>

namespace udax::testing {

namespace {

constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxName = 255;
constexpr int kMaxFollows = 40;

std::deque<std::string> Split(const std::string& path) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

uint64_t RoundUpBlk(uint64_t v) { return (v + kModelBlock - 1) / kModelBlock; }

const char* TypeName(uint32_t t) {
  switch (t) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    default: return "?";
  }
}

}  // namespace

FsModel::FsModel() {
  ModelNode root;
  root.id = kRootId;
  root.type = S_IFDIR;
  root.perm = 0755;
  root.nlink = 2;
  root.parent = kRootId;
  nodes_[kRootId] = root;
}

ModelNode* FsModel::Get(uint64_t id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}
const ModelNode* FsModel::Get(uint64_t id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

uint64_t FsModel::NewNode(uint32_t type, uint32_t perm) {
  ModelNode n;
  n.id = next_id_++;
  n.type = type;
  n.perm = perm & 07777;
  n.nlink = type == S_IFDIR ? 2 : 1;
  nodes_[n.id] = n;
  return n.id;
}

int FsModel::Walk(const std::string& path, bool follow_last, uint64_t* id) const {
  if (path.empty()) return ENOENT;
  if (path.size() >= kMaxPath) return ENAMETOOLONG;
  std::deque<std::string> comps = Split(path);
  bool trailing = path.back() == '/';
  uint64_t cur = kRootId;
  int follows = 0;
  while (!comps.empty()) {
    std::string name = std::move(comps.front());
    comps.pop_front();
    const ModelNode& c = nodes_.at(cur);
    if (c.type != S_IFDIR) return ENOTDIR;
    if (name.size() > kMaxName) return ENAMETOOLONG;
    if (name == ".") continue;
    if (name == "..") {
      cur = c.parent;
      continue;
    }
    auto it = c.entries.find(name);
    if (it == c.entries.end()) return ENOENT;
    const ModelNode& next = nodes_.at(it->second);
    bool last = comps.empty();
    if (next.type == S_IFLNK && (!last || follow_last || trailing)) {
      if (++follows > kMaxFollows) return ELOOP;
      if (next.target.empty()) return ENOENT;
      std::deque<std::string> t = Split(next.target);
      for (auto r = t.rbegin(); r != t.rend(); ++r) comps.push_front(*r);
      if (next.target[0] == '/') cur = kRootId;
      continue;
    }
    cur = it->second;
  }
  if (trailing && nodes_.at(cur).type != S_IFDIR) return ENOTDIR;
  *id = cur;
  return 0;
}

int FsModel::WalkParent(const std::string& path, ParentName* out) const {
  if (path.empty()) return ENOENT;
  if (path.size() >= kMaxPath) return ENAMETOOLONG;
  size_t end = path.find_last_not_of('/');
  if (end == std::string::npos) return EBUSY;  // the root: cannot be removed or renamed
  size_t slash = path.rfind('/', end);
  size_t start = slash == std::string::npos ? 0 : slash + 1;
  out->name = path.substr(start, end - start + 1);
  out->trailing_slash = end + 1 < path.size();
  if (out->name.size() > kMaxName) return ENAMETOOLONG;
  if (out->name == "." || out->name == "..") return EINVAL;
  std::string dir = slash == std::string::npos ? "/" : path.substr(0, slash + 1);
  int e = Walk(dir, true, &out->parent);
  if (e) return e;
  if (nodes_.at(out->parent).type != S_IFDIR) return ENOTDIR;
  return 0;
}

void FsModel::MaybeFree(uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  if (it->second.nlink == 0 && it->second.open_count == 0) nodes_.erase(it);
}

void FsModel::DropLink(uint64_t id) {
  ModelNode& n = nodes_.at(id);
  if (n.type == S_IFDIR)
    n.nlink = 0;
  else if (n.nlink > 0)
    n.nlink--;
  MaybeFree(id);
}

int FsModel::Open(const std::string& path, int flags, uint32_t mode, uint64_t* id, bool* created) {
  *created = false;
  int acc = flags & O_ACCMODE;
  bool wants_write = acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC);
  uint64_t target = 0;
  if (flags & O_CREAT) {
    ParentName pn;
    int e = WalkParent(path, &pn);
    if (e) return e;
    ModelNode& dir = nodes_.at(pn.parent);
    if (dir.entries.count(pn.name)) {
      if (flags & O_EXCL) return EEXIST;
      e = Walk(path, !(flags & O_NOFOLLOW), &target);
      if (e) return e;
    } else {
      if (pn.trailing_slash) return EISDIR;
      target = NewNode(S_IFREG, mode);
      nodes_.at(pn.parent).entries[pn.name] = target;
      *created = true;
      paths_valid_ = false;
    }
  } else {
    int e = Walk(path, !(flags & O_NOFOLLOW), &target);
    if (e) return e;
  }
  ModelNode& n = nodes_.at(target);
  if (n.type == S_IFLNK) return ELOOP;
  if (n.type == S_IFDIR && wants_write) return EISDIR;
  if ((flags & O_DIRECTORY) && n.type != S_IFDIR) return ENOTDIR;
  n.open_count++;
  if ((flags & O_TRUNC) && n.type == S_IFREG && n.size > 0) Truncate(target, 0);
  *id = target;
  return 0;
}

int FsModel::Mkdir(const std::string& path, uint32_t mode) {
  paths_valid_ = false;
  ParentName pn;
  int e = WalkParent(path, &pn);
  if (e) return e;
  if (nodes_.at(pn.parent).entries.count(pn.name)) return EEXIST;
  uint64_t id = NewNode(S_IFDIR, mode);
  nodes_.at(id).parent = pn.parent;
  ModelNode& dir = nodes_.at(pn.parent);
  dir.entries[pn.name] = id;
  dir.nlink++;
  return 0;
}

int FsModel::Rmdir(const std::string& path) {
  paths_valid_ = false;
  ParentName pn;
  int e = WalkParent(path, &pn);
  if (e) return e;
  ModelNode& dir = nodes_.at(pn.parent);
  auto it = dir.entries.find(pn.name);
  if (it == dir.entries.end()) return ENOENT;
  uint64_t victim = it->second;
  const ModelNode& v = nodes_.at(victim);
  if (v.type != S_IFDIR) return ENOTDIR;
  if (!v.entries.empty()) return ENOTEMPTY;
  dir.entries.erase(it);
  dir.nlink--;
  DropLink(victim);
  return 0;
}

int FsModel::Unlink(const std::string& path) {
  paths_valid_ = false;
  ParentName pn;
  int e = WalkParent(path, &pn);
  if (e == EBUSY) return EISDIR;  // unlink("/")
  if (e) return e;
  ModelNode& dir = nodes_.at(pn.parent);
  auto it = dir.entries.find(pn.name);
  if (it == dir.entries.end()) return ENOENT;
  uint64_t victim = it->second;
  if (nodes_.at(victim).type == S_IFDIR) return EISDIR;
  if (pn.trailing_slash) return ENOTDIR;
  dir.entries.erase(it);
  DropLink(victim);
  return 0;
}

int FsModel::Link(const std::string& existing, const std::string& new_path) {
  paths_valid_ = false;
  uint64_t src;
  int e = Walk(existing, false, &src);
  if (e) return e;
  if (nodes_.at(src).type == S_IFDIR) return EPERM;
  if (nodes_.at(src).nlink >= 65000) return EMLINK;
  ParentName pn;
  e = WalkParent(new_path, &pn);
  if (e) return e;
  ModelNode& dir = nodes_.at(pn.parent);
  if (dir.entries.count(pn.name)) return EEXIST;
  dir.entries[pn.name] = src;
  nodes_.at(src).nlink++;
  return 0;
}

int FsModel::Symlink(const std::string& target, const std::string& path) {
  paths_valid_ = false;
  if (target.empty()) return ENOENT;
  if (target.size() >= kMaxPath) return ENAMETOOLONG;
  ParentName pn;
  int e = WalkParent(path, &pn);
  if (e) return e;
  if (nodes_.at(pn.parent).entries.count(pn.name)) return EEXIST;
  uint64_t id = NewNode(S_IFLNK, 0777);
  ModelNode& n = nodes_.at(id);
  n.target = target;
  n.size = target.size();
  nodes_.at(pn.parent).entries[pn.name] = id;
  return 0;
}

int FsModel::Readlink(const std::string& path, std::string* out) const {
  uint64_t id;
  int e = Walk(path, false, &id);
  if (e) return e;
  const ModelNode& n = nodes_.at(id);
  if (n.type != S_IFLNK) return EINVAL;
  *out = n.target;
  return 0;
}

int FsModel::Rename(const std::string& from, const std::string& to) {
  paths_valid_ = false;
  ParentName sp, dp;
  int e = WalkParent(from, &sp);
  if (e) return e;
  e = WalkParent(to, &dp);
  if (e) return e;
  auto sit = nodes_.at(sp.parent).entries.find(sp.name);
  if (sit == nodes_.at(sp.parent).entries.end()) return ENOENT;
  uint64_t src = sit->second;
  auto dit = nodes_.at(dp.parent).entries.find(dp.name);
  bool dst_found = dit != nodes_.at(dp.parent).entries.end();
  uint64_t dst = dst_found ? dit->second : 0;
  bool src_dir = nodes_.at(src).type == S_IFDIR;
  if ((sp.trailing_slash || dp.trailing_slash) && !src_dir) return ENOTDIR;
  if (dst_found && dst == src) return 0;
  if (src_dir) {
    uint64_t cur = dp.parent;
    for (;;) {
      if (cur == src) return EINVAL;
      uint64_t up = nodes_.at(cur).parent;
      if (up == cur) break;
      cur = up;
    }
  }
  if (dst_found) {
    const ModelNode& d = nodes_.at(dst);
    if (src_dir && d.type != S_IFDIR) return ENOTDIR;
    if (!src_dir && d.type == S_IFDIR) return EISDIR;
    if (d.type == S_IFDIR && !d.entries.empty()) return ENOTEMPTY;
    nodes_.at(dp.parent).entries[dp.name] = src;
    if (d.type == S_IFDIR) nodes_.at(dp.parent).nlink--;
    DropLink(dst);
  } else {
    nodes_.at(dp.parent).entries[dp.name] = src;
  }
  nodes_.at(sp.parent).entries.erase(sp.name);
  if (src_dir && sp.parent != dp.parent) {
    nodes_.at(sp.parent).nlink--;
    nodes_.at(dp.parent).nlink++;
  }
  if (src_dir) nodes_.at(src).parent = dp.parent;
  return 0;
}

int FsModel::Chmod(const std::string& path, uint32_t mode) {
  uint64_t id;
  int e = Walk(path, true, &id);
  if (e) return e;
  nodes_.at(id).perm = mode & 07777;
  return 0;
}

int FsModel::TruncatePath(const std::string& path, uint64_t len) {
  uint64_t id;
  int e = Walk(path, true, &id);
  if (e) return e;
  return Truncate(id, len);
}

int FsModel::ReadDir(const std::string& path, std::map<std::string, uint64_t>* out) const {
  uint64_t id;
  int e = Walk(path, true, &id);
  if (e) return e;
  const ModelNode& n = nodes_.at(id);
  if (n.type != S_IFDIR) return ENOTDIR;
  *out = n.entries;
  return 0;
}

void FsModel::ZeroRange(ModelNode& n, uint64_t a, uint64_t b, bool lazy) {
  if (a >= b) return;
  for (auto it = n.blocks.lower_bound(a / kModelBlock); it != n.blocks.end(); ++it) {
    uint64_t bs = it->first * kModelBlock;
    if (bs >= b) break;
    uint64_t lo = std::max(a, bs), hi = std::min(b, bs + kModelBlock);
    std::memset(it->second.data() + (lo - bs), 0, hi - lo);
    auto sh = n.share.find(it->first);
    if (sh != n.share.end()) {
      if (lazy)
        sh->second = kShareUnknown;
      else
        n.share.erase(sh);
    }
  }
}

void FsModel::Extending(ModelNode& n, uint64_t new_size) {
  if (new_size <= n.size || n.size % kModelBlock == 0) return;
  auto sh = n.share.find(n.size / kModelBlock);
  if (sh != n.share.end()) sh->second = kShareUnknown;
}

int FsModel::Truncate(uint64_t id, uint64_t len) {
  ModelNode& n = nodes_.at(id);
  if (n.type == S_IFDIR) return EISDIR;
  if (n.type != S_IFREG) return EINVAL;
  if (len > kModelMaxFileSize) return EFBIG;
  // udax frees every whole block past the new EOF, growing or not (blocks
  // preallocated past EOF with FALLOC_FL_KEEP_SIZE do not survive a truncate).
  Extending(n, len);
  n.blocks.erase(n.blocks.lower_bound(RoundUpBlk(len)), n.blocks.end());
  n.share.erase(n.share.lower_bound(RoundUpBlk(len)), n.share.end());
  if (len < n.size) ZeroRange(n, len, RoundUpBlk(len) * kModelBlock, true);
  n.size = len;
  return 0;
}

int FsModel::CheckWrite(uint64_t id, uint64_t off, uint64_t len) const {
  const ModelNode& n = nodes_.at(id);
  if (n.type == S_IFDIR) return EISDIR;
  if (off > kModelMaxFileSize || len > kModelMaxFileSize - off) return EFBIG;
  return 0;
}

void FsModel::Write(uint64_t id, uint64_t off, const void* data, size_t len) {
  ModelNode& n = nodes_.at(id);
  const auto* src = static_cast<const uint8_t*>(data);
  Extending(n, off + len);
  size_t done = 0;
  while (done < len) {
    uint64_t pos = off + done;
    uint64_t blk = pos / kModelBlock, in = pos % kModelBlock;
    size_t k = std::min<size_t>(len - done, kModelBlock - in);
    std::string& b = n.blocks[blk];
    if (b.empty()) b.assign(kModelBlock, '\0');
    n.share.erase(blk);
    std::memcpy(b.data() + in, src + done, k);
    done += k;
  }
  n.size = std::max<uint64_t>(n.size, off + len);
}

int FsModel::Read(uint64_t id, uint64_t off, size_t len, std::string* out) const {
  const ModelNode& n = nodes_.at(id);
  out->clear();
  if (n.type == S_IFDIR) return EISDIR;
  if (off >= n.size || len == 0) return 0;
  len = std::min<uint64_t>(len, n.size - off);
  out->assign(len, '\0');
  for (auto it = n.blocks.lower_bound(off / kModelBlock); it != n.blocks.end(); ++it) {
    uint64_t bs = it->first * kModelBlock;
    if (bs >= off + len) break;
    uint64_t lo = std::max(off, bs), hi = std::min<uint64_t>(off + len, bs + kModelBlock);
    std::memcpy(out->data() + (lo - off), it->second.data() + (lo - bs), hi - lo);
  }
  return 0;
}

int FsModel::Fallocate(uint64_t id, int mode, uint64_t off, uint64_t len, bool apply) {
  const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if (mode & ~known) return EOPNOTSUPP;
  if (len == 0) return EINVAL;
  if (off > kModelMaxFileSize || len > kModelMaxFileSize - off) return EFBIG;
  bool punch = mode & FALLOC_FL_PUNCH_HOLE, zero = mode & FALLOC_FL_ZERO_RANGE;
  if (punch && !(mode & FALLOC_FL_KEEP_SIZE)) return EOPNOTSUPP;
  if (punch && zero) return EOPNOTSUPP;
  ModelNode& n = nodes_.at(id);
  if (n.type == S_IFDIR) return EISDIR;
  if (n.type != S_IFREG) return ENODEV;
  if (!apply) return 0;
  uint64_t end = off + len;
  if (punch) {
    ZeroRange(n, off, end);
    uint64_t first_full = RoundUpBlk(off), end_full = end / kModelBlock;
    if (first_full < end_full) {
      n.blocks.erase(n.blocks.lower_bound(first_full), n.blocks.lower_bound(end_full));
      n.share.erase(n.share.lower_bound(first_full), n.share.lower_bound(end_full));
    }
    return 0;
  }
  if (zero) ZeroRange(n, off, end);
  for (uint64_t b = off / kModelBlock; b < RoundUpBlk(end); b++)
    if (!n.blocks.count(b)) n.blocks[b].assign(kModelBlock, '\0');
  if (!(mode & FALLOC_FL_KEEP_SIZE) && end > n.size) {
    Extending(n, end);
    n.size = end;
  }
  return 0;
}

void FsModel::AddZeroBlocks(uint64_t id, const std::set<uint64_t>& blocks) {
  ModelNode& n = nodes_.at(id);
  for (uint64_t b : blocks)
    if (!n.blocks.count(b)) n.blocks[b].assign(kModelBlock, '\0');
}

int FsModel::RemapTypes(uint64_t src, uint64_t dst) const {
  const ModelNode& s = nodes_.at(src);
  const ModelNode& d = nodes_.at(dst);
  if (s.type == S_IFDIR || d.type == S_IFDIR) return EISDIR;
  if (s.type != S_IFREG || d.type != S_IFREG) return EINVAL;
  return 0;
}

// The rules of udax's CheckRemap (fs/reflink.cc), which are Linux's
// generic_remap_file_range_prep / generic_remap_checks.
int FsModel::Remap(uint64_t src_id, uint64_t dst_id, uint64_t src_off, uint64_t len,
                   uint64_t dst_off, bool dedupe, bool apply, uint64_t* done) {
  *done = 0;
  int e = RemapTypes(src_id, dst_id);
  if (e) return e;
  ModelNode& s = nodes_.at(src_id);
  ModelNode& d = nodes_.at(dst_id);
  if (src_off > s.size) return EINVAL;
  if (len == 0) len = s.size - src_off;
  if (dedupe) {
    if (dst_off > d.size) return EINVAL;
    len = std::min<uint64_t>({len, s.size - src_off, d.size - dst_off});
  }
  if (src_off + len > s.size || src_off + len < src_off) return EINVAL;
  if (dst_off > kModelMaxFileSize || len > kModelMaxFileSize - dst_off) return EFBIG;
  if (src_off % kModelBlock || dst_off % kModelBlock) return EINVAL;
  if (len % kModelBlock) {
    if (src_off + len != s.size) return EINVAL;
    if (dst_off + len < d.size) return EINVAL;
  }
  uint64_t n = RoundUpBlk(len);
  if (src_id == dst_id) {
    uint64_t a = src_off, b = dst_off, nb = n * kModelBlock;
    if (a < b + nb && b < a + nb) return EINVAL;
  }
  if (len == 0) return 0;
  if (dedupe) {
    // Block by block where either side is allocated (holes read as zero;
    // past both ranges' ends every byte is zero in the model).
    static const std::string kZero(kModelBlock, '\0');
    uint64_t sb = src_off / kModelBlock, db = dst_off / kModelBlock;
    std::set<uint64_t> rel;
    for (auto it = s.blocks.lower_bound(sb); it != s.blocks.end() && it->first < sb + n; ++it)
      rel.insert(it->first - sb);
    for (auto it = d.blocks.lower_bound(db); it != d.blocks.end() && it->first < db + n; ++it)
      rel.insert(it->first - db);
    for (uint64_t i : rel) {
      auto a = s.blocks.find(sb + i), b = d.blocks.find(db + i);
      const std::string& x = a == s.blocks.end() ? kZero : a->second;
      const std::string& y = b == d.blocks.end() ? kZero : b->second;
      if (x != y) return EBADE;
    }
  }
  *done = len;
  if (!apply) return 0;
  uint64_t sb = src_off / kModelBlock, db = dst_off / kModelBlock;
  // The source's blocks and their share groups (a private block starts a group).
  std::vector<std::pair<uint64_t, std::string>> copy;
  std::vector<uint64_t> groups;
  for (auto it = s.blocks.lower_bound(sb); it != s.blocks.end() && it->first < sb + n; ++it) {
    auto sh = s.share.find(it->first);
    uint64_t g;
    if (sh == s.share.end()) {
      g = next_share_++;
      s.share[it->first] = g;
    } else {
      g = sh->second;
    }
    copy.emplace_back(it->first - sb + db, it->second);
    groups.push_back(g);
  }
  if (!dedupe) Extending(d, dst_off + len);
  d.blocks.erase(d.blocks.lower_bound(db), d.blocks.lower_bound(db + n));
  d.share.erase(d.share.lower_bound(db), d.share.lower_bound(db + n));
  for (size_t i = 0; i < copy.size(); i++) {
    d.blocks[copy[i].first] = std::move(copy[i].second);
    d.share[copy[i].first] = groups[i];
  }
  if (!dedupe) d.size = std::max(d.size, dst_off + len);
  return 0;
}

void FsModel::Close(uint64_t id) {
  ModelNode* n = Get(id);
  if (!n) return;
  if (n->open_count > 0) n->open_count--;
  MaybeFree(id);
}

void FsModel::DropOpenFiles() {
  std::vector<uint64_t> ids;
  for (auto& [id, n] : nodes_) {
    n.open_count = 0;
    ids.push_back(id);
  }
  for (uint64_t id : ids) MaybeFree(id);
}

std::string FsModel::Contents(uint64_t id) const {
  std::string out;
  const ModelNode& n = nodes_.at(id);
  Read(id, 0, n.size, &out);
  return out;
}

SnapEntry SnapOfNode(const ModelNode& n, bool with_data) {
  SnapEntry e;
  e.type = n.type;
  e.perm = n.perm;
  e.nlink = n.nlink;
  e.ino = n.real_ino;
  if (n.type != S_IFDIR) e.size = n.size;
  e.target = n.target;
  if (n.type == S_IFREG) {
    e.alloc_blocks = n.blocks.size();
    if (with_data) e.data = n.blocks;
  }
  return e;
}

void FsModel::SnapshotDir(uint64_t dir, const std::string& path, bool with_data,
                          TreeSnap* out) const {
  for (const auto& [name, id] : nodes_.at(dir).entries) {
    std::string p = (path == "/" ? "" : path) + "/" + name;
    const ModelNode& n = nodes_.at(id);
    (*out)[p] = SnapOfNode(n, with_data);
    if (n.type == S_IFDIR) SnapshotDir(id, p, with_data, out);
  }
}

TreeSnap FsModel::Snapshot(bool with_data) const {
  TreeSnap out;
  out["/"] = SnapOfNode(nodes_.at(kRootId), with_data);
  SnapshotDir(kRootId, "/", with_data, &out);
  return out;
}

const std::map<uint64_t, std::string>& FsModel::PathsById() const {
  if (paths_valid_) return paths_;
  paths_.clear();
  dir_paths_.clear();
  paths_[kRootId] = "/";
  std::vector<std::pair<uint64_t, std::string>> stack{{kRootId, ""}};
  while (!stack.empty()) {
    auto [dir, path] = stack.back();
    stack.pop_back();
    for (const auto& [name, id] : nodes_.at(dir).entries) {
      std::string p = path + "/" + name;
      paths_.emplace(id, p);
      if (nodes_.at(id).type == S_IFDIR) stack.emplace_back(id, p);
    }
  }
  for (const auto& [id, p] : paths_)
    if (nodes_.at(id).type == S_IFDIR) dir_paths_.push_back(p);
  paths_valid_ = true;
  return paths_;
}

const std::vector<std::string>& FsModel::DirPaths() const {
  PathsById();
  return dir_paths_;
}

namespace {

bool ZeroBlock(const std::string& b) {
  for (char c : b)
    if (c) return false;
  return true;
}

std::string DescribeBlockDiff(const std::string& want, const std::string& got) {
  for (size_t i = 0; i < want.size() && i < got.size(); i++) {
    if (want[i] != got[i]) {
      std::ostringstream os;
      os << "first difference at byte " << i << ": want 0x" << std::hex
         << (static_cast<unsigned>(want[i]) & 0xff) << " got 0x"
         << (static_cast<unsigned>(got[i]) & 0xff);
      return os.str();
    }
  }
  return "length differs";
}

}  // namespace

std::string DiffSnapshots(const TreeSnap& want, const TreeSnap& got, bool metadata, bool data,
                          bool allocation) {
  std::ostringstream os;
  int n = 0;
  auto problem = [&](const std::string& s) {
    if (n++ < 20) os << "  " << s << "\n";
  };
  for (const auto& [path, w] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      problem(path + ": missing (want " + TypeName(w.type) + ")");
      continue;
    }
    const SnapEntry& g = it->second;
    if (metadata) {
      if (w.type != g.type) problem(path + ": type " + TypeName(g.type) + ", want " + TypeName(w.type));
      if (w.ino && g.ino && w.ino != g.ino)
        problem(path + ": inode " + std::to_string(g.ino) + ", want " + std::to_string(w.ino));
      if (w.nlink != g.nlink)
        problem(path + ": nlink " + std::to_string(g.nlink) + ", want " + std::to_string(w.nlink));
      if (w.perm != g.perm) problem(path + ": mode " + std::to_string(g.perm) + ", want " + std::to_string(w.perm));
      if (w.type != S_IFDIR && w.size != g.size)
        problem(path + ": size " + std::to_string(g.size) + ", want " + std::to_string(w.size));
      if (w.type == S_IFLNK && w.target != g.target)
        problem(path + ": symlink target '" + g.target + "', want '" + w.target + "'");
    }
    if (allocation && w.type == S_IFREG && g.type == S_IFREG) {
      if (w.alloc_blocks != g.alloc_blocks)
        problem(path + ": " + std::to_string(g.alloc_blocks) + " blocks allocated, want " +
                std::to_string(w.alloc_blocks));
      for (const auto& [b, _] : w.data)
        if (!g.data.count(b)) {
          problem(path + ": block " + std::to_string(b) + " is a hole, want allocated");
          break;
        }
      for (const auto& [b, _] : g.data)
        if (!w.data.count(b)) {
          problem(path + ": block " + std::to_string(b) + " is allocated, want a hole");
          break;
        }
    }
    if (data && w.type == S_IFREG && g.type == S_IFREG) {
      static const std::string kZero(kModelBlock, '\0');
      std::set<uint64_t> blocks;
      for (const auto& [b, _] : w.data) blocks.insert(b);
      for (const auto& [b, _] : g.data) blocks.insert(b);
      for (uint64_t b : blocks) {
        if (b * kModelBlock >= std::min(w.size, g.size)) break;
        auto wi = w.data.find(b);
        auto gi = g.data.find(b);
        const std::string& wb = wi == w.data.end() ? kZero : wi->second;
        const std::string& gb = gi == g.data.end() ? kZero : gi->second;
        if (wb != gb) {
          problem(path + ": data of block " + std::to_string(b) + " differs (" +
                  DescribeBlockDiff(wb, gb) + (ZeroBlock(gb) ? "; got zeroes" : "") + ")");
          break;
        }
      }
    }
  }
  for (const auto& [path, g] : got)
    if (!want.count(path)) problem(path + ": unexpected " + std::string(TypeName(g.type)));
  if (n > 20) os << "  ... " << (n - 20) << " more\n";
  return os.str();
}

}  // namespace udax::testing
