// tests/helpers/load_model.h — the mixed load a test client process runs
// (tests/helpers/test_client.cc) and the model both sides keep of it
// (tests/client_process_test.cc), so a test can kill the client, or the
// mount, at any moment and still say what must be in the filesystem.
//
// A client works in its own directory on files f0..f3 (and f9, a file it
// keeps mapped). Before each operation it writes one line "B N OP ARGS..."
// to its report pipe, after it "D N" when it returned ok or "E N ERRNO"
// when it failed; each line is one write(2) (shorter than PIPE_BUF), so a
// line is either whole or absent. Data written is a pure function of the
// seed on the line. Invariants of the model: every file is at most
// kMaxFileBytes; an operation that returned (D) is in the filesystem; the
// one that was begun and not answered may or may not be, each byte of it
// (Possible checks that leniently); a failed one (E) changed nothing,
// except when the mount died under it (then it is as uncertain as the
// unanswered one).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../pattern.h"

namespace udax::loadtest {

inline constexpr uint64_t kMaxFileBytes = 32 * 1024;
inline constexpr int kFiles = 4;      // f0..f3 take the random operations
inline constexpr int kHeldFile = 9;   // f9: written once, kept mapped
inline constexpr uint64_t kHeldBytes = 8192;

// Deterministic bytes of a seed (tests/pattern.h).
inline std::vector<uint8_t> Payload(uint64_t seed, size_t len) { return testutil::Pattern(len, seed); }

struct Op {
  uint64_t no = 0;
  std::string kind;  // create write append trunc clone unlink mstore
  int file = 0;      // the file it changes (clone: the destination)
  int src = 0;       // clone's source
  uint64_t off = 0, len = 0, seed = 0;

  std::string Line() const {
    std::ostringstream s;
    s << "B " << no << " " << kind << " " << file << " " << src << " " << off << " " << len << " " << seed << "\n";
    return s.str();
  }
  static std::optional<Op> Parse(const std::string& rest) {  // after "B "
    Op o;
    std::istringstream s(rest);
    if (!(s >> o.no >> o.kind >> o.file >> o.src >> o.off >> o.len >> o.seed)) return std::nullopt;
    return o;
  }
};

// The files of one client's directory: index → contents (absent: no file).
using Files = std::map<int, std::vector<uint8_t>>;

// What `op` does to `files` when it succeeds.
inline void Apply(const Op& op, Files& files) {
  auto& f = files[op.file];
  if (op.kind == "create") {
    f.clear();
  } else if (op.kind == "write" || op.kind == "mstore") {
    auto data = Payload(op.seed, op.len);
    if (f.size() < op.off + op.len) f.resize(op.off + op.len, 0);
    std::copy(data.begin(), data.end(), f.begin() + static_cast<long>(op.off));
  } else if (op.kind == "append") {
    auto data = Payload(op.seed, op.len);
    f.insert(f.end(), data.begin(), data.end());
  } else if (op.kind == "trunc") {
    f.resize(op.len, 0);
  } else if (op.kind == "clone") {
    const auto& s = files.at(op.src);
    if (f.size() < s.size()) f.resize(s.size(), 0);
    std::copy(s.begin(), s.end(), f.begin());
  } else if (op.kind == "unlink") {
    files.erase(op.file);
  }
}

// Whether `actual` (nullopt: no such file) may be file `idx` after an
// operation that changed it from `before` to `after` (either nullopt: the
// file did not exist) was cut short at any point: the size is one of the
// two, and each byte is one of the two versions' (zero past an end).
inline bool Possible(const std::optional<std::vector<uint8_t>>& actual,
                     const std::optional<std::vector<uint8_t>>& before,
                     const std::optional<std::vector<uint8_t>>& after) {
  if (!actual) return !before || !after;
  if (!before && !after) return false;
  auto at = [](const std::optional<std::vector<uint8_t>>& v, size_t i) -> int {
    if (!v) return -1;
    return i < v->size() ? (*v)[i] : 0;
  };
  size_t n = actual->size();
  if (!(before && before->size() == n) && !(after && after->size() == n)) return false;
  for (size_t i = 0; i < n; i++) {
    int a = (*actual)[i];
    if (a != at(before, i) && a != at(after, i)) return false;
  }
  return true;
}

// A deterministic generator of valid operations for `files` (the client's
// side; the model changes only through Apply).
class Generator {
 public:
  explicit Generator(uint64_t seed) : x_(seed * 2654435761u + 1) {}
  uint64_t Next(uint64_t n) {  // [0, n)
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return n == 0 ? 0 : x_ % n;
  }
  Op Pick(const Files& files, uint64_t no, uint64_t seed_base) {
    Op op;
    op.no = no;
    op.seed = seed_base + no;
    for (;;) {
      int idx = static_cast<int>(Next(kFiles));
      auto it = files.find(idx);
      op.file = idx;
      if (it == files.end()) {
        op.kind = "create";
        return op;
      }
      const auto& f = it->second;
      switch (Next(7)) {
        case 0:
        case 1:
          op.kind = "write";
          op.off = Next(kMaxFileBytes - 4096);
          op.len = 1 + Next(4096);
          return op;
        case 2:
          if (f.size() + 4096 > kMaxFileBytes) continue;
          op.kind = "append";
          op.len = 1 + Next(4096);
          return op;
        case 3:
          op.kind = "trunc";
          op.len = Next(kMaxFileBytes);
          return op;
        case 4: {
          int src = static_cast<int>(Next(kFiles));
          auto s = files.find(src);
          // A whole-file clone of a block-aligned, non-empty source.
          if (src == idx || s == files.end() || s->second.empty() || s->second.size() % 4096 != 0) continue;
          op.kind = "clone";
          op.src = src;
          return op;
        }
        case 5:
          if (Next(3) != 0) continue;  // rarer: files stay to be worked on
          op.kind = "unlink";
          return op;
        case 6:
          if (f.size() < 4096) continue;
          op.kind = "mstore";
          op.off = Next(f.size() - 1);
          op.len = 1 + Next(std::min<uint64_t>(4096, f.size() - op.off));  // inside EOF
          return op;
      }
    }
  }

 private:
  uint64_t x_;
};

inline std::string FileName(const std::string& dir, int idx) { return dir + "/f" + std::to_string(idx); }

}  // namespace udax::loadtest
