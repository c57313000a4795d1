// testing/crash_run.cc — see crash_run.h.
#include "testing/crash_run.h"

#include <unistd.h>

#include <cstring>

#include "fs/fs_impl.h"
#include "fs/test_access.h"
#include "testing/fs_snapshot.h"
#include "udax/mapping.h"

namespace udax::testing {

std::string CrashPattern(uint64_t seed, size_t len) {
  std::string s(len, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x | 1);
  }
  return s;
}

namespace {
std::string ShmPath(const std::string& tag) {
  return "/dev/shm/udax_crash_" + std::to_string(getpid()) + "_" + tag + ".img";
}
int Err(const Status& st) { return st.err(); }
}  // namespace

CrashRun::CrashRun(std::string name) : name_(std::move(name)), dev_(ShmPath(name_)) {}

CrashRun::~CrashRun() {
  handles_.clear();
  if (fs_) CrashForTesting(*fs_);
  fs_.reset();
  ::unlink(dev_.c_str());
}

void CrashRun::Fail(const std::string& what) {
  if (error_.empty()) error_ = name_ + ": " + what;
}

void CrashRun::Setup(uint64_t dev_size, uint32_t log_blocks) {
  ::unlink(dev_.c_str());
  if (Status st = Filesystem::Mkfs(dev_, {.size = dev_size, .log_blocks = log_blocks}); !st.ok())
    return Fail("mkfs: " + st.ToString());
  auto m = Filesystem::Mount(dev_);
  if (!m) return Fail("mount: " + m.error().ToString());
  fs_ = std::move(*m);
}

void CrashRun::SetupFromImage(const std::vector<uint8_t>& image, const FsModel& model) {
  if (Status st = CrashRecorder::WriteFile(image, dev_); !st.ok()) return Fail(st.ToString());
  auto m = Filesystem::Mount(dev_);
  if (!m) return Fail("mount: " + m.error().ToString());
  fs_ = std::move(*m);
  model_ = model;
}

std::vector<uint8_t> CrashRun::SaveImage() {
  handles_.clear();
  model_.DropOpenFiles();
  if (fs_) {
    if (Status st = fs_->Unmount(); !st.ok()) Fail("unmount: " + st.ToString());
    fs_.reset();
  }
  std::vector<uint8_t> out;
  int fd = ::open(dev_.c_str(), O_RDONLY | O_CLOEXEC);
  off_t size = fd < 0 ? -1 : ::lseek(fd, 0, SEEK_END);
  if (size > 0) {
    out.resize(size);
    if (::pread(fd, out.data(), out.size(), 0) != size) out.clear();
  }
  if (fd >= 0) ::close(fd);
  if (out.empty()) Fail("cannot read the device back");
  return out;
}

void CrashRun::StartRecording() {
  if (!error_.empty()) return;
  LearnInos();
  rec_ = std::make_unique<CrashRecorder>(ImplOf(*fs_)->device());
  if (Status st = rec_->Start(); !st.ok()) return Fail(st.ToString());
  ImplOf(*fs_)->device()->SetPersistObserver(rec_.get());
  checkpoints0_ = ImplOf(*fs_)->journal()->checkpoints();
  recording_ = true;
  states_.push_back(model_.Snapshot());
  ops_.clear();
  stale_past_eof_.clear();
}

// The inode a truncate of node `id` to `len` may leave stale blocks past EOF
// in (CrashWorkload's known issue), or 0.
uint64_t CrashRun::TruncatingDown(uint64_t id, uint64_t len) const {
  const ModelNode* n = model_.Get(id);
  return n && n->type == S_IFREG && len < n->size ? n->real_ino : 0;
}

void CrashRun::Op(const std::string& desc, const std::function<int()>& real, const std::function<int()>& model,
                  uint64_t stale_ino) {
  if (!error_.empty()) return;
  int got = real();
  int want = model();
  if (got != want) return Fail(desc + ": " + ErrnoName(got) + ", the model says " + ErrnoName(want));
  LearnInos();
  if (recording_) {
    // Writes may still be pending at return: a commit's record is fenced,
    // the lines it applies to their homes wait for the next fence. That the
    // op is durable at return is what the image at its done fence (which
    // holds none of the pending writes) and every state of the window after
    // it check.
    rec_->MarkOpDone(ops_.size());
    ops_.push_back(desc);
    ops_count_ = ops_.size();
    stale_past_eof_.push_back(stale_ino);
    states_.push_back(model_.Snapshot());
  }
}

CrashRun::Handle* CrashRun::Get(const std::string& h, const std::string& desc) {
  auto it = handles_.find(h);
  if (it == handles_.end()) {
    Fail(desc + ": no handle " + h);
    return nullptr;
  }
  return &it->second;
}

uint64_t CrashRun::HandleSize(const std::string& h) const { return model_.Get(handles_.at(h).id)->size; }

void CrashRun::Create(const std::string& h, const std::string& path, int flags) {
  Handle nh;
  int err = 0;
  Op("open " + path, [&] {
    auto f = fs_->Open(path, flags, 0644);
    if (!f) return err = f.error().err();
    nh.file = std::move(*f);
    return 0;
  }, [&] {
    bool created;
    return model_.Open(path, flags, 0644, &nh.id, &created);
  });
  if (err == 0 && nh.file.is_open()) handles_[h] = std::move(nh);
}

void CrashRun::Close(const std::string& h) {
  Handle* hd = Get(h, "close");
  if (!hd) return;
  Op("close " + h, [&] { return Err(hd->file.Close()); }, [&] {
    model_.Close(hd->id);
    return 0;
  });
  handles_.erase(h);
}

void CrashRun::Write(const std::string& h, uint64_t off, size_t len) { WriteData(h, off, CrashPattern(++seed_, len)); }

void CrashRun::WriteData(const std::string& h, uint64_t off, const std::string& data) {
  const size_t len = data.size();
  std::string desc = "pwrite " + h + " [" + std::to_string(off) + ", +" + std::to_string(len) + ")";
  Handle* hd = Get(h, desc);
  if (!hd) return;
  Op(desc, [&] {
    auto n = hd->file.Pwrite(data.data(), len, off);
    if (!n) return n.error().err();
    return *n == len ? 0 : EIO;
  }, [&] {
    model_.Write(hd->id, off, data.data(), len);
    return 0;
  });
}

void CrashRun::Ftruncate(const std::string& h, uint64_t len) {
  std::string desc = "ftruncate " + h + " " + std::to_string(len);
  Handle* hd = Get(h, desc);
  if (!hd) return;
  Op(desc, [&] { return Err(hd->file.Truncate(len)); }, [&] { return model_.Truncate(hd->id, len); },
     TruncatingDown(hd->id, len));
}

void CrashRun::Fallocate(const std::string& h, int mode, uint64_t off, uint64_t len) {
  std::string desc = "fallocate " + h + " mode " + std::to_string(mode) + " [" + std::to_string(off) + ", +" +
                     std::to_string(len) + ")";
  Handle* hd = Get(h, desc);
  if (!hd) return;
  Op(desc, [&] { return Err(hd->file.Fallocate(mode, off, len)); },
     [&] { return model_.Fallocate(hd->id, mode, off, len, true); });
}

void CrashRun::Fsync(const std::string& h) {
  Handle* hd = Get(h, "fsync");
  if (!hd) return;
  Op("fsync " + h, [&] { return Err(hd->file.Fsync()); }, [] { return 0; });
}

void CrashRun::Remap(const std::string& dst, const std::string& src, uint64_t src_off, uint64_t len,
                     uint64_t dst_off, bool dedupe) {
  std::string desc = std::string(dedupe ? "dedupe " : "clone ") + src + " [" + std::to_string(src_off) + ", +" +
                     std::to_string(len) + ") to " + dst + " at " + std::to_string(dst_off);
  Handle* d = Get(dst, desc);
  Handle* s = Get(src, desc);
  if (!d || !s) return;
  Op(desc, [&] {
    if (dedupe) {
      auto n = d->file.DedupeRange(s->file, src_off, len, dst_off);
      return n ? 0 : n.error().err();
    }
    return Err(d->file.CloneRange(s->file, src_off, len, dst_off));
  }, [&] {
    uint64_t done = 0;
    return model_.Remap(s->id, d->id, src_off, len, dst_off, dedupe, true, &done);
  });
}

void CrashRun::DaxStore(const std::string& h, uint64_t off, size_t len) {
  std::string desc = "DAX store " + h + " [" + std::to_string(off) + ", +" + std::to_string(len) + ")";
  Handle* hd = Get(h, desc);
  if (!hd) return;
  std::string data = CrashPattern(++seed_, len);
  Op(desc, [&] {
    uint64_t start = off / 4096 * 4096;
    auto m = hd->file.Map(start, off + len - start, Prot::kReadWrite);
    if (!m) return m.error().err();
    uint8_t* p = m->data() + (off - start);
    Status st = Guarded([&] { std::memcpy(p, data.data(), len); });
    if (st.ok()) st = m->Persist(p, len);
    return st.err();
  }, [&] {
    model_.Write(hd->id, off, data.data(), len);
    return 0;
  });
}

void CrashRun::Truncate(const std::string& p, uint64_t len) {
  uint64_t id = 0;
  uint64_t stale = model_.Walk(p, true, &id) == 0 ? TruncatingDown(id, len) : 0;
  Op("truncate " + p + " " + std::to_string(len), [&] { return Err(fs_->Truncate(p, len)); },
     [&] { return model_.TruncatePath(p, len); }, stale);
}
void CrashRun::Mkdir(const std::string& p) {
  Op("mkdir " + p, [&] { return Err(fs_->Mkdir(p, 0755)); }, [&] { return model_.Mkdir(p, 0755); });
}
void CrashRun::Rmdir(const std::string& p) {
  Op("rmdir " + p, [&] { return Err(fs_->Rmdir(p)); }, [&] { return model_.Rmdir(p); });
}
void CrashRun::Unlink(const std::string& p) {
  Op("unlink " + p, [&] { return Err(fs_->Unlink(p)); }, [&] { return model_.Unlink(p); });
}
void CrashRun::Rename(const std::string& a, const std::string& b) {
  Op("rename " + a + " " + b, [&] { return Err(fs_->Rename(a, b)); }, [&] { return model_.Rename(a, b); });
}
void CrashRun::Link(const std::string& a, const std::string& b) {
  Op("link " + a + " " + b, [&] { return Err(fs_->Link(a, b)); }, [&] { return model_.Link(a, b); });
}
void CrashRun::Symlink(const std::string& t, const std::string& p) {
  Op("symlink " + p + " -> " + t.substr(0, 40), [&] { return Err(fs_->Symlink(t, p)); },
     [&] { return model_.Symlink(t, p); });
}
void CrashRun::Chmod(const std::string& p, uint32_t mode) {
  Op("chmod " + p, [&] { return Err(fs_->Chmod(p, mode)); }, [&] { return model_.Chmod(p, mode); });
}

void CrashRun::Fragmented(const std::string& path, int extents) {
  Create("frag", path);
  for (int i = 0; i < extents; i++) Write("frag", uint64_t(2 * i) * kModelBlock, kModelBlock);
  Close("frag");
}

void CrashRun::LearnInos() {
  for (const auto& [id, path] : model_.PathsById()) {
    ModelNode* n = model_.Get(id);
    if (n->real_ino) continue;
    auto st = fs_->GetLstat(path);
    if (!st) return Fail("lstat " + path + ": " + st.error().ToString());
    n->real_ino = st->ino;
  }
}

std::string CrashRun::Finish(const CrashCheckOptions& opts) {
  if (!error_.empty()) return error_;
  if (!recording_) return name_ + ": Finish without StartRecording";
  auto snap = SnapshotFs(*fs_, true);
  if (!snap) return name_ + ": reading the live tree: " + snap.error().ToString();
  std::string d = DiffSnapshots(model_.Snapshot(), *snap, true, true, true);
  if (!d.empty()) return name_ + ": live filesystem differs from the model:\n" + d;
  ImplOf(*fs_)->device()->SetPersistObserver(nullptr);
  checkpoints_ = ImplOf(*fs_)->journal()->checkpoints() - checkpoints0_;
  handles_.clear();
  CrashForTesting(*fs_);
  fs_.reset();
  CrashWorkload w{name_, rec_.get(), std::move(states_), std::move(ops_), std::move(stale_past_eof_)};
  return CheckCrashStates(w, opts, &tally_);
}

}  // namespace udax::testing
