// testing/fs_model.h — FsModel: a tiny in-memory model of the udax namespace
// and file contents, used as the oracle by the crash and differential tests.
//
// The model is inode-based (hard links, directory renames): nodes by id, each
// directory a name -> id map. Path resolution and the error precedence of
// every operation follow POSIX as udax implements it (fs/namei.cc,
// fs/file_io.cc): each operation returns 0 or the errno udax must return.
// Regular files keep the set of allocated 4 KiB blocks (what udax's extent map
// should hold: writes allocate the blocks they touch, fallocate allocates the
// holes of its range, punch and truncate free whole blocks) with their
// content; bytes past EOF are kept zero (udax zeroes them before any size
// extension can expose them).
//
// Reflink (clone/dedupe) copies the source's blocks into the destination (the
// model is plain per-file bytes: sharing is invisible to reads), and records
// which blocks must share one device block: `share` maps a file block to a
// share group. Blocks of one group must map to one device block and blocks of
// different groups (or private blocks) to different ones; any change of a
// block's content makes it private (copy-on-write). kShareUnknown marks a
// block whose sharing the model does not decide (the partial last block after
// a shrinking truncate: udax may zero its tail in place or lazily).
//
// Not modelled: timestamps, uid/gid, space accounting (ENOSPC is decided by
// the filesystem; the tests resynchronise after it).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace udax::testing {

inline constexpr uint64_t kModelBlock = 4096;
inline constexpr uint64_t kModelMaxFileSize = 1ULL << 46;
inline constexpr uint64_t kShareUnknown = 0;

struct ModelNode {
  uint64_t id = 0;
  uint32_t type = 0;  // S_IFREG, S_IFDIR or S_IFLNK
  uint32_t perm = 0;  // 07777 bits
  uint32_t nlink = 0;
  uint64_t size = 0;                        // files and symlinks
  std::map<uint64_t, std::string> blocks;   // files: allocated blocks (kModelBlock bytes each)
  std::map<uint64_t, uint64_t> share;       // files: block -> share group (absent: private)
  std::string target;                       // symlinks
  std::map<std::string, uint64_t> entries;  // directories
  uint64_t parent = 0;                      // directories
  int open_count = 0;
  uint64_t real_ino = 0;  // the filesystem's inode number, once learned (0: unknown)
};

// A reachable object as seen from a path (for comparisons and crash checks).
struct SnapEntry {
  uint32_t type = 0;
  uint32_t perm = 0;
  uint32_t nlink = 0;
  uint64_t ino = 0;   // real inode number (0: unknown)
  uint64_t size = 0;  // files and symlinks
  uint64_t alloc_blocks = 0;  // files: allocated 4 KiB blocks
  std::string target;
  // Files: allocated blocks, content past EOF zeroed. Holes read as zeroes.
  std::map<uint64_t, std::string> data;
};
using TreeSnap = std::map<std::string, SnapEntry>;

class FsModel {
 public:
  static constexpr uint64_t kRootId = 1;
  FsModel();

  ModelNode* Get(uint64_t id);
  const ModelNode* Get(uint64_t id) const;
  const std::map<uint64_t, ModelNode>& nodes() const { return nodes_; }

  // ---- path operations: 0 or the expected errno ----
  int Walk(const std::string& path, bool follow_last, uint64_t* id) const;
  // open(2): on success the node's open count is raised (call Close).
  int Open(const std::string& path, int flags, uint32_t mode, uint64_t* id, bool* created);
  int Mkdir(const std::string& path, uint32_t mode);
  int Rmdir(const std::string& path);
  int Unlink(const std::string& path);
  int Rename(const std::string& from, const std::string& to);
  int Link(const std::string& existing, const std::string& new_path);
  int Symlink(const std::string& target, const std::string& path);
  int Readlink(const std::string& path, std::string* out) const;
  int Chmod(const std::string& path, uint32_t mode);
  int TruncatePath(const std::string& path, uint64_t len);
  int ReadDir(const std::string& path, std::map<std::string, uint64_t>* out) const;

  // ---- operations on an open node ----
  int Truncate(uint64_t id, uint64_t len);
  // Checks of pwrite (after the handle's own checks): EISDIR, EFBIG.
  int CheckWrite(uint64_t id, uint64_t off, uint64_t len) const;
  void Write(uint64_t id, uint64_t off, const void* data, size_t len);
  // Reads like pread: min(len, size - off) bytes (EISDIR for directories).
  int Read(uint64_t id, uint64_t off, size_t len, std::string* out) const;
  // Argument checks of fallocate, then (when `apply`) its full effect.
  int Fallocate(uint64_t id, int mode, uint64_t off, uint64_t len, bool apply);
  // After a fallocate/write that failed with ENOSPC part-way: the blocks the
  // filesystem did allocate (zeroed, content unchanged) join the model.
  void AddZeroBlocks(uint64_t id, const std::set<uint64_t>& blocks);
  // Zeroes [a, b) of the allocated blocks of file `id` (holes stay holes).
  void ZeroData(uint64_t id, uint64_t a, uint64_t b) { ZeroRange(nodes_.at(id), a, b); }
  // Reflink (FICLONERANGE / FIDEDUPERANGE) of src [src_off, +len) into dst at
  // dst_off. RemapTypes: the file-type checks that come before the handles'
  // access checks (EISDIR, EINVAL). Remap: the range checks (EINVAL, EFBIG;
  // dedupe: EBADE when the bytes differ), then, when `apply`, the effect;
  // *done = the bytes remapped (len 0 = to the source's EOF; dedupe clamps
  // to both EOFs).
  int RemapTypes(uint64_t src, uint64_t dst) const;
  int Remap(uint64_t src, uint64_t dst, uint64_t src_off, uint64_t len, uint64_t dst_off,
            bool dedupe, bool apply, uint64_t* done);
  void Close(uint64_t id);
  // Unmount/crash: every open file is gone; unlinked ones are freed.
  void DropOpenFiles();

  // The byte content of file `id` (size bytes) — small files only.
  std::string Contents(uint64_t id) const;
  // Every reachable path (root is "/").
  TreeSnap Snapshot(bool with_data = true) const;
  // Paths of reachable objects by id (first path found), for learning inode
  // numbers and for generators. Cached until the namespace changes.
  const std::map<uint64_t, std::string>& PathsById() const;

  // Directories reachable now (paths), for generators.
  const std::vector<std::string>& DirPaths() const;

 private:
  struct ParentName {
    uint64_t parent = 0;
    std::string name;
    bool trailing_slash = false;
  };
  int WalkParent(const std::string& path, ParentName* out) const;
  uint64_t NewNode(uint32_t type, uint32_t perm);
  void DropLink(uint64_t id);
  void MaybeFree(uint64_t id);
  // Zeroes [a, b) of the mapped blocks; they become private (or
  // kShareUnknown when `lazy`).
  void ZeroRange(ModelNode& n, uint64_t a, uint64_t b, bool lazy = false);
  // The size grows past an unaligned EOF: whether udax copies the shared
  // last block to zero its tail is its choice (kShareUnknown).
  void Extending(ModelNode& n, uint64_t new_size);
  void SnapshotDir(uint64_t dir, const std::string& path, bool with_data, TreeSnap* out) const;

  std::map<uint64_t, ModelNode> nodes_;
  uint64_t next_id_ = 2;
  uint64_t next_share_ = 1;
  mutable bool paths_valid_ = false;
  mutable std::map<uint64_t, std::string> paths_;
  mutable std::vector<std::string> dir_paths_;
};

SnapEntry SnapOfNode(const ModelNode& n, bool with_data);
// Human-readable difference of two snapshots ("" when equal). `what` selects:
// metadata (names, types, inode numbers, nlink, size, perm, target,
// allocation) and/or data.
std::string DiffSnapshots(const TreeSnap& want, const TreeSnap& got, bool metadata, bool data,
                          bool allocation);

}  // namespace udax::testing
