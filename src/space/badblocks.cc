// space/badblocks.cc — BadBlockList (see badblocks.h).
#include "space/badblocks.h"

#include <algorithm>

namespace udax {

namespace {
// Inserts [start, start+length) into a sorted, merged list.
void MergeInto(std::vector<media::BadExtent>& v, uint64_t start, uint64_t length) {
  uint64_t end = start + length;
  std::vector<media::BadExtent> out;
  for (const auto& e : v) {
    if (e.start + e.length < start || e.start > end) {
      out.push_back(e);
    } else {
      start = std::min(start, e.start);
      end = std::max(end, e.start + e.length);
    }
  }
  out.push_back({start, end - start});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
  v = std::move(out);
}
}  // namespace

void BadBlockList::Assign(const media::RootBlock& root) {
  std::lock_guard<std::mutex> g(mu_);
  list_.assign(root.bad, root.bad + std::min(root.bad_count, media::kBadListMax));
  any_.store(!list_.empty(), std::memory_order_release);
}

void BadBlockList::Add(uint64_t start, uint64_t length) {
  std::lock_guard<std::mutex> g(mu_);
  MergeInto(list_, start, length);
  any_.store(true, std::memory_order_release);
}

bool BadBlockList::Overlaps(uint64_t start, uint64_t length) const {
  if (!any()) return false;
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& e : list_)
    if (e.start < start + length && start < e.start + e.length) return true;
  return false;
}

uint64_t BadBlockList::FirstBad(uint64_t start, uint64_t end) const {
  if (!any()) return end;
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& e : list_) {
    if (e.start + e.length <= start) continue;
    return std::min(end, std::max(start, e.start));
  }
  return end;
}

uint64_t BadBlockList::BadRunEnd(uint64_t b, uint64_t end) const {
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& e : list_)
    if (e.start <= b && b < e.start + e.length) return std::min(end, e.start + e.length);
  return b;
}

uint64_t BadBlockList::GoodRunStart(uint64_t lo, uint64_t b) const {
  if (!any()) return lo;
  std::lock_guard<std::mutex> g(mu_);
  uint64_t start = lo;
  for (const auto& e : list_)
    if (e.start < b && e.start + e.length > start) start = std::min(b, e.start + e.length);
  return start;
}

std::vector<media::BadExtent> BadBlockList::List() const {
  std::lock_guard<std::mutex> g(mu_);
  return list_;
}

Status BadBlockList::AddToRoot(media::RootBlock* root, uint64_t start, uint64_t length) {
  std::vector<media::BadExtent> v(root->bad, root->bad + root->bad_count);
  MergeInto(v, start, length);
  if (v.size() > media::kBadListMax)
    return Errno(ENOSPC, "bad-block list is full (" + std::to_string(media::kBadListMax) + " extents)");
  std::copy(v.begin(), v.end(), root->bad);
  root->bad_count = static_cast<uint32_t>(v.size());
  return Status::Ok();
}

}  // namespace udax
