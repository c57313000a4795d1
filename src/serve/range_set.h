// serve/range_set.h — a set of byte ranges [start, end) of one file, kept as
// disjoint, non-adjacent intervals: what a client holds of an inode (the
// segments kLease handed out, the ranges kFault installed).
//
// Invariant: intervals_ maps start → end with start < end, and every
// interval ends strictly before the next one starts (adjacent ones merge).
// Thread safety: none (the owner, RemoteLease, locks).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>

namespace udax::serve {

class RangeSet {
 public:
  // Adds [off, off+len) (clamped at UINT64_MAX).
  void Add(uint64_t off, uint64_t len) {
    if (len == 0) return;
    uint64_t lo = off, hi = End(off, len);
    auto it = intervals_.upper_bound(lo);
    if (it != intervals_.begin() && std::prev(it)->second >= lo) --it;
    while (it != intervals_.end() && it->first <= hi) {
      lo = std::min(lo, it->first);
      hi = std::max(hi, it->second);
      it = intervals_.erase(it);
    }
    intervals_.emplace(lo, hi);
  }
  // Removes [off, off+len); true when anything was there.
  bool Remove(uint64_t off, uint64_t len) {
    if (len == 0) return false;
    uint64_t lo = off, hi = End(off, len);
    bool hit = false;
    auto it = intervals_.upper_bound(lo);
    if (it != intervals_.begin() && std::prev(it)->second > lo) --it;
    while (it != intervals_.end() && it->first < hi) {
      uint64_t a = it->first, b = it->second;
      if (b <= lo) {
        ++it;
        continue;
      }
      hit = true;
      it = intervals_.erase(it);
      if (a < lo) intervals_.emplace(a, lo);
      if (b > hi) it = intervals_.emplace(hi, b).first;
    }
    return hit;
  }
  bool Overlaps(uint64_t off, uint64_t len) const {
    if (len == 0) return false;
    uint64_t lo = off, hi = End(off, len);
    auto it = intervals_.upper_bound(lo);
    if (it != intervals_.begin() && std::prev(it)->second > lo) return true;
    return it != intervals_.end() && it->first < hi;
  }
  uint64_t Bytes() const {
    uint64_t n = 0;
    for (const auto& [a, b] : intervals_) n += b - a;
    return n;
  }
  bool empty() const { return intervals_.empty(); }
  void Clear() { intervals_.clear(); }

 private:
  static uint64_t End(uint64_t off, uint64_t len) { return len > UINT64_MAX - off ? UINT64_MAX : off + len; }
  std::map<uint64_t, uint64_t> intervals_;
};

}  // namespace udax::serve
