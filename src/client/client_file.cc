// client/client_file.cc — ClientFile (see client_file.h).
#include "client/client_file.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "client/client_mapping.h"
#include "client/paged.h"

namespace udax::client {

using proto::LeaseHeader;
using proto::LeaseSegment;
using proto::Reader;
using proto::Writer;

namespace {

constexpr int kLeaseAttempts = 4;  // stale answers (a revocation raced) asked again
// A miss leases the aligned window around the access: the accesses nearby
// need no request (a file is mostly a few big extents; the answer holds at
// most kMaxSegments pieces).
constexpr uint64_t kLeaseWindow = 2ull << 20;

// A piece of device memory behind a file range: dev_off, or zeroes.
struct Piece {
  uint64_t dev_off;
  uint64_t len;
  bool zero;
};
constexpr size_t kMaxPieces = 16;

// The cached data segments covering [off, end) in order, into `out`; false
// when a byte is not covered (or more pieces are needed). `for_write`: only
// segments a write may go to in place.
bool CollectCached(const ClientInode& ip, uint64_t off, uint64_t end, bool for_write, Piece* out,
                   size_t* n) {
  *n = 0;
  auto it = ip.segs.upper_bound(off);
  if (it == ip.segs.begin()) return false;
  --it;
  uint64_t pos = off;
  while (pos < end) {
    if (it == ip.segs.end() || *n == kMaxPieces) return false;
    const LeaseSegment& s = it->second;
    if (s.file_off > pos || s.file_off + s.len <= pos) return false;
    bool unwritten = s.flags & proto::kSegUnwritten;
    if (for_write && (unwritten || (s.flags & kExtentShared))) return false;
    uint64_t take = std::min(end, s.file_off + s.len) - pos;
    out[(*n)++] = Piece{s.dev_off + (pos - s.file_off), take, unwritten};
    pos += take;
    ++it;
  }
  return true;
}

int64_t CoarseNowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

}  // namespace

std::vector<uint8_t> ClientFile::HandleRequest() const {
  std::vector<uint8_t> b;
  Writer(&b).Put(h_->handle);
  return b;
}

bool ClientFile::TryReadDirect(void* buf, size_t len, uint64_t off) {
  ClientInode& in = ip();
  std::shared_lock<std::shared_mutex> barrier(in.barrier);
  Piece pieces[kMaxPieces];
  size_t n = 0;
  {
    std::lock_guard<std::mutex> g(in.mu);
    if (!in.size_known || in.atime_due || off > in.size || len > in.size - off) return false;
    if (!CollectCached(in, off, off + len, false, pieces, &n)) return false;
  }
  auto* dst = static_cast<uint8_t*>(buf);
  for (size_t i = 0; i < n; ++i) {
    if (pieces[i].zero) {
      std::memset(dst, 0, pieces[i].len);
    } else if (!fs().device()->CopyOut(dst, pieces[i].dev_off, pieces[i].len).ok()) {
      return false;  // the mount's answer (EIO...) decides
    }
    dst += pieces[i].len;
  }
  return true;
}

bool ClientFile::TryWriteDirect(const void* buf, size_t len, uint64_t off) {
  ClientInode& in = ip();
  {
    std::shared_lock<std::shared_mutex> barrier(in.barrier);
    Piece pieces[kMaxPieces];
    size_t n = 0;
    {
      std::lock_guard<std::mutex> g(in.mu);
      if (!in.size_known || off > in.size || len > in.size - off) return false;
      if (in.mode & (S_ISUID | S_ISGID)) return false;  // the mount kills them
      if (!CollectCached(in, off, off + len, true, pieces, &n)) return false;
      in.atime_due = true;  // relatime: a read after a write updates atime
    }
    PmemDevice* dev = fs().device();
    auto* src = static_cast<const uint8_t*>(buf);
    for (size_t i = 0; i < n; ++i) {
      if (!dev->CopyIn(pieces[i].dev_off, src, pieces[i].len, /*drain=*/false).ok()) return false;
      src += pieces[i].len;
    }
    dev->Drain();  // durable at return
  }
  TouchIfDue();
  return true;
}

bool ClientFile::LeaseWindow(uint64_t off, size_t len) {
  uint64_t lo = off / kLeaseWindow * kLeaseWindow;
  uint64_t hi = std::min<uint64_t>((off + len + kLeaseWindow - 1) / kLeaseWindow * kLeaseWindow, kMaxFileSize);
  LeaseHeader hdr;
  std::vector<LeaseSegment> segs;
  auto fresh = fs().Lease(*h_, lo, hi - lo, &hdr, &segs);
  return fresh.has_value() && *fresh;  // an error: the exact path reports it
}

void ClientFile::TouchIfDue() {
  int64_t now = CoarseNowNs();
  if (ip().touched_at.exchange(now, std::memory_order_relaxed) == now) return;
  fs().Call(proto::kTouch, HandleRequest()).status().IgnoreError();
}

Result<size_t> ClientFile::Pread(void* buf, size_t len, uint64_t off) {
  if (len == 0 || off >= kMaxFileSize) return PreadThroughMount(buf, len, off);
  len = std::min<uint64_t>(len, kMaxFileSize - off);
  if (TryReadDirect(buf, len, off)) return len;
  if (LeaseWindow(off, len) && TryReadDirect(buf, len, off)) return len;
  // Not all data (holes, unwritten blocks, a failed block, atime due): lease
  // exactly the range and copy what its answer says.
  LeaseHeader hdr;
  std::vector<LeaseSegment> segs;
  for (int attempt = 0; attempt < kLeaseAttempts; ++attempt) {
    ASSIGN_OR_RETURN(bool fresh, fs().Lease(*h_, off, len, &hdr, &segs));
    if (!fresh) continue;
    if (hdr.atime_due) break;  // the mount's read updates atime
    ClientInode& in = ip();
    std::shared_lock<std::shared_mutex> barrier(in.barrier);
    if (in.revoked_seq.load(std::memory_order_acquire) > hdr.rev_seq) continue;
    if (off >= hdr.size) return 0;
    uint64_t want_end = std::min<uint64_t>(off + len, hdr.size), pos = off;
    auto* dst = static_cast<uint8_t*>(buf);
    for (const LeaseSegment& s : segs) {
      if (s.file_off != pos || pos >= want_end) break;
      uint64_t take = std::min(want_end, s.file_off + s.len) - pos;
      bool zero = s.kind == proto::kSegHole || (s.flags & proto::kSegUnwritten);
      if (zero) {
        std::memset(dst + (pos - off), 0, take);
      } else if (!fs().device()->CopyOut(dst + (pos - off), s.dev_off, take).ok()) {
        break;
      }
      pos += take;
    }
    barrier.unlock();
    if (pos == want_end) return pos - off;
    // The rest (a failed block, more segments than one answer) through the mount.
    auto rest = PreadThroughMount(dst + (pos - off), want_end - pos, pos);
    if (!rest.has_value()) return pos > off ? Result<size_t>(pos - off) : rest;
    return (pos - off) + *rest;
  }
  return PreadThroughMount(buf, len, off);
}

Result<size_t> ClientFile::PreadThroughMount(void* buf, size_t len, uint64_t off) {
  size_t done = 0;
  auto* dst = static_cast<uint8_t*>(buf);
  do {
    uint32_t chunk = static_cast<uint32_t>(std::min<size_t>(len - done, proto::kMaxData));
    auto b = HandleRequest();
    Writer(&b).Put(off + done).Put(chunk);
    auto resp = fs().Call(proto::kPread, b);
    if (!resp.has_value()) {
      if (done > 0) return done;
      return resp.error();
    }
    Reader r(*resp);
    auto bytes = r.GetBytes(chunk);
    RETURN_IF_ERROR(r.Finish("pread"));
    std::memcpy(dst + done, bytes.data(), bytes.size());
    done += bytes.size();
    if (bytes.size() < chunk) break;  // end of file
  } while (done < len);
  {
    std::lock_guard<std::mutex> g(ip().mu);
    ip().atime_due = false;  // the mount's read just updated it, if it was due
  }
  return done;
}

Result<size_t> ClientFile::Pwrite(const void* buf, size_t len, uint64_t off, bool append, uint64_t* end) {
  if (!append && len > 0 && off < kMaxFileSize && len <= kMaxFileSize - off) {
    if (TryWriteDirect(buf, len, off)) {
      *end = off + len;
      return len;
    }
    // Lease only what may be written in place: inside the file.
    bool inside = false;
    {
      std::lock_guard<std::mutex> g(ip().mu);
      inside = !ip().size_known || off + len <= ip().size;
    }
    if (inside && LeaseWindow(off, len) && TryWriteDirect(buf, len, off)) {
      *end = off + len;
      return len;
    }
  }
  return PwriteThroughMount(buf, len, off, append, end);
}

Result<size_t> ClientFile::PwriteThroughMount(const void* buf, size_t len, uint64_t off, bool append,
                                             uint64_t* end) {
  size_t done = 0;
  auto* src = static_cast<const uint8_t*>(buf);
  *end = off;
  do {
    size_t chunk = std::min<size_t>(len - done, proto::kMaxData);
    auto b = HandleRequest();
    Writer(&b).Put(off + done).Put(static_cast<uint8_t>(append)).PutBytes(src + done, chunk);
    auto resp = fs().Call(proto::kPwrite, b);
    if (!resp.has_value()) {
      if (done > 0) return done;
      return resp.error();
    }
    Reader r(*resp);
    uint64_t n = r.Get<uint64_t>();
    uint64_t e = r.Get<uint64_t>();
    RETURN_IF_ERROR(r.Finish("pwrite"));
    if (n > chunk) return Errno(EPROTO, "pwrite: the mount wrote more than it was sent");
    done += n;
    *end = e;
    if (n < chunk) break;
  } while (done < len);
  {
    std::lock_guard<std::mutex> g(ip().mu);
    ip().atime_due = true;
  }
  return done;
}

Status ClientFile::Truncate(uint64_t len) {
  auto b = HandleRequest();
  Writer(&b).Put(len);
  return fs().Call(proto::kFTruncate, b).status();
}

Status ClientFile::Fallocate(int mode, uint64_t off, uint64_t len) {
  auto b = HandleRequest();
  Writer(&b).Put(static_cast<int32_t>(mode)).Put(off).Put(len);
  return fs().Call(proto::kFallocate, b).status();
}

Status ClientFile::Fsync() { return fs().Call(proto::kFsync, HandleRequest()).status(); }

Result<Stat> ClientFile::GetStat() {
  ASSIGN_OR_RETURN(auto resp, fs().Call(proto::kFStat, HandleRequest()));
  Reader r(resp);
  Stat st = r.Get<Stat>();
  uint8_t due = r.Get<uint8_t>();
  RETURN_IF_ERROR(r.Finish("fstat"));
  std::lock_guard<std::mutex> g(ip().mu);
  ip().atime_due = due != 0;
  return st;
}

bool ClientFile::AtimeUpdateDue() const {
  std::lock_guard<std::mutex> g(ip().mu);
  return ip().atime_due;
}

Result<std::vector<FileExtent>> ClientFile::Fiemap() {
  return ReadPaged<FileExtent>(
      fs(), proto::kFiemap, "fiemap",
      [&](uint64_t first) {
        auto b = HandleRequest();
        Writer(&b).Put(first);
        return b;
      },
      [](Reader& r) { return r.Get<FileExtent>(); });
}

Status ClientFile::CloneRange(FileBackend& src, uint64_t src_off, uint64_t len, uint64_t dst_off) {
  auto b = HandleRequest();
  Writer(&b).Put(static_cast<ClientFile&>(src).h_->handle).Put(src_off).Put(len).Put(dst_off);
  return fs().Call(proto::kClone, b).status();
}

Result<uint64_t> ClientFile::DedupeRange(FileBackend& src, uint64_t src_off, uint64_t len, uint64_t dst_off) {
  auto b = HandleRequest();
  Writer(&b).Put(static_cast<ClientFile&>(src).h_->handle).Put(src_off).Put(len).Put(dst_off);
  ASSIGN_OR_RETURN(auto resp, fs().Call(proto::kDedupe, b));
  Reader r(resp);
  uint64_t n = r.Get<uint64_t>();
  RETURN_IF_ERROR(r.Finish("dedupe"));
  return n;
}

Result<std::unique_ptr<MappingImpl>> ClientFile::Map(uint64_t offset, size_t length, Prot prot) {
  RETURN_IF_ERROR(fs().CheckLive());
  return ClientMapping::Create(h_, offset, length, prot);
}

}  // namespace udax::client
