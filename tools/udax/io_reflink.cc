// tools/udax/io_reflink.cc — the sharing commands of `udax io`: reflink and
// dedupe (xfs_io syntax, into the current file), bmap (one line per extent
// with a `shared` flag) and rmap (the owners of device blocks).
//
// Output:
//   reflink/dedupe: "linked LEN/LEN bytes at offset DOFF" / "deduped ...",
//                   then xfs_io's timing line.
//   bmap:  FILE_OFFSET DEVICE_OFFSET LENGTH FLAGS   (bytes, decimal; FLAGS is
//          "shared" for shared extents, "-" otherwise)
//   rmap:  DEVICE_OFFSET LENGTH ino=N offset=FILE_OFFSET      (file data)
//          DEVICE_OFFSET LENGTH metadata=KIND [ino=N]         (metadata; KIND is
//          static, ag, inode-btree, orphan-btree, or bmbt for a node of inode
//          N's extent map or directory)
#include <fcntl.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>

#include "cli.h"
#include "io.h"

namespace udax::cli {
namespace {

Status OpenSource(IoContext& ctx, const std::string& path, File* out) {
  auto f = ctx.fs->Open(path, O_RDONLY);
  if (!f.has_value()) return f.error().Prefixed(path);
  *out = std::move(*f);
  return Status::Ok();
}

void PrintRate(const char* verb, uint64_t len, uint64_t off, double secs) {
  std::printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n", verb, len, len, off);
  double mib = double(len) / (1024.0 * 1024.0);
  std::printf("%" PRIu64 " bytes, 1 ops; %.4f sec (%.3f MiB/sec and %.4f ops/sec)\n", len, secs,
              secs > 0 ? mib / secs : 0.0, secs > 0 ? 1.0 / secs : 0.0);
}

}  // namespace

Status CmdReflink(IoContext& ctx, const IoArgs& args) {
  if (args.operands.size() != 1 && args.operands.size() != 4)
    return Errno(EINVAL, "usage: reflink srcpath [soff doff len]");
  uint64_t soff = 0, doff = 0, len = 0;
  if (args.operands.size() == 4) {
    RETURN_IF_ERROR(ParseNumber(args.operands[1], "source offset", &soff));
    RETURN_IF_ERROR(ParseNumber(args.operands[2], "destination offset", &doff));
    RETURN_IF_ERROR(ParseNumber(args.operands[3], "length", &len));
  }
  RETURN_IF_ERROR(ctx.NeedFile());
  File src;
  RETURN_IF_ERROR(OpenSource(ctx, args.operands[0], &src));
  if (args.operands.size() == 1 || len == 0) {
    ASSIGN_OR_RETURN(Stat st, src.GetStat());
    len = st.size - std::min(st.size, soff);
  }
  auto t0 = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(ctx.file.CloneRange(src, soff, len, doff));
  PrintRate("linked", len, doff, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return Status::Ok();
}

Status CmdDedupe(IoContext& ctx, const IoArgs& args) {
  uint64_t soff, doff, len;
  RETURN_IF_ERROR(ParseNumber(args.operands[1], "source offset", &soff));
  RETURN_IF_ERROR(ParseNumber(args.operands[2], "destination offset", &doff));
  RETURN_IF_ERROR(ParseNumber(args.operands[3], "length", &len));
  RETURN_IF_ERROR(ctx.NeedFile());
  File src;
  RETURN_IF_ERROR(OpenSource(ctx, args.operands[0], &src));
  auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(uint64_t n, ctx.file.DedupeRange(src, soff, len, doff));
  PrintRate("deduped", n, doff, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return Status::Ok();
}

Status CmdBmap(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedFile());
  ASSIGN_OR_RETURN(std::vector<FileExtent> extents, ctx.file.Fiemap());
  for (const FileExtent& e : extents)
    std::printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", e.file_offset, e.device_offset, e.length,
                (e.flags & kExtentShared) ? "shared" : "-");
  return Status::Ok();
}

Status CmdRmap(IoContext& ctx, const IoArgs& args) {
  uint64_t off, len = 4096;
  RETURN_IF_ERROR(ParseNumber(args.operands[0], "device offset", &off));
  if (args.operands.size() > 1) RETURN_IF_ERROR(ParseNumber(args.operands[1], "length", &len));
  if (len == 0) return Errno(EINVAL, "length must be positive");
  ASSIGN_OR_RETURN(std::vector<BlockOwner> owners, ctx.fs->QueryRmap(off, len));
  for (const BlockOwner& o : owners) {
    switch (o.kind) {
      case BlockOwner::Kind::kMetadata:
        std::printf("%" PRIu64 " %" PRIu64 " metadata=%s\n", o.device_offset, o.length, o.metadata);
        break;
      case BlockOwner::Kind::kFileMetadata:
        std::printf("%" PRIu64 " %" PRIu64 " metadata=bmbt ino=%" PRIu64 "\n", o.device_offset, o.length, o.ino);
        break;
      case BlockOwner::Kind::kFileData:
        std::printf("%" PRIu64 " %" PRIu64 " ino=%" PRIu64 " offset=%" PRIu64 "\n", o.device_offset, o.length,
                    o.ino, o.file_offset);
        break;
    }
  }
  return Status::Ok();
}

}  // namespace udax::cli
