// client/client_file.h — an open file of a direct client (api/backend.h's
// FileBackend): file data straight from and to device memory through the
// inode's leased segments; everything else a request to the mount.
//
// Fast paths (no request at all):
//  * Pread of [off, end) inside the cached size, every byte in a cached data
//    segment, no atime update due: copies out of device memory;
//  * Pwrite (not O_APPEND) of [off, end) inside the cached size, every byte
//    in a cached data segment neither shared nor unwritten, the file without
//    setuid/setgid bits: non-temporal copies in, one fence (durable at
//    return, as the library's), and a kTouch when the coarse clock moved
//    (mtime/ctime are the kernel's tick granularity anyway).
// Otherwise it leases the 2 MiB-aligned window around the access once
// (kLease) and tries again, and what no
// lease can serve goes through the mount (kPread/kPwrite, the library's own
// call: holes being filled, copy-on-write, appends, a failed block...).
// Both copy under the inode's barrier held shared, so a revocation waits
// for them before the mount reuses the blocks.
#pragma once

#include <memory>

#include "client/client_fs.h"

namespace udax::client {

class ClientFile final : public FileBackend {
 public:
  explicit ClientFile(std::shared_ptr<ClientHandle> h) : h_(std::move(h)) {}
  ~ClientFile() override { Close(); }

  uint64_t ino() const override { return h_ ? h_->ip->ino : 0; }
  uint32_t type() const override { return type_; }
  const void* fs_identity() const override { return fs_; }

  Result<size_t> Pread(void* buf, size_t len, uint64_t off) override;
  Result<size_t> Pwrite(const void* buf, size_t len, uint64_t off, bool append, uint64_t* end) override;
  Status Truncate(uint64_t len) override;
  Status Fallocate(int mode, uint64_t off, uint64_t len) override;
  Status Fsync() override;
  Result<Stat> GetStat() override;
  bool AtimeUpdateDue() const override;
  Result<std::vector<FileExtent>> Fiemap() override;
  Status CloneRange(FileBackend& src, uint64_t src_off, uint64_t len, uint64_t dst_off) override;
  Result<uint64_t> DedupeRange(FileBackend& src, uint64_t src_off, uint64_t len, uint64_t dst_off) override;
  Result<std::unique_ptr<MappingImpl>> Map(uint64_t offset, size_t length, Prot prot) override;
  void Close() override { h_.reset(); }

 private:
  ClientFs& fs() const { return *h_->fs; }
  ClientInode& ip() const { return *h_->ip; }
  std::vector<uint8_t> HandleRequest() const;
  // The fast paths: true when they served the whole call.
  bool TryReadDirect(void* buf, size_t len, uint64_t off);
  bool TryWriteDirect(const void* buf, size_t len, uint64_t off);
  void TouchIfDue();
  // Leases the 2 MiB-aligned window around [off, off+len); false when the
  // answer was stale or an error.
  bool LeaseWindow(uint64_t off, size_t len);
  Result<size_t> PreadThroughMount(void* buf, size_t len, uint64_t off);
  Result<size_t> PwriteThroughMount(const void* buf, size_t len, uint64_t off, bool append, uint64_t* end);

  std::shared_ptr<ClientHandle> h_;
  const uint32_t type_ = h_ ? h_->type : 0;
  const void* const fs_ = h_ ? h_->fs.get() : nullptr;
};

}  // namespace udax::client
