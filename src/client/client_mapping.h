// client/client_mapping.h — a DAX mapping made by a direct client: the same
// arena, fault handlers and revocation as a local mapping (dax/), with each
// fault resolved by the mount (kFault: it allocates, zeroes, copies on
// write and commits as for a local fault, and records what it hands out as
// leased) and installed here from this process's own device mapping.
//
// Invariant: a fault's answer is installed only under the inode's barrier
// held shared and only when no revocation of the inode newer than the
// answer has been applied (ClientInode::revoked_seq), so a revocation never
// leaves a stale range mapped. The mapping holds its handle (ClientHandle)
// until unmapped, so the mount keeps the file open for it.
#pragma once

#include <memory>

#include "client/client_fs.h"
#include "dax/mapping_impl.h"

namespace udax::client {

class ClientMapping final : public MappingImpl {
 public:
  static Result<std::unique_ptr<MappingImpl>> Create(std::shared_ptr<ClientHandle> h, uint64_t off,
                                                     size_t len, Prot prot);
  ~ClientMapping() override;

  Status HandleFault(uint8_t* addr, bool write) override;
  Status Persist(const void* p, size_t len) const override;
  std::function<void()> MemoryFailureReporter(const void* addr) override;

 private:
  ClientMapping() = default;
  void StopRevocations() override;
  void ReleaseBacking() override;
  std::vector<uint8_t> WindowRequest() const;
  std::shared_ptr<ClientHandle> h_;
};

}  // namespace udax::client
