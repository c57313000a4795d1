// serve/handlers.cc — the mount's answer to every request of a direct client
// (proto/ops.h): decode, check, call the library as the client, encode.
//
// Every request runs as the client (CallerScope: the kill-privileges rule)
// and through the Filesystem's own backend, so it answers exactly as the
// library would — the same BeginOperation, errors and messages. Leases and
// faults go to fs/ directly (DaxFaults::LeaseRange, ResolveFault), inside
// BeginOperation, recording what they hand out in the client's RemoteLease
// under meta_mu_ and stamping rev_seq there.
//
// Input is hostile (proto/codec.h): a payload not read whole and well is
// EPROTO; an unknown opcode EOPNOTSUPP; a handle not open EBADF; lengths are
// bounded before anything is allocated. The access mode a file was opened
// with is checked here as File checks it (a client cannot write through a
// read-only handle).
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "proto/ops.h"
#include "serve/server_state.h"
#include "share/channel_format.h"

namespace udax::serve {
namespace {

using proto::Reader;
using proto::Writer;

// Mapping windows one client may announce on one file (kMapAdd).
constexpr uint64_t kMaxWindowsPerFile = 4096;

// Leases, faults and windows are of regular files' data only: a
// directory's or a symlink's blocks are metadata, never handed out.
Status RegularFile(const OpenFile& f) {
  if (S_ISDIR(f.file->type())) return Errno(EISDIR, "is a directory");
  if (!S_ISREG(f.file->type())) return Errno(EINVAL, "not a regular file");
  return Status::Ok();
}

bool CanRead(int flags) { return (flags & O_ACCMODE) != O_WRONLY; }
bool CanWrite(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }

// A page of `all` from index `first`: u8 more, u32 n, n items (enc), at
// most kMaxSegments and as many as fit one response.
template <typename T, typename Enc>
void PutPaged(std::vector<uint8_t>* out, const std::vector<T>& all, uint64_t first, Enc enc) {
  std::vector<uint8_t> items;
  Writer iw(&items);
  uint32_t n = 0;
  uint64_t i = std::min<uint64_t>(first, all.size());
  const size_t room = share::kMaxPayload - sizeof(uint8_t) - sizeof(uint32_t);
  while (i < all.size() && n < proto::kMaxSegments) {
    size_t before = items.size();
    enc(iw, all[i]);
    if (items.size() > room) {
      items.resize(before);
      break;
    }
    ++n;
    ++i;
  }
  Writer w(out);
  w.Put<uint8_t>(i < all.size() ? 1 : 0).Put(n);
  out->insert(out->end(), items.begin(), items.end());
}

class Handler {
 public:
  Handler(DirectServer::Impl& srv, Session& s, std::span<const uint8_t> in, std::vector<uint8_t>* out)
      : srv_(srv), s_(s), r_(in), w_(out), out_(out) {}

  Status Run(uint32_t op);

 private:
  FsBackend& fs() { return *srv_.backend; }
  Status Done(const char* what) { return r_.Finish(what); }

  Status Open();
  Status ReadDir();
  Status Pread();
  Status Pwrite();
  Status Clone(bool dedupe);
  Status Lease();
  Status Fault();
  Status Window(bool add);
  Status ServerStatus();

  DirectServer::Impl& srv_;
  Session& s_;
  Reader r_;
  Writer w_;
  std::vector<uint8_t>* out_;
};

Status Handler::Open() {
  PathAt p = proto::GetPath(r_);
  auto flags = r_.Get<int32_t>();
  auto mode = r_.Get<uint32_t>();
  RETURN_IF_ERROR(Done("open"));
  ASSIGN_OR_RETURN(std::unique_ptr<FileBackend> file, fs().Open(p, flags, mode));
  std::shared_ptr<Inode> ip = srv_.fs->inodes().Find(file->ino());
  if (!ip) {  // cannot happen: the open file holds the inode in core
    file->Close();
    return Errno(EIO, "internal error: open inode " + std::to_string(file->ino()) + " not in core");
  }
  proto::OpenReply reply{};
  reply.ino = file->ino();
  reply.type = file->type();
  reply.handle = s_.Add(OpenFile{std::move(file), std::move(ip), flags});
  w_.Put(reply);
  return Status::Ok();
}

Status Handler::ReadDir() {
  PathAt p = proto::GetPath(r_);
  auto first = r_.Get<uint64_t>();
  RETURN_IF_ERROR(Done("readdir"));
  ASSIGN_OR_RETURN(std::vector<DirEntry> all, fs().ReadDir(p));
  PutPaged(out_, all, first, [](Writer& w, const DirEntry& e) {
    w.PutString(e.name).Put(e.ino).Put(e.type);
  });
  return Status::Ok();
}

Status Handler::Pread() {
  auto h_f = r_.Get<uint64_t>();
  auto off = r_.Get<uint64_t>();
  auto len = r_.Get<uint32_t>();
  RETURN_IF_ERROR(Done("pread"));
  ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
  if (!CanRead(f->flags)) return Errno(EBADF, "file not open for reading");
  if (len > proto::kMaxData)
    return Errno(EINVAL, "read of " + std::to_string(len) + " bytes: at most " +
                             std::to_string(proto::kMaxData) + " per request");
  std::vector<uint8_t> buf(len);
  ASSIGN_OR_RETURN(size_t n, f->file->Pread(buf.data(), len, off));
  w_.PutBytes(buf.data(), n);
  return Status::Ok();
}

Status Handler::Pwrite() {
  auto h_f = r_.Get<uint64_t>();
  auto off = r_.Get<uint64_t>();
  bool append = r_.Get<uint8_t>() != 0;
  std::span<const uint8_t> data = r_.GetBytes(proto::kMaxData);
  RETURN_IF_ERROR(Done("pwrite"));
  ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
  if (!CanWrite(f->flags)) return Errno(EBADF, "file not open for writing");
  uint64_t end = 0;
  ASSIGN_OR_RETURN(size_t n, f->file->Pwrite(data.data(), data.size(), off, append, &end));
  w_.Put<uint64_t>(n).Put<uint64_t>(end);
  return Status::Ok();
}

Status Handler::Clone(bool dedupe) {
  auto h_dst = r_.Get<uint64_t>();
  auto h_src = r_.Get<uint64_t>();
  auto src_off = r_.Get<uint64_t>();
  auto len = r_.Get<uint64_t>();
  auto dst_off = r_.Get<uint64_t>();
  RETURN_IF_ERROR(Done(dedupe ? "dedupe" : "clone"));
  ASSIGN_OR_RETURN(OpenFile * dst, s_.Get(h_dst));
  ASSIGN_OR_RETURN(OpenFile * src, s_.Get(h_src));
  if (!CanRead(src->flags)) return Errno(EBADF, "source not open for reading");
  if (!CanWrite(dst->flags) || (dst->flags & O_APPEND)) return Errno(EBADF, "destination not open for writing");
  if (!dedupe) return dst->file->CloneRange(*src->file, src_off, len, dst_off);
  ASSIGN_OR_RETURN(uint64_t n, dst->file->DedupeRange(*src->file, src_off, len, dst_off));
  w_.Put(n);
  return Status::Ok();
}

Status Handler::Lease() {
  auto h_f = r_.Get<uint64_t>();
  auto off = r_.Get<uint64_t>();
  auto len = r_.Get<uint64_t>();
  RETURN_IF_ERROR(Done("lease"));
  ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
  RETURN_IF_ERROR(RegularFile(*f));
  if (srv_.stopping.load()) return Errno(ESHUTDOWN, "the mount stops serving direct clients");
  ASSIGN_OR_RETURN(DeviceRef ref, srv_.fs->BeginOperation());
  RemoteLease& lease = s_.LeaseOf(*f);
  proto::LeaseHeader hdr{};
  std::vector<proto::LeaseSegment> segs;
  RETURN_IF_ERROR(srv_.fs->dax().LeaseRange(
      f->ip.get(), off, len, proto::kMaxSegments, [&](const LeaseView& v) {
        hdr.size = v.size;
        hdr.mode = v.mode;
        hdr.atime_due = v.atime_due;
        for (const LeasePiece& p : v.pieces) {
          proto::LeaseSegment seg{};
          seg.file_off = p.file_off;
          seg.len = p.len;
          seg.dev_off = p.dev_off;
          seg.kind = p.mapped ? proto::kSegData : proto::kSegHole;
          seg.flags = p.shared ? kExtentShared : 0;
          segs.push_back(seg);
          lease.Hold(p.file_off, p.len);
        }
        // Under meta_mu_: every revocation older than this answer is counted.
        hdr.rev_seq = srv_.server->LastRevocationSeq(s_.info().id);
      }));
  hdr.nsegs = static_cast<uint32_t>(segs.size());
  w_.Put(hdr);
  for (const auto& seg : segs) w_.Put(seg);
  return Status::Ok();
}

Status Handler::Fault() {
  auto h_f = r_.Get<uint64_t>();
  auto off = r_.Get<uint64_t>();
  bool write = r_.Get<uint8_t>() != 0;
  bool may_write = r_.Get<uint8_t>() != 0;
  auto lo = r_.Get<uint64_t>();
  auto hi = r_.Get<uint64_t>();
  RETURN_IF_ERROR(Done("fault"));
  ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
  RETURN_IF_ERROR(RegularFile(*f));
  if (lo % kPageSize || hi % kPageSize || lo > off || off >= hi)
    return Errno(EINVAL, "fault at " + std::to_string(off) + " outside its window [" + std::to_string(lo) +
                             ", " + std::to_string(hi) + ") or the window not page-aligned");
  if (!CanRead(f->flags)) return Errno(EACCES, "file not open for reading");
  if (write && !CanWrite(f->flags)) return Errno(EACCES, "file not open for writing");
  may_write = may_write && CanWrite(f->flags);
  if (srv_.stopping.load()) return Errno(ESHUTDOWN, "the mount stops serving direct clients");
  ASSIGN_OR_RETURN(DeviceRef ref, srv_.fs->BeginOperation());
  RemoteLease& lease = s_.LeaseOf(*f);
  proto::FaultHeader hdr{};
  std::vector<proto::WireInstall> installs;
  RETURN_IF_ERROR(srv_.fs->dax().ResolveFault(
      f->ip.get(), off, write, may_write, lo, hi, [&](const InstallRange& d) -> Status {
        proto::WireInstall wi{};
        wi.file_off = d.file_off;
        wi.len = d.len;
        wi.dev_off = d.dev_off;
        wi.kind = d.kind == InstallRange::kDevice ? 0 : 1;
        wi.writable = d.writable;
        installs.push_back(wi);
        lease.Hold(d.file_off, d.len);
        // Under meta_mu_, after the fault's own revocations (zero pages).
        hdr.rev_seq = srv_.server->LastRevocationSeq(s_.info().id);
        return Status::Ok();
      }));
  hdr.n = static_cast<uint32_t>(installs.size());
  w_.Put(hdr);
  for (const auto& wi : installs) w_.Put(wi);
  return Status::Ok();
}

Status Handler::Window(bool add) {
  auto h_f = r_.Get<uint64_t>();
  auto off = r_.Get<uint64_t>();
  auto len = r_.Get<uint64_t>();
  RETURN_IF_ERROR(Done(add ? "map-add" : "map-drop"));
  ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
  RETURN_IF_ERROR(RegularFile(*f));
  RemoteLease& lease = s_.LeaseOf(*f);
  if (add) {
    if (lease.windows() >= kMaxWindowsPerFile)
      return Errno(ENOMEM, "too many mappings of inode " + std::to_string(f->ip->ino));
    lease.AddWindow(off, len);
    return Status::Ok();
  }
  if (!lease.DropWindow(off, len))
    return Errno(EINVAL, "no mapping of [" + std::to_string(off) + ", +" + std::to_string(len) + ") to drop");
  return Status::Ok();
}

Status Handler::ServerStatus() {
  RETURN_IF_ERROR(Done("server-status"));
  SharingStatus st = srv_.Sharing(s_.info().id);
  proto::WireStatusHeader hdr{};
  hdr.revocations = st.revocations;
  hdr.acknowledgements = st.acknowledgements;
  hdr.kills = st.kills;
  hdr.revoke_ms = st.revoke_ms;
  hdr.nclients = static_cast<uint32_t>(st.clients.size());
  w_.Put(hdr).PutString(st.socket);
  for (const auto& c : st.clients) w_.Put(c);
  return Status::Ok();
}

Status Handler::Run(uint32_t op) {
  using namespace proto;
  switch (op) {
    case kOpen:
      return Open();
    case kMkdir: {
      PathAt p = GetPath(r_);
      auto mode = r_.Get<uint32_t>();
      RETURN_IF_ERROR(Done("mkdir"));
      return fs().Mkdir(p, mode);
    }
    case kRmdir: {
      PathAt p = GetPath(r_);
      RETURN_IF_ERROR(Done("rmdir"));
      return fs().Rmdir(p);
    }
    case kUnlink: {
      PathAt p = GetPath(r_);
      RETURN_IF_ERROR(Done("unlink"));
      return fs().Unlink(p);
    }
    case kRename: {
      PathAt a = GetPath(r_);
      PathAt b = GetPath(r_);
      RETURN_IF_ERROR(Done("rename"));
      return fs().Rename(a, b);
    }
    case kLink: {
      PathAt a = GetPath(r_);
      PathAt b = GetPath(r_);
      RETURN_IF_ERROR(Done("link"));
      return fs().Link(a, b);
    }
    case kSymlink: {
      std::string target(r_.GetString(kMaxPathLen));
      PathAt p = GetPath(r_);
      RETURN_IF_ERROR(Done("symlink"));
      return fs().Symlink(target, p);
    }
    case kReadlink: {
      PathAt p = GetPath(r_);
      RETURN_IF_ERROR(Done("readlink"));
      ASSIGN_OR_RETURN(std::string t, fs().Readlink(p));
      w_.PutString(t);
      return Status::Ok();
    }
    case kGetStat: {
      PathAt p = GetPath(r_);
      bool follow = r_.Get<uint8_t>() != 0;
      RETURN_IF_ERROR(Done("stat"));
      ASSIGN_OR_RETURN(Stat st, fs().GetStat(p, follow));
      w_.Put(st);
      return Status::Ok();
    }
    case kChmod: {
      PathAt p = GetPath(r_);
      auto mode = r_.Get<uint32_t>();
      RETURN_IF_ERROR(Done("chmod"));
      return fs().Chmod(p, mode);
    }
    case kChown: {
      PathAt p = GetPath(r_);
      auto uid = r_.Get<uint32_t>();
      auto gid = r_.Get<uint32_t>();
      bool follow = r_.Get<uint8_t>() != 0;
      RETURN_IF_ERROR(Done("chown"));
      return fs().Chown(p, uid, gid, follow);
    }
    case kUtimens: {
      PathAt p = GetPath(r_);
      auto atime = r_.Get<Timespec>();
      auto mtime = r_.Get<Timespec>();
      bool follow = r_.Get<uint8_t>() != 0;
      RETURN_IF_ERROR(Done("utimens"));
      return fs().Utimens(p, atime, mtime, follow);
    }
    case kTruncatePath: {
      PathAt p = GetPath(r_);
      auto len = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("truncate"));
      return fs().Truncate(p, len);
    }
    case kReadDir:
      return ReadDir();
    case kStatFs: {
      RETURN_IF_ERROR(Done("statfs"));
      ASSIGN_OR_RETURN(StatFs st, fs().GetStatFs());
      w_.Put(st);
      return Status::Ok();
    }
    case kStats: {
      RETURN_IF_ERROR(Done("stats"));
      ASSIGN_OR_RETURN(FsStats st, fs().GetStats());
      w_.Put(st);
      return Status::Ok();
    }
    case kSync:
      RETURN_IF_ERROR(Done("sync"));
      return fs().Sync();
    case kRemoveDevice:
      RETURN_IF_ERROR(Done("remove-device"));
      return fs().RemoveDevice();
    case kInjectPoison: {
      auto off = r_.Get<uint64_t>();
      auto len = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("inject-poison"));
      return fs().InjectPoison(off, len);
    }
    case kBadBlocks: {
      auto first = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("bad-blocks"));
      ASSIGN_OR_RETURN(auto all, fs().BadBlocks());
      PutPaged(out_, all, first, [](Writer& w, const std::pair<uint64_t, uint64_t>& b) {
        w.Put(b.first).Put(b.second);
      });
      return Status::Ok();
    }
    case kQueryRmap: {
      auto off = r_.Get<uint64_t>();
      auto len = r_.Get<uint64_t>();
      auto first = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("query-rmap"));
      ASSIGN_OR_RETURN(std::vector<BlockOwner> all, fs().QueryRmap(off, len));
      PutPaged(out_, all, first, [](Writer& w, const BlockOwner& o) {
        WireOwner wo{};
        wo.device_offset = o.device_offset;
        wo.length = o.length;
        wo.kind = static_cast<uint32_t>(o.kind);
        wo.metadata = MetadataIndex(o.metadata);
        wo.ino = o.ino;
        wo.file_offset = o.file_offset;
        w.Put(wo);
      });
      return Status::Ok();
    }
    case kServerStatus:
      return ServerStatus();
    case kClose: {
      auto h = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("close"));
      return s_.Remove(h);
    }
    case kFStat: {
      auto h_f = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("fstat"));
      ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
      ASSIGN_OR_RETURN(Stat st, f->file->GetStat());
      w_.Put(st).Put<uint8_t>(f->file->AtimeUpdateDue() ? 1 : 0);
      return Status::Ok();
    }
    case kPread:
      return Pread();
    case kPwrite:
      return Pwrite();
    case kFTruncate: {
      auto h_f = r_.Get<uint64_t>();
      auto len = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("ftruncate"));
      ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
      if (!CanWrite(f->flags)) return Errno(EINVAL, "file not open for writing");
      return f->file->Truncate(len);
    }
    case kFallocate: {
      auto h_f = r_.Get<uint64_t>();
      auto mode = r_.Get<int32_t>();
      auto off = r_.Get<uint64_t>();
      auto len = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("fallocate"));
      ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
      if (!CanWrite(f->flags)) return Errno(EBADF, "file not open for writing");
      return f->file->Fallocate(mode, off, len);
    }
    case kFsync: {
      auto h_f = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("fsync"));
      ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
      return f->file->Fsync();
    }
    case kFiemap: {
      auto h_f = r_.Get<uint64_t>();
      auto first = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("fiemap"));
      ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
      ASSIGN_OR_RETURN(std::vector<FileExtent> all, f->file->Fiemap());
      PutPaged(out_, all, first, [](Writer& w, const FileExtent& e) { w.Put(e); });
      return Status::Ok();
    }
    case kClone:
      return Clone(false);
    case kDedupe:
      return Clone(true);
    case kTouch: {
      auto h_f = r_.Get<uint64_t>();
      RETURN_IF_ERROR(Done("touch"));
      ASSIGN_OR_RETURN(OpenFile * f, s_.Get(h_f));
      if (!CanWrite(f->flags)) return Errno(EBADF, "file not open for writing");
      ASSIGN_OR_RETURN(DeviceRef ref, srv_.fs->BeginOperation());
      return srv_.fs->files().StampOverwrite(f->ip.get());
    }
    case kLease:
      return Lease();
    case kFault:
      return Fault();
    case kMapAdd:
      return Window(true);
    case kMapDrop:
      return Window(false);
    default:
      return Errno(EOPNOTSUPP, "unknown request " + std::to_string(op));
  }
}

}  // namespace

Status HandleRequest(DirectServer::Impl& srv, Session& session, uint32_t opcode,
                     std::span<const uint8_t> request, std::vector<uint8_t>* response) {
  CallerScope as(session.caller());
  if (opcode & proto::kWithCloses) {  // the closes riding on this request go first
    Reader r(request);
    uint32_t n = r.Get<uint32_t>();
    if (!r.ok() || n > proto::kMaxRiderCloses) return Errno(EPROTO, "malformed closes before a request");
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t h = r.Get<uint64_t>();
      if (!r.ok()) return Errno(EPROTO, "malformed closes before a request");
      session.Remove(h).IgnoreError();  // a handle already gone: nothing to close
    }
    request = request.subspan(sizeof(uint32_t) + n * sizeof(uint64_t));
    opcode &= ~proto::kWithCloses;
  }
  return Handler(srv, session, request, response).Run(opcode);
}

}  // namespace udax::serve
