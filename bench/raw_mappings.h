// bench/raw_mappings.h — the kernel side of the revocation rows: touched
// MAP_SHARED mappings of a /dev/shm file laid out like udax's arena (one per
// 2 MiB slot of a PROT_NONE reservation), and the raw revoke of one of them,
// mmap(PROT_NONE, MAP_FIXED) — the baseline of remove_revoke_N
// (failure_bench.cc) and of client_revoke_100 (client_bench.cc).
// Not thread-safe: one bench thread owns a RawMappings.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_udax.h"  // SysErr

namespace udax::bench {

inline constexpr uint64_t kPage = 4096;
inline constexpr uint64_t kSlot = 2ULL << 20;  // udax's arena granule: one mapping per slot

// A /dev/shm file of `bytes` (filled) and a PROT_NONE reservation of `slots`
// 2 MiB slots, 2 MiB-aligned, as udax's arena: the raw side's mappings.
class RawMappings {
 public:
  explicit RawMappings(const std::string& tag)
      : path_("/dev/shm/udax-bench-" + tag + "-" + std::to_string(getpid()) + ".raw") {}
  RawMappings(const RawMappings&) = delete;
  RawMappings& operator=(const RawMappings&) = delete;
  ~RawMappings() {
    Release();
    if (fd_ >= 0) ::close(fd_);
    if (made_) ::unlink(path_.c_str());
  }

  Status MakeFile(uint64_t bytes) {
    fd_ = ::open(path_.c_str(), O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) return SysErr("create " + path_);
    made_ = true;
    std::vector<uint8_t> chunk(1 << 20, 0x3c);
    for (uint64_t off = 0; off < bytes; off += chunk.size()) {
      size_t n = std::min<uint64_t>(chunk.size(), bytes - off);
      if (::pwrite(fd_, chunk.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
        return SysErr("write " + path_);
    }
    return Status::Ok();
  }

  // Reserves `slots` slots and maps file bytes [file_off(i), +len) PROT_READ
  // MAP_SHARED at the start of slot i, then loads every page (so the PTEs
  // exist, as after the udax side's touches).
  Status Map(uint64_t slots, uint64_t len, uint64_t (*file_off)(uint64_t)) {
    Release();
    reserved_ = (slots + 1) * kSlot;
    void* p = mmap(nullptr, reserved_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      reserved_ = 0;
      return SysErr("raw: reserving address space");
    }
    raw_ = static_cast<uint8_t*>(p);
    base_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw_) + kSlot - 1) / kSlot * kSlot);
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < slots; i++) {
      void* m = mmap(Slot(i), len, PROT_READ, MAP_SHARED | MAP_FIXED, fd_, static_cast<off_t>(file_off(i)));
      if (m == MAP_FAILED) return SysErr("raw: mmap of slot " + std::to_string(i));
      for (uint64_t o = 0; o < len; o += kPage) sink = sink + Slot(i)[o];
    }
    return Status::Ok();
  }
  uint8_t* Slot(uint64_t i) const { return base_ + i * kSlot; }
  void Release() {
    if (raw_) munmap(raw_, reserved_);
    raw_ = base_ = nullptr;
    reserved_ = 0;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool made_ = false;
  uint8_t *raw_ = nullptr, *base_ = nullptr;
  uint64_t reserved_ = 0;
};

// The raw revoke of one range: the baseline's flags are
// MAP_FIXED|MAP_PRIVATE|MAP_ANONYMOUS. udax's own revoke (dax/mapping.cc,
// ProtNone) adds MAP_NORESERVE, which makes the new VMA merge with the
// arena's PROT_NONE reservation around it (MAP_NORESERVE too): kUdaxFlags.
inline constexpr int kRawFlags = MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS;
inline constexpr int kUdaxFlags = kRawFlags | MAP_NORESERVE;
[[gnu::noinline]] inline Status RevokeRaw(uint8_t* addr, uint64_t len, int flags = kRawFlags) {
  void* p = mmap(addr, len, PROT_NONE, flags, -1, 0);
  return p == MAP_FAILED ? SysErr("raw: mmap(PROT_NONE, MAP_FIXED)") : Status::Ok();
}

}  // namespace udax::bench
