// testing/crash_recorder.h — CrashRecorder: a PersistObserver that records
// what became durable at every fence, so a test can rebuild the device image
// a power cut would have left at any point of a workload (tests only).
//
// Model. A device write (CopyIn/Fill/Flush) is only *pending* until the next
// fence (Drain). The recorder keeps, per fence k ("epoch k" = the writes
// flushed after fence k-1 and before fence k), every flushed range in program
// order together with its content as it was at the moment of fence k (copied
// from the device mapping with PmemDevice::Range in OnDrain). Given the base
// image (a copy of the whole device taken when recording starts — everything
// earlier is durable because Mount/Mkfs end with a fence), the durable image
// after fence k is
//       base + epoch 1 + epoch 2 + ... + epoch k    (applied in order).
// Fence 0 is the base image itself.
//
// Torn states. A crash between fence k and fence k+1 may persist ANY subset of
// the writes in flight (the writes of epoch k+1), not just none of them. The
// records of an epoch are kept separately (not merged) for that purpose:
// BuildImage(k, &subset) applies epochs 1..k and then the records of epoch k+1
// selected by `subset` (indices into InflightWrites(k)). The recorded content
// of an in-flight write is its content at fence k+1; when one range is written
// twice inside an epoch, both records carry the final bytes (good enough for
// the filesystem's write-once-per-epoch pattern). SplitGranularity() lets a
// test cut records into aligned pieces (e.g. 64-byte cache lines or 8-byte
// atomic words) before choosing a subset, to model tearing inside one copy.
// None of this needs any change to the filesystem: the observer sees every
// flush and fence in program order (PmemDevice's invariant).
//
// Operations. The workload calls MarkOpDone(op_id) right after each of its
// operations returns; the recorder notes the number of fences seen so far.
// An operation with done-fence d is complete in every image after fence k>=d;
// with k < d it was in flight (or not started) when the power failed.
//
// Usage:
//   auto fs = Filesystem::Mount(dev_path);
//   CrashRecorder rec(ImplOf(*fs)->device());
//   rec.Start();                                  // snapshots the base image
//   ImplOf(*fs)->device()->SetPersistObserver(&rec);
//   ... workload, rec.MarkOpDone(i) after each op ...
//   ImplOf(*fs)->device()->SetPersistObserver(nullptr);  // before Unmount/Crash
//   for k in 0..rec.fences(): rec.WriteImage(k, "/dev/shm/x.img"); mount it; check.
// The device file is flock-ed by the running filesystem: crash images must be
// written to a different path.
//
// Thread safety: the observer callbacks take a mutex; the device calls them in
// program order of the (single) writer. The rest is for the test thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "device/pmem_device.h"
#include "udax/status.h"

namespace udax::testing {

class CrashRecorder : public PersistObserver {
 public:
  // One flushed range and its content at the fence that made it durable.
  struct Write {
    uint64_t off = 0;
    uint64_t len = 0;
    size_t data = 0;  // offset of the bytes in the recorder's byte arena
  };

  explicit CrashRecorder(PmemDevice* dev) : dev_(dev) {}

  // Copies the whole device as the base image and starts recording (drops any
  // earlier recording). Install the observer right after (or before) this.
  Status Start();

  // PersistObserver.
  void OnFlush(uint64_t off, uint64_t len) override;
  void OnDrain() override;

  // The workload's operation `op_id` has returned: remember the fence count.
  // Returns the number of flushes still pending (not fenced) at that moment:
  // non-zero means the operation returned before its writes were durable.
  size_t MarkOpDone(uint64_t op_id);

  // Number of fences recorded (the valid k are 0..fences()).
  uint64_t fences() const { return epochs_.size(); }
  // Fence count at which op `op_id` was marked done (UINT64_MAX if never).
  uint64_t op_done_fence(uint64_t op_id) const;
  const std::vector<std::pair<uint64_t, uint64_t>>& ops() const { return ops_; }
  // Flushes still pending (not yet fenced) — non-zero at the end of a workload
  // means some write was never made durable by a fence.
  size_t pending_flushes() const { return pending_.size(); }
  uint64_t device_size() const { return base_.size(); }
  const std::vector<uint8_t>& base() const { return base_; }

  // The writes of epoch k+1 (in flight when the power fails after fence k).
  const std::vector<Write>& InflightWrites(uint64_t k) const;
  std::vector<Write> EpochWrites(uint64_t epoch) const;  // epoch >= 1
  const uint8_t* WriteData(const Write& w) const { return arena_.data() + w.data; }
  // Splits writes into pieces aligned to `granularity` bytes (power of two).
  static std::vector<Write> SplitGranularity(const std::vector<Write>& ws, uint64_t granularity);

  // Applies epoch `epoch` (1-based) to `image` (which must be the image after
  // fence epoch-1): incremental reconstruction.
  void ApplyEpoch(uint64_t epoch, std::vector<uint8_t>* image) const;
  void ApplyWrites(const std::vector<Write>& ws, std::vector<uint8_t>* image) const;
  // The durable image after fence k; with `inflight`, also those writes of
  // epoch k+1 (records of InflightWrites(k) or pieces of them).
  std::vector<uint8_t> BuildImage(uint64_t k, const std::vector<Write>* inflight = nullptr) const;
  // Writes `image` to `path` (created/truncated to the device size).
  static Status WriteFile(const std::vector<uint8_t>& image, const std::string& path);
  Status WriteImage(uint64_t k, const std::string& path) const {
    return WriteFile(BuildImage(k), path);
  }

 private:
  PmemDevice* dev_;
  std::mutex mu_;
  std::vector<uint8_t> base_;
  std::vector<std::pair<uint64_t, uint64_t>> pending_;  // (off, len) since the last fence
  std::vector<std::vector<Write>> epochs_;             // epochs_[k-1] = epoch k
  std::vector<uint8_t> arena_;
  std::vector<std::pair<uint64_t, uint64_t>> ops_;  // (op_id, done fence)
};

}  // namespace udax::testing
