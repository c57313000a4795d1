// testing/crash_image.cc — see crash_image.h.
#include "testing/crash_image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string_view>

namespace udax::testing {

CrashImageFile::~CrashImageFile() {
  if (map_) ::munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
  if (!path_.empty() && !keep_) ::unlink(path_.c_str());
}

Status CrashImageFile::Open(const std::string& path, const std::vector<uint8_t>& base) {
  if (base.empty() || base.size() % kPage) return Errno(EINVAL, "crash image size is not whole pages");
  path_ = path;
  size_ = base.size();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return Errno(errno, "cannot create crash image " + path + ": " + strerror(errno));
  if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) return Errno(errno, "cannot size crash image " + path);
  void* m = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) return Errno(errno, "cannot map crash image " + path);
  map_ = static_cast<uint8_t*>(m);
  std::memcpy(map_, base.data(), size_);
  pages_copied_ += size_ / kPage;
  Reset(base);
  return Status::Ok();
}

Status CrashImageFile::CopyTo(const std::string& to) const {
  return CrashRecorder::WriteFile(std::vector<uint8_t>(map_, map_ + size_), to);
}

uint64_t CrashImageFile::HashPage(const uint8_t* p) const {
  return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(p), kPage));
}

void CrashImageFile::Reset(const std::vector<uint8_t>& base) {
  ref_ = base;
  page_hash_.resize(size_ / kPage);
  for (uint64_t p = 0; p < page_hash_.size(); p++) page_hash_[p] = HashPage(ref_.data() + p * kPage);
  staged_.clear();
}

void CrashImageFile::Advance(const CrashRecorder& rec, const std::vector<CrashRecorder::Write>& ws) {
  rec.ApplyWrites(ws, &ref_);
  for (const auto& w : ws) {
    if (w.len == 0 || w.off + w.len > size_) continue;
    for (uint64_t p = w.off / kPage; p <= (w.off + w.len - 1) / kPage; p++)
      page_hash_[p] = HashPage(ref_.data() + p * kPage);
  }
  staged_.clear();
}

uint64_t CrashImageFile::Stage(const CrashRecorder& rec, const std::vector<CrashRecorder::Write>& overlay) {
  staged_.clear();
  for (const auto& w : overlay) {
    if (w.len == 0 || w.off + w.len > size_) continue;
    const uint8_t* src = rec.WriteData(w);
    for (uint64_t pos = w.off; pos < w.off + w.len;) {
      uint64_t p = pos / kPage, stop = std::min(w.off + w.len, (p + 1) * kPage);
      auto [it, fresh] = staged_.try_emplace(p);
      if (fresh) it->second.assign(ref_.begin() + p * kPage, ref_.begin() + (p + 1) * kPage);
      std::memcpy(it->second.data() + pos % kPage, src + (pos - w.off), stop - pos);
      pos = stop;
    }
  }
  std::vector<uint64_t> hashes = page_hash_;
  for (const auto& [p, bytes] : staged_) hashes[p] = HashPage(bytes.data());
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(hashes.data()), hashes.size() * sizeof(uint64_t)));
}

void CrashImageFile::Load() {
  for (uint64_t p = 0; p < size_ / kPage; p++) {
    auto it = staged_.find(p);
    const uint8_t* want = it != staged_.end() ? it->second.data() : ref_.data() + p * kPage;
    uint8_t* have = map_ + p * kPage;
    if (std::memcmp(have, want, kPage) != 0) {
      std::memcpy(have, want, kPage);
      pages_copied_++;
    }
  }
}

}  // namespace udax::testing
