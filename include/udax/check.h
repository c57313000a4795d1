// udax/check.h — the offline checker and the info report of libudax: what
// `udax fsck` and `udax info` print, as plain structs (the tool formats them).
// Both work on an unmounted device; the implementation is src/check/.
//
// Fsck checks every invariant of the on-media format: superblocks (both
// copies), root block, journal header, every B+tree (checksums, structure,
// key order, key ranges per subtree, levels, every field of every record
// against the format's limits — each bad record is reported, and the rest of
// its leaf is still checked), extents inside the allocatable area and not
// overlapping each other or metadata, free-by-block and free-by-size trees
// describing the same extents, free ∪ used = the allocatable area and
// disjoint, free-block counters, link counts, directory tree connectivity
// (every inode reachable from the root), directory entry counts and parents,
// orphan records naming only inodes with no links (and none left after
// recovery), and the bad-block list (each listed block held by a file or
// retired, never free).
//
// Thread safety: each call opens the device itself (read-write: exclusively;
// read-only: shared with other readers) and may run beside other calls.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "udax/export.h"
#include "udax/status.h"

namespace udax {

struct FsckOptions {
  // Replay the journal and reclaim orphans (a mount + unmount) before checking,
  // as e2fsck replays a journal; what recovery had to repair (a stale orphan
  // record) is reported as a problem. When the mount fails the raw image is
  // checked. false (`fsck -n`): nothing is written, ever — the device is
  // opened read-only, the journal is replayed in memory and that state is
  // checked; orphans with no links are expected then (a note, not a leak).
  bool recover = true;
};

struct FsckReport {
  std::vector<std::string> problems;  // empty: clean
  std::vector<std::string> notes;     // informational (e.g. "journal replayed")
  uint64_t inodes = 0, directories = 0, files = 0, symlinks = 0;
  uint64_t used_blocks = 0, free_blocks = 0, metadata_blocks = 0, data_blocks = 0;
  uint64_t shared_blocks = 0;  // blocks with more than one file owner
  uint64_t bad_blocks = 0;     // in the bad-block list (memory failures)
  bool clean() const { return problems.empty(); }
};

// Fails only when the device cannot be opened at all (ENOENT, EBUSY...);
// everything wrong with its content is a problem in the report.
UDAX_EXPORT Result<FsckReport> Fsck(const std::string& device, const FsckOptions& opts = {});

// What `udax info` shows: geometry, space, inodes, features, journal state
// and the bad-block list, read from an unmounted device without changing it.
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

UDAX_EXPORT Result<FsInfo> ReadInfo(const std::string& device);

}  // namespace udax
