// tests/differential_test.cc — long random operation sequences run on udax and
// on the in-memory model (src/testing/fs_model.h), comparing every return
// code (errno) and the state touched by each step (lstat of the paths
// involved, their directories' listings, open files' size/nlink/data), with a
// full comparison (every path, every file's allocated blocks and bytes, the
// inode count) every kFullCompareEvery steps. At random points the filesystem
// is remounted (Unmount + fsck + Mount) or crashed (CrashForTesting + fsck +
// Mount: everything that returned must be there). The device is small so
// ENOSPC happens; it must leave everything intact (a short write keeps what it
// wrote; a failed fallocate may keep zeroed blocks it allocated, nothing else).
//
// Environment: UDAX_DIFF_SEED (default: random, printed), UDAX_DIFF_STEPS,
// UDAX_DIFF_DEV_MB (device size, default 32), UDAX_DIFF_REMAP (percent of
// steps that clone or dedupe, default 5), UDAX_DIFF_LOG (operations shown
// on failure, default 60), UDAX_DIFF_AVOID_ZERO_SHARED=1 (no ZERO_RANGE /
// PUNCH_HOLE on files with shared blocks: sidesteps the in-place zeroing of
// shared blocks while other bugs are hunted).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fs/test_access.h"
#include "testing/crash_run.h"
#include "udax/check.h"
#include "testing/fs_model.h"
#include "testing/fs_snapshot.h"
#include "udax/fs.h"

namespace udax::testing {
namespace {

constexpr uint64_t kDevSize = 32 << 20;
constexpr uint64_t kDefaultSteps = 32000;
constexpr int kFullCompareEvery = 100;
constexpr size_t kMaxHandles = 10;


uint64_t EnvU64(const char* name, uint64_t def) {
  const char* v = getenv(name);
  return v && *v ? strtoull(v, nullptr, 0) : def;
}

class Differ {
 public:
  Differ(uint64_t seed, std::string dev) : seed_(seed), rng_(seed), dev_(std::move(dev)) {}
  ~Differ() {
    handles_.clear();
    if (fs_) CrashForTesting(*fs_);
    fs_.reset();
    ::unlink(dev_.c_str());
  }

  // Runs `steps` random operations; returns "" or the first discrepancy.
  std::string Run(uint64_t steps);
  std::string Stats() const {
    std::ostringstream os;
    os << ops_ok_ << " checks ok, " << ops_err_ << " expected errors, " << enospc_ << " ENOSPC, " << remounts_
       << " remounts, " << crashes_ << " crashes, " << full_compares_ << " full compares; largest directory "
       << max_dir_ << " entries, most fragmented file " << max_runs_ << " extents; " << clones_ << " clones ("
       << clone_blocks_ << " blocks), " << dedupes_ << " dedupes (" << dedupe_blocks_ << " blocks), " << ebade_
       << " EBADE, " << e2big_ << " E2BIG, most blocks shared at once " << max_shared_
       << ", largest statfs churn of a clone " << max_clone_churn_ << " blocks";
    return os.str();
  }

 private:
  struct Handle {
    File file;
    File reader;  // for write-only handles: a read-only handle on the same inode
    File& R() { return reader.is_open() ? reader : file; }
    uint64_t id = 0;
    int flags = 0;
    uint64_t pos = 0;
    std::string path;
  };

  uint64_t R(uint64_t n) { return n ? rng_() % n : 0; }
  bool P(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  // A path as udax's API takes it: the path itself, or (a third of the
  // time) the same path as an *at path — the rest of it relative to the
  // inode of one of its directory prefixes, as the FUSE mount names files.
  // Both must behave alike; the model only knows whole paths.
  struct AtPath {
    std::string full, rest;
    uint64_t at = 0;
    PathAt get() const { return at ? PathAt(at, rest) : PathAt(full); }
  };
  AtPath AsAt(const std::string& path) {
    AtPath out{path, "", 0};
    std::vector<size_t> cuts;  // after a component, before a '/'
    for (size_t i = 1; i < path.size(); i++)
      if (path[i] == '/' && path[i - 1] != '/') cuts.push_back(i);
    if (cuts.empty() || !P(1.0 / 3)) return out;
    size_t cut = cuts[R(cuts.size())];
    size_t rest = path.find_first_not_of('/', cut);
    if (rest == std::string::npos) return out;  // nothing after the prefix
    auto dir = fs_->GetStat(path.substr(0, cut));
    if (!dir) return out;
    out.rest = path.substr(rest);
    out.at = dir->ino;
    Log("  as *at: inode " + std::to_string(out.at) + " + " + out.rest.substr(0, 60));
    return out;
  }

  // Non-zero bytes from the run's generator (the crash suite's pattern).
  std::string Pattern(size_t len) { return CrashPattern(rng_(), len); }

  // ---- generators ----
  std::string RandName();
  std::string RandPath();      // parent mostly an existing directory, random name
  std::string ExistingPath();  // mostly an existing object
  std::string SymlinkTarget();
  uint64_t RandOffset(uint64_t size);
  size_t RandLen();

  // ---- steps ----
  std::string Step();
  std::string OpOpen();
  std::string OpClose();
  std::string OpPwrite(bool positional);
  std::string OpPread(bool positional);
  std::string OpFragment();
  std::string MakeRoom();
  std::string OpFtruncate();
  std::string OpTruncatePath();
  std::string OpFallocate();
  std::string OpNamespace(int which);
  std::string OpReadDir();
  std::string OpStat();
  std::string OpReadlink();
  std::string OpRemap(bool dedupe);
  std::string Remount(bool crash);

  // ---- checks ----
  std::string CheckErr(const std::string& what, int got, int want);
  std::string CheckPath(const std::string& path);  // lstat + parent listing
  std::string CheckDir(const std::string& path);
  std::string CheckHandle(Handle& h, bool data);
  // Allocated blocks (Fiemap, st_blocks) and bytes of an open file vs the model.
  std::string CompareFile(File& f, const ModelNode& n, const std::string& what);
  std::string FullCompare();
  // Blocks the model says are shared (one share group) map to one device
  // block; blocks of different groups / private blocks to different ones.
  std::string CheckSharing();
  std::string ResyncAllocation(Handle& h);  // after ENOSPC
  void LearnInos();
  void Log(std::string s) {
    recent_.push_back(std::to_string(step_) + ": " + std::move(s));
    static const uint64_t keep = EnvU64("UDAX_DIFF_LOG", 60);
    if (recent_.size() > keep) recent_.pop_front();
  }

 public:
  std::string Recent() const {
    std::string out;
    for (const auto& s : recent_) out += "    " + s + "\n";
    return out;
  }
  uint64_t step() const { return step_; }

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::string dev_;
  std::unique_ptr<Filesystem> fs_;
  FsModel model_;
  std::vector<std::unique_ptr<Handle>> handles_;
  std::deque<std::string> recent_;
  uint64_t step_ = 0;
  uint64_t max_dir_ = 0, max_runs_ = 0;
  uint64_t ops_ok_ = 0, ops_err_ = 0, enospc_ = 0, remounts_ = 0, crashes_ = 0, full_compares_ = 0;
  uint64_t clones_ = 0, clone_blocks_ = 0, dedupes_ = 0, dedupe_blocks_ = 0, ebade_ = 0, e2big_ = 0;
  uint64_t max_shared_ = 0, max_clone_churn_ = 0, extra_copies_ = 0;
};

std::string Differ::RandName() {
  static const char* kNames[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
  uint64_t r = R(1000);
  if (r < 5) return std::string(256, 'n');  // too long
  if (r < 10) return std::string(255, 'm');
  if (r < 20) return ".";
  if (r < 30) return "..";
  if (r < 300) return "n" + std::to_string(R(200));  // big directories: B+tree splits
  return kNames[R(8)];
}

std::string Differ::RandPath() {
  std::string base;
  uint64_t r = R(100);
  if (r < 75) {
    const auto& dirs = model_.DirPaths();
    base = dirs[R(dirs.size())];
  } else if (r < 85) {
    base = ExistingPath();  // may be a file or a symlink: ENOTDIR, or follows
  } else if (r < 90) {
    base = "/nx";
  } else {
    base = "/";
  }
  std::string p = base + (base.back() == '/' ? "" : "/") + RandName();
  if (P(0.03)) p += "/";
  if (P(0.02)) {
    size_t s = p.find('/', 1);
    if (s != std::string::npos) p.insert(s, "/");
  }
  if (P(0.02)) p = "/./" + p.substr(1);
  return p;
}

std::string Differ::ExistingPath() {
  const auto& paths = model_.PathsById();
  if (paths.size() <= 1 || P(0.15)) return RandPath();
  auto it = paths.begin();
  std::advance(it, R(paths.size()));
  std::string p = it->second;
  if (P(0.03)) p += "/";
  return p;
}

std::string Differ::SymlinkTarget() {
  uint64_t r = R(100);
  if (r < 40) return ExistingPath();
  if (r < 60) return std::string(1, static_cast<char>('a' + R(8)));
  if (r < 70) return "../" + RandName();
  if (r < 80) return "/" + std::string(100 + R(300), 'x');  // stored out of line
  if (r < 83) return std::string(4100, 'y');                // too long
  if (r < 85) return "";
  return RandPath();
}

uint64_t Differ::RandOffset(uint64_t size) {
  uint64_t r = R(100);
  if (r < 40) return R(size + 1);
  if (r < 55) return size;
  if (r < 75) return R(64 << 10);
  if (r < 90) return R(4 << 20);
  if (r < 97) return R(64 << 20);
  if (r < 99) return R(1ULL << 40);
  return kModelMaxFileSize - R(8192);  // EFBIG edge
}

size_t Differ::RandLen() {
  uint64_t r = R(1000);
  if (r < 50) return 0;
  if (r < 500) return 1 + R(4096);
  if (r < 850) return 1 + R(32 << 10);
  if (r < 997) return 1 + R(512 << 10);
  return 1 + R(6 << 20);  // fills the device now and then
}

// ---------------------------------------------------------------------------

std::string Differ::CheckErr(const std::string& what, int got, int want) {
  if (got == want) {
    if (got) ops_err_++; else ops_ok_++;
    return "";
  }
  return what + ": udax returned " + ErrnoName(got) + ", the model expects " + ErrnoName(want);
}

void Differ::LearnInos() {
  for (const auto& [id, path] : model_.PathsById()) {
    ModelNode* n = model_.Get(id);
    if (n->real_ino) continue;
    auto st = fs_->GetLstat(path);
    if (st) n->real_ino = st->ino;
  }
}

std::string Differ::CheckDir(const std::string& path) {
  std::map<std::string, uint64_t> want;
  int we = model_.ReadDir(path, &want);
  auto got = fs_->ReadDir(path);
  std::string e = CheckErr("readdir " + path, got ? 0 : got.error().err(), we);
  if (!e.empty() || we) return e;
  std::map<std::string, uint64_t> g;
  for (const auto& d : *got) {
    if (!g.emplace(d.name, d.ino).second) return "readdir " + path + ": " + d.name + " listed twice";
  }
  if (g.size() != want.size()) {
    std::string s = "readdir " + path + ": " + std::to_string(g.size()) + " entries, want " +
                    std::to_string(want.size()) + ":";
    for (auto& [n, i] : g) s += " " + n.substr(0, 20);
    s += " / want:";
    for (auto& [n, i] : want) s += " " + n.substr(0, 20);
    return s;
  }
  for (const auto& [name, id] : want) {
    auto it = g.find(name);
    if (it == g.end()) return "readdir " + path + ": missing " + name;
    const ModelNode* n = model_.Get(id);
    if (n->real_ino && n->real_ino != it->second)
      return "readdir " + path + ": " + name + " names inode " + std::to_string(it->second) +
             ", want " + std::to_string(n->real_ino);
  }
  return "";
}

std::string Differ::CheckPath(const std::string& path) {
  uint64_t id = 0;
  int we = model_.Walk(path, false, &id);
  auto st = fs_->GetLstat(path);
  int ge = st ? 0 : st.error().err();
  if (ge != we) return "lstat " + path + ": udax " + ErrnoName(ge) + ", model " + ErrnoName(we);
  if (!we) {
    const ModelNode* n = model_.Get(id);
    SnapEntry w = SnapOfNode(*n, false);
    SnapEntry g;
    g.type = st->mode & S_IFMT;
    g.perm = st->mode & 07777;
    g.nlink = st->nlink;
    g.ino = st->ino;
    g.size = g.type == S_IFDIR ? 0 : st->size;
    if (g.type == S_IFLNK) {
      auto t = fs_->Readlink(path);
      if (!t) return "readlink " + path + ": " + t.error().ToString();
      g.target = *t;
    }
    std::string d = DiffSnapshots({{path, w}}, {{path, g}}, true, false, false);
    if (!d.empty()) return "lstat " + path + " differs:\n" + d;
    if (w.type == S_IFREG && st->blocks != w.alloc_blocks * (kModelBlock / 512))
      return "lstat " + path + ": st_blocks " + std::to_string(st->blocks) + ", want " +
             std::to_string(w.alloc_blocks * (kModelBlock / 512));
  }
  // The directory holding it.
  size_t end = path.find_last_not_of('/');
  if (end != std::string::npos) {
    size_t slash = path.rfind('/', end);
    std::string dir = slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
    return CheckDir(dir);
  }
  return "";
}

std::string Differ::CompareFile(File& f, const ModelNode& n, const std::string& what) {
  auto ex = f.Fiemap();
  if (!ex) return what + ": fiemap: " + ex.error().ToString();
  auto blk = n.blocks.begin();
  std::string buf;
  for (const FileExtent& e : *ex) {
    if (e.file_offset % kModelBlock || e.length % kModelBlock || e.length == 0)
      return what + ": unaligned extent at " + std::to_string(e.file_offset);
    uint64_t first = e.file_offset / kModelBlock, count = e.length / kModelBlock;
    for (uint64_t b = first; b < first + count; b++, ++blk) {
      if (blk == n.blocks.end() || blk->first != b)
        return what + ": block " + std::to_string(b) + " is allocated, the model has " +
               (blk == n.blocks.end() ? std::string("no more blocks")
                                      : "block " + std::to_string(blk->first) + " next");
    }
    // Data: the extent's bytes below EOF, read in chunks.
    uint64_t pos = e.file_offset, end = std::min(n.size, e.file_offset + e.length);
    auto mb = n.blocks.find(first);
    while (pos < end) {
      uint64_t len = std::min<uint64_t>(end - pos, 1 << 20);
      buf.resize(len);
      auto r = f.Pread(buf.data(), len, pos);
      if (!r) return what + ": pread: " + r.error().ToString();
      if (*r != len) return what + ": short read at " + std::to_string(pos);
      for (uint64_t o = 0; o < len; o += kModelBlock, ++mb) {
        size_t k = std::min<uint64_t>(kModelBlock, len - o);
        if (std::memcmp(buf.data() + o, mb->second.data(), k) != 0) {
          size_t i = 0;
          while (buf[o + i] == mb->second[i]) i++;
          return what + ": data differs at offset " + std::to_string(pos + o + i) + " (got 0x" +
                 [&] { std::ostringstream os; os << std::hex << (buf[o + i] & 0xff) << ", want 0x" << (mb->second[i] & 0xff); return os.str(); }() + ")";
        }
      }
      pos += len;
    }
  }
  if (blk != n.blocks.end())
    return what + ": block " + std::to_string(blk->first) + " is a hole, the model has it allocated";
  return "";
}

std::string Differ::CheckHandle(Handle& h, bool data) {
  const ModelNode* n = model_.Get(h.id);
  if (!n) return "handle on " + h.path + ": the model lost its node";
  auto g = SnapshotFile(h.R(), false);
  if (!g) return "handle on " + h.path + ": " + g.error().ToString();
  SnapEntry w = SnapOfNode(*n, false);
  if (w.type == S_IFDIR) g->size = 0;
  std::string d = DiffSnapshots({{"<" + h.path + ">", w}}, {{"<" + h.path + ">", *g}}, true, false,
                                w.type == S_IFREG);
  if (!d.empty()) return "open file " + h.path + " differs:\n" + d;
  if (data && n->type == S_IFREG) return CompareFile(h.R(), *n, "open file " + h.path);
  return "";
}

std::string Differ::ResyncAllocation(Handle& h) {
  auto ex = h.file.Fiemap();
  if (!ex) return "fiemap " + h.path + ": " + ex.error().ToString();
  std::set<uint64_t> real;
  for (const auto& e : *ex)
    for (uint64_t b = e.file_offset / kModelBlock; b < (e.file_offset + e.length) / kModelBlock; b++)
      real.insert(b);
  const ModelNode* n = model_.Get(h.id);
  for (const auto& [b, _] : n->blocks)
    if (!real.count(b)) return h.path + ": block " + std::to_string(b) + " lost its allocation after ENOSPC";
  std::set<uint64_t> extra;
  for (uint64_t b : real)
    if (!n->blocks.count(b)) extra.insert(b);
  model_.AddZeroBlocks(h.id, extra);
  return "";
}

std::string Differ::FullCompare() {
  full_compares_++;
  for (const auto& [id, n] : model_.nodes()) {
    max_dir_ = std::max<uint64_t>(max_dir_, n.entries.size());
    uint64_t runs = 0, prev = UINT64_MAX - 1;
    for (const auto& [b, _] : n.blocks) runs += b != prev + 1, prev = b;
    max_runs_ = std::max(max_runs_, runs);
  }
  auto snap = SnapshotFs(*fs_, false);
  if (!snap) return "reading the tree: " + snap.error().ToString();
  std::string d = DiffSnapshots(model_.Snapshot(false), *snap, true, false, true);
  if (!d.empty()) return "full comparison:\n" + d;
  // File contents and allocation, once per inode.
  std::set<uint64_t> seen;
  for (const auto& [id, path] : model_.PathsById()) {
    const ModelNode* n = model_.Get(id);
    if (n->type != S_IFREG || !seen.insert(id).second) continue;
    auto f = fs_->Open(path, O_RDONLY | O_NOFOLLOW);
    if (!f) return "open " + path + ": " + f.error().ToString();
    std::string e = CompareFile(*f, *n, path);
    if (!e.empty()) return "full comparison: " + e;
  }
  for (auto& h : handles_) {
    std::string e = CheckHandle(*h, true);
    if (!e.empty()) return e;
  }
  auto sf = fs_->GetStatFs();
  if (!sf) return "statfs: " + sf.error().ToString();
  std::string sh = CheckSharing();
  if (!sh.empty()) return sh;
  if (sf->used_inodes != model_.nodes().size())
    return "statfs: " + std::to_string(sf->used_inodes) + " inodes in use, the model has " +
           std::to_string(model_.nodes().size()) + " (leak or lost inode)";
  return "";
}

// ---------------------------------------------------------------------------

std::string Differ::OpOpen() {
  if (handles_.size() >= kMaxHandles) return OpClose();
  static const int kAcc[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR};
  int flags = kAcc[R(4)];
  if (P(0.6)) flags |= O_CREAT;
  if ((flags & O_CREAT) && P(0.2)) flags |= O_EXCL;
  if (P(0.1)) flags |= O_TRUNC;
  if (P(0.1)) flags |= O_APPEND;
  if (P(0.05)) flags |= O_NOFOLLOW;
  if (!(flags & O_CREAT) && P(0.05)) flags |= O_DIRECTORY;
  std::string path = (flags & O_CREAT) && P(0.5) ? RandPath() : ExistingPath();
  uint32_t mode = P(0.5) ? 0644 : 0600;
  Log("open " + path + " flags 0" + [&] { std::ostringstream o; o << std::oct << flags; return o.str(); }());
  auto h = std::make_unique<Handle>();
  bool created = false;
  auto f = fs_->Open(AsAt(path).get(), flags, mode);
  if (!f && f.error().err() == ENOSPC) {
    enospc_++;
    Log("  ENOSPC");
    return CheckPath(path);
  }
  int we = model_.Open(path, flags, mode, &h->id, &created);
  std::string e = CheckErr("open " + path, f ? 0 : f.error().err(), we);
  if (!e.empty()) return e;
  if (we) return "";
  h->file = std::move(*f);
  h->flags = flags;
  h->path = path;
  if ((flags & O_ACCMODE) == O_WRONLY) {
    auto rd = fs_->Open(path, O_RDONLY | (flags & O_NOFOLLOW));
    if (!rd) return "reopening " + path + " for reading: " + rd.error().ToString();
    if (rd->ino() != h->file.ino()) return "reopening " + path + " found another inode";
    h->reader = std::move(*rd);
  }
  ModelNode* n = model_.Get(h->id);
  if (!n->real_ino) n->real_ino = h->file.ino();
  if (n->real_ino != h->file.ino())
    return "open " + path + ": inode " + std::to_string(h->file.ino()) + ", want " + std::to_string(n->real_ino);
  handles_.push_back(std::move(h));
  e = CheckHandle(*handles_.back(), false);
  if (!e.empty()) return e;
  return created ? CheckPath(path) : "";
}

std::string Differ::OpClose() {
  if (handles_.empty()) return "";
  size_t i = R(handles_.size());
  Log("close " + handles_[i]->path);
  handles_[i]->reader.Close().IgnoreError();
  Status st = handles_[i]->file.Close();
  if (!st.ok()) return "close: " + st.ToString();
  model_.Close(handles_[i]->id);
  handles_.erase(handles_.begin() + i);
  return "";
}

std::string Differ::OpPwrite(bool positional) {
  if (handles_.empty()) return OpOpen();
  Handle& h = *handles_[R(handles_.size())];
  const ModelNode* n = model_.Get(h.id);
  uint64_t off = positional ? RandOffset(n->size) : h.pos;
  size_t len = RandLen();
  bool append = !positional && (h.flags & O_APPEND);
  if (append) off = n->size;
  Log(std::string(positional ? "pwrite " : "write ") + h.path + " [" + std::to_string(off) + ", +" +
      std::to_string(len) + ")" + (append ? " append" : ""));
  int we = 0;
  if ((h.flags & O_ACCMODE) == O_RDONLY) we = EBADF;
  else if (len == 0) we = 0;
  else we = model_.CheckWrite(h.id, off, len);
  std::string data = Pattern(len);
  Result<size_t> r = positional ? h.file.Pwrite(data.data(), len, off) : h.file.Write(data.data(), len);
  int ge = r ? 0 : r.error().err();
  if (ge == ENOSPC && we == 0) {
    enospc_++;
    ops_err_++;
    std::string e = ResyncAllocation(h);
    if (!e.empty()) return e;
    return CheckHandle(h, true);  // nothing else changed
  }
  std::string e = CheckErr("write", ge, we);
  if (!e.empty() || we) return e;
  size_t n_done = *r;
  if (n_done > len) return "write returned " + std::to_string(n_done) + " > " + std::to_string(len);
  if (n_done < len) {
    enospc_++;
    Log("  short write: " + std::to_string(n_done));
  }
  if (n_done) model_.Write(h.id, off, data.data(), n_done);
  if (!positional) h.pos = append ? model_.Get(h.id)->size : h.pos + n_done;
  if (n_done < len) {
    e = ResyncAllocation(h);
    if (!e.empty()) return e;
  }
  // Read back what was written plus a margin.
  std::string want, got(n_done + 8192, '\0');
  model_.Read(h.id, off > 4096 ? off - 4096 : 0, got.size(), &want);
  {
    auto rr = h.R().Pread(got.data(), got.size(), off > 4096 ? off - 4096 : 0);
    if (!rr) return "pread after write: " + rr.error().ToString();
    got.resize(*rr);
    if (got != want) {
      size_t i = 0;
      while (i < got.size() && i < want.size() && got[i] == want[i]) i++;
      std::ostringstream os;
      os << "read-back after write differs (" << got.size() << " vs " << want.size() << " bytes); first at offset "
         << (off > 4096 ? off - 4096 : 0) + i;
      if (i < got.size() && i < want.size())
        os << ": got 0x" << std::hex << (got[i] & 0xff) << ", want 0x" << (want[i] & 0xff);
      return os.str();
    }
  }
  return CheckHandle(h, false);
}

// Many one-block writes at every other block: a file with hundreds of
// extents (extent-map B+tree splits; rolling truncate/punch/unlink later).
std::string Differ::OpFragment() {
  if (handles_.empty()) return OpOpen();
  Handle& h = *handles_[R(handles_.size())];
  if ((h.flags & O_ACCMODE) == O_RDONLY || model_.Get(h.id)->type != S_IFREG) return "";
  uint64_t base = R(1 << 20) / kModelBlock * kModelBlock;
  int n = 100 + R(300);
  Log("fragment " + h.path + " at " + std::to_string(base) + " x" + std::to_string(n));
  for (int i = 0; i < n; i++) {
    uint64_t off = base + uint64_t(2 * i) * kModelBlock;
    std::string data = Pattern(kModelBlock);
    auto r = h.file.Pwrite(data.data(), data.size(), off);
    if (!r && r.error().err() == ENOSPC) {
      enospc_++;
      return ResyncAllocation(h);
    }
    if (!r) return "fragment write: " + r.error().ToString();
    model_.Write(h.id, off, data.data(), *r);
    if (*r != data.size()) {
      enospc_++;
      return ResyncAllocation(h);
    }
  }
  return CheckHandle(h, false);
}

std::string Differ::OpPread(bool positional) {
  if (handles_.empty()) return OpOpen();
  Handle& h = *handles_[R(handles_.size())];
  const ModelNode* n = model_.Get(h.id);
  uint64_t off = positional ? RandOffset(n->size) : h.pos;
  size_t len = RandLen();
  Log(std::string(positional ? "pread " : "read ") + h.path + " [" + std::to_string(off) + ", +" +
      std::to_string(len) + ")");
  std::string want;
  int we = (h.flags & O_ACCMODE) == O_WRONLY ? EBADF : model_.Read(h.id, off, len, &want);
  std::string got(len, '\0');
  Result<size_t> r = positional ? h.file.Pread(got.data(), len, off) : h.file.Read(got.data(), len);
  std::string e = CheckErr("read", r ? 0 : r.error().err(), we);
  if (!e.empty() || we) return e;
  got.resize(*r);
  if (!positional) h.pos += *r;
  if (got.size() != want.size())
    return "read returned " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size());
  if (got != want) {
    size_t i = 0;
    while (got[i] == want[i]) i++;
    return "read data differs at offset " + std::to_string(off + i);
  }
  return "";
}

std::string Differ::OpFtruncate() {
  if (handles_.empty()) return OpOpen();
  Handle& h = *handles_[R(handles_.size())];
  uint64_t len = RandOffset(model_.Get(h.id)->size);
  if (P(0.3)) len = R(model_.Get(h.id)->size + 1);
  Log("ftruncate " + h.path + " " + std::to_string(len));
  // udax first: growing a file whose EOF block is shared copies that block
  // (its tail is zeroed), which may fail with ENOSPC; then nothing changed.
  bool rdonly = (h.flags & O_ACCMODE) == O_RDONLY;
  int ge = h.file.Truncate(len).err();
  if (ge == ENOSPC && !rdonly && !model_.Get(h.id)->share.empty()) {
    enospc_++;
    ops_err_++;
    Log("  ENOSPC");
    return CheckHandle(h, true);  // content and size unchanged
  }
  int we = rdonly ? EINVAL : model_.Truncate(h.id, len);
  std::string e = CheckErr("ftruncate", ge, we);
  if (!e.empty() || we) return e;
  return CheckHandle(h, model_.Get(h.id)->size < (1 << 20));
}

std::string Differ::OpTruncatePath() {
  std::string path = ExistingPath();
  uint64_t len = P(0.5) ? R(64 << 10) : RandOffset(1 << 20);
  Log("truncate " + path + " " + std::to_string(len));
  // udax first: as in OpFtruncate, growing a file whose EOF block is shared
  // copies that block, which may fail with ENOSPC; then nothing changed.
  int ge = fs_->Truncate(AsAt(path).get(), len).err();
  uint64_t id = 0;
  if (ge == ENOSPC && model_.Walk(path, true, &id) == 0 && !model_.Get(id)->share.empty()) {
    enospc_++;
    ops_err_++;
    Log("  ENOSPC");
    return CheckPath(path);  // size and attributes unchanged
  }
  int we = model_.TruncatePath(path, len);
  std::string e = CheckErr("truncate " + path, ge, we);
  if (!e.empty()) return e;
  return CheckPath(path);
}

std::string Differ::OpFallocate() {
  if (handles_.empty()) return OpOpen();
  Handle& h = *handles_[R(handles_.size())];
  static const int kModes[] = {0,
                               FALLOC_FL_KEEP_SIZE,
                               FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                               FALLOC_FL_ZERO_RANGE,
                               FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                               FALLOC_FL_PUNCH_HOLE,                       // EOPNOTSUPP
                               FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                               FALLOC_FL_COLLAPSE_RANGE};
  int mode = P(0.9) ? kModes[R(6)] : kModes[R(9)];
  static const bool avoid = EnvU64("UDAX_DIFF_AVOID_ZERO_SHARED", 0);
  if (avoid && !model_.Get(h.id)->share.empty() && (mode & (FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE))) mode = 0;
  uint64_t size = model_.Get(h.id)->size;
  uint64_t off = RandOffset(size);
  uint64_t len = P(0.05) ? 0 : (P(0.93) ? 1 + R(256 << 10) : 1 + R(16 << 20));
  if (off > kModelMaxFileSize - (8 << 20)) len = 1 + R(16384);
  Log("fallocate " + h.path + " mode " + std::to_string(mode) + " [" + std::to_string(off) + ", +" +
      std::to_string(len) + ")");
  int we = (h.flags & O_ACCMODE) == O_RDONLY ? EBADF : model_.Fallocate(h.id, mode, off, len, false);
  int ge = h.file.Fallocate(mode, off, len).err();
  if (ge == ENOSPC && we == 0) {
    enospc_++;
    ops_err_++;
    std::string e = ResyncAllocation(h);
    if (!e.empty()) return e;
    return CheckHandle(h, true);  // content and size unchanged
  }
  std::string e = CheckErr("fallocate", ge, we);
  if (!e.empty() || we) return e;
  model_.Fallocate(h.id, mode, off, len, true);
  return CheckHandle(h, model_.Get(h.id)->size < (1 << 20));
}

std::string Differ::OpNamespace(int which) {
  std::string a, b, what;
  // udax first: an ENOSPC there means the model must not apply the operation.
  std::function<int()> model_op;
  int ge = 0;
  switch (which) {
    case 0:
      a = RandPath();
      what = "mkdir " + a;
      Log(what);
      ge = fs_->Mkdir(AsAt(a).get(), 0755).err();
      model_op = [&] { return model_.Mkdir(a, 0755); };
      break;
    case 1:
      a = P(0.7) ? ExistingPath() : RandPath();
      what = "rmdir " + a;
      Log(what);
      ge = fs_->Rmdir(AsAt(a).get()).err();
      model_op = [&] { return model_.Rmdir(a); };
      break;
    case 2:
      a = ExistingPath();
      what = "unlink " + a;
      Log(what);
      ge = fs_->Unlink(AsAt(a).get()).err();
      model_op = [&] { return model_.Unlink(a); };
      break;
    case 3:
      a = ExistingPath();
      b = P(0.5) ? RandPath() : ExistingPath();
      what = "rename " + a + " " + b;
      Log(what);
      ge = fs_->Rename(AsAt(a).get(), AsAt(b).get()).err();
      model_op = [&] { return model_.Rename(a, b); };
      break;
    case 4:
      a = ExistingPath();
      b = RandPath();
      if (b.back() == '/') b.pop_back();
      what = "link " + a + " " + b;
      Log(what);
      ge = fs_->Link(AsAt(a).get(), AsAt(b).get()).err();
      model_op = [&] { return model_.Link(a, b); };
      break;
    case 5:
      a = SymlinkTarget();
      b = RandPath();
      if (b.back() == '/') b.pop_back();
      what = "symlink " + b + " -> " + a.substr(0, 60);
      Log(what);
      { Status st = fs_->Symlink(a, AsAt(b).get()); ge = st.err(); if (!st.ok()) Log("  " + st.ToString()); }
      model_op = [&] { return model_.Symlink(a, b); };
      break;
    default: {
      a = ExistingPath();
      uint32_t m = 0400 + R(0400);
      what = "chmod " + a;
      Log(what);
      ge = fs_->Chmod(AsAt(a).get(), m).err();
      model_op = [&, m] { return model_.Chmod(a, m); };
      break;
    }
  }
  if (ge == ENOSPC) {
    enospc_++;
    ops_err_++;
    Log("  ENOSPC");
  } else {
    std::string e = CheckErr(what, ge, model_op());
    if (!e.empty()) return e;
  }
  LearnInos();
  std::string e = which == 5 ? "" : CheckPath(a);
  if (e.empty() && !b.empty()) e = CheckPath(b);
  return e;
}

std::string Differ::OpReadDir() {
  std::string p = P(0.8) ? model_.DirPaths()[R(model_.DirPaths().size())] : ExistingPath();
  Log("readdir " + p);
  return CheckDir(p);
}

std::string Differ::OpStat() {
  std::string p = ExistingPath();
  Log("stat " + p);
  uint64_t id = 0;
  int we = model_.Walk(p, true, &id);
  auto st = fs_->GetStat(p);
  std::string e = CheckErr("stat " + p, st ? 0 : st.error().err(), we);
  if (!e.empty() || we) return e;
  const ModelNode* n = model_.Get(id);
  if ((st->mode & S_IFMT) != n->type || st->ino != n->real_ino || st->nlink != n->nlink)
    return "stat " + p + ": type/inode/nlink differ";
  if (n->type == S_IFREG && st->size != n->size) return "stat " + p + ": size differs";
  return CheckPath(p);
}

std::string Differ::OpReadlink() {
  std::string p = ExistingPath();
  Log("readlink " + p);
  std::string want;
  int we = model_.Readlink(p, &want);
  auto got = fs_->Readlink(p);
  std::string e = CheckErr("readlink " + p, got ? 0 : got.error().err(), we);
  if (!e.empty() || we) return e;
  return *got == want ? "" : "readlink " + p + ": '" + *got + "', want '" + want + "'";
}

// Clone (FICLONERANGE, len 0 = to the source's EOF) or dedupe
// (FIDEDUPERANGE) between two open files (often the same one, or two handles
// on it). Offsets are mostly block-aligned ranges inside the files, with
// misaligned, overlapping, past-EOF and EFBIG cases; a dedupe is often
// prepared by writing the source's bytes over the destination range first
// (sometimes with one byte changed: EBADE). The model copies the bytes; the
// sharing itself is checked by CheckSharing (same device blocks) and here by
// statfs: a remap allocates no data blocks, only B+tree nodes.
std::string Differ::OpRemap(bool dedupe) {
  if (handles_.empty()) return OpOpen();
  Handle& d = *handles_[R(handles_.size())];
  Handle& s = P(0.25) ? d : *handles_[R(handles_.size())];
  bool use_reader = s.reader.is_open() && P(0.5);
  File& sf = use_reader ? s.reader : s.file;
  int sflags = use_reader ? O_RDONLY : s.flags;
  uint64_t ssize = model_.Get(s.id)->size, dsize = model_.Get(d.id)->size;
  auto aligned = [&](uint64_t max) { return R(max / kModelBlock + 1) * kModelBlock; };
  auto round_up = [](uint64_t v) { return (v + kModelBlock - 1) / kModelBlock * kModelBlock; };
  uint64_t r = R(100);
  uint64_t src_off = r < 80 ? aligned(ssize) : r < 90 ? R(ssize + 1) : round_up(ssize) + R(3) * kModelBlock;
  uint64_t left = ssize > src_off ? ssize - src_off : 0;
  r = R(100);
  uint64_t len = r < 20   ? 0
                 : r < 45 ? left
                 : r < 80 ? aligned(left)
                 : r < 90 ? 1 + R(64 << 10)
                          : aligned(256 << 10);
  r = R(100);
  uint64_t dst_off = r < 35   ? aligned(dsize)
                     : r < 55 ? round_up(dsize)
                     : r < 65 ? src_off
                     : r < 80 ? aligned(dsize + (1 << 20))
                     : r < 88 ? R(dsize + 1)
                     : r < 95 ? R(1ULL << 40) / kModelBlock * kModelBlock
                              : kModelMaxFileSize - R(4) * kModelBlock;
  // A dedupe worth doing: the destination range gets the source's bytes first.
  if (dedupe && P(0.6) && model_.Get(s.id)->type == S_IFREG && model_.Get(d.id)->type == S_IFREG &&
      (d.flags & O_ACCMODE) != O_RDONLY && !(d.flags & O_APPEND) && src_off < ssize &&
      dst_off < (64 << 20)) {
    std::string bytes;
    model_.Read(s.id, src_off, std::min<uint64_t>(len ? len : left, 1 << 20), &bytes);
    if (!bytes.empty() && P(0.15)) bytes[R(bytes.size())] ^= 0x5a;
    Log("  copy for dedupe: pwrite " + d.path + " [" + std::to_string(dst_off) + ", +" +
        std::to_string(bytes.size()) + ")");
    auto w = d.file.Pwrite(bytes.data(), bytes.size(), dst_off);
    if (!w && w.error().err() == ENOSPC) {
      enospc_++;
      std::string e = ResyncAllocation(d);
      return e.empty() ? CheckHandle(d, true) : e;
    }
    if (!w) return "pwrite (copy for dedupe): " + w.error().ToString();
    model_.Write(d.id, dst_off, bytes.data(), *w);
    if (*w < bytes.size()) {
      enospc_++;
      return ResyncAllocation(d);
    }
  }
  std::string what = std::string(dedupe ? "dedupe " : "clone ") + s.path + (use_reader ? " (reader)" : "") +
                     " [" + std::to_string(src_off) + ", +" + std::to_string(len) + ") -> " + d.path + " @" +
                     std::to_string(dst_off);
  Log(what);
  int we = model_.RemapTypes(s.id, d.id);
  if (!we && (sflags & O_ACCMODE) == O_WRONLY) we = EBADF;
  if (!we && ((d.flags & O_ACCMODE) == O_RDONLY || (d.flags & O_APPEND))) we = EBADF;
  uint64_t want_done = 0;
  if (!we) we = model_.Remap(s.id, d.id, src_off, len, dst_off, dedupe, false, &want_done);
  auto before = fs_->GetStatFs();
  if (!before) return "statfs: " + before.error().ToString();
  int ge = 0;
  uint64_t got_done = 0;
  if (dedupe) {
    auto res = d.file.DedupeRange(sf, src_off, len, dst_off);
    if (res) got_done = *res; else ge = res.error().err();
  } else {
    ge = d.file.CloneRange(sf, src_off, len, dst_off).err();
  }
  if ((ge == E2BIG || ge == ENOSPC) && we == 0) {
    // One transaction: nothing changed.
    (ge == E2BIG ? e2big_ : enospc_)++;
    ops_err_++;
    Log(std::string("  ") + ErrnoName(ge));
    std::string e = CheckHandle(d, true);
    return e.empty() ? CheckHandle(s, false) : e;
  }
  if (we == EBADE && ge == EBADE) ebade_++;
  std::string e = CheckErr(what, ge, we);
  if (!e.empty() || we) return e;
  if (dedupe && got_done != want_done)
    return what + ": deduplicated " + std::to_string(got_done) + " bytes, want " + std::to_string(want_done);
  model_.Remap(s.id, d.id, src_off, len, dst_off, dedupe, true, &want_done);
  (dedupe ? dedupes_ : clones_)++;
  (dedupe ? dedupe_blocks_ : clone_blocks_) += (want_done + kModelBlock - 1) / kModelBlock;
  auto after = fs_->GetStatFs();
  if (!after) return "statfs: " + after.error().ToString();
  if (after->free_blocks < before->free_blocks) {
    uint64_t churn = before->free_blocks - after->free_blocks;
    max_clone_churn_ = std::max(max_clone_churn_, churn);
    if (churn > 64)
      return what + ": " + std::to_string(churn) + " blocks were allocated (B+tree nodes only expected)";
  }
  e = CheckHandle(d, model_.Get(d.id)->size < (8 << 20));
  if (e.empty()) e = CheckHandle(s, false);
  if (e.empty() && P(0.25)) e = CheckSharing();  // and at every full comparison
  return e;
}

std::string Differ::CheckSharing() {
  // Every regular file the model has: reachable ones by path, the others
  // (unlinked, still open) through a handle.
  std::map<uint64_t, std::pair<std::string, std::vector<FileExtent>>> files;
  for (auto& h : handles_) {
    const ModelNode* n = model_.Get(h->id);
    if (!n || n->type != S_IFREG || files.count(h->id)) continue;
    auto ex = h->R().Fiemap();
    if (!ex) return "fiemap " + h->path + ": " + ex.error().ToString();
    files[h->id] = {"<" + h->path + ">", std::move(*ex)};
  }
  for (const auto& [id, path] : model_.PathsById()) {
    const ModelNode* n = model_.Get(id);
    if (n->type != S_IFREG || files.count(id) || n->blocks.empty()) continue;
    auto f = fs_->Open(path, O_RDONLY | O_NOFOLLOW);
    if (!f) return "open " + path + ": " + f.error().ToString();
    auto ex = f->Fiemap();
    if (!ex) return "fiemap " + path + ": " + ex.error().ToString();
    files[id] = {path, std::move(*ex)};
  }
  constexpr uint64_t kPrivate = UINT64_MAX;
  struct Owner {
    uint64_t id, blk, group;
    bool flagged;
  };
  std::map<uint64_t, std::vector<Owner>> by_dev;
  std::map<uint64_t, std::pair<uint64_t, Owner>> group_dev;  // group -> device block, first owner
  auto where = [&](const Owner& o) {
    return files.at(o.id).first + " block " + std::to_string(o.blk) +
           (o.group == kPrivate ? " (private)" : " (share group " + std::to_string(o.group) + ")");
  };
  for (const auto& [id, fe] : files) {
    const ModelNode* n = model_.Get(id);
    for (const FileExtent& x : fe.second) {
      for (uint64_t i = 0; i < x.length / kModelBlock; i++) {
        uint64_t b = x.file_offset / kModelBlock + i, dev = x.device_offset / kModelBlock + i;
        if (!n->blocks.count(b)) continue;  // CompareFile reports it
        auto sh = n->share.find(b);
        uint64_t g = sh == n->share.end() ? kPrivate : sh->second;
        if (g == kShareUnknown) continue;
        Owner o{id, b, g, (x.flags & kExtentShared) != 0};
        if (g != kPrivate) {
          // Members of one share group on different device blocks are an
          // extra copy (udax copies a shared EOF block before zeroing its
          // tail, for example): space, not correctness. A clone that copies
          // instead of sharing is caught by the statfs check after each
          // clone; two files on one block that must not share, below.
          auto [it, fresh] = group_dev.emplace(g, std::make_pair(dev, o));
          if (!fresh && it->second.first != dev) extra_copies_++;
        }
        by_dev[dev].push_back(o);
      }
    }
  }
  uint64_t shared = 0;
  for (const auto& [dev, owners] : by_dev) {
    if (owners.size() < 2) continue;
    shared++;
    for (const Owner& o : owners) {
      if (o.group == kPrivate || o.group != owners[0].group)
        return "sharing: device block " + std::to_string(dev) + " is mapped by " + where(owners[0]) + " and by " +
               where(o) + ", which the model says do not share (missed copy-on-write?)";
      if (!o.flagged) return "fiemap: " + where(o) + " at shared device block " + std::to_string(dev) +
                             " lacks the shared flag";
    }
  }
  max_shared_ = std::max(max_shared_, shared);
  return "";
}

std::string Differ::Remount(bool crash) {
  Log(crash ? "CRASH" : "remount");
  if (crash) {
    crashes_++;
    CrashForTesting(*fs_);
  } else {
    remounts_++;
    if (P(0.5)) {
      while (!handles_.empty()) {
        model_.Close(handles_.back()->id);
        handles_.back()->reader.Close().IgnoreError();
        Status st = handles_.back()->file.Close();
        if (!st.ok()) return "close: " + st.ToString();
        handles_.pop_back();
      }
    }
    Status st = fs_->Unmount();
    if (!st.ok()) return "unmount: " + st.ToString();
  }
  handles_.clear();
  model_.DropOpenFiles();
  fs_.reset();
  auto r = Fsck(dev_);
  if (!r) return "fsck: " + r.error().ToString();
  if (!r->clean()) {
    std::string s = "fsck after " + std::string(crash ? "crash" : "unmount") + ":";
    for (const auto& p : r->problems) s += "\n  " + p;
    return s;
  }
  auto m = Filesystem::Mount(dev_);
  if (!m) return "mount: " + m.error().ToString();
  fs_ = std::move(*m);
  return FullCompare();
}

// Keeps the device from staying full: shrinks the largest reachable file.
std::string Differ::MakeRoom() {
  uint64_t total = 0, best = 0, best_id = 0;
  for (const auto& [id, n] : model_.nodes()) {
    total += n.blocks.size();
    if (n.blocks.size() > best && n.nlink > 0 && model_.PathsById().count(id)) best = n.blocks.size(), best_id = id;
  }
  if (total < 5000 || !best_id) return "";
  std::string path = model_.PathsById().at(best_id);
  uint64_t len = R(model_.Get(best_id)->size / 2 + 1);
  Log("make room: truncate " + path + " " + std::to_string(len));
  int we = model_.TruncatePath(path, len);
  std::string e = CheckErr("truncate " + path, fs_->Truncate(path, len).err(), we);
  return e.empty() ? CheckPath(path) : e;
}

std::string Differ::Step() {
  if (R(100) < 3) return MakeRoom();
  static const uint64_t remap_pct = EnvU64("UDAX_DIFF_REMAP", 5);
  if (R(100) < remap_pct) return OpRemap(P(0.35));
  uint64_t r = R(1000);
  if (r < 100) return OpOpen();
  if (r < 160) return OpClose();
  if (r < 310) return OpPwrite(true);
  if (r < 340) return OpPwrite(false);
  if (r < 410) return OpPread(true);
  if (r < 430) return OpPread(false);
  if (r < 470) return OpFtruncate();
  if (r < 495) return OpTruncatePath();
  if (r < 555) return OpFallocate();
  if (r < 615) return OpNamespace(0);
  if (r < 655) return OpNamespace(1);
  if (r < 720) return OpNamespace(2);
  if (r < 800) return OpNamespace(3);
  if (r < 830) return OpNamespace(4);
  if (r < 865) return OpNamespace(5);
  if (r < 875) return OpNamespace(6);
  if (r < 905) return OpReadDir();
  if (r < 945) return OpStat();
  if (r < 965) return OpReadlink();
  if (r < 970) {
    if (handles_.empty()) return "";
    Handle& h = *handles_[R(handles_.size())];
    uint64_t pos = RandOffset(model_.Get(h.id)->size);
    Log("seek " + h.path + " " + std::to_string(pos));
    h.pos = pos;
    auto s = h.file.Seek(pos);
    return s ? "" : "seek: " + s.error().ToString();
  }
  if (r < 975) return OpFragment();
  if (r < 997) {
    Log("sync");
    Status st = P(0.5) || handles_.empty() ? fs_->Sync() : handles_[R(handles_.size())]->file.Fsync();
    return st.ok() ? "" : "sync: " + st.ToString();
  }
  if (r < 999) return Remount(false);
  return Remount(true);
}

std::string Differ::Run(uint64_t steps) {
  ::unlink(dev_.c_str());
  Status st = Filesystem::Mkfs(dev_, {.size = EnvU64("UDAX_DIFF_DEV_MB", kDevSize >> 20) << 20});
  if (!st.ok()) return "mkfs: " + st.ToString();
  auto m = Filesystem::Mount(dev_);
  if (!m) return "mount: " + m.error().ToString();
  fs_ = std::move(*m);
  model_.Get(FsModel::kRootId)->real_ino = fs_->GetLstat("/")->ino;
  for (step_ = 1; step_ <= steps; step_++) {
    std::string e = Step();
    if (e.empty() && step_ % kFullCompareEvery == 0) e = FullCompare();
    if (!e.empty()) return e;
  }
  return Remount(P(0.5));
}

TEST(DifferentialTest, RandomOperations) {
  uint64_t seed = EnvU64("UDAX_DIFF_SEED", std::random_device{}());
  uint64_t steps = EnvU64("UDAX_DIFF_STEPS", kDefaultSteps);
  std::string dev = "/dev/shm/udax_diff_" + std::to_string(getpid()) + ".img";
  printf("[ diff     ] seed %lu, %lu steps (UDAX_DIFF_SEED=%lu UDAX_DIFF_STEPS=%lu to repeat)\n",
         static_cast<unsigned long>(seed), static_cast<unsigned long>(steps),
         static_cast<unsigned long>(seed), static_cast<unsigned long>(steps));
  fflush(stdout);  // a run killed by a timeout still names its seed
  auto t0 = std::chrono::steady_clock::now();
  Differ d(seed, dev);
  std::string err = d.Run(steps);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("[ diff     ] %s, %.1f s\n", d.Stats().c_str(), secs);
  EXPECT_EQ(err, "") << "seed " << seed << " (UDAX_DIFF_SEED=" << seed << "), step " << d.step()
                     << "\n  recent operations:\n" << d.Recent();
}

}  // namespace
}  // namespace udax::testing
