// testing/crash_check.cc — see crash_check.h.
#include "testing/crash_check.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <unordered_set>

#include "fs/test_access.h"
#include "udax/check.h"
#include "testing/crash_image.h"
#include "testing/fs_snapshot.h"
#include "udax/fs.h"

namespace udax::testing {

using Write = CrashRecorder::Write;

CrashTally& CrashTally::operator+=(const CrashTally& o) {
  fence += o.fence;
  torn += o.torn;
  reordered += o.reordered;
  duplicates += o.duplicates;
  return *this;
}

CrashTally& ProcessCrashTally() {
  static CrashTally t;
  return t;
}

std::string CrashTallyLine(const CrashTally& t) {
  char buf[160];
  snprintf(buf, sizeof buf, "crash states checked: %lu (%lu fence, %lu torn, %lu reordered)",
           static_cast<unsigned long>(t.total()), static_cast<unsigned long>(t.fence),
           static_cast<unsigned long>(t.torn), static_cast<unsigned long>(t.reordered));
  return buf;
}

void AppendCrashTally(const CrashTally& t) {
  const char* path = getenv("UDAX_CRASH_COUNTS");
  if (!path || !*path || t.total() == 0) return;
  if (FILE* f = fopen(path, "a")) {
    fprintf(f, "%lu %lu %lu\n", static_cast<unsigned long>(t.fence), static_cast<unsigned long>(t.torn),
            static_cast<unsigned long>(t.reordered));
    fclose(f);
  }
}

double CrashTestShare() {
  if (const char* v = getenv("UDAX_CRASH_SHARE"); v && *v) return std::clamp(strtod(v, nullptr), 0.0, 1.0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 0.125;
#else
  return 1.0;
#endif
}

namespace {

enum class Kind { kFence, kTorn, kReordered };
const char* KindName(Kind k) { return k == Kind::kFence ? "fence" : k == Kind::kTorn ? "torn" : "reordered"; }

// Images already checked by this process (hashes of their bytes).
std::unordered_set<uint64_t>& SeenStates() {
  static std::unordered_set<uint64_t> seen;
  return seen;
}

// Metadata view of a snapshot, by path (data dropped).
std::string MetaDiff(const TreeSnap& want, const TreeSnap& got) {
  return DiffSnapshots(want, got, true, false, false);
}

// Per `grain`-sized piece: got's content equals a's or b's (by inode number).
std::string DataDiff(const TreeSnap& got, const TreeSnap& a, const TreeSnap* b, uint64_t grain) {
  std::map<uint64_t, const SnapEntry*> by_ino_a, by_ino_b;
  for (const auto& [p, e] : a)
    if (e.type == S_IFREG) by_ino_a[e.ino] = &e;
  if (b)
    for (const auto& [p, e] : *b)
      if (e.type == S_IFREG) by_ino_b[e.ino] = &e;
  static const std::string kZero(kModelBlock, '\0');
  auto block = [](const SnapEntry* e, uint64_t blk) -> const std::string& {
    if (!e) return kZero;
    auto it = e->data.find(blk);
    return it == e->data.end() ? kZero : it->second;
  };
  std::ostringstream os;
  for (const auto& [path, g] : got) {
    if (g.type != S_IFREG) continue;
    const SnapEntry* ea = by_ino_a.count(g.ino) ? by_ino_a[g.ino] : nullptr;
    const SnapEntry* eb = by_ino_b.count(g.ino) ? by_ino_b[g.ino] : nullptr;
    std::set<uint64_t> blocks;
    for (const SnapEntry* e : {&g, ea, eb})
      if (e)
        for (const auto& [blk, _] : e->data) blocks.insert(blk);
    for (uint64_t blk : blocks) {
      if (blk * kModelBlock >= g.size) break;
      const std::string& gb = block(&g, blk);
      const std::string& ab = block(ea, blk);
      const std::string& bb = block(eb ? eb : ea, blk);
      for (uint64_t o = 0; o < kModelBlock && blk * kModelBlock + o < g.size; o += grain) {
        // Only what is visible (below the size found) has to match.
        size_t n = std::min<uint64_t>(grain, g.size - (blk * kModelBlock + o));
        if (std::memcmp(gb.data() + o, ab.data() + o, n) == 0) continue;
        if (std::memcmp(gb.data() + o, bb.data() + o, n) == 0) continue;
        os << "  " << path << " (inode " << g.ino << "): bytes [" << blk * kModelBlock + o << ", +" << grain
           << ") are neither the old nor the new content"
           << (std::memcmp(gb.data() + o, kZero.data(), n) == 0 ? " (zeroes)" : "") << "\n";
        return os.str();
      }
    }
  }
  return os.str();
}

// Blocks mapped wholly past EOF must hold zeroes: a later size extension
// (truncate up, a write or fallocate past EOF) zeroes only the rest of the
// EOF block and would show them. Extends each such file over them and reads.
std::string CheckPastEof(Filesystem& fs, const TreeSnap& snap, uint64_t exempt_ino) {
  std::set<uint64_t> seen{exempt_ino};
  for (const auto& [path, e] : snap) {
    if (e.type != S_IFREG || e.data.empty() || !seen.insert(e.ino).second) continue;
    uint64_t end = (e.data.rbegin()->first + 1) * kModelBlock;
    if (end <= (e.size + kModelBlock - 1) / kModelBlock * kModelBlock) continue;
    auto f = fs.Open(path, O_RDWR | O_NOFOLLOW);
    if (!f) return "  open " + path + ": " + f.error().ToString() + "\n";
    if (Status st = f->Truncate(end); !st.ok()) return "  extending " + path + ": " + st.ToString() + "\n";
    std::string buf(end - e.size, '\1');
    auto n = f->Pread(buf.data(), buf.size(), e.size);
    if (!n || *n != buf.size()) return "  reading past the old EOF of " + path + " failed\n";
    size_t bad = buf.find_first_not_of('\0');
    if (bad != std::string::npos)
      return "  " + path + " (inode " + std::to_string(e.ino) + "): byte " + std::to_string(e.size + bad) +
             ", past its EOF " + std::to_string(e.size) + " in a mapped block, is not zero (an extension shows it)\n";
    if (Status st = f->Close(); !st.ok()) return "  close " + path + ": " + st.ToString() + "\n";
  }
  return "";
}

// "" when the image at `img` is acceptable with c operations complete.
std::string CheckImage(const std::string& img, const CrashWorkload& w, size_t c, uint64_t grain) {
  std::ostringstream os;
  {
    auto m = Filesystem::Mount(img);
    if (!m) return "mount failed: " + m.error().ToString() + "\n";
    auto fs = std::move(*m);
    auto snap = SnapshotFs(*fs, true);
    if (!snap) {
      CrashForTesting(*fs);
      return "reading the tree failed: " + snap.error().ToString() + "\n";
    }
    const TreeSnap* next = c + 1 < w.states.size() ? &w.states[c + 1] : nullptr;
    std::string d_old = MetaDiff(w.states[c], *snap);
    std::string d_new = next ? MetaDiff(*next, *snap) : "x";
    if (!d_old.empty() && !d_new.empty()) {
      os << "metadata is neither the state before the in-flight operation nor after it\n vs before:\n" << d_old;
      if (next) os << " vs after:\n" << d_new;
    } else {
      os << DataDiff(*snap, w.states[c], next, grain);
      uint64_t exempt = c < w.stale_past_eof.size() ? w.stale_past_eof[c] : 0;
      if (os.tellp() == 0) os << CheckPastEof(*fs, *snap, exempt);
    }
    Status st = fs->Unmount();
    if (!st.ok()) os << "unmount failed: " << st.ToString() << "\n";
  }
  // The mount above replayed the journal and reclaimed orphans, and its clean
  // unmount left nothing to recover: fsck checks the image as it is (its own
  // recovery would be a second mount doing nothing).
  auto r = Fsck(img, FsckOptions{.recover = false});
  if (!r) {
    os << "fsck could not run: " << r.error().ToString() << "\n";
  } else {
    for (const auto& p : r->problems) os << "  fsck: " << p << "\n";
  }
  return os.str();
}

// Up to `n` distinct indices of [0, size): all of them, or a seeded sample.
std::vector<size_t> Sample(size_t size, int n, std::mt19937_64& rng) {
  std::vector<size_t> idx(size);
  for (size_t i = 0; i < size; i++) idx[i] = i;
  if (size > static_cast<size_t>(n)) {
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(n);
    std::sort(idx.begin(), idx.end());
  }
  return idx;
}

// One crash state to check: the overlay on the image after the fence, and how
// to name it in a failure.
struct Candidate {
  Kind kind;
  std::vector<Write> overlay;
  std::string what;
};

// The torn and reordered states of one fence window.
std::vector<Candidate> WindowStates(const std::vector<Write>& window, const CrashCheckOptions& opts,
                                    std::mt19937_64& rng) {
  std::vector<Candidate> out;
  if (window.empty()) return out;
  // Torn: writes 0..i-1 whole, then a prefix of write i in 8-byte words.
  for (int t = 0; t < opts.torn_per_window; t++) {
    size_t i = window.size() >= static_cast<size_t>(opts.torn_per_window) ? t * window.size() / opts.torn_per_window
                                                                         : rng() % window.size();
    const Write& w = window[i];
    uint64_t first = (w.off + 8) / 8 * 8, last = (w.off + w.len - 1) / 8 * 8;  // cut ends, 8-aligned, inside
    if (first > last) continue;
    uint64_t cut = first + (rng() % ((last - first) / 8 + 1)) * 8;
    Candidate c{Kind::kTorn, std::vector<Write>(window.begin(), window.begin() + i), ""};
    c.overlay.push_back(Write{w.off, cut - w.off, w.data});
    c.what = "writes 0.." + std::to_string(i) + " of " + std::to_string(window.size()) + ", the last cut after " +
             std::to_string(cut - w.off) + " of its " + std::to_string(w.len) + " bytes (torn)";
    out.push_back(std::move(c));
  }
  // Reordered: subsets of the window's 64-byte lines.
  std::vector<Write> lines = CrashRecorder::SplitGranularity(window, 64);
  const std::string of = " of " + std::to_string(lines.size()) + " in-flight 64-byte lines";
  for (size_t i : Sample(lines.size(), opts.lines_alone, rng))
    out.push_back(Candidate{Kind::kReordered, {lines[i]}, "only line " + std::to_string(i) + of});
  if (lines.size() > 1)
    for (size_t i : Sample(lines.size(), opts.lines_missing, rng)) {
      Candidate c{Kind::kReordered, {}, "every line but " + std::to_string(i) + of};
      for (size_t j = 0; j < lines.size(); j++)
        if (j != i) c.overlay.push_back(lines[j]);
      out.push_back(std::move(c));
    }
  for (int s = 0; s < opts.random_subsets && lines.size() > 2; s++) {
    uint64_t seed = rng();
    std::mt19937_64 pick(seed);
    Candidate c{Kind::kReordered, {}, ""};
    for (const Write& l : lines)
      if (pick() & 1) c.overlay.push_back(l);
    c.what = std::to_string(c.overlay.size()) + of + " (random subset, seed " + std::to_string(seed) + ")";
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

std::string CheckCrashStates(const CrashWorkload& w, const CrashCheckOptions& opts, CrashTally* tally) {
  const CrashRecorder& rec = *w.rec;
  const uint64_t fences = rec.fences();
  std::vector<uint64_t> done;  // done fence per op
  for (auto [id, f] : rec.ops()) done.push_back(f);
  // Which windows to cut: all, or an even sample plus every op boundary.
  std::set<uint64_t> pick;
  uint64_t span = fences + 1 - std::min(opts.first_fence, fences);
  if (span <= opts.max_fences) {
    for (uint64_t k = opts.first_fence; k <= fences; k++) pick.insert(k);
  } else {
    for (uint64_t f : done)
      if (f >= opts.first_fence) pick.insert(f);
    uint64_t stride = span / (opts.max_fences - std::min<uint64_t>(pick.size(), opts.max_fences / 2)) + 1;
    for (uint64_t k = opts.first_fence; k <= fences; k += stride) pick.insert(k);
    pick.insert(fences);
  }
  CrashImageFile img;
  std::string path = "/dev/shm/udax_crash_" + std::to_string(getpid()) + "_" + w.name + ".img";
  if (Status st = img.Open(path, rec.base()); !st.ok()) return st.ToString();
  std::mt19937_64 rng(fences * 7919 + done.size());
  uint64_t applied = 0;
  int failures = 0;
  std::ostringstream out;
  CrashTally mine;
  for (uint64_t k : pick) {
    while (applied < k) {
      applied++;
      img.Advance(rec, rec.InflightWrites(applied - 1));
    }
    size_t c = 0;
    while (c < done.size() && done[c] <= k) c++;
    std::vector<Candidate> states;
    if (k != opts.first_fence || opts.check_first_fence) states.push_back(Candidate{Kind::kFence, {}, ""});
    for (auto& s : WindowStates(rec.InflightWrites(k), opts, rng)) states.push_back(std::move(s));
    for (const Candidate& s : states) {
      if (!SeenStates().insert(img.Stage(rec, s.overlay)).second) {
        mine.duplicates++;
        continue;
      }
      img.Load();
      uint64_t grain = s.kind == Kind::kFence ? kModelBlock : s.kind == Kind::kTorn ? 8 : 64;
      std::string err = CheckImage(img.path(), w, c, grain);
      (s.kind == Kind::kFence ? mine.fence : s.kind == Kind::kTorn ? mine.torn : mine.reordered)++;
      if (err.empty()) continue;
      out << w.name << ": crash after fence " << k << "/" << fences << ", " << c << " ops done"
          << (c < w.ops.size() ? ", in flight: " + w.ops[c] : ", none in flight");
      if (s.kind != Kind::kFence) out << ", plus " << s.what;
      out << " [" << KindName(s.kind) << "]\n" << err;
      if (s.kind != Kind::kFence) {
        out << "  the window's writes (device offset, length):";
        const auto& win = rec.InflightWrites(k);
        for (size_t i = 0; i < win.size() && i < 24; i++) out << " [" << win[i].off << ", +" << win[i].len << ")";
        out << (win.size() > 24 ? " ...\n" : "\n");
      }
      if (getenv("UDAX_CRASH_KEEP")) {
        std::string keep = "/dev/shm/udax_crash_fail_" + w.name + "_" + std::to_string(failures) + ".img";
        if (img.CopyTo(keep).ok()) out << "  image kept: " << keep << "\n";
      }
      if (++failures >= opts.max_failures) break;
    }
    if (failures >= opts.max_failures) break;
  }
  ProcessCrashTally() += mine;
  if (tally) *tally += mine;
  return out.str();
}

}  // namespace udax::testing
