// tools/udax/io_mmap.cc — the mapping commands of `udax io`, as xfs_io's:
// mmap, mread, mwrite, msync, munmap over udax DAX mappings (File::Map).
//
// As in xfs_io, several mappings may exist, kept in a table oldest first; the
// newest is current, `mmap N` selects another, `munmap` removes the current
// one and lists the rest. The offsets given to mread/mwrite/msync are file
// offsets inside the current mapping (xfs_io's check_mapping_range), and the
// default range is the whole mapping.
//
// Differences from xfs_io: the loads and stores run inside udax::Guarded, so
// a SIGBUS (access beyond EOF, full device, revoked mapping) is reported as
// "CMD: message (SIGBUS)" and the next command runs; mwrite through a
// read-only mapping fails with EACCES instead of dying of SIGSEGV; range
// errors are "CMD: message (EINVAL)" failures; -x (PROT_EXEC) is refused and
// -s (address space reservation) is accepted and ignored. Each mapping prints
// exactly one line "invalidate: ino=N offset=OFF len=LEN reason=REASON" (decimal;
// REASON from InvalidateReasonName: Truncate, CopyOnWrite, MemoryFailure,
// Removed) per callback, when udax takes a range of it away (truncate, punch
// hole, copy-on-write, `poison`, `remove`). Callbacks run synchronously in the
// thread of the command that caused them, so the lines come out in order,
// before that command's own output.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"
#include "io.h"
#include "udax/mapping.h"

namespace udax::cli {
namespace {

constexpr uint64_t kPageSize = 4096;            // xfs_io's pagesize: mread -v dump chunks
constexpr uint64_t kQuietChunk = 1ULL << 20;    // mread without a dump
constexpr uint8_t kDefaultMwriteSeed = 'X';     // xfs_io's mwrite default

bool Writable(Prot p) {
  return (static_cast<uint32_t>(p) & static_cast<uint32_t>(Prot::kWrite)) != 0;
}

// The "usage: ..." error of the command being run.
Status Usage(const IoArgs& args) {
  for (const IoCommand& cmd : IoCommands()) {
    if (args.command == cmd.name) return Status::Error(EINVAL, std::string("usage: ") + cmd.usage);
  }
  return Status::Error(EINVAL, "usage");
}

// xfs_io's print_mapping(): "[000] 0xADDR - 0xEND rw-  NAME (OFF : LEN)", the
// current mapping in brackets.
void PrintMapping(const IoMapping& m, size_t index, bool current) {
  std::string prot = Writable(m.prot) ? "rw-" : "r--";
  if (m.sync) prot += " S";
  const uintptr_t addr = reinterpret_cast<uintptr_t>(m.map.data());
  std::printf("%c%03zu%c 0x%" PRIxPTR " - 0x%" PRIxPTR " %s  %14s (%" PRIu64 " : %" PRIu64 ")\n",
              current ? '[' : ' ', index, current ? ']' : ' ', addr,
              addr + static_cast<uintptr_t>(m.length), prot.c_str(), m.name.c_str(), m.offset,
              m.length);
}

void ListMappings(const IoContext& ctx) {
  for (size_t i = 0; i < ctx.maps.size(); i++) PrintMapping(ctx.maps[i], i, i == ctx.current);
}

// The range [OFF, OFF+LEN) of the operands (file offsets; default the whole
// mapping) as an offset relative to the mapping start. EINVAL unless it lies
// inside the mapping; with page_align, unless OFF is page-aligned.
Status MappingRange(const IoMapping& m, const IoArgs& args, bool page_align, uint64_t* rel,
                    uint64_t* len) {
  if (args.operands.empty()) {
    *rel = 0;
    *len = m.length;
    return Status::Ok();
  }
  if (args.operands.size() != 2) return Usage(args);
  uint64_t off;
  RETURN_IF_ERROR(ParseNumber(args.operands[0], "offset", &off));
  RETURN_IF_ERROR(ParseNumber(args.operands[1], "length", len));
  if (off + *len < off) return Status::Error(EINVAL, "offset + length overflows");
  if (off < m.offset) {
    return Status::Error(EINVAL, "offset (" + std::to_string(off) +
                                     ") is before start of mapping (" +
                                     std::to_string(m.offset) + ")");
  }
  *rel = off - m.offset;
  if (*rel > m.length || *len > m.length - *rel) {
    return Status::Error(EINVAL, "range (" + std::to_string(off) + ":" + std::to_string(*len) +
                                     ") is beyond mapping (" + std::to_string(m.offset) + ":" +
                                     std::to_string(m.length) + ")");
  }
  if (page_align && (m.offset + *rel) % kPageSize != 0) {
    return Status::Error(EINVAL, "offset (" + std::to_string(off) + ") is not page aligned");
  }
  return Status::Ok();
}

// A SIGBUS caught by Guarded: "CMD: message (SIGBUS)" on stderr; the command
// has failed but the run goes on.
void ReportSigbus(IoContext& ctx, const IoArgs& args, const Status& st) {
  static const std::string kTag = " (SIGBUS)";
  std::string msg = st.message();
  if (msg.size() >= kTag.size() && msg.compare(msg.size() - kTag.size(), kTag.size(), kTag) == 0) {
    msg.resize(msg.size() - kTag.size());
  }
  std::fflush(stdout);
  std::fprintf(stderr, "%s: %s (SIGBUS)\n", args.command.c_str(), msg.c_str());
  std::fflush(stderr);
  ctx.failed = true;
}

// Chunks of [0, len) as xfs_io's mread dumps them: len % size first (when
// not zero), then whole chunks of `size`.
std::vector<std::pair<uint64_t, uint64_t>> Chunks(uint64_t len, uint64_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t at = 0;
  uint64_t first = len % size;
  if (first != 0) {
    out.emplace_back(0, first);
    at = first;
  }
  for (; at < len; at += size) out.emplace_back(at, size);
  return out;
}

}  // namespace

Status IoContext::NeedMapping() const {
  if (maps.empty()) return Status::Error(EINVAL, "no mapped regions, try 'help mmap'");
  return Status::Ok();
}

// mmap: no operand lists the mappings, one (N) makes mapping N current, two
// (OFF LEN) map a range of the current file and make it current.
Status CmdMmap(IoContext& ctx, const IoArgs& args) {
  if (args.operands.size() < 2) {
    if (!args.options.empty()) return Usage(args);
    RETURN_IF_ERROR(ctx.NeedMapping());
    if (args.operands.size() == 1) {
      uint64_t n;
      RETURN_IF_ERROR(ParseNumber(args.operands[0], "mapping number", &n));
      if (n >= ctx.maps.size()) {
        return Status::Error(EINVAL, "value " + args.operands[0] + " is out of range (0-" +
                                         std::to_string(ctx.maps.size() - 1) + ")");
      }
      ctx.current = static_cast<size_t>(n);
    }
    ListMappings(ctx);
    return Status::Ok();
  }

  uint64_t off, len;
  RETURN_IF_ERROR(ParseNumber(args.operands[0], "offset", &off));
  RETURN_IF_ERROR(ParseNumber(args.operands[1], "length", &len));
  if (off + len < off) return Status::Error(EINVAL, "offset + length overflows");
  if (args.Has('x')) return Status::Error(EINVAL, "PROT_EXEC mappings are not supported");
  if (args.Has('s')) {
    uint64_t reserve;  // xfs_io reserves address space for mremap; udax has no mremap
    RETURN_IF_ERROR(ParseNumber(args.Get('s'), "size", &reserve));
  }
  RETURN_IF_ERROR(ctx.NeedFile());
  Prot prot;
  if (args.Has('w')) {
    prot = Prot::kReadWrite;  // a store needs no read permission in xfs_io either (x86)
  } else if (args.Has('r')) {
    prot = Prot::kRead;
  } else {
    prot = ctx.writable ? Prot::kReadWrite : Prot::kRead;
  }
  if (len > SIZE_MAX) return Status::Error(EINVAL, "mapping too large");

  ASSIGN_OR_RETURN(Mapping map, ctx.file.Map(off, static_cast<size_t>(len), prot));
  // Runs in the invalidating thread with udax locks held: print only. A
  // direct client hears other processes' changes at any moment, not only
  // during its own commands: the line goes out at once.
  map.OnInvalidate([](uint64_t ino, uint64_t at, uint64_t n, InvalidateReason why) {
    std::printf("invalidate: ino=%" PRIu64 " offset=%" PRIu64 " len=%" PRIu64 " reason=%s\n", ino,
                at, n, InvalidateReasonName(why));
    std::fflush(stdout);
  });
  IoMapping m;
  m.map = std::move(map);
  m.name = ctx.path;
  m.offset = off;
  m.length = len;
  m.prot = prot;
  m.sync = args.Has('S');
  ctx.maps.push_back(std::move(m));
  ctx.current = ctx.maps.size() - 1;
  return Status::Ok();
}

// mread: loads the range through the current mapping; -v/-f dump it in
// xfs_io's chunks (len % 4096 bytes first, then pages), each once it is read.
Status CmdMread(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedMapping());
  const IoMapping& m = ctx.maps[ctx.current];
  uint64_t rel, len;
  RETURN_IF_ERROR(MappingRange(m, args, false, &rel, &len));
  const bool dump = args.Has('v') || args.Has('f');
  const bool reverse = args.Has('r');
  const uint64_t print_base = args.Has('f') ? m.offset + rel : rel;
  const uint64_t chunk_size = dump ? kPageSize : kQuietChunk;
  std::vector<std::pair<uint64_t, uint64_t>> chunks = Chunks(len, chunk_size);
  if (reverse) std::reverse(chunks.begin(), chunks.end());
  std::vector<unsigned char> buf(std::min(chunk_size, std::max<uint64_t>(len, 1)));
  const unsigned char* base = m.map.data() + rel;
  for (const auto& [at, n] : chunks) {
    const unsigned char* src = base + at;
    unsigned char* dst = buf.data();
    const size_t count = static_cast<size_t>(n);
    Status st = Guarded([src, dst, count, reverse] {
      if (reverse) {
        for (size_t i = count; i-- > 0;) dst[i] = src[i];
      } else {
        std::memcpy(dst, src, count);
      }
      asm volatile("" : : "r"(dst) : "memory");  // the loads happen even when unused
    });
    if (!st.ok()) {
      ReportSigbus(ctx, args, st);
      return Status::Ok();
    }
    if (dump) DumpBuffer(print_base + at, buf.data(), count);
  }
  return Status::Ok();
}

// mwrite: stores the seed byte over the range through the current mapping.
Status CmdMwrite(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedMapping());
  const IoMapping& m = ctx.maps[ctx.current];
  uint64_t seed = kDefaultMwriteSeed;
  if (args.Has('S')) {
    RETURN_IF_ERROR(ParseNumber(args.Get('S'), "seed", &seed));
    if (seed > 0xff) return Status::Error(EINVAL, "invalid seed '" + args.Get('S') + "'");
  }
  uint64_t rel, len;
  RETURN_IF_ERROR(MappingRange(m, args, false, &rel, &len));
  // A store through a read-only mapping would be a real SIGSEGV: refuse it.
  if (!Writable(m.prot)) return Status::Error(EACCES, "mapping is read-only");
  unsigned char* dst = m.map.data() + rel;
  const size_t count = static_cast<size_t>(len);
  const unsigned char byte = static_cast<unsigned char>(seed);
  const bool reverse = args.Has('r');
  Status st = Guarded([dst, count, byte, reverse] {
    if (reverse) {
      for (size_t i = count; i-- > 0;) dst[i] = byte;
    } else {
      std::memset(dst, byte, count);
    }
  });
  if (!st.ok()) ReportSigbus(ctx, args, st);
  return Status::Ok();
}

// msync: Mapping::Persist of the range (OFF page-aligned, as msync(2) wants);
// -a/-i/-s are accepted and ignored (Persist is always synchronous).
Status CmdMsync(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedMapping());
  const IoMapping& m = ctx.maps[ctx.current];
  uint64_t rel, len;
  RETURN_IF_ERROR(MappingRange(m, args, true, &rel, &len));
  return m.map.Persist(m.map.data() + rel, static_cast<size_t>(len));
}

// munmap: unmaps the current mapping; the one after it (else the one before)
// becomes current, and the remaining mappings are listed, as xfs_io does.
Status CmdMunmap(IoContext& ctx, const IoArgs& args) {
  RETURN_IF_ERROR(ctx.NeedMapping());
  Status st = ctx.maps[ctx.current].map.Unmap();
  ctx.maps.erase(ctx.maps.begin() + static_cast<std::ptrdiff_t>(ctx.current));
  if (ctx.current >= ctx.maps.size()) ctx.current = ctx.maps.empty() ? 0 : ctx.maps.size() - 1;
  ListMappings(ctx);
  return st;
}

Status IoContext::UnmapAll() {
  Status first;
  for (IoMapping& m : maps) {
    Status st = m.map.Unmap();
    if (first.ok()) first = st;
  }
  maps.clear();
  current = 0;
  return first;
}

}  // namespace udax::cli
