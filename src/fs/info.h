// fs/info.h — what `udax info` shows: geometry, space, inodes, features,
// journal state and the bad-block list, read from an unmounted device without
// changing it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "udax/status.h"

namespace udax {

struct FsInfo {
  uint64_t device_bytes = 0;
  uint64_t size_bytes = 0;  // filesystem size
  uint32_t block_size = 0;
  uint64_t total_blocks = 0;
  uint64_t free_blocks = 0;  // allocatable and free
  uint64_t used_blocks = 0;  // total - free
  uint64_t inode_count = 0;
  uint64_t shared_blocks = 0;  // blocks with more than one owner (refcount tree)
  uint64_t log_blocks = 0;
  std::string uuid;
  std::vector<std::string> features;  // names of set feature bits
  std::string journal_state;          // "clean" or "dirty (N blocks to replay)"
  uint32_t fences_per_commit = 0;
  // The persistent bad-block list (root block), as (device offset, length)
  // in bytes, sorted; bad_blocks is the number of blocks it covers.
  std::vector<std::pair<uint64_t, uint64_t>> bad_extents;
  uint64_t bad_blocks = 0;
};

Result<FsInfo> ReadInfo(const std::string& device);

}  // namespace udax
