// testing/crash_recorder.cc — see crash_recorder.h.
#include "testing/crash_recorder.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace udax::testing {

Status CrashRecorder::Start() {
  ASSIGN_OR_RETURN(auto all, dev_->Range(0, dev_->size()));
  std::lock_guard<std::mutex> g(mu_);
  base_.assign(all.begin(), all.end());
  pending_.clear();
  epochs_.clear();
  arena_.clear();
  ops_.clear();
  return Status::Ok();
}

void CrashRecorder::OnFlush(uint64_t off, uint64_t len) {
  if (len == 0) return;
  std::lock_guard<std::mutex> g(mu_);
  pending_.emplace_back(off, len);
}

void CrashRecorder::OnDrain() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<Write> epoch;
  epoch.reserve(pending_.size());
  for (auto [off, len] : pending_) {
    auto span = dev_->Range(off, len);
    if (!span.has_value()) continue;  // the device rejected it too: nothing was written
    Write w{off, len, arena_.size()};
    arena_.insert(arena_.end(), span->begin(), span->end());
    epoch.push_back(w);
  }
  pending_.clear();
  epochs_.push_back(std::move(epoch));
}

size_t CrashRecorder::MarkOpDone(uint64_t op_id) {
  std::lock_guard<std::mutex> g(mu_);
  ops_.emplace_back(op_id, epochs_.size());
  return pending_.size();
}

uint64_t CrashRecorder::op_done_fence(uint64_t op_id) const {
  for (auto [id, f] : ops_)
    if (id == op_id) return f;
  return UINT64_MAX;
}

const std::vector<CrashRecorder::Write>& CrashRecorder::InflightWrites(uint64_t k) const {
  static const std::vector<Write> kNone;
  return k < epochs_.size() ? epochs_[k] : kNone;
}

std::vector<CrashRecorder::Write> CrashRecorder::EpochWrites(uint64_t epoch) const {
  if (epoch == 0 || epoch > epochs_.size()) return {};
  return epochs_[epoch - 1];
}

std::vector<CrashRecorder::Write> CrashRecorder::SplitGranularity(const std::vector<Write>& ws,
                                                                  uint64_t granularity) {
  std::vector<Write> out;
  for (const Write& w : ws) {
    uint64_t pos = w.off, end = w.off + w.len;
    while (pos < end) {
      uint64_t next = std::min(end, (pos / granularity + 1) * granularity);
      out.push_back(Write{pos, next - pos, w.data + (pos - w.off)});
      pos = next;
    }
  }
  return out;
}

void CrashRecorder::ApplyWrites(const std::vector<Write>& ws, std::vector<uint8_t>* image) const {
  for (const Write& w : ws) {
    if (w.off + w.len > image->size()) continue;
    std::memcpy(image->data() + w.off, arena_.data() + w.data, w.len);
  }
}

void CrashRecorder::ApplyEpoch(uint64_t epoch, std::vector<uint8_t>* image) const {
  if (epoch == 0 || epoch > epochs_.size()) return;
  ApplyWrites(epochs_[epoch - 1], image);
}

std::vector<uint8_t> CrashRecorder::BuildImage(uint64_t k, const std::vector<Write>* inflight) const {
  std::vector<uint8_t> img = base_;
  for (uint64_t e = 1; e <= k && e <= epochs_.size(); e++) ApplyEpoch(e, &img);
  if (inflight) ApplyWrites(*inflight, &img);
  return img;
}

Status CrashRecorder::WriteFile(const std::vector<uint8_t>& image, const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(errno, "cannot create crash image " + path + ": " + strerror(errno));
  Status st;
  if (::ftruncate(fd, static_cast<off_t>(image.size())) != 0) {
    st = Errno(errno, "cannot size crash image " + path);
  }
  size_t done = 0;
  while (st.ok() && done < image.size()) {
    ssize_t n = ::pwrite(fd, image.data() + done, image.size() - done, static_cast<off_t>(done));
    if (n <= 0) {
      st = Errno(n < 0 ? errno : EIO, "cannot write crash image " + path);
      break;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return st;
}

}  // namespace udax::testing
