// api/filesystem.cc — the public Filesystem and File classes
// (include/udax/fs.h), implemented here and nowhere else: thin handles over
// a backend (api/backend.h) — the local one (a filesystem mounted in this
// process) or a direct client's (client/). What every backend shares lives
// here: the access-mode checks, Linux's order of remap errors, the file
// position, and prefaulting user buffers that may themselves be udax
// mappings.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "api/backend.h"
#include "client/connect.h"
#include "dax/mapping_impl.h"

namespace udax {

Filesystem::Filesystem(std::shared_ptr<FsBackend> impl) : impl_(std::move(impl)) {}
Filesystem::~Filesystem() = default;

Result<std::unique_ptr<Filesystem>> Filesystem::Mount(const std::string& device,
                                                      const MountOptions& opts) {
  ASSIGN_OR_RETURN(auto impl, MountLocal(device, opts));
  return std::unique_ptr<Filesystem>(new Filesystem(std::move(impl)));
}

Result<std::unique_ptr<Filesystem>> Filesystem::Connect(const std::string& mountpoint) {
  ASSIGN_OR_RETURN(auto impl, client::ConnectToMount(mountpoint));
  return std::unique_ptr<Filesystem>(new Filesystem(std::move(impl)));
}

Status Filesystem::Unmount() { return impl_->Unmount(); }
Result<File> Filesystem::Open(const PathAt& p, int flags, uint32_t mode) {
  ASSIGN_OR_RETURN(auto h, impl_->Open(p, flags, mode));
  return File(std::move(h), flags);
}
Status Filesystem::Mkdir(const PathAt& p, uint32_t mode) { return impl_->Mkdir(p, mode); }
Status Filesystem::Rmdir(const PathAt& p) { return impl_->Rmdir(p); }
Status Filesystem::Unlink(const PathAt& p) { return impl_->Unlink(p); }
Status Filesystem::Rename(const PathAt& a, const PathAt& b) { return impl_->Rename(a, b); }
Status Filesystem::Link(const PathAt& a, const PathAt& b) { return impl_->Link(a, b); }
Status Filesystem::Symlink(const std::string& t, const PathAt& p) { return impl_->Symlink(t, p); }
Result<std::string> Filesystem::Readlink(const PathAt& p) { return impl_->Readlink(p); }
Result<Stat> Filesystem::GetStat(const PathAt& p) { return impl_->GetStat(p, true); }
Result<Stat> Filesystem::GetLstat(const PathAt& p) { return impl_->GetStat(p, false); }
Status Filesystem::Chmod(const PathAt& p, uint32_t m) { return impl_->Chmod(p, m); }
Status Filesystem::Chown(const PathAt& p, uint32_t u, uint32_t g) { return impl_->Chown(p, u, g, true); }
Status Filesystem::Lchown(const PathAt& p, uint32_t u, uint32_t g) { return impl_->Chown(p, u, g, false); }
Status Filesystem::Utimens(const PathAt& p, Timespec a, Timespec m) { return impl_->Utimens(p, a, m, true); }
Status Filesystem::Lutimens(const PathAt& p, Timespec a, Timespec m) { return impl_->Utimens(p, a, m, false); }
Status Filesystem::Truncate(const PathAt& p, uint64_t len) { return impl_->Truncate(p, len); }
Result<std::vector<DirEntry>> Filesystem::ReadDir(const PathAt& p) { return impl_->ReadDir(p); }
Status Filesystem::RemoveDevice() { return impl_->RemoveDevice(); }
Status Filesystem::InjectPoison(uint64_t off, uint64_t len) { return impl_->InjectPoison(off, len); }
Result<std::vector<std::pair<uint64_t, uint64_t>>> Filesystem::BadBlocks() { return impl_->BadBlocks(); }
Result<StatFs> Filesystem::GetStatFs() { return impl_->GetStatFs(); }
Result<FsStats> Filesystem::GetStats() { return impl_->GetStats(); }
Result<SharingStatus> Filesystem::GetSharingStatus() { return impl_->GetSharingStatus(); }
Result<std::vector<BlockOwner>> Filesystem::QueryRmap(uint64_t off, uint64_t len) { return impl_->QueryRmap(off, len); }
Status Filesystem::Sync() { return impl_->Sync(); }

File::File() = default;
File::File(std::unique_ptr<FileBackend> h, int flags) : h_(std::move(h)), flags_(flags) {}

File::File(File&& o) noexcept : h_(std::move(o.h_)), flags_(o.flags_), pos_(o.pos_) {}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    Close().IgnoreError();
    h_ = std::move(o.h_);
    flags_ = o.flags_;
    pos_ = o.pos_;
  }
  return *this;
}

File::~File() { Close().IgnoreError(); }

uint64_t File::ino() const { return h_ ? h_->ino() : 0; }

namespace {
Status NotOpen() { return Errno(EBADF, "file is not open"); }

// A user buffer may itself be a udax mapping. Touch every page of it before
// udax takes its lock, so its faults (which may allocate) are served now and
// not while the lock is held. One load (or a value-preserving atomic OR for
// a destination) per 4 KiB page.
constexpr uintptr_t kPageMask = ~uintptr_t{4095};
void PrefaultForRead(const void* buf, size_t len) {
  if (len == 0) return;
  auto p = reinterpret_cast<uintptr_t>(buf), end = p + len;
  for (uintptr_t a = p & kPageMask; a < end; a += 4096)
    (void)*reinterpret_cast<const volatile uint8_t*>(std::max(a, p));
}
void PrefaultForWrite(void* buf, size_t len) {
  if (len == 0) return;
  auto p = reinterpret_cast<uintptr_t>(buf), end = p + len;
  for (uintptr_t a = p & kPageMask; a < end; a += 4096)
    __atomic_fetch_or(reinterpret_cast<uint8_t*>(std::max(a, p)), 0, __ATOMIC_RELAXED);
}
bool CanRead(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }
bool CanWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }
}  // namespace

Result<size_t> File::Pread(void* buf, size_t len, uint64_t off) {
  if (!h_) return NotOpen();
  if (!CanRead(flags_)) return Errno(EBADF, "file not open for reading");
  PrefaultForWrite(buf, len);
  return h_->Pread(buf, len, off);
}

Result<size_t> File::Pwrite(const void* buf, size_t len, uint64_t off) {
  if (!h_) return NotOpen();
  if (!CanWrite(flags_)) return Errno(EBADF, "file not open for writing");
  PrefaultForRead(buf, len);
  uint64_t end = 0;
  return h_->Pwrite(buf, len, off, false, &end);
}

Result<size_t> File::Read(void* buf, size_t len) {
  ASSIGN_OR_RETURN(size_t n, Pread(buf, len, pos_));
  pos_ += n;
  return n;
}

Result<size_t> File::Write(const void* buf, size_t len) {
  if (!h_) return NotOpen();
  if (!CanWrite(flags_)) return Errno(EBADF, "file not open for writing");
  PrefaultForRead(buf, len);
  uint64_t end = 0;
  ASSIGN_OR_RETURN(size_t n, h_->Pwrite(buf, len, pos_, flags_ & O_APPEND, &end));
  pos_ = end;
  return n;
}

Result<uint64_t> File::Seek(uint64_t pos) {
  if (!h_) return NotOpen();
  pos_ = pos;
  return pos_;
}

Status File::Truncate(uint64_t len) {
  if (!h_) return NotOpen();
  if (!CanWrite(flags_)) return Errno(EINVAL, "file not open for writing");
  return h_->Truncate(len);
}

Status File::Fallocate(int mode, uint64_t off, uint64_t len) {
  if (!h_) return NotOpen();
  if (!CanWrite(flags_)) return Errno(EBADF, "file not open for writing");
  return h_->Fallocate(mode, off, len);
}

Status File::Fsync() { return h_ ? h_->Fsync() : NotOpen(); }
Status File::Fdatasync() { return Fsync(); }
Result<Stat> File::GetStat() {
  if (!h_) return NotOpen();
  return h_->GetStat();
}
bool File::AtimeUpdateDue() const { return h_ && h_->AtimeUpdateDue(); }
Result<std::vector<FileExtent>> File::Fiemap() {
  if (!h_) return NotOpen();
  return h_->Fiemap();
}

namespace {
// Linux's order: EXDEV, then EISDIR / EINVAL for the file types, then EBADF.
Status CheckRemapHandles(const FileBackend& dst, const FileBackend& src, int dflags, int sflags) {
  if (dst.fs_identity() != src.fs_identity()) return Errno(EXDEV, "files are on different filesystems");
  if (S_ISDIR(dst.type()) || S_ISDIR(src.type())) return Errno(EISDIR, "is a directory");
  if (!S_ISREG(dst.type()) || !S_ISREG(src.type())) return Errno(EINVAL, "not a regular file");
  if (!CanRead(sflags)) return Errno(EBADF, "source not open for reading");
  if (!CanWrite(dflags) || (dflags & O_APPEND)) return Errno(EBADF, "destination not open for writing");
  return Status::Ok();
}
}  // namespace

Status File::CloneRange(File& src, uint64_t src_off, uint64_t len, uint64_t dst_off) {
  if (!h_ || !src.h_) return NotOpen();
  RETURN_IF_ERROR(CheckRemapHandles(*h_, *src.h_, flags_, src.flags_));
  return h_->CloneRange(*src.h_, src_off, len, dst_off);
}

Result<uint64_t> File::DedupeRange(File& src, uint64_t src_off, uint64_t len, uint64_t dst_off) {
  if (!h_ || !src.h_) return NotOpen();
  RETURN_IF_ERROR(CheckRemapHandles(*h_, *src.h_, flags_, src.flags_));
  return h_->DedupeRange(*src.h_, src_off, len, dst_off);
}

Status File::Close() {
  if (!h_) return Status::Ok();
  h_->Close();
  h_.reset();
  return Status::Ok();
}

Result<Mapping> File::Map(uint64_t offset, size_t length, Prot prot) {
  if (!h_) return Errno(EBADF, "file is not open");
  if (!S_ISREG(h_->type())) return Errno(ENODEV, "only a regular file can be mapped");  // as Linux
  int acc = flags_ & O_ACCMODE;
  if (acc == O_WRONLY) return Errno(EACCES, "file not open for reading");
  if ((static_cast<uint32_t>(prot) & static_cast<uint32_t>(Prot::kWrite)) && acc == O_RDONLY)
    return Errno(EACCES, "file not open for writing");
  ASSIGN_OR_RETURN(auto m, h_->Map(offset, length, prot));
  return Mapping(std::move(m));
}

}  // namespace udax
