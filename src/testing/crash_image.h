// testing/crash_image.h — CrashImageFile: the crash image a check mounts,
// kept as one tmpfs file that is rewritten in place from state to state
// (tests only).
//
// A crash state is the durable image after fence k (the *reference*, kept
// here in DRAM, advanced epoch by epoch with CrashRecorder::ApplyEpoch's
// writes) plus an *overlay*: some of the writes that were in flight after
// fence k (pieces of CrashRecorder records). Rewriting the whole device file
// for every state cost more than checking it, so Load() compares the file
// page by page with the state and copies only the pages that differ — the
// pages of the overlay and those the previous check itself wrote (journal
// replay, orphan reclaim, the clean unmount). The comparison covers every
// page, so the file is exactly the state whatever the last check wrote.
//
// Distinct states: the reference keeps a hash per 4 KiB page; Stage() hashes
// a candidate state from those and the overlay's pages alone, so a test can
// skip a state it already checked (two overlays, or two fences, that leave the
// same bytes) before loading it.
//
// Invariants: after Load(), the file's bytes equal reference + staged overlay;
// page_hash_[p] is the hash of reference page p.
// Thread safety: none (one test thread).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "testing/crash_recorder.h"
#include "udax/status.h"
#include "udax/types.h"

namespace udax::testing {

class CrashImageFile {
 public:
  static constexpr uint64_t kPage = kPageSize;  // udax/types.h

  CrashImageFile() = default;
  ~CrashImageFile();
  CrashImageFile(const CrashImageFile&) = delete;
  CrashImageFile& operator=(const CrashImageFile&) = delete;

  // Creates (or reuses) the file at `path` with the size of `base` and makes
  // `base` the reference. The file is unlinked by the destructor unless Keep().
  Status Open(const std::string& path, const std::vector<uint8_t>& base);
  const std::string& path() const { return path_; }
  void Keep() { keep_ = true; }
  // Copies the file as it is now to `to` (a failing state, for a human).
  Status CopyTo(const std::string& to) const;

  // Starts over from `base` (same size as the file).
  void Reset(const std::vector<uint8_t>& base);
  // Applies writes (in order) to the reference: the next fence's epoch.
  void Advance(const CrashRecorder& rec, const std::vector<CrashRecorder::Write>& ws);
  const std::vector<uint8_t>& reference() const { return ref_; }

  // Makes reference + `overlay` (applied in order) the candidate state and
  // returns its hash; Load() then writes it to the file.
  uint64_t Stage(const CrashRecorder& rec, const std::vector<CrashRecorder::Write>& overlay);
  void Load();
  // Pages Load() copied since Open (a measure of how little is rewritten).
  uint64_t pages_copied() const { return pages_copied_; }

 private:
  uint64_t HashPage(const uint8_t* p) const;

  std::string path_;
  int fd_ = -1;
  uint8_t* map_ = nullptr;
  uint64_t size_ = 0;
  bool keep_ = false;
  std::vector<uint8_t> ref_;
  std::vector<uint64_t> page_hash_;
  std::map<uint64_t, std::vector<uint8_t>> staged_;  // page -> its content in the candidate
  uint64_t pages_copied_ = 0;
};

}  // namespace udax::testing
