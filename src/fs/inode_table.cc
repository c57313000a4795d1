// fs/inode_table.cc — the in-core inode table and revocation of mappings
// (see inode_table.h).
#include "fs/inode_table.h"

#include <algorithm>

namespace udax {

namespace {
uint64_t RoundUpPage(uint64_t v) { return (v + kPageSize - 1) / kPageSize * kPageSize; }
}  // namespace

std::shared_ptr<Inode> InodeTable::Find(uint64_t ino) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second;
}

std::shared_ptr<Inode> InodeTable::Open(const media::InodeRec& rec) {
  std::lock_guard<std::mutex> g(mu_);
  auto& slot = inodes_[rec.ino];
  if (!slot) slot = std::make_shared<Inode>(rec);
  slot->open_count++;
  return slot;
}

std::shared_ptr<Inode> InodeTable::Reopen(Inode* ip) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = inodes_.find(ip->ino);
  if (it == inodes_.end()) return nullptr;
  it->second->open_count++;
  return it->second;
}

bool InodeTable::Close(Inode* ip) {
  std::lock_guard<std::mutex> g(mu_);
  return --ip->open_count == 0;
}

bool InodeTable::EraseIfUnused(uint64_t ino) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end() || it->second->open_count != 0) return false;
  inodes_.erase(it);
  return true;
}

std::vector<std::shared_ptr<Inode>> InodeTable::Snapshot() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<std::shared_ptr<Inode>> out;
  out.reserve(inodes_.size());
  for (auto& [ino, ip] : inodes_) out.push_back(ip);
  return out;
}

void InodeTable::RevokeMappings(uint64_t ino, uint64_t off, uint64_t len, InvalidateReason why,
                                bool notify) {
  if (len == 0) return;
  auto ip = Find(ino);
  if (ip) ip->mappings.Invalidate(ino, off, len, why, notify);
}

void InodeTable::RevokeSizeChange(uint64_t ino, uint64_t old_size, uint64_t new_size) {
  uint64_t a = RoundUpPage(std::min(old_size, new_size)), b = RoundUpPage(std::max(old_size, new_size));
  if (a == b) return;
  // No callback here: blocks taken away by a shrink are reported once, by
  // UnmapRange as they are unmapped; growing only replaces beyond-EOF markers.
  RevokeMappings(ino, a, b - a, InvalidateReason::kTruncate, /*notify=*/false);
}

void InodeTable::RevokeAllMappings(InvalidateReason why, bool notify) {
  for (auto& ip : Snapshot()) ip->mappings.Invalidate(ip->ino, 0, UINT64_MAX, why, notify);
}

}  // namespace udax
