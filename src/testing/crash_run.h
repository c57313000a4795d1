// testing/crash_run.h — CrashRun: one crash-test workload — the live
// filesystem, the model (testing/fs_model.h) and the CrashRecorder — and, at
// Finish(), the check of every crash state it went through
// (testing/crash_check.h). Tests only; no test framework: a failure is text.
//
// Each operation runs once on the filesystem and once on the model and must
// return the same errno; while recording, the recorder marks it done and the
// model's state after it is kept, so every crash image can be compared with
// the states before and after the operation in flight. An operation must be
// one call that changes the filesystem (the all-or-nothing unit): handles are
// opened before recording starts, or by an operation of their own.
//
// Usage:
//   CrashRun r("name");
//   r.Setup();  ... build the starting tree ...  r.StartRecording();
//   ... operations ...
//   std::string err = r.Finish();  // "" when every crash state passed
// After the first failure (error() not empty) further operations are skipped.
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "testing/crash_check.h"
#include "testing/crash_recorder.h"
#include "testing/fs_model.h"
#include "udax/fs.h"

namespace udax::testing {

// `len` bytes from `seed`, never 0 (a lost write cannot look like a hole).
std::string CrashPattern(uint64_t seed, size_t len);

class CrashRun {
 public:
  explicit CrashRun(std::string name);
  ~CrashRun();

  // A fresh filesystem of `dev_size` bytes; log_blocks 0 = chosen from the size
  // (a small log checkpoints often).
  void Setup(uint64_t dev_size = 16 << 20, uint32_t log_blocks = 0);
  // Starts from a saved image (written to the device file) whose content the
  // model describes (inode numbers learned), instead of Setup.
  void SetupFromImage(const std::vector<uint8_t>& image, const FsModel& model);
  // The device's bytes now (with the filesystem unmounted cleanly first:
  // Setup again, or SetupFromImage, to go on) — for SetupFromImage.
  std::vector<uint8_t> SaveImage();
  // Everything before this is the (durable) starting state.
  void StartRecording();

  // ---- operations: the real call and the model's, same errno expected ----
  void Create(const std::string& h, const std::string& path, int flags = O_RDWR | O_CREAT);
  void Close(const std::string& h);
  void Write(const std::string& h, uint64_t off, size_t len);  // pattern bytes
  void WriteData(const std::string& h, uint64_t off, const std::string& data);
  void Ftruncate(const std::string& h, uint64_t len);
  void Fallocate(const std::string& h, int mode, uint64_t off, uint64_t len);
  void Fsync(const std::string& h);
  // FICLONERANGE / FIDEDUPERANGE of src [src_off, +len) into dst at dst_off.
  void Remap(const std::string& dst, const std::string& src, uint64_t src_off, uint64_t len, uint64_t dst_off,
             bool dedupe);
  // A DAX store of `len` pattern bytes at `off` through a mapping of the
  // file, then Persist (a write fault: allocation into a hole, or a copy of a
  // shared block).
  void DaxStore(const std::string& h, uint64_t off, size_t len);
  void Truncate(const std::string& p, uint64_t len);
  void Mkdir(const std::string& p);
  void Rmdir(const std::string& p);
  void Unlink(const std::string& p);
  void Rename(const std::string& a, const std::string& b);
  void Link(const std::string& a, const std::string& b);
  void Symlink(const std::string& t, const std::string& p);
  void Chmod(const std::string& p, uint32_t mode);
  // A file of `extents` separate one-block extents (every other block written).
  void Fragmented(const std::string& path, int extents);

  const std::string& name() const { return name_; }
  const FsModel& model() const { return model_; }
  bool HasHandle(const std::string& h) const { return handles_.count(h) != 0; }
  uint64_t HandleSize(const std::string& h) const;
  // The first failure ("" while all is well).
  const std::string& error() const { return error_; }
  // Operations recorded so far and the recorder (while recording).
  size_t recorded_ops() const { return ops_count_; }
  const CrashRecorder* recorder() const { return rec_.get(); }

  // Ends the live run: compares it with the model, then checks every crash
  // state. Returns "" or what failed.
  std::string Finish(const CrashCheckOptions& opts = {});
  // Journal checkpoints during the recorded workload, and what was checked
  // (after Finish).
  uint64_t checkpoints() const { return checkpoints_; }
  const CrashTally& tally() const { return tally_; }

 private:
  struct Handle {
    File file;
    uint64_t id = 0;
  };
  // stale_ino: see CrashWorkload::stale_past_eof.
  void Op(const std::string& desc, const std::function<int()>& real, const std::function<int()>& model,
          uint64_t stale_ino = 0);
  uint64_t TruncatingDown(uint64_t id, uint64_t len) const;
  void Fail(const std::string& what);
  void LearnInos();
  Handle* Get(const std::string& h, const std::string& desc);

  std::string name_, dev_;
  std::unique_ptr<Filesystem> fs_;
  FsModel model_;
  std::unique_ptr<CrashRecorder> rec_;
  bool recording_ = false;
  uint64_t checkpoints0_ = 0, checkpoints_ = 0;
  std::map<std::string, Handle> handles_;
  std::vector<std::string> ops_;
  size_t ops_count_ = 0;
  std::vector<TreeSnap> states_;  // states_[i]: after i operations
  std::vector<uint64_t> stale_past_eof_;
  uint64_t seed_ = 0;
  std::string error_;
  CrashTally tally_;
};

}  // namespace udax::testing
