// fs/fsck.h — the offline checker: every invariant of the on-media format.
//
// Checks: superblocks (both copies), root block, journal header, every B+tree
// (checksums, structure, key order, key ranges per subtree, levels, every
// field of every record against the format's limits — each bad record is
// reported, and the rest of its leaf is still checked), extents
// inside the allocatable area and not overlapping each other or metadata,
// free-by-block and free-by-size trees describing the same extents,
// free ∪ used = the allocatable area and disjoint, free-block counters, link
// counts, directory tree connectivity (every inode reachable from the root),
// directory entry counts and parents, orphan records naming only inodes with
// no links (and none left after recovery), and the
// bad-block list (each listed block held by a file or retired, never free).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
Result<FsckReport> Fsck(const std::string& device, const FsckOptions& opts = {});

}  // namespace udax
