// udax/types.h — the vocabulary every layer shares: the block and page
// sizes, and why a mapped range is taken away.
//
// Dependency-free on purpose: the format (src/media), the space and fs layers
// include it without pulling in the DAX API (udax/mapping.h), which includes
// it in turn. Each constant is defined here and nowhere else.
#pragma once

#include <cstdint>

namespace udax {

// The filesystem block: the unit of allocation, of the extent maps and of
// every metadata block on the media (media::kBlockSize is this constant).
inline constexpr uint32_t kBlockSize = 4096;
// The page DAX mappings install and revoke (x86-64's base page). Equal to
// kBlockSize, so a block maps as one page.
inline constexpr uint64_t kPageSize = 4096;
static_assert(kPageSize == kBlockSize, "a DAX page maps exactly one block");

// Why a range of a mapping was taken away (the program's on_invalidate hears it).
enum class InvalidateReason : uint32_t {
  kTruncate = 1,       // truncate or punch-hole removed the blocks
  kCopyOnWrite = 2,    // the blocks were replaced by private copies
  kMemoryFailure = 3,  // the device memory behind the range failed
  kRemoved = 4,        // the device was removed
};

}  // namespace udax
