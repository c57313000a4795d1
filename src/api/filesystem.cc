// api/filesystem.cc — the public Filesystem and File classes
// (include/udax/fs.h), implemented here and nowhere else: thin handles that
// call the part of FsImpl that owns each operation (Namespace, FileIo,
// Reflink, ...) inside FsImpl::BeginOperation, and keep the in-core inode
// referenced while open. File::Map creates a dax/ MappingImpl, so this file
// sits above both fs/ and dax/ (the library udax_api).
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "dax/mapping_impl.h"
#include "fs/fs_impl.h"

namespace udax {

namespace {
// Every operation runs holding a device reference: a removal waits for it,
// and once removal began the operation fails at once with ENODEV.
template <typename Fn>
auto Entered(FsImpl& fs, Fn&& fn) -> decltype(fn()) {
  auto ref = fs.BeginOperation();
  if (!ref.has_value()) return ref.error();
  return fn();
}
}  // namespace

Filesystem::Filesystem(std::shared_ptr<FsImpl> impl) : impl_(std::move(impl)) {}
Filesystem::~Filesystem() = default;

Result<std::unique_ptr<Filesystem>> Filesystem::Mount(const std::string& device,
                                                      const MountOptions& opts) {
  ASSIGN_OR_RETURN(auto impl, FsImpl::Mount(device, opts));
  return std::unique_ptr<Filesystem>(new Filesystem(std::shared_ptr<FsImpl>(std::move(impl))));
}

Status Filesystem::Unmount() { return impl_->Unmount(); }
Result<File> Filesystem::Open(const PathAt& p, int flags, uint32_t mode) { return Entered(*impl_, [&] { return impl_->names().Open(p, flags, mode); }); }
Status Filesystem::Mkdir(const PathAt& p, uint32_t mode) { return Entered(*impl_, [&] { return impl_->names().Mkdir(p, mode); }); }
Status Filesystem::Rmdir(const PathAt& p) { return Entered(*impl_, [&] { return impl_->names().Rmdir(p); }); }
Status Filesystem::Unlink(const PathAt& p) { return Entered(*impl_, [&] { return impl_->names().Unlink(p); }); }
Status Filesystem::Rename(const PathAt& a, const PathAt& b) { return Entered(*impl_, [&] { return impl_->names().Rename(a, b); }); }
Status Filesystem::Link(const PathAt& a, const PathAt& b) { return Entered(*impl_, [&] { return impl_->names().Link(a, b); }); }
Status Filesystem::Symlink(const std::string& t, const PathAt& p) { return Entered(*impl_, [&] { return impl_->names().Symlink(t, p); }); }
Result<std::string> Filesystem::Readlink(const PathAt& p) { return Entered(*impl_, [&] { return impl_->names().Readlink(p); }); }
Result<Stat> Filesystem::GetStat(const PathAt& p) { return Entered(*impl_, [&] { return impl_->names().GetStat(p, true); }); }
Result<Stat> Filesystem::GetLstat(const PathAt& p) { return Entered(*impl_, [&] { return impl_->names().GetStat(p, false); }); }
Status Filesystem::Chmod(const PathAt& p, uint32_t m) { return Entered(*impl_, [&] { return impl_->names().Chmod(p, m); }); }
Status Filesystem::Chown(const PathAt& p, uint32_t u, uint32_t g) { return Entered(*impl_, [&] { return impl_->names().Chown(p, u, g, true); }); }
Status Filesystem::Lchown(const PathAt& p, uint32_t u, uint32_t g) { return Entered(*impl_, [&] { return impl_->names().Chown(p, u, g, false); }); }
Status Filesystem::Utimens(const PathAt& p, Timespec a, Timespec m) { return Entered(*impl_, [&] { return impl_->names().Utimens(p, a, m, true); }); }
Status Filesystem::Lutimens(const PathAt& p, Timespec a, Timespec m) { return Entered(*impl_, [&] { return impl_->names().Utimens(p, a, m, false); }); }
Status Filesystem::Truncate(const PathAt& p, uint64_t len) { return Entered(*impl_, [&] { return impl_->names().TruncatePath(p, len); }); }
Result<std::vector<DirEntry>> Filesystem::ReadDir(const PathAt& p) { return Entered(*impl_, [&] { return impl_->names().ReadDir(p); }); }
Status Filesystem::RemoveDevice() {
  PmemDevice* dev = impl_->device();
  if (!dev) return Errno(ENODEV, "no device to remove: the filesystem is not mounted");
  return dev->Remove();
}
Status Filesystem::InjectPoison(uint64_t off, uint64_t len) {
  PmemDevice* dev = impl_->device();
  if (!dev) return Errno(ENODEV, "no device: the filesystem is not mounted");
  if (dev->state() != DeviceState::kLive) return Errno(ENODEV, "filesystem shut down: device removed");
  return dev->InjectPoison(off, len);
}
Result<std::vector<std::pair<uint64_t, uint64_t>>> Filesystem::BadBlocks() {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& e : impl_->bad_blocks().List()) out.emplace_back(e.start * kBlockSize, e.length * kBlockSize);
  return out;
}
Result<StatFs> Filesystem::GetStatFs() { return Entered(*impl_, [&] { return impl_->GetStatFs(); }); }
Result<FsStats> Filesystem::GetStats() { return Entered(*impl_, [&] { return impl_->GetStats(); }); }
Result<std::vector<BlockOwner>> Filesystem::QueryRmap(uint64_t off, uint64_t len) {
  return Entered(*impl_, [&] { return impl_->BlockOwners(off, len); });
}
Status Filesystem::Sync() { return Entered(*impl_, [&] { return impl_->Sync(); }); }

File::File(std::shared_ptr<FsImpl> fs, std::shared_ptr<Inode> inode, int flags)
    : fs_(std::move(fs)), inode_(std::move(inode)), flags_(flags) {}

File::File(File&& o) noexcept
    : fs_(std::move(o.fs_)), inode_(std::move(o.inode_)), flags_(o.flags_), pos_(o.pos_) {}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    Close().IgnoreError();
    fs_ = std::move(o.fs_);
    inode_ = std::move(o.inode_);
    flags_ = o.flags_;
    pos_ = o.pos_;
  }
  return *this;
}

File::~File() { Close().IgnoreError(); }

uint64_t File::ino() const { return inode_ ? inode_->ino : 0; }

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
  if (!inode_) return NotOpen();
  if (!CanRead(flags_)) return Errno(EBADF, "file not open for reading");
  PrefaultForWrite(buf, len);
  return Entered(*fs_, [&] { return fs_->files().Pread(inode_.get(), buf, len, off); });
}

Result<size_t> File::Pwrite(const void* buf, size_t len, uint64_t off) {
  if (!inode_) return NotOpen();
  if (!CanWrite(flags_)) return Errno(EBADF, "file not open for writing");
  PrefaultForRead(buf, len);
  return Entered(*fs_, [&] { return fs_->files().Pwrite(inode_.get(), buf, len, off, false); });
}

Result<size_t> File::Read(void* buf, size_t len) {
  ASSIGN_OR_RETURN(size_t n, Pread(buf, len, pos_));
  pos_ += n;
  return n;
}

Result<size_t> File::Write(const void* buf, size_t len) {
  if (!inode_) return NotOpen();
  if (!CanWrite(flags_)) return Errno(EBADF, "file not open for writing");
  bool append = flags_ & O_APPEND;
  PrefaultForRead(buf, len);
  ASSIGN_OR_RETURN(size_t n, Entered(*fs_, [&] { return fs_->files().Pwrite(inode_.get(), buf, len, pos_, append); }));
  if (append) {
    ASSIGN_OR_RETURN(Stat st, fs_->files().StatInode(inode_.get()));
    pos_ = st.size;
  } else {
    pos_ += n;
  }
  return n;
}

Result<uint64_t> File::Seek(uint64_t pos) {
  if (!inode_) return NotOpen();
  pos_ = pos;
  return pos_;
}

Status File::Truncate(uint64_t len) {
  if (!inode_) return NotOpen();
  if (!CanWrite(flags_)) return Errno(EINVAL, "file not open for writing");
  return Entered(*fs_, [&] { return fs_->files().Truncate(inode_.get(), len); });
}

Status File::Fallocate(int mode, uint64_t off, uint64_t len) {
  if (!inode_) return NotOpen();
  if (!CanWrite(flags_)) return Errno(EBADF, "file not open for writing");
  return Entered(*fs_, [&] { return fs_->files().Fallocate(inode_.get(), mode, off, len); });
}

Status File::Fsync() {
  if (!inode_) return NotOpen();
  return Entered(*fs_, [&] { return fs_->files().Fsync(inode_.get()); });
}
Status File::Fdatasync() { return Fsync(); }
Result<Stat> File::GetStat() {
  if (!inode_) return NotOpen();
  return Entered(*fs_, [&] { return fs_->files().StatInode(inode_.get()); });
}
bool File::AtimeUpdateDue() const {
  return inode_ && inode_->atime_due.load(std::memory_order_relaxed);
}
Result<std::vector<FileExtent>> File::Fiemap() {
  if (!inode_) return NotOpen();
  return Entered(*fs_, [&] { return fs_->files().Fiemap(inode_.get()); });
}

namespace {
uint32_t ModeOf(Inode* ip) {
  std::lock_guard<std::mutex> g(ip->mu);
  return ip->rec.mode;
}

// Linux's order: EXDEV, then EISDIR / EINVAL for the file types, then EBADF.
Status CheckRemapHandles(Inode* dst, Inode* src, FsImpl* dfs, FsImpl* sfs, int dflags, int sflags) {
  if (dfs != sfs) return Errno(EXDEV, "files are on different filesystems");
  if (S_ISDIR(ModeOf(dst)) || S_ISDIR(ModeOf(src))) return Errno(EISDIR, "is a directory");
  if (!S_ISREG(ModeOf(dst)) || !S_ISREG(ModeOf(src))) return Errno(EINVAL, "not a regular file");
  if (!CanRead(sflags)) return Errno(EBADF, "source not open for reading");
  if (!CanWrite(dflags) || (dflags & O_APPEND)) return Errno(EBADF, "destination not open for writing");
  return Status::Ok();
}
}  // namespace

Status File::CloneRange(File& src, uint64_t src_off, uint64_t len, uint64_t dst_off) {
  if (!inode_ || !src.inode_) return NotOpen();
  RETURN_IF_ERROR(CheckRemapHandles(inode_.get(), src.inode_.get(), fs_.get(), src.fs_.get(), flags_, src.flags_));
  return Entered(*fs_, [&] { return fs_->reflink().CloneRange(inode_.get(), src.inode_.get(), src_off, len, dst_off); });
}

Result<uint64_t> File::DedupeRange(File& src, uint64_t src_off, uint64_t len, uint64_t dst_off) {
  if (!inode_ || !src.inode_) return NotOpen();
  RETURN_IF_ERROR(CheckRemapHandles(inode_.get(), src.inode_.get(), fs_.get(), src.fs_.get(), flags_, src.flags_));
  return Entered(*fs_, [&] { return fs_->reflink().DedupeRange(inode_.get(), src.inode_.get(), src_off, len, dst_off); });
}

Status File::Close() {
  if (!inode_) return Status::Ok();
  fs_->store().Release(inode_.get());
  inode_.reset();
  fs_.reset();
  return Status::Ok();
}

Result<Mapping> File::Map(uint64_t offset, size_t length, Prot prot) {
  if (!inode_) return Errno(EBADF, "file is not open");
  int acc = flags_ & O_ACCMODE;
  if (acc == O_WRONLY) return Errno(EACCES, "file not open for reading");
  if ((static_cast<uint32_t>(prot) & static_cast<uint32_t>(Prot::kWrite)) && acc == O_RDONLY)
    return Errno(EACCES, "file not open for writing");
  ASSIGN_OR_RETURN(DeviceRef ref, fs_->BeginOperation());  // a removal waits, or this fails (ENODEV)
  std::shared_ptr<Inode> ip = fs_->inodes().Reopen(inode_.get());
  if (!ip) return Errno(EBADF, "file is not open");
  auto m = MappingImpl::Create(fs_, ip, offset, length, prot);
  if (!m.has_value()) {
    fs_->store().Release(ip.get());
    return m.error();
  }
  return Mapping(std::move(*m));
}

}  // namespace udax
