// api/backend.h — what the public Filesystem and File (include/udax/fs.h)
// stand on. Two kinds exist:
//  * the local backend (api/local_backend.cc): a filesystem mounted in this
//    process (FsImpl), which owns the device and the journal;
//  * a direct client's (client/): a connection to the process that mounted
//    the device, which serves metadata calls; file data is read and written
//    in device memory the client maps itself (docs/shared.md).
// The public classes keep what both share (access-mode checks, the file
// position, prefaulting user buffers) and forward the rest here. Everything
// is as documented in udax/fs.h; Backend methods are called only through
// those classes.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "udax/fs.h"

namespace udax {

class MappingImpl;

class FileBackend {
 public:
  virtual ~FileBackend() = default;
  virtual uint64_t ino() const = 0;
  // The file's type (S_IFMT bits), fixed at open.
  virtual uint32_t type() const = 0;
  // Which filesystem the file is on (remap calls need one: EXDEV otherwise).
  virtual const void* fs_identity() const = 0;

  virtual Result<size_t> Pread(void* buf, size_t len, uint64_t off) = 0;
  // append: write at the end of file (`off` ignored); *end gets the offset
  // just past the bytes written.
  virtual Result<size_t> Pwrite(const void* buf, size_t len, uint64_t off, bool append,
                                uint64_t* end) = 0;
  virtual Status Truncate(uint64_t len) = 0;
  virtual Status Fallocate(int mode, uint64_t off, uint64_t len) = 0;
  virtual Status Fsync() = 0;
  virtual Result<Stat> GetStat() = 0;
  virtual bool AtimeUpdateDue() const = 0;
  virtual Result<std::vector<FileExtent>> Fiemap() = 0;
  // `src` is on the same filesystem (same fs_identity).
  virtual Status CloneRange(FileBackend& src, uint64_t src_off, uint64_t len, uint64_t dst_off) = 0;
  virtual Result<uint64_t> DedupeRange(FileBackend& src, uint64_t src_off, uint64_t len,
                                       uint64_t dst_off) = 0;
  virtual Result<std::unique_ptr<MappingImpl>> Map(uint64_t offset, size_t length, Prot prot) = 0;
  // Drops the handle's reference (the last one lets an unlinked file go).
  virtual void Close() = 0;
};

class FsBackend {
 public:
  virtual ~FsBackend() = default;
  virtual Status Unmount() = 0;
  virtual Result<std::unique_ptr<FileBackend>> Open(const PathAt& path, int flags, uint32_t mode) = 0;
  virtual Status Mkdir(const PathAt& path, uint32_t mode) = 0;
  virtual Status Rmdir(const PathAt& path) = 0;
  virtual Status Unlink(const PathAt& path) = 0;
  virtual Status Rename(const PathAt& from, const PathAt& to) = 0;
  virtual Status Link(const PathAt& existing, const PathAt& new_path) = 0;
  virtual Status Symlink(const std::string& target, const PathAt& path) = 0;
  virtual Result<std::string> Readlink(const PathAt& path) = 0;
  virtual Result<Stat> GetStat(const PathAt& path, bool follow) = 0;
  virtual Status Chmod(const PathAt& path, uint32_t mode) = 0;
  virtual Status Chown(const PathAt& path, uint32_t uid, uint32_t gid, bool follow) = 0;
  virtual Status Utimens(const PathAt& path, Timespec atime, Timespec mtime, bool follow) = 0;
  virtual Status Truncate(const PathAt& path, uint64_t len) = 0;
  virtual Result<std::vector<DirEntry>> ReadDir(const PathAt& path) = 0;
  virtual Result<StatFs> GetStatFs() = 0;
  virtual Result<FsStats> GetStats() = 0;
  virtual Result<SharingStatus> GetSharingStatus() = 0;
  virtual Status Sync() = 0;
  virtual Status RemoveDevice() = 0;
  virtual Status InjectPoison(uint64_t device_offset, uint64_t len) = 0;
  virtual Result<std::vector<std::pair<uint64_t, uint64_t>>> BadBlocks() = 0;
  virtual Result<std::vector<BlockOwner>> QueryRmap(uint64_t device_offset, uint64_t len) = 0;
};

// The local backend of a filesystem mounted in this process
// (api/local_backend.cc).
Result<std::shared_ptr<FsBackend>> MountLocal(const std::string& device, const MountOptions& opts);
// The mounted FsImpl behind a local backend; nullptr for any other.
FsImpl* LocalImplOf(FsBackend* backend);

}  // namespace udax
