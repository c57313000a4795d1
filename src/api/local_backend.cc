// api/local_backend.cc — the local backend (api/backend.h): a filesystem
// mounted in this process. Each call runs inside FsImpl::BeginOperation (a
// removal waits for it, and once removal began it fails at once with
// ENODEV) and goes to the part of FsImpl that owns it (Namespace, FileIo,
// Reflink, ...). An open file keeps its in-core inode referenced.
#include <fcntl.h>
#include <sys/stat.h>

#include "api/backend.h"
#include "dax/local_mapping.h"
#include "fs/fs_impl.h"

namespace udax {
namespace {

template <typename Fn>
auto Entered(FsImpl& fs, Fn&& fn) -> decltype(fn()) {
  auto ref = fs.BeginOperation();
  if (!ref.has_value()) return ref.error();
  return fn();
}

class LocalFile final : public FileBackend {
 public:
  LocalFile(std::shared_ptr<FsImpl> fs, std::shared_ptr<Inode> ip)
      : fs_(std::move(fs)), ip_(std::move(ip)) {
    std::lock_guard<std::mutex> g(ip_->mu);
    type_ = ip_->rec.mode & S_IFMT;
  }
  ~LocalFile() override { Close(); }

  uint64_t ino() const override { return ip_ ? ip_->ino : 0; }
  uint32_t type() const override { return type_; }
  const void* fs_identity() const override { return fs_.get(); }
  Inode* inode() const { return ip_.get(); }

  Result<size_t> Pread(void* buf, size_t len, uint64_t off) override {
    return Entered(*fs_, [&] { return fs_->files().Pread(ip_.get(), buf, len, off); });
  }
  Result<size_t> Pwrite(const void* buf, size_t len, uint64_t off, bool append, uint64_t* end) override {
    ASSIGN_OR_RETURN(size_t n, Entered(*fs_, [&] { return fs_->files().Pwrite(ip_.get(), buf, len, off, append); }));
    if (append) {
      ASSIGN_OR_RETURN(Stat st, fs_->files().StatInode(ip_.get()));
      *end = st.size;
    } else {
      *end = off + n;
    }
    return n;
  }
  Status Truncate(uint64_t len) override {
    return Entered(*fs_, [&] { return fs_->files().Truncate(ip_.get(), len); });
  }
  Status Fallocate(int mode, uint64_t off, uint64_t len) override {
    return Entered(*fs_, [&] { return fs_->files().Fallocate(ip_.get(), mode, off, len); });
  }
  Status Fsync() override { return Entered(*fs_, [&] { return fs_->files().Fsync(ip_.get()); }); }
  Result<Stat> GetStat() override { return Entered(*fs_, [&] { return fs_->files().StatInode(ip_.get()); }); }
  bool AtimeUpdateDue() const override { return ip_->atime_due.load(std::memory_order_relaxed); }
  Result<std::vector<FileExtent>> Fiemap() override {
    return Entered(*fs_, [&] { return fs_->files().Fiemap(ip_.get()); });
  }
  Status CloneRange(FileBackend& src, uint64_t src_off, uint64_t len, uint64_t dst_off) override {
    Inode* s = static_cast<LocalFile&>(src).inode();
    return Entered(*fs_, [&] { return fs_->reflink().CloneRange(ip_.get(), s, src_off, len, dst_off); });
  }
  Result<uint64_t> DedupeRange(FileBackend& src, uint64_t src_off, uint64_t len, uint64_t dst_off) override {
    Inode* s = static_cast<LocalFile&>(src).inode();
    return Entered(*fs_, [&] { return fs_->reflink().DedupeRange(ip_.get(), s, src_off, len, dst_off); });
  }
  Result<std::unique_ptr<MappingImpl>> Map(uint64_t offset, size_t length, Prot prot) override {
    ASSIGN_OR_RETURN(DeviceRef ref, fs_->BeginOperation());  // a removal waits, or this fails (ENODEV)
    std::shared_ptr<Inode> ip = fs_->inodes().Reopen(ip_.get());
    if (!ip) return Errno(EBADF, "file is not open");
    auto m = LocalMapping::Create(fs_, ip, offset, length, prot);
    if (!m.has_value()) fs_->store().Release(ip.get());
    return m;
  }
  void Close() override {
    if (!ip_) return;
    fs_->store().Release(ip_.get());
    ip_.reset();
  }

 private:
  std::shared_ptr<FsImpl> fs_;  // keeps the (possibly unmounted) fs alive while open
  std::shared_ptr<Inode> ip_;
  uint32_t type_ = 0;
};

class LocalFs final : public FsBackend {
 public:
  explicit LocalFs(std::shared_ptr<FsImpl> impl) : impl_(std::move(impl)) {}
  FsImpl* impl() const { return impl_.get(); }

  Status Unmount() override { return impl_->Unmount(); }
  Result<std::unique_ptr<FileBackend>> Open(const PathAt& p, int flags, uint32_t mode) override {
    ASSIGN_OR_RETURN(std::shared_ptr<Inode> ip, Entered(*impl_, [&] { return impl_->names().Open(p, flags, mode); }));
    return std::unique_ptr<FileBackend>(new LocalFile(impl_, std::move(ip)));
  }
  Status Mkdir(const PathAt& p, uint32_t mode) override { return Entered(*impl_, [&] { return impl_->names().Mkdir(p, mode); }); }
  Status Rmdir(const PathAt& p) override { return Entered(*impl_, [&] { return impl_->names().Rmdir(p); }); }
  Status Unlink(const PathAt& p) override { return Entered(*impl_, [&] { return impl_->names().Unlink(p); }); }
  Status Rename(const PathAt& a, const PathAt& b) override { return Entered(*impl_, [&] { return impl_->names().Rename(a, b); }); }
  Status Link(const PathAt& a, const PathAt& b) override { return Entered(*impl_, [&] { return impl_->names().Link(a, b); }); }
  Status Symlink(const std::string& t, const PathAt& p) override { return Entered(*impl_, [&] { return impl_->names().Symlink(t, p); }); }
  Result<std::string> Readlink(const PathAt& p) override { return Entered(*impl_, [&] { return impl_->names().Readlink(p); }); }
  Result<Stat> GetStat(const PathAt& p, bool follow) override { return Entered(*impl_, [&] { return impl_->names().GetStat(p, follow); }); }
  Status Chmod(const PathAt& p, uint32_t m) override { return Entered(*impl_, [&] { return impl_->names().Chmod(p, m); }); }
  Status Chown(const PathAt& p, uint32_t u, uint32_t g, bool follow) override { return Entered(*impl_, [&] { return impl_->names().Chown(p, u, g, follow); }); }
  Status Utimens(const PathAt& p, Timespec a, Timespec m, bool follow) override { return Entered(*impl_, [&] { return impl_->names().Utimens(p, a, m, follow); }); }
  Status Truncate(const PathAt& p, uint64_t len) override { return Entered(*impl_, [&] { return impl_->names().TruncatePath(p, len); }); }
  Result<std::vector<DirEntry>> ReadDir(const PathAt& p) override { return Entered(*impl_, [&] { return impl_->names().ReadDir(p); }); }
  Result<StatFs> GetStatFs() override { return Entered(*impl_, [&] { return impl_->GetStatFs(); }); }
  Result<FsStats> GetStats() override { return Entered(*impl_, [&] { return impl_->GetStats(); }); }
  Result<SharingStatus> GetSharingStatus() override {
    return Errno(EOPNOTSUPP, "not a direct client: the mount's DirectServer knows its clients");
  }
  Status Sync() override { return Entered(*impl_, [&] { return impl_->Sync(); }); }
  Status RemoveDevice() override {
    PmemDevice* dev = impl_->device();
    if (!dev) return Errno(ENODEV, "no device to remove: the filesystem is not mounted");
    return dev->Remove();
  }
  Status InjectPoison(uint64_t off, uint64_t len) override {
    PmemDevice* dev = impl_->device();
    if (!dev) return Errno(ENODEV, "no device: the filesystem is not mounted");
    if (dev->state() != DeviceState::kLive) return Errno(ENODEV, "filesystem shut down: device removed");
    return dev->InjectPoison(off, len);
  }
  Result<std::vector<std::pair<uint64_t, uint64_t>>> BadBlocks() override {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (const auto& e : impl_->bad_blocks().List()) out.emplace_back(e.start * kBlockSize, e.length * kBlockSize);
    return out;
  }
  Result<std::vector<BlockOwner>> QueryRmap(uint64_t off, uint64_t len) override {
    return Entered(*impl_, [&] { return impl_->BlockOwners(off, len); });
  }

 private:
  std::shared_ptr<FsImpl> impl_;
};

}  // namespace

Result<std::shared_ptr<FsBackend>> MountLocal(const std::string& device, const MountOptions& opts) {
  ASSIGN_OR_RETURN(auto impl, FsImpl::Mount(device, opts));
  return std::shared_ptr<FsBackend>(new LocalFs(std::shared_ptr<FsImpl>(std::move(impl))));
}

FsImpl* LocalImplOf(FsBackend* backend) {
  auto* local = dynamic_cast<LocalFs*>(backend);
  return local ? local->impl() : nullptr;
}

}  // namespace udax
