// fs/file_io.h — FileIo: reads and writes of an open file as copies to and
// from device memory, truncate, fallocate, fsync, stat and fiemap of an
// open file (the kernel's file_operations for read/write, without DAX).
//
// Data path: Pread and Pwrite over already-allocated blocks run under
// meta_mu_ shared and make no system call: Pwrite copies with non-temporal
// stores and one fence (durable at return). Both reuse the inode's last
// extent while meta_mu_'s write epoch is unchanged (Inode::last_ext), and an
// overwrite stamps mtime/ctime lazily from the coarse clock (tick
// granularity, as the kernel's). Writes that allocate, extend the file, or
// change the extent map take meta_mu_ exclusive and a transaction; new blocks
// are filled (data or zeroes) before the transaction that maps them commits,
// so a new block never shows an old file's bytes. A write that fills a hole
// revokes the zero pages mappings show there itself (InodeTable) — it never
// passes through the DAX fault code.
//
// Invariant: only the block holding EOF can carry stale bytes past EOF
// (truncate down keeps it); every size extension zeroes [old EOF, end of
// that block) first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fs/inode.h"
#include "udax/fs.h"

namespace udax {

class FsImpl;

class FileIo {
 public:
  explicit FileIo(FsImpl& fs) : fs_(fs) {}

  Result<size_t> Pread(Inode* ip, void* buf, size_t len, uint64_t off);
  Result<size_t> Pwrite(Inode* ip, const void* buf, size_t len, uint64_t off, bool append);
  Status Truncate(Inode* ip, uint64_t len);
  Status Fallocate(Inode* ip, int mode, uint64_t off, uint64_t len);
  Status Fsync(Inode* ip);
  Result<Stat> StatInode(Inode* ip);
  Result<std::vector<FileExtent>> Fiemap(Inode* ip);
  // The lazy mtime/ctime stamp of a plain overwrite (as Pwrite's fast path
  // makes it): for a direct client that stored into the file's blocks
  // itself (serve/'s kTouch). EROFS on a read-only mount.
  Status StampOverwrite(Inode* ip);

 private:
  FsImpl& fs_;
};

}  // namespace udax
