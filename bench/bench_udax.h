// bench/bench_udax.h — udax-side helpers that the reflink rows
// (reflink_bench.cc), the failure rows (failure_bench.cc) and the FUSE rows
// (fuse_bench.cc) share: a device
// file in /dev/shm made and mounted for one row (UdaxDevice), a checked
// Pwrite, printf-style formatting, and the cheap way to fill a filesystem with
// ~1M single-block extents (BuildSingleBlockExtents: rmap_lookup and
// poison_route).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../tools/udax/format.h"
#include "bench.h"
#include "udax/fs.h"

namespace udax::bench {

inline Status SysErr(const std::string& what) { return Errno(errno, what + ": " + strerror(errno)); }

inline Status WriteAll(File& f, const uint8_t* p, uint64_t n, uint64_t off) {
  ASSIGN_OR_RETURN(size_t done, f.Pwrite(p, n, off));
  return done == n ? Status::Ok() : Errno(EIO, "short write while filling a bench file");
}

// A udax device file in /dev/shm, made and mounted; removed again by Close
// (also from the destructor). Remount() mounts the same image again (after a
// RemoveDevice, say), keeping everything committed on it.
class UdaxDevice {
 public:
  explicit UdaxDevice(const std::string& tag)
      : path_("/dev/shm/udax-bench-" + tag + "-" + std::to_string(getpid()) + ".dev") {}
  UdaxDevice(const UdaxDevice&) = delete;
  UdaxDevice& operator=(const UdaxDevice&) = delete;
  ~UdaxDevice() { Close(); }
  Status Make(uint64_t bytes) {
    MkfsOptions mo;
    mo.size = bytes;
    mo.force = true;
    RETURN_IF_ERROR(Filesystem::Mkfs(path_, mo).Prefixed("mkfs " + path_));
    made_ = true;
    ASSIGN_OR_RETURN(fs_, Filesystem::Mount(path_));
    return Status::Ok();
  }
  // Unmounts (if mounted) and mounts the image again.
  Status Remount() {
    RETURN_IF_ERROR(Unmount());
    ASSIGN_OR_RETURN(fs_, Filesystem::Mount(path_));
    return Status::Ok();
  }
  // Unmounts, keeping the image.
  Status Unmount() {
    if (!fs_) return Status::Ok();
    Status st = fs_->Unmount();
    fs_.reset();
    return st;
  }
  const std::string& path() const { return path_; }
  Filesystem* fs() { return fs_.get(); }
  void Close() {
    if (fs_) {
      fs_->Unmount().IgnoreError();
      fs_.reset();
    }
    if (made_) ::unlink(path_.c_str());
    made_ = false;
  }

  // The filesystem's counters (Filesystem::GetStats); zeroes when unmounted.
  FsStats Stats() {
    Result<FsStats> st = fs_ ? fs_->GetStats() : Result<FsStats>(Errno(ENODEV, "not mounted"));
    return st.has_value() ? *st : FsStats{};
  }
  // The size of the last commit, in blocks (changed, fresh and revoked).
  uint32_t LastCommitBlocks() { return Stats().last_commit_blocks; }
  // Blocks on the node free list (committed state): the most new B+tree nodes
  // one transaction can take.
  uint32_t FreeListCount() { return Stats().free_list_blocks; }
  // Free blocks plus free-list blocks (committed state). Across a
  // transaction that allocates no data, the drop is the B+tree nodes it
  // took, net of the nodes it freed.
  uint64_t FreeAndFreeList() {
    Result<StatFs> sf = fs_ ? fs_->GetStatFs() : Result<StatFs>(Errno(ENODEV, "not mounted"));
    return sf.has_value() ? sf->free_blocks + Stats().free_list_blocks : 0;
  }

 private:
  std::string path_;
  bool made_ = false;
  std::unique_ptr<Filesystem> fs_;
};

// The device size for BuildSingleBlockExtents(extents): the extents' blocks,
// ~3 % of metadata, and slack (`extra_blocks` more for the row's own files),
// rounded up to 1 GiB.
inline uint64_t ExtentsDeviceBytes(uint64_t extents, uint64_t extra_blocks = 0) {
  uint64_t blocks = extents + extents / 10 + 65536 + extra_blocks;
  return (blocks * kBlockSize + (1ULL << 30) - 1) & ~((1ULL << 30) - 1);
}

// Fills `fs` with `extents` single-block extents spread over `files` files
// ("/r0", "/r1", ...): each file is written at every other block, so each 4 KiB
// Pwrite allocates one block that cannot merge with its file neighbours, i.e.
// one extent and one rmap record per write (~14 us each here). Returns the
// extents FIEMAP counts.
inline Result<uint64_t> BuildSingleBlockExtents(Filesystem* fs, uint64_t extents, uint64_t files) {
  std::vector<uint8_t> blk(kBlockSize, 0x42);
  const uint64_t per_file = extents / files;
  uint64_t counted = 0;
  for (uint64_t f = 0; f < files; f++) {
    ASSIGN_OR_RETURN(File file, fs->Open("/r" + std::to_string(f), O_CREAT | O_RDWR, 0644));
    for (uint64_t i = 0; i < per_file; i++) {
      RETURN_IF_ERROR(WriteAll(file, blk.data(), kBlockSize, 2 * i * kBlockSize));
      if ((i & 4095) == 0 && Interrupted()) return Errno(EINTR, "interrupted");
    }
    ASSIGN_OR_RETURN(auto ext, file.Fiemap());
    counted += ext.size();
    RETURN_IF_ERROR(file.Close());
  }
  return counted;
}

}  // namespace udax::bench
