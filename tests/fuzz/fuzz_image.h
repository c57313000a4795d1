// tests/fuzz/fuzz_image.h — the fuzzer's compact image encoding.
//
// A fuzz input is a small header then a sparse list of patches over an
// all-zero device of kFuzzDeviceBlocks blocks (the smallest mkfs and mount
// accept: 4 MiB, mostly zeroes even when populated):
//
//   input  := flags u8, ops u8, patch*
//   patch  := block u16, offset u16, len u16 (little-endian), len bytes
//
// block is taken modulo the device size, offset modulo the block size, and len
// is clipped to the end of the block and of the input, so every byte string
// decodes to an image. Unless kFlagRawCrc is set, decoding re-seals the image
// (Reseal): every block carrying a known metadata magic gets its crc32c
// recomputed, and so does every record of the journal chain, so a mutation
// reaches the structural checks behind the CRC instead of dying at it.
// `ops` picks the writes the harness makes after the read-only walk.
//
// Invariants: decoding is a pure function of the bytes; Encode(image) decodes
// back to the same image (with kFlagRawCrc clear, a sealed image is a fixed
// point of Reseal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "media/format.h"

namespace udax::fuzz {

inline constexpr uint64_t kFuzzDeviceBlocks = 1024;  // 4 MiB, mkfs's minimum
inline constexpr uint64_t kFuzzDeviceBytes = kFuzzDeviceBlocks * media::kBlockSize;

// Header flags.
inline constexpr uint8_t kFlagRawCrc = 1;     // do not re-seal: CRCs as the input has them
inline constexpr uint8_t kFlagReadOnly = 2;   // mount read-only (no orphan reclaim, no writes)
inline constexpr uint8_t kFlagNoWrites = 4;   // walk only
inline constexpr uint8_t kFlagNoFsck = 8;     // skip the final fsck
inline constexpr uint8_t kFlagNoDax = 16;     // no DAX mappings

// An image held as its nonzero blocks.
class SparseImage {
 public:
  // The block, created zeroed when absent.
  uint8_t* Block(uint64_t bno);
  // nullptr when the block is all zeroes (never written).
  const uint8_t* Find(uint64_t bno) const;
  // Forgets the block when it holds only zeroes.
  void DropIfZero(uint64_t bno);
  const std::map<uint64_t, std::unique_ptr<uint8_t[]>>& blocks() const { return blocks_; }

 private:
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> blocks_;
};

struct DecodedInput {
  uint8_t flags = 0;
  uint8_t ops = 0;
  SparseImage image;
};

DecodedInput Decode(const uint8_t* data, size_t size);

// Recomputes the crc of every block with a known metadata magic (outside the
// journal) and of every journal record (line chain, or the older whole-image
// log header and its images).
void Reseal(SparseImage& image);

// The input that decodes to `image` (one patch per run of nonzero bytes).
std::vector<uint8_t> Encode(const SparseImage& image, uint8_t flags, uint8_t ops);

// Writes the image to `fd`, which is sized to kFuzzDeviceBytes first.
bool WriteImage(const SparseImage& image, int fd);

}  // namespace udax::fuzz
