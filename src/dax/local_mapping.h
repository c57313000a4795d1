// dax/local_mapping.h — a DAX mapping of a file of a filesystem mounted in
// this process: faults are resolved by the filesystem itself
// (DaxFaults::ResolveFault) and map this process's device. Registered in the
// in-core inode's AddressSpace, so every change of the blocks behind the
// range revokes it. Keeps the file's in-core inode (and so the filesystem
// object) alive while mapped.
#pragma once

#include <memory>

#include "dax/mapping_impl.h"
#include "fs/fs_impl.h"

namespace udax {

class LocalMapping : public MappingImpl {
 public:
  static Result<std::unique_ptr<MappingImpl>> Create(std::shared_ptr<FsImpl> fs,
                                                     std::shared_ptr<Inode> inode, uint64_t off,
                                                     size_t len, Prot prot);
  ~LocalMapping() override;

  Status HandleFault(uint8_t* addr, bool write) override;
  Status Persist(const void* p, size_t len) const override;
  std::function<void()> MemoryFailureReporter(const void* addr) override;

 private:
  LocalMapping() = default;
  void StopRevocations() override;
  void ReleaseBacking() override;
  std::shared_ptr<FsImpl> fs_;
  std::shared_ptr<Inode> inode_;
};

}  // namespace udax
