// testing/fs_snapshot.cc — see fs_snapshot.h.
#include "testing/fs_snapshot.h"

#include <fcntl.h>

namespace udax::testing {

Result<SnapEntry> SnapshotFile(File& f, bool with_data) {
  ASSIGN_OR_RETURN(Stat st, f.GetStat());
  SnapEntry e;
  e.type = st.mode & S_IFMT;
  e.perm = st.mode & 07777;
  e.nlink = st.nlink;
  e.ino = st.ino;
  e.size = st.size;
  if (e.type != S_IFREG) return e;
  if (st.blocks % (kModelBlock / 512) != 0)
    return Errno(EUCLEAN, "st_blocks " + std::to_string(st.blocks) + " is not a whole number of blocks");
  e.alloc_blocks = st.blocks / (kModelBlock / 512);
  ASSIGN_OR_RETURN(auto exts, f.Fiemap());
  uint64_t mapped = 0;
  for (const FileExtent& x : exts) {
    if (x.file_offset % kModelBlock || x.length % kModelBlock || x.length == 0)
      return Errno(EUCLEAN, "unaligned extent at file offset " + std::to_string(x.file_offset));
    mapped += x.length / kModelBlock;
  }
  if (mapped != e.alloc_blocks)
    return Errno(EUCLEAN, "extents map " + std::to_string(mapped) + " blocks but st_blocks says " +
                              std::to_string(e.alloc_blocks));
  if (!with_data) return e;
  for (const FileExtent& x : exts) {
    for (uint64_t off = x.file_offset; off < x.file_offset + x.length; off += kModelBlock) {
      std::string blk(kModelBlock, '\0');
      if (off < e.size) {
        ASSIGN_OR_RETURN(size_t n, f.Pread(blk.data(), kModelBlock, off));
        if (n != std::min<uint64_t>(kModelBlock, e.size - off))
          return Errno(EIO, "short read at " + std::to_string(off));
      }
      if (!e.data.emplace(off / kModelBlock, std::move(blk)).second)
        return Errno(EUCLEAN, "block " + std::to_string(off / kModelBlock) + " mapped twice");
    }
  }
  return e;
}

namespace {

Status SnapDir(Filesystem& fs, const std::string& path, bool with_data, TreeSnap* out) {
  ASSIGN_OR_RETURN(auto ents, fs.ReadDir(path));
  for (const DirEntry& d : ents) {
    std::string p = (path == "/" ? "" : path) + "/" + d.name;
    if (out->count(p)) return Errno(EUCLEAN, "readdir of " + path + " lists " + d.name + " twice");
    auto lst = fs.GetLstat(p);
    if (!lst) return lst.error().Prefixed("lstat " + p);
    const Stat st = *lst;
    if ((st.mode & S_IFMT) != d.type)
      return Errno(EUCLEAN, "readdir type of " + p + " disagrees with lstat");
    if (st.ino != d.ino) return Errno(EUCLEAN, "readdir inode of " + p + " disagrees with lstat");
    SnapEntry e;
    uint32_t type = st.mode & S_IFMT;
    if (type == S_IFREG) {
      ASSIGN_OR_RETURN(File f, fs.Open(p, O_RDONLY | O_NOFOLLOW));
      ASSIGN_OR_RETURN(e, SnapshotFile(f, with_data));
      RETURN_IF_ERROR(f.Close());
    } else {
      e.type = type;
      e.perm = st.mode & 07777;
      e.nlink = st.nlink;
      e.ino = st.ino;
      if (type == S_IFLNK) {
        e.size = st.size;
        ASSIGN_OR_RETURN(e.target, fs.Readlink(p));
      }
    }
    (*out)[p] = std::move(e);
    if (type == S_IFDIR) RETURN_IF_ERROR(SnapDir(fs, p, with_data, out));
  }
  return Status::Ok();
}

}  // namespace

Result<TreeSnap> SnapshotFs(Filesystem& fs, bool with_data) {
  TreeSnap out;
  ASSIGN_OR_RETURN(Stat root, fs.GetLstat("/"));
  SnapEntry r;
  r.type = root.mode & S_IFMT;
  r.perm = root.mode & 07777;
  r.nlink = root.nlink;
  r.ino = root.ino;
  out["/"] = r;
  RETURN_IF_ERROR(SnapDir(fs, "/", with_data, &out));
  return out;
}

}  // namespace udax::testing
