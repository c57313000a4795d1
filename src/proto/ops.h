// proto/ops.h — the requests a direct client sends the mount, and what each
// answers (the payload formats; the transport is share/). docs/shared.md,
// "Requests", lists the same in prose.
//
// Conventions: a path is PathAt {u64 at, string}; a file is named by the
// handle kOpen returned (the mount's open File for this client); results
// that may not fit one response (kReadDir, kFiemap, kBadBlocks,
// kQueryRmap) are paged: the request names the first item wanted, the
// response says whether more follow. An error answer carries the errno and
// the message, as a local call would return them.
//
// Leases (docs/shared.md, "Leases"): kLease and kFault hand the client device
// ranges of a file; from then on the mount revokes them in the client
// (share::Revocation with the inode number and file range) before the
// blocks behind them change, and waits for the acknowledgement. Each such
// answer carries `rev_seq`, the sequence number of the last revocation the
// mount had posted to this client when it built the answer: a revocation of
// the same inode with a higher number makes the answer stale (the client
// asks again).
#pragma once

#include <cstdint>
#include <string>

#include "proto/codec.h"
#include "udax/fs.h"

namespace udax::proto {

enum Op : uint32_t {
  // namespace and whole-filesystem calls (Filesystem)
  kOpen = 1,       // PathAt, i32 flags, u32 mode → OpenReply
  kMkdir,          // PathAt, u32 mode
  kRmdir,          // PathAt
  kUnlink,         // PathAt
  kRename,         // PathAt from, PathAt to
  kLink,           // PathAt existing, PathAt new
  kSymlink,        // string target, PathAt
  kReadlink,       // PathAt → string
  kGetStat,        // PathAt, u8 follow → Stat
  kChmod,          // PathAt, u32 mode
  kChown,          // PathAt, u32 uid, u32 gid, u8 follow
  kUtimens,        // PathAt, Timespec atime, Timespec mtime, u8 follow
  kTruncatePath,   // PathAt, u64 len
  kReadDir,        // PathAt, u64 first → u8 more, u32 n, n × {string name, u64 ino, u32 type}
  kStatFs,         // → StatFs
  kStats,          // → FsStats
  kSync,
  kRemoveDevice,
  kInjectPoison,   // u64 device_offset, u64 len
  kBadBlocks,      // u64 first → u8 more, u32 n, n × {u64 offset, u64 length}
  kQueryRmap,      // u64 offset, u64 len, u64 first → u8 more, u32 n, n × WireOwner
  kServerStatus,   // → SharingStatus (as WireStatus + clients)
  // file calls (File), by handle
  kClose = 32,     // u64 handle
  kFStat,          // u64 handle → Stat, u8 atime_due
  kPread,          // u64 handle, u64 off, u32 len (<= kMaxData) → bytes
  kPwrite,         // u64 handle, u64 off, u8 append, bytes (<= kMaxData) → u64 n, u64 end
  kFTruncate,      // u64 handle, u64 len
  kFallocate,      // u64 handle, i32 mode, u64 off, u64 len
  kFsync,          // u64 handle
  kFiemap,         // u64 handle, u64 first → u8 more, u32 n, n × FileExtent
  kClone,          // u64 dst, u64 src, u64 src_off, u64 len, u64 dst_off
  kDedupe,         // same → u64 bytes
  kTouch,          // u64 handle: a direct overwrite happened (lazy mtime/ctime, as one)
  // leases
  kLease = 64,     // u64 handle, u64 off, u64 len → LeaseReply
  kFault,          // u64 handle, u64 off, u8 write, u8 may_write, u64 lo, u64 hi → FaultReply
  kMapAdd,         // u64 handle, u64 off, u64 len: a mapping was made (status counts)
  kMapDrop,        // u64 handle, u64 off, u64 len: it was unmapped
};

// Closes ride on the next request: a close needs no answer before the
// client's next call, so a client does not send kClose on its own but
// prefixes its next request with the handles it closed since its last one —
// opcode | kWithCloses, payload {u32 n (<= kMaxRiderCloses), n × u64 handle}
// then the request's own payload; the mount closes them first, in order,
// then answers the request. (A client holding kMaxRiderCloses unsent closes
// sends a kClose of its own, carrying them.)
constexpr uint32_t kWithCloses = 1u << 31;
constexpr uint32_t kMaxRiderCloses = 64;

// Data carried inline by kPread/kPwrite (the rest of a payload is headers).
constexpr uint32_t kMaxData = 8192;
// Items a paged answer holds at most.
constexpr uint32_t kMaxSegments = 128;

struct OpenReply {
  uint64_t handle;
  uint64_t ino;
  uint32_t type;  // S_IFMT bits
  uint32_t pad;
};

// One piece of a file range a lease covers, in file order.
struct LeaseSegment {
  uint64_t file_off;
  uint64_t len;
  uint64_t dev_off;       // kData
  uint32_t kind;          // kSegData, kSegHole
  uint32_t flags;         // kExtentShared | kSegUnwritten
};
constexpr uint32_t kSegData = 0, kSegHole = 1;
constexpr uint32_t kSegUnwritten = 2;  // allocated, reads as zeroes

// kLease: the segments of [off, off+len) ∩ [0, size), in order, contiguous
// from `off` (fewer when the range was cut: a failed block, too many
// segments). The client may read data segments in device memory and write
// in place those neither shared nor unwritten, until revoked.
struct LeaseHeader {
  uint64_t rev_seq;
  uint64_t size;          // the file's size when leased
  uint32_t mode;          // the inode's mode (a write must kill setuid/setgid through the mount)
  uint32_t atime_due;     // the next read should update atime (go through kPread once)
  uint32_t nsegs;
  uint32_t pad;
};

// kFault: what to install (file ranges inside [lo, hi)), then the client
// maps them; the mount recorded them as leased.
struct WireInstall {
  uint64_t file_off;
  uint64_t len;
  uint64_t dev_off;
  uint32_t kind;          // 0 device, 1 zero pages
  uint32_t writable;
};
struct FaultHeader {
  uint64_t rev_seq;
  uint32_t n;
  uint32_t pad;
};

struct WireOwner {
  uint64_t device_offset;
  uint64_t length;
  uint32_t kind;
  uint32_t metadata;  // index into kMetadataNames (BlockOwner::metadata)
  uint64_t ino;
  uint64_t file_offset;
};
inline constexpr const char* kMetadataNames[] = {"", "static", "ag", "inode-btree", "orphan-btree", "bad-block"};
inline uint32_t MetadataIndex(std::string_view name) {
  for (uint32_t i = 0; i < sizeof(kMetadataNames) / sizeof(kMetadataNames[0]); ++i)
    if (name == kMetadataNames[i]) return i;
  return 0;
}

// kServerStatus: this header, string socket, then nclients × DirectClientInfo
// (udax/fs.h; the asking client left out).
struct WireStatusHeader {
  uint64_t revocations, acknowledgements, kills;
  uint32_t revoke_ms;
  uint32_t nclients;
};

// Revocations: share::Revocation {ino, offset, length, reason}; reason is an
// InvalidateReason. ino 0 is the whole filesystem: reason kRemoved, the
// device is gone (every later call is ENODEV); otherwise it shut down.
// Flags or'ed into the reason: kRevokeNotify — the program is told
// (on_invalidate; without it only the client's mappings and cached extents
// change, e.g. zero pages over a hole that was filled); kRevokeUnmount — the
// mount stops serving (DirectServer::Stop): every later call fails.
constexpr uint32_t kRevokeNotify = 1u << 8;
constexpr uint32_t kRevokeUnmount = 1u << 9;
constexpr uint32_t kRevokeReasonMask = 0xff;

inline void PutPath(Writer& w, const PathAt& p) { w.Put(p.at).PutString(p.text); }
inline PathAt GetPath(Reader& r) {
  uint64_t at = r.Get<uint64_t>();
  std::string_view s = r.GetString(kMaxPathLen);
  return PathAt(at, s);
}

}  // namespace udax::proto
