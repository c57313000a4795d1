// udax/fs.h — the public filesystem API of libudax.
//
// Thread safety: a Filesystem may be used from many threads at once; metadata
// operations are serialised internally by one reader/writer lock (readers:
// lookups, reads; writer: every transaction). A File handle may be shared
// between threads for Pread/Pwrite; Read/Write (which move the file position)
// need external synchronisation per handle.
//
// Durability contract (see docs/ARCHITECTURE.md):
//  * every namespace/metadata operation is durable when it returns (its
//    journal transaction has committed);
//  * Pwrite/Write data is durable when the call returns (data reaches the
//    device through non-temporal stores + fence before the call returns; a
//    size change or block allocation commits in the same call);
//  * atime/mtime/ctime updates caused by plain overwrites are "lazy": they are
//    persisted with the next transaction touching the inode, by Fsync, or at
//    unmount. Fsync/Fdatasync therefore cost nothing when there is no lazy state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "udax/export.h"
#include "udax/mapping.h"
#include "udax/status.h"
#include "udax/types.h"  // kBlockSize

namespace udax {

class Filesystem;
class FsBackend;
class FileBackend;
class FsImpl;

inline constexpr uint64_t kMaxFileSize = 1ULL << 46;  // 64 TiB
inline constexpr size_t kMaxNameLen = 255;
inline constexpr size_t kMaxPathLen = 4096;

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};

struct Stat {
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFMT | permission bits
  uint32_t nlink = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units, as st_blocks
  uint32_t blksize = kBlockSize;
  Timespec atime, mtime, ctime, btime;
};

struct StatFs {
  uint64_t block_size = kBlockSize;
  uint64_t total_blocks = 0;
  uint64_t free_blocks = 0;
  uint64_t total_inodes = 0;  // an upper bound (inode numbers are 64-bit)
  uint64_t used_inodes = 0;
  uint64_t max_name_len = kMaxNameLen;
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits of the target
};

// One mapped extent of a file, in bytes.
struct FileExtent {
  uint64_t file_offset = 0;
  uint64_t device_offset = 0;
  uint64_t length = 0;
  uint32_t flags = 0;  // kExtentShared, ...
};
inline constexpr uint32_t kExtentShared = 1;

// One owner of device blocks, from the reverse map (Filesystem::QueryRmap;
// docs/rmap-reflink.md). Offsets and lengths in bytes, whole blocks.
struct BlockOwner {
  enum class Kind : uint32_t {
    kFileData,      // data of inode `ino` at `file_offset`
    kFileMetadata,  // a node of inode `ino`'s extent map or directory tree
    kMetadata,      // filesystem metadata, named by `metadata`
  };
  uint64_t device_offset = 0;
  uint64_t length = 0;
  Kind kind = Kind::kFileData;
  uint64_t ino = 0;          // 0 for kMetadata
  uint64_t file_offset = 0;  // kFileData only
  // kMetadata: "static" (superblocks, root block, journal), "ag" (free list,
  // free-space, rmap and refcount trees), "inode-btree", "orphan-btree",
  // "bad-block" (a retired failed block); "" otherwise.
  const char* metadata = "";
};

// Counters of a mounted filesystem since it was mounted, and the sizes that
// bound a transaction: for benchmarks and monitoring (Filesystem::GetStats).
struct FsStats {
  uint64_t commits = 0;            // journal transactions committed
  uint64_t checkpoints = 0;        // journal checkpoints (metadata written home)
  uint64_t fences = 0;             // store fences issued to the device
  uint32_t fences_per_commit = 0;  // what one commit costs (a checkpoint adds one)
  uint32_t max_txn_blocks = 0;     // the most blocks one transaction may change
  uint32_t last_commit_blocks = 0; // blocks the last commit changed or freed
  uint32_t free_list_blocks = 0;   // blocks held for new B+tree nodes (the free list)
  // The free list is refilled when below the low mark and gives blocks
  // back above the high one: a transaction starts with at least `low`.
  uint32_t free_list_low = 0, free_list_high = 0;
  uint64_t data_start = 0;         // first allocatable device block (after the journal)
};

// What the mount serving direct clients knows of them (Filesystem::
// GetSharingStatus; `udax status MOUNTPOINT`).
struct DirectClientInfo {
  uint32_t pid = 0, uid = 0, gid = 0;
  uint32_t pad = 0;
  uint64_t files_open = 0;        // handles the client holds
  uint64_t mappings = 0;          // live DAX mappings it made
  uint64_t leased_bytes = 0;      // file bytes it may reach in device memory now
  uint64_t revocations = 0;       // revocations posted to it
  uint64_t acknowledgements = 0;  // ... and acknowledged
};
struct SharingStatus {
  std::string socket;               // where clients connect
  uint32_t revoke_ms = 0;           // a client's bound to acknowledge (then killed)
  uint64_t revocations = 0, acknowledgements = 0, kills = 0;  // since the mount
  std::vector<DirectClientInfo> clients;  // every connected client but the asker
};

struct MkfsOptions {
  uint64_t size = 0;        // bytes; 0 = keep the size of an existing file
  bool force = false;       // overwrite an existing udax filesystem or other data
  uint32_t log_blocks = 0;  // 0 = chosen from the size
};

// When a read updates atime (Linux's mount options of the same names).
enum class AtimeMode {
  kRelatime,     // when atime is not after mtime or ctime, or is a day old (the default)
  kStrictatime,  // every read
  kNoatime,      // never
};

struct MountOptions {
  bool read_only = false;  // (a read-only mount never updates atime)
  // atime updates are lazy, as an overwrite's mtime/ctime are.
  AtimeMode atime = AtimeMode::kRelatime;
  // Owner of the files and directories this mount creates (chown changes it
  // afterwards). Unset: the process's effective uid/gid when it mounts —
  // taken once, as a FUSE daemon's uid=/gid= options are, not per create: a
  // process that changes its ids later keeps creating files as the mounter.
  std::optional<uint32_t> uid{}, gid{};
  // Told what mount-time recovery found wrong and repaired (a stale orphan
  // record dropped instead of freeing a linked inode). Unset: each note is
  // written to stderr as "udax: DEVICE: NOTE".
  std::function<void(const std::string& note)> on_note{};
};

// Who an operation acts for (the kernel's current credentials). Linux's
// rule that a write, truncate, fallocate (any mode) or chown of a regular
// file kills its setuid and setgid bits depends on them: without CAP_FSETID
// setuid always goes, and setgid goes when the file is group-executable or
// the caller is not in the file's group; chown kills setuid even with
// CAP_FSETID. Unset on a thread (no CallerScope): the process itself. The
// two functions are asked only when a file has one of the bits.
struct Caller {
  uint32_t uid = 0, gid = 0;  // fsuid, fsgid
  std::function<bool()> has_fsetid;                 // holds CAP_FSETID
  std::function<bool(uint32_t gid)> in_group;       // gid is a supplementary group
  // Set when an operation acting for this caller cleared a file's bits (a
  // FUSE server then drops the kernel's cached attributes).
  mutable bool privs_killed = false;
};
// Operations on this thread act for `c` while the scope lives (a FUSE server
// sets the requesting process for each request). `c` must outlive it.
class UDAX_EXPORT CallerScope {
 public:
  explicit CallerScope(const Caller& c);
  ~CallerScope();
  CallerScope(const CallerScope&) = delete;
  CallerScope& operator=(const CallerScope&) = delete;

 private:
  const Caller* prev_;
};

// A path as the *at system calls take one: relative to the directory whose
// inode number is `at` (0: the root; a path starting with '/' always starts
// at the root). An empty path with a nonzero `at` names that inode itself
// (AT_EMPTY_PATH) — for the operations on an inode (stat, open, chmod,
// chown, utimens, truncate, readlink, readdir); an operation on a name in a
// directory (create, unlink, rename...) needs one. Any std::string or C
// string converts to one (an absolute path). A view: the text must outlive
// the call, nothing more. Inode numbers are never reused, so an `at` whose
// inode is gone gives ENOENT, never another file.
struct PathAt {
  PathAt(const std::string& p) : text(p) {}  // NOLINT: implicit by design
  PathAt(const char* p) : text(p) {}         // NOLINT
  PathAt(uint64_t at_ino, std::string_view p) : at(at_ino), text(p) {}
  uint64_t at = 0;
  std::string_view text;
};

// Open flags: the POSIX O_* values (O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_EXCL,
// O_TRUNC, O_APPEND, O_NOFOLLOW, O_DIRECTORY).
class UDAX_EXPORT File {
 public:
  File();
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  bool is_open() const { return h_ != nullptr; }
  uint64_t ino() const;

  Result<size_t> Pread(void* buf, size_t len, uint64_t off);
  Result<size_t> Pwrite(const void* buf, size_t len, uint64_t off);
  Result<size_t> Read(void* buf, size_t len);
  Result<size_t> Write(const void* buf, size_t len);
  Result<uint64_t> Seek(uint64_t pos);

  Status Truncate(uint64_t len);
  // mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE,
  // FALLOC_FL_ZERO_RANGE (optionally | FALLOC_FL_KEEP_SIZE).
  Status Fallocate(int mode, uint64_t off, uint64_t len);
  Status Fsync();
  Status Fdatasync();
  Result<Stat> GetStat();
  // Whether the next read will update atime (the mount's AtimeMode): a FUSE
  // server drops the kernel's cached pages at open then, so the read reaches it.
  bool AtimeUpdateDue() const;
  Result<std::vector<FileExtent>> Fiemap();
  // Reflink (FICLONERANGE): [dst_off, +len) of this file comes to share
  // src's blocks [src_off, +len) — len 0 means up to src's end of file. One
  // transaction: all or nothing. Errors as Linux: EINVAL (alignment,
  // overlap in one file, past EOF), EISDIR, EXDEV (another filesystem),
  // EBADF (access mode), E2BIG (too many extents for one transaction).
  Status CloneRange(File& src, uint64_t src_off, uint64_t len, uint64_t dst_off);
  // FICLONE: the whole of src into this file at offset 0.
  Status Clone(File& src) { return CloneRange(src, 0, 0, 0); }
  // FIDEDUPERANGE: when the bytes are equal, shares them; returns the bytes
  // deduplicated. EBADE when the contents differ (nothing changes).
  Result<uint64_t> DedupeRange(File& src, uint64_t src_off, uint64_t len, uint64_t dst_off);

  // DAX: maps [offset, offset+length) of the file (offset page-aligned).
  Result<Mapping> Map(uint64_t offset, size_t length, Prot prot);
  Status Close();

 private:
  friend class Filesystem;
  File(std::unique_ptr<FileBackend> h, int flags);
  std::unique_ptr<FileBackend> h_;  // the open file (api/backend.h)
  int flags_ = 0;
  uint64_t pos_ = 0;
};

class UDAX_EXPORT Filesystem {
 public:
  // Creates a filesystem on DEVICE (a regular file is created mode 0600 or
  // sized; an existing one keeps its mode). Without force: EEXIST when DEVICE
  // holds a udax filesystem or any other data (a non-zero byte; holes and
  // zeroes are no data). A symbolic link is followed only to a device (ELOOP).
  static Status Mkfs(const std::string& device, const MkfsOptions& opts);
  // Opens the device exclusively, replays the journal, reclaims orphans.
  static Result<std::unique_ptr<Filesystem>> Mount(const std::string& device,
                                                   const MountOptions& opts = {});
  // A direct client of the udax mounted (`udax mount`) at `mountpoint`: the
  // whole API, with file data read and written in device memory this process
  // maps itself and metadata calls served by the mount (docs/shared.md).
  // Only a process that may read and write the device file gets one:
  // EACCES otherwise (it can still use the mount). ENOTCONN when no udax
  // mount serves clients there. Once the mount is gone every call fails with
  // ENOTCONN and every mapping is revoked; Unmount() just disconnects.
  static Result<std::unique_ptr<Filesystem>> Connect(const std::string& mountpoint);
  ~Filesystem();  // unmounts if still mounted

  // Clean unmount: writes lazy state, releases the device. (A direct
  // client: closes the connection; the mount stays.)
  Status Unmount();

  Result<File> Open(const PathAt& path, int flags, uint32_t mode = 0644);
  Status Mkdir(const PathAt& path, uint32_t mode = 0755);
  Status Rmdir(const PathAt& path);
  Status Unlink(const PathAt& path);
  Status Rename(const PathAt& from, const PathAt& to);
  Status Link(const PathAt& existing, const PathAt& new_path);
  Status Symlink(const std::string& target, const PathAt& path);
  Result<std::string> Readlink(const PathAt& path);
  Result<Stat> GetStat(const PathAt& path);   // follows a final symlink
  Result<Stat> GetLstat(const PathAt& path);  // does not
  Status Chmod(const PathAt& path, uint32_t mode);
  Status Chown(const PathAt& path, uint32_t uid, uint32_t gid);  // UINT32_MAX: unchanged
  Status Utimens(const PathAt& path, Timespec atime, Timespec mtime);
  // As Chown and Utimens, but a final symlink is changed itself, not its
  // target (lchown, utimensat with AT_SYMLINK_NOFOLLOW).
  Status Lchown(const PathAt& path, uint32_t uid, uint32_t gid);
  Status Lutimens(const PathAt& path, Timespec atime, Timespec mtime);
  Status Truncate(const PathAt& path, uint64_t len);
  Result<std::vector<DirEntry>> ReadDir(const PathAt& path);
  Result<StatFs> GetStatFs();
  // Counters since mount (commits, fences...) and transaction bounds.
  Result<FsStats> GetStats();
  // A direct client: the mount's clients and revocation counts. EOPNOTSUPP
  // for a filesystem mounted in this process (its DirectServer has them).
  Result<SharingStatus> GetSharingStatus();
  // Persists every open file's lazy timestamps and checkpoints the journal
  // (every metadata block written home): nothing is left for a mount to
  // replay. Not needed for durability — every operation is durable when it
  // returns.
  Status Sync();

  // ---- device removal and memory failure (docs/failure.md) ----
  // Removes the device under the mounted filesystem, in order: new
  // operations, mappings and faults fail (ENODEV) at once; operations in
  // flight finish (bounded wait); the filesystem shuts down and revokes every
  // mapping (on_invalidate: reason Removed); then the device memory is taken
  // away. Every later operation fails with ENODEV "filesystem shut down:
  // device removed"; Unmount() then succeeds. The image keeps every committed
  // change: mount it again to re-attach. ENODEV when already removed or not
  // mounted; EDEADLK from inside a udax operation or callback.
  Status RemoveDevice();
  // Emulates a memory failure of device bytes [device_offset, +len) (4 KiB
  // aligned, inside the device; EINVAL otherwise). File data: every owner's
  // mappings of the range are revoked (reason MemoryFailure), read() there
  // gives EIO, an overwrite of whole blocks or a punch gives the file fresh
  // blocks. Free blocks are retired. Metadata: the filesystem shuts down
  // (EIO). Failed blocks are listed persistently and never allocated again.
  Status InjectPoison(uint64_t device_offset, uint64_t len);
  // The persistent bad-block list, in bytes (device offset, length).
  Result<std::vector<std::pair<uint64_t, uint64_t>>> BadBlocks();
  // Every owner of the device blocks overlapping [device_offset, +len), in
  // device order (a shared block has one entry per file; a free block none).
  // EINVAL when len is 0 or the range leaves the device.
  Result<std::vector<BlockOwner>> QueryRmap(uint64_t device_offset, uint64_t len);

 private:
  // The internal door (src/fs/test_access.h, not installed): tests, and the
  // mount's DirectServer, which serves the FsImpl behind a Filesystem.
  friend FsBackend* BackendOf(Filesystem& fs);
  friend class DirectServer;  // udax/serve.h: serves the FsImpl behind it
  explicit Filesystem(std::shared_ptr<FsBackend> impl);
  std::shared_ptr<FsBackend> impl_;  // local or a direct client's (api/backend.h)
};

}  // namespace udax
