// tests/serve_requests_test.cc — the mount's answers to direct clients'
// requests (src/serve/handlers.cc), from raw clients: open, write, read,
// stat and close end to end as the library answers them; append's end
// offset; readdir paging; kLease segments against Fiemap (data, holes,
// shared); kFault install ranges; status counts; and hostile input —
// truncated or overlong payloads (EPROTO), unknown opcodes (EOPNOTSUPP), bad
// handles (EBADF), huge lengths, random bytes — never crash the mount, which
// goes on serving.
#include <fcntl.h>

#include <random>
#include <set>

#include "serve_test_util.h"

namespace udax::serve::testing {
namespace {

using namespace proto;

class ServeRequests : public ServeTest {
 protected:
  void SetUp() override {
    ServeTest::SetUp();
    MountAndServe();
    client_ = Client();
    ASSERT_NE(client_, nullptr);
  }
  void TearDown() override {
    client_.reset();
    ServeTest::TearDown();
  }
  std::unique_ptr<RawClient> client_;
};

TEST_F(ServeRequests, OpenWriteReadStatCloseAsTheLibrary) {
  ASSIGN_OR_FAIL(uint64_t h, client_->Open("/f", O_CREAT | O_RDWR, 0640));
  std::string text = "hello, mount";
  std::vector<uint8_t> out;
  ASSERT_OK(client_->Call(kPwrite, Req().Put(h).Put<uint64_t>(100).Put<uint8_t>(0).Bytes(text.data(), text.size()), &out));
  Reader w(out);
  EXPECT_EQ(w.Get<uint64_t>(), text.size());
  EXPECT_EQ(w.Get<uint64_t>(), 100 + text.size());
  EXPECT_OK(w.Finish("pwrite reply"));

  ASSERT_OK(client_->Call(kPread, Req().Put(h).Put<uint64_t>(100).Put<uint32_t>(4096), &out));
  Reader r(out);
  auto bytes = r.GetBytes(kMaxData);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), text);
  EXPECT_OK(r.Finish("pread reply"));

  ASSERT_OK(client_->Call(kFStat, Req().Put(h), &out));
  Reader s(out);
  auto st = s.Get<Stat>();
  s.Get<uint8_t>();
  EXPECT_OK(s.Finish("fstat reply"));
  ASSIGN_OR_FAIL(Stat lib, fs_->GetStat("/f"));
  EXPECT_EQ(st.ino, lib.ino);
  EXPECT_EQ(st.size, 100 + text.size());
  EXPECT_EQ(st.mode, lib.mode);
  EXPECT_EQ(st.mode & 07777, 0640u);

  // The library sees the bytes the client wrote through the mount.
  ASSIGN_OR_FAIL(auto whole, testutil::ReadWhole(*fs_, "/f"));
  EXPECT_EQ(std::string(whole.begin() + 100, whole.end()), text);

  EXPECT_OK(client_->Call(kClose, Req().Put(h)));
  EXPECT_ERRNO(client_->Call(kClose, Req().Put(h)), EBADF);
  EXPECT_ERRNO(client_->Call(kFStat, Req().Put(h)), EBADF);
  // Handles are never reused.
  ASSIGN_OR_FAIL(uint64_t h2, client_->Open("/f", O_RDONLY));
  EXPECT_NE(h2, h);
  // Read-only handle: writes refused as File refuses them.
  EXPECT_ERRNO(client_->Call(kPwrite, Req().Put(h2).Put<uint64_t>(0).Put<uint8_t>(0).Bytes("x", 1)), EBADF);
  EXPECT_ERRNO(client_->Call(kFallocate, Req().Put(h2).Put<int32_t>(0).Put<uint64_t>(0).Put<uint64_t>(4096)), EBADF);
  EXPECT_ERRNO(client_->TakeFault(h2, 0, true, 0, 1 << 20), EACCES);
  // Errors come back as the library gives them.
  EXPECT_ERRNO(client_->Open("/missing/x", O_RDONLY), ENOENT);
  EXPECT_ERRNO(client_->Call(kMkdir, Req().Path("/f").Put<uint32_t>(0755)), EEXIST);
}

TEST_F(ServeRequests, AppendAnswersTheEndOffset) {
  ASSIGN_OR_FAIL(uint64_t h, client_->Open("/log", O_CREAT | O_RDWR | O_APPEND));
  std::vector<uint8_t> out;
  for (uint64_t i = 1; i <= 3; i++) {
    ASSERT_OK(client_->Call(kPwrite, Req().Put(h).Put<uint64_t>(0).Put<uint8_t>(1).Bytes("abcde", 5), &out));
    Reader r(out);
    EXPECT_EQ(r.Get<uint64_t>(), 5u);
    EXPECT_EQ(r.Get<uint64_t>(), 5 * i);
  }
}

TEST_F(ServeRequests, ReadDirPagesEveryEntry) {
  ASSERT_OK(fs_->Mkdir("/d", 0755));
  std::set<std::string> want;
  for (int i = 0; i < 300; i++) {
    std::string name = std::string(200, 'n') + std::to_string(i);
    ASSERT_OK(testutil::WriteWhole(*fs_, "/d/" + name, {}));
    want.insert(name);
  }
  std::set<std::string> got;
  uint64_t first = 0;
  int pages = 0;
  for (bool more = true; more; pages++) {
    std::vector<uint8_t> out;
    ASSERT_OK(client_->Call(kReadDir, Req().Path("/d").Put(first), &out));
    Reader r(out);
    more = r.Get<uint8_t>() != 0;
    uint32_t n = r.Get<uint32_t>();
    ASSERT_GT(n, 0u);
    for (uint32_t i = 0; i < n; i++) {
      got.insert(std::string(r.GetString(kMaxNameLen)));
      r.Get<uint64_t>();
      r.Get<uint32_t>();
    }
    ASSERT_OK(r.Finish("readdir page"));
    first += n;
    ASSERT_LT(pages, 100);
  }
  EXPECT_GT(pages, 1);  // 300 long names do not fit one response
  ASSIGN_OR_FAIL(auto lib, fs_->ReadDir("/d"));
  EXPECT_EQ(got.size(), lib.size());
  for (const auto& e : lib) EXPECT_TRUE(got.count(e.name)) << e.name;
  for (const auto& n : want) EXPECT_TRUE(got.count(n)) << n;
}

TEST_F(ServeRequests, LeaseSegmentsMatchFiemap) {
  // [0, 64K) data, [64K, 1M) hole, [1M, 1M+64K) data shared with /g, then a
  // hole to the size 2M.
  auto data = testutil::Pattern(64 * 1024, 1);
  ASSIGN_OR_FAIL(File f, fs_->Open("/f", O_CREAT | O_RDWR, 0644));
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 1 << 20));
  ASSERT_OK(f.Truncate(2 << 20));
  ASSIGN_OR_FAIL(File g, fs_->Open("/g", O_CREAT | O_RDWR, 0644));
  ASSERT_OK(g.CloneRange(f, 1 << 20, 64 * 1024, 0));
  ASSIGN_OR_FAIL(auto extents, f.Fiemap());

  ASSIGN_OR_FAIL(uint64_t h, client_->Open("/f", O_RDWR));
  ASSIGN_OR_FAIL(auto lease, client_->TakeLease(h, 0, 8 << 20));  // past EOF: cut at the size
  EXPECT_EQ(lease.hdr.size, 2u << 20);
  ASSERT_EQ(lease.hdr.nsegs, lease.segs.size());
  uint64_t pos = 0;
  for (const auto& s : lease.segs) {
    EXPECT_EQ(s.file_off, pos);
    ASSERT_GT(s.len, 0u);
    // Every byte of the segment agrees with Fiemap.
    for (uint64_t o = s.file_off; o < s.file_off + s.len; o += 4096) {
      const FileExtent* in = nullptr;
      for (const auto& e : extents)
        if (o >= e.file_offset && o < e.file_offset + e.length) in = &e;
      if (s.kind == kSegHole) {
        EXPECT_EQ(in, nullptr) << "offset " << o;
      } else {
        ASSERT_NE(in, nullptr) << "offset " << o;
        EXPECT_EQ(s.dev_off + (o - s.file_off), in->device_offset + (o - in->file_offset));
        EXPECT_EQ(s.flags & kExtentShared, in->flags & kExtentShared) << "offset " << o;
      }
    }
    pos += s.len;
  }
  EXPECT_EQ(pos, 2u << 20);
  bool saw_shared = false;
  for (const auto& s : lease.segs) saw_shared |= (s.flags & kExtentShared) != 0;
  EXPECT_TRUE(saw_shared);

  // An unaligned sub-range starts where it was asked.
  ASSIGN_OR_FAIL(auto part, client_->TakeLease(h, 1000, 5000));
  ASSERT_EQ(part.segs.size(), 1u);
  EXPECT_EQ(part.segs[0].file_off, 1000u);
  EXPECT_EQ(part.segs[0].len, 5000u);
  EXPECT_EQ(part.segs[0].dev_off, extents[0].device_offset + 1000);
  // Nothing past EOF; a directory is refused.
  ASSIGN_OR_FAIL(auto none, client_->TakeLease(h, 4 << 20, 4096));
  EXPECT_EQ(none.segs.size(), 0u);
  ASSIGN_OR_FAIL(uint64_t root, client_->Open("/", O_RDONLY));
  EXPECT_ERRNO(client_->TakeLease(root, 0, 4096), EISDIR);
  EXPECT_ERRNO(client_->TakeFault(root, 0, false, 0, 1 << 20), EISDIR);
  EXPECT_ERRNO(client_->Call(kMapAdd, Req().Put(root).Put<uint64_t>(0).Put<uint64_t>(4096)), EISDIR);
}

TEST_F(ServeRequests, LeaseStopsBeforeFailedMemory) {
  auto data = testutil::Pattern(64 * 1024, 2);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", data));
  ASSIGN_OR_FAIL(File f, fs_->Open("/f", O_RDONLY));
  ASSIGN_OR_FAIL(auto extents, f.Fiemap());
  ASSERT_OK(fs_->InjectPoison(extents[0].device_offset + 8 * 4096, 4096));
  ASSIGN_OR_FAIL(uint64_t h, client_->Open("/f", O_RDONLY));
  ASSIGN_OR_FAIL(auto lease, client_->TakeLease(h, 0, 64 * 1024));
  uint64_t covered = 0;
  for (const auto& s : lease.segs) covered += s.len;
  EXPECT_EQ(covered, 8u * 4096);
  // The failed block itself: an empty lease, and kPread gives the library's EIO.
  ASSIGN_OR_FAIL(auto at_bad, client_->TakeLease(h, 8 * 4096, 4096));
  EXPECT_EQ(at_bad.segs.size(), 0u);
  EXPECT_ERRNO(client_->Call(kPread, Req().Put(h).Put<uint64_t>(8 * 4096).Put<uint32_t>(4096)), EIO);
}

TEST_F(ServeRequests, FaultInstallsWhatTheLibraryMaps) {
  ASSIGN_OR_FAIL(File f, fs_->Open("/f", O_CREAT | O_RDWR, 0644));
  ASSERT_OK(f.Truncate(1 << 20));
  ASSIGN_OR_FAIL(uint64_t h, client_->Open("/f", O_RDWR));
  // A read fault on a hole: zero pages, read-only.
  ASSIGN_OR_FAIL(auto rd, client_->TakeFault(h, 8192, false, 0, 1 << 20));
  ASSERT_EQ(rd.installs.size(), 1u);
  EXPECT_EQ(rd.installs[0].kind, 1u);
  EXPECT_EQ(rd.installs[0].writable, 0u);
  EXPECT_LE(rd.installs[0].file_off, 8192u);
  EXPECT_GT(rd.installs[0].file_off + rd.installs[0].len, 8192u);
  // A write fault allocates: device memory, writable, where Fiemap says.
  ASSIGN_OR_FAIL(auto wr, client_->TakeFault(h, 8192, true, 0, 1 << 20));
  ASSERT_EQ(wr.installs.size(), 1u);
  const auto& in = wr.installs[0];
  EXPECT_EQ(in.kind, 0u);
  EXPECT_EQ(in.writable, 1u);
  ASSIGN_OR_FAIL(auto extents, f.Fiemap());
  ASSERT_EQ(extents.size(), 1u);
  EXPECT_LE(extents[0].file_offset, in.file_off);
  EXPECT_EQ(in.dev_off, extents[0].device_offset + (in.file_off - extents[0].file_offset));
  // The filled hole revoked the zero pages this client held: its rev_seq moved.
  EXPECT_GT(wr.hdr.rev_seq, rd.hdr.rev_seq);
  EXPECT_FALSE(client_->revocations().empty());
  // Past EOF: EFAULT, as ResolveFault gives it; a window that does not hold the offset: EINVAL.
  EXPECT_ERRNO(client_->TakeFault(h, 2 << 20, false, 0, 4 << 20), EFAULT);
  EXPECT_ERRNO(client_->TakeFault(h, 8192, false, 16384, 32768), EINVAL);
  EXPECT_ERRNO(client_->TakeFault(h, 8192, false, 100, 32768), EINVAL);
}

TEST_F(ServeRequests, StatusCountsOtherClients) {
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(16384, 3)));
  ASSIGN_OR_FAIL(uint64_t h, client_->Open("/f", O_RDWR));
  ASSERT_OK(client_->Open("/f", O_RDONLY));
  ASSERT_OK(client_->TakeLease(h, 0, 8192));
  ASSERT_OK(client_->Call(kMapAdd, Req().Put(h).Put<uint64_t>(0).Put<uint64_t>(1 << 20)));
  auto other = Client();
  ASSERT_NE(other, nullptr);
  std::vector<uint8_t> out;
  ASSERT_OK(other->Call(kServerStatus, Req(), &out));
  Reader r(out);
  auto hdr = r.Get<WireStatusHeader>();
  std::string sock(r.GetString(4096));
  ASSERT_EQ(hdr.nclients, 1u);  // the asker left out
  auto c = r.Get<DirectClientInfo>();
  ASSERT_OK(r.Finish("status reply"));
  EXPECT_EQ(sock, socket_);
  EXPECT_EQ(hdr.revoke_ms, 1000u);
  EXPECT_EQ(c.pid, static_cast<uint32_t>(::getpid()));
  EXPECT_EQ(c.uid, ::geteuid());
  EXPECT_EQ(c.files_open, 2u);
  EXPECT_EQ(c.mappings, 1u);
  EXPECT_EQ(c.leased_bytes, 8192u);
  // The server's own view has both.
  SharingStatus st = server_->GetStatus();
  EXPECT_EQ(st.clients.size(), 2u);
  EXPECT_EQ(st.socket, socket_);
  // Dropping the window, unknown windows refused.
  EXPECT_OK(client_->Call(kMapDrop, Req().Put(h).Put<uint64_t>(0).Put<uint64_t>(1 << 20)));
  EXPECT_ERRNO(client_->Call(kMapDrop, Req().Put(h).Put<uint64_t>(0).Put<uint64_t>(1 << 20)), EINVAL);
}

TEST_F(ServeRequests, HostileInputNeverCrashes) {
  ASSIGN_OR_FAIL(uint64_t h, client_->Open("/f", O_CREAT | O_RDWR));
  // Every opcode with an empty payload: EPROTO where it takes arguments.
  const uint32_t takes_args[] = {kOpen, kMkdir, kRmdir, kUnlink, kRename, kLink, kSymlink, kReadlink,
                                 kGetStat, kChmod, kChown, kUtimens, kTruncatePath, kReadDir,
                                 kInjectPoison, kBadBlocks, kQueryRmap, kClose, kFStat, kPread,
                                 kPwrite, kFTruncate, kFallocate, kFsync, kFiemap, kClone, kDedupe,
                                 kTouch, kLease, kFault, kMapAdd, kMapDrop};
  for (uint32_t op : takes_args) EXPECT_ERRNO(client_->Call(op, Req()), EPROTO) << "op " << op;
  // Trailing bytes are as malformed as missing ones.
  EXPECT_ERRNO(client_->Call(kStatFs, Req().Put<uint8_t>(1)), EPROTO);
  EXPECT_ERRNO(client_->Call(kFsync, Req().Put(h).Put<uint8_t>(1)), EPROTO);
  // A string's length prefix past the payload; over the path limit.
  EXPECT_ERRNO(client_->Call(kMkdir, Req().Put<uint64_t>(0).Put<uint32_t>(1000).Put<uint32_t>(0755)), EPROTO);
  std::string long_path(kMaxPathLen + 1, 'a');
  EXPECT_ERRNO(client_->Call(kMkdir, Req().Path(long_path).Put<uint32_t>(0755)), EPROTO);
  // Unknown opcodes.
  EXPECT_ERRNO(client_->Call(999, Req()), EOPNOTSUPP);
  EXPECT_ERRNO(client_->Call(kMapDrop + 1, Req()), EOPNOTSUPP);
  // Bad handles, whatever the call.
  for (uint64_t bad : {uint64_t{0}, uint64_t{12345}, UINT64_MAX}) {
    EXPECT_ERRNO(client_->Call(kFStat, Req().Put(bad)), EBADF);
    EXPECT_ERRNO(client_->Call(kPread, Req().Put(bad).Put<uint64_t>(0).Put<uint32_t>(1)), EBADF);
    EXPECT_ERRNO(client_->TakeLease(bad, 0, 4096), EBADF);
    EXPECT_ERRNO(client_->Call(kClone, Req().Put(h).Put(bad).Put<uint64_t>(0).Put<uint64_t>(0).Put<uint64_t>(0)), EBADF);
  }
  // Huge lengths and offsets.
  EXPECT_ERRNO(client_->Call(kPread, Req().Put(h).Put<uint64_t>(0).Put<uint32_t>(UINT32_MAX)), EINVAL);
  EXPECT_ERRNO(client_->Call(kPwrite, Req().Put(h).Put<uint64_t>(UINT64_MAX - 1).Put<uint8_t>(0).Bytes("ab", 2)), EFBIG);
  ASSERT_OK(client_->TakeLease(h, UINT64_MAX - 1, UINT64_MAX));
  ASSERT_OK(client_->TakeLease(h, 0, UINT64_MAX));
  EXPECT_ERRNO(client_->TakeFault(h, UINT64_MAX / 4096 * 4096 - 5, false, 0, UINT64_MAX / 4096 * 4096), EFAULT);
  EXPECT_OK(client_->Call(kMapAdd, Req().Put(h).Put<uint64_t>(UINT64_MAX).Put<uint64_t>(UINT64_MAX)));
  EXPECT_OK(client_->Call(kFTruncate, Req().Put(h).Put<uint64_t>(4096)));  // revokes across that window
  EXPECT_ERRNO(client_->Call(kFTruncate, Req().Put(h).Put<uint64_t>(UINT64_MAX)), EFBIG);
  // Random payloads for every opcode: answered (any errno), never a crash.
  std::mt19937_64 rng(15);
  for (int i = 0; i < 1500; i++) {
    uint32_t op = static_cast<uint32_t>(rng() % 80);
    if (op == kRemoveDevice || op == kInjectPoison || op == kClose) continue;  // meaningful, tested elsewhere
    std::vector<uint8_t> in(rng() % 64);
    for (auto& b : in) b = static_cast<uint8_t>(rng());
    if (in.size() >= 8 && rng() % 2) std::memcpy(in.data(), &h, 8);  // sometimes a real handle
    std::vector<uint8_t> out;
    Status st = client_->CallRaw(op, in, &out);
    (void)st;
  }
  // Still serving, the filesystem intact.
  ASSIGN_OR_FAIL(uint64_t h2, client_->Open("/after", O_CREAT | O_RDWR));
  EXPECT_OK(client_->Call(kClose, Req().Put(h2)));
  EXPECT_TRUE(client_->connected());
}

}  // namespace
}  // namespace udax::serve::testing
