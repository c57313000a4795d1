// tests/serve_lease_test.cc — leases (src/serve/remote_lease.cc) from raw
// clients and forked ones: a lease holder hears the revocation before a
// truncate returns, and only holders are asked; a mapping window hears size
// changes until it is dropped; a client's own punch revokes its own lease
// without deadlock; a SIGSTOPped holder is killed within the bound and the
// truncate then returns; a disconnected client's files are closed (an
// unlinked file's blocks freed) and its leases gone; Stop tells every client
// (unmount) and disconnects it; removal revokes every lease.
#include <fcntl.h>
#include <linux/falloc.h>

#include "serve_test_util.h"

namespace udax::serve::testing {
namespace {

using namespace proto;

constexpr uint32_t kTruncateReason = static_cast<uint32_t>(InvalidateReason::kTruncate);

class ServeLeases : public ServeTest {};

std::string Describe(const std::vector<share::Revocation>& revs) {
  std::string s;
  for (const auto& r : revs)
    s += "{ino " + std::to_string(r.ino) + " [" + std::to_string(r.offset) + ", +" + std::to_string(r.length) +
         ") reason " + std::to_string(r.reason) + " seq " + std::to_string(r.seq) + "} ";
  return s;
}

TEST_F(ServeLeases, HolderIsRevokedBeforeTruncateReturns) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(64 * 1024, 1)));
  ASSIGN_OR_FAIL(Stat st, fs_->GetStat("/f"));
  auto holder = Client(), bystander = Client();
  ASSIGN_OR_FAIL(uint64_t h, holder->Open("/f", O_RDWR));
  ASSIGN_OR_FAIL(uint64_t hb, bystander->Open("/f", O_RDWR));
  (void)hb;
  ASSIGN_OR_FAIL(auto lease, holder->TakeLease(h, 0, 64 * 1024));
  ASSERT_FALSE(lease.segs.empty());
  ASSERT_OK(holder->Call(kMapAdd, Req().Put(h).Put<uint64_t>(0).Put<uint64_t>(64 * 1024)));

  ASSERT_OK(fs_->Truncate("/f", 4096));
  // No waiting: the truncate returned only after the holder acknowledged.
  auto revs = holder->revocations();
  ASSERT_FALSE(revs.empty());
  bool told = false;
  for (const auto& r : revs) {
    EXPECT_EQ(r.ino, st.ino);
    if ((r.reason & kRevokeReasonMask) == kTruncateReason && (r.reason & kRevokeNotify) &&
        r.offset <= 4096 && r.offset + r.length >= 64 * 1024)
      told = true;
  }
  EXPECT_TRUE(told) << Describe(revs);
  EXPECT_TRUE(bystander->revocations().empty());  // it holds nothing of the file
  // A new lease is stamped with the last revocation's number.
  ASSERT_OK(fs_->Truncate("/f", 8192));
  ASSIGN_OR_FAIL(auto again, holder->TakeLease(h, 0, 8192));
  EXPECT_EQ(again.hdr.rev_seq, holder->revocations().back().seq);
  EXPECT_EQ(server_->GetStatus().kills, 0u);
}

TEST_F(ServeLeases, LeaseOnlyHolderIsRevokedOnce) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(64 * 1024, 1)));
  auto c = Client();
  ASSIGN_OR_FAIL(uint64_t h, c->Open("/f", O_RDWR));
  ASSERT_OK(c->TakeLease(h, 0, 64 * 1024));
  ASSERT_OK(fs_->Truncate("/f", 4096));
  auto revs = c->revocations();
  ASSERT_EQ(revs.size(), 1u) << Describe(revs);  // the segments go at the first revocation
  EXPECT_EQ(revs[0].offset, 4096u);
  EXPECT_GE(revs[0].offset + revs[0].length, 64u * 1024);
  // What was revoked is no longer held: a second truncate asks no one.
  ASSERT_OK(fs_->Truncate("/f", 4096 * 2));
  ASSERT_OK(fs_->Truncate("/f", 4096));
  EXPECT_EQ(c->revocations().size(), 1u) << Describe(c->revocations());
}

TEST_F(ServeLeases, WindowHearsWhatItsProgramIsTold) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(1 << 20, 2)));
  ASSIGN_OR_FAIL(File f, fs_->Open("/f", O_RDWR));
  auto c = Client();
  ASSIGN_OR_FAIL(uint64_t h, c->Open("/f", O_RDWR));
  ASSERT_OK(c->Call(kMapAdd, Req().Put(h).Put<uint64_t>(0).Put<uint64_t>(64 * 1024)));
  // Nothing installed: a size change (internal) has nothing to drop.
  ASSERT_OK(f.Pwrite("abc", 3, 1 << 20));
  EXPECT_TRUE(c->revocations().empty()) << Describe(c->revocations());
  // A punch under the window is told, even where nothing was faulted.
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
  auto revs = c->revocations();
  ASSERT_EQ(revs.size(), 1u) << Describe(revs);
  EXPECT_EQ(revs[0].reason, kTruncateReason | kRevokeNotify);
  // Outside the window: not asked.
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 512 * 1024, 4096));
  EXPECT_EQ(c->revocations().size(), 1u);
  // A faulted page hears even internal changes (zero pages over a hole refilled).
  ASSIGN_OR_FAIL(auto rd, c->TakeFault(h, 0, false, 0, 64 * 1024));
  ASSERT_EQ(rd.installs.at(0).kind, 1u);  // zero pages over the punched hole
  ASSERT_OK(f.Pwrite("xyz", 3, 0));       // fills the hole
  revs = c->revocations();
  ASSERT_EQ(revs.size(), 2u) << Describe(revs);
  EXPECT_EQ(revs[1].reason & kRevokeNotify, 0u);
  // Dropped: a punch there asks no one.
  ASSERT_OK(c->Call(kMapDrop, Req().Put(h).Put<uint64_t>(0).Put<uint64_t>(64 * 1024)));
  ASSERT_OK(f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192, 4096));
  EXPECT_EQ(c->revocations().size(), 2u) << Describe(c->revocations());
}

TEST_F(ServeLeases, OwnPunchRevokesOwnLease) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(64 * 1024, 2)));
  auto c = Client();
  ASSIGN_OR_FAIL(uint64_t h, c->Open("/f", O_RDWR));
  ASSERT_OK(c->TakeLease(h, 0, 64 * 1024));
  ASSERT_OK(c->Call(kFallocate, Req().Put(h).Put<int32_t>(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
                                    .Put<uint64_t>(16384).Put<uint64_t>(16384)));
  auto revs = c->revocations();
  ASSERT_FALSE(revs.empty());
  EXPECT_EQ(revs[0].reason, kTruncateReason | kRevokeNotify);
  EXPECT_EQ(revs[0].offset, 16384u);
  EXPECT_EQ(revs[0].length, 16384u);
  ASSIGN_OR_FAIL(auto lease, c->TakeLease(h, 0, 64 * 1024));
  ASSERT_GE(lease.segs.size(), 3u);
  EXPECT_EQ(lease.segs[1].kind, kSegHole);
  EXPECT_EQ(lease.segs[1].file_off, 16384u);
}

TEST_F(ServeLeases, StoppedHolderIsKilledAndTruncateReturns) {
  // The child is forked before this process has threads (Mount, Start).
  int go[2], ready[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(ready), 0);
  const std::string socket = socket_;
  Child child = ForkChild([&]() -> int {
    char b;
    if (::read(go[0], &b, 1) != 1) return 10;
    auto c = RawClient::Connect(socket);
    if (!c.has_value()) return 11;
    auto h = (*c)->Open("/f", O_RDWR);
    if (!h.has_value()) return 12;
    if (!(*c)->TakeLease(*h, 0, 64 * 1024).has_value()) return 13;
    if (::write(ready[1], "l", 1) != 1) return 14;
    ::raise(SIGSTOP);
    return 0;
  });
  constexpr auto kBound = 300ms;
  MountAndServe(kBound);
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(64 * 1024, 3)));
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  char b;
  ASSERT_EQ(::read(ready[0], &b, 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child.pid, &status, WUNTRACED), child.pid);
  ASSERT_TRUE(WIFSTOPPED(status));

  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(fs_->Truncate("/f", 0));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, kBound);
  EXPECT_LT(took, kBound + 3s);
  // Dead before the truncate returned (Revoke waits for death), killed.
  status = ReapChild(child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(server_->GetStatus().kills, 1u);
  for (int fd : {go[0], go[1], ready[0], ready[1]}) ::close(fd);
}

TEST_F(ServeLeases, DisconnectClosesFilesAndFreesAnUnlinkedOne) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/big", testutil::Pattern(4 << 20, 4)));
  ASSIGN_OR_FAIL(StatFs full, fs_->GetStatFs());
  auto c = Client();
  ASSIGN_OR_FAIL(uint64_t h, c->Open("/big", O_RDWR));
  ASSERT_OK(c->TakeLease(h, 0, 4 << 20));
  ASSERT_OK(c->Call(kMapAdd, Req().Put(h).Put<uint64_t>(0).Put<uint64_t>(4 << 20)));
  ASSERT_OK(fs_->Unlink("/big"));
  ASSIGN_OR_FAIL(StatFs still, fs_->GetStatFs());
  EXPECT_EQ(still.free_blocks, full.free_blocks);  // open in the client: kept
  c.reset();  // leaves (EOF) with the file open and a window on it
  ASSERT_TRUE(WaitFor([&] {
    auto now = fs_->GetStatFs();
    return now.has_value() && now->free_blocks >= full.free_blocks + (4 << 20) / kBlockSize;
  })) << "the unlinked file's blocks were not freed";
  EXPECT_TRUE(WaitFor([&] { return server_->GetStatus().clients.empty(); }));
}

TEST_F(ServeLeases, CloseDropsTheLease) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(16384, 5)));
  auto c = Client();
  ASSIGN_OR_FAIL(uint64_t h, c->Open("/f", O_RDWR));
  ASSERT_OK(c->TakeLease(h, 0, 16384));
  ASSERT_OK(c->Call(kClose, Req().Put(h)));
  ASSERT_OK(fs_->Truncate("/f", 0));
  EXPECT_TRUE(c->revocations().empty());  // it holds nothing any more
  EXPECT_EQ(server_->GetStatus().clients.at(0).leased_bytes, 0u);
}

TEST_F(ServeLeases, WindowOutlivingItsHandleKeepsTheFile) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(1 << 20, 8)));
  ASSIGN_OR_FAIL(StatFs full, fs_->GetStatFs());
  auto c = Client();
  ASSIGN_OR_FAIL(uint64_t h, c->Open("/f", O_RDWR));
  ASSERT_OK(c->Call(kMapAdd, Req().Put(h).Put<uint64_t>(0).Put<uint64_t>(1 << 20)));
  ASSERT_OK(c->Call(kClose, Req().Put(h)));  // closed before unmapping
  EXPECT_ERRNO(c->Call(kFStat, Req().Put(h)), EBADF);
  ASSERT_OK(fs_->Unlink("/f"));
  ASSIGN_OR_FAIL(StatFs kept, fs_->GetStatFs());
  EXPECT_EQ(kept.free_blocks, full.free_blocks);  // still reachable through the window
  c.reset();
  ASSERT_TRUE(WaitFor([&] {
    auto now = fs_->GetStatFs();
    return now.has_value() && now->free_blocks >= full.free_blocks + (1 << 20) / kBlockSize;
  }));
}

TEST_F(ServeLeases, StopTellsEveryClientAndDisconnects) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(16384, 6)));
  auto a = Client(), b = Client();
  ASSIGN_OR_FAIL(uint64_t h, a->Open("/f", O_RDWR));
  ASSERT_OK(a->TakeLease(h, 0, 16384));
  server_->Stop();
  for (RawClient* c : {a.get(), b.get()}) {
    auto revs = c->revocations();
    ASSERT_EQ(revs.size(), 1u);
    EXPECT_EQ(revs[0].ino, 0u);
    EXPECT_EQ(revs[0].length, UINT64_MAX);
    EXPECT_EQ(revs[0].reason, static_cast<uint32_t>(InvalidateReason::kRemoved) | kRevokeNotify | kRevokeUnmount);
  }
  EXPECT_ERRNO(a->Open("/f", O_RDONLY), ENOTCONN);
  struct stat sb;
  EXPECT_NE(::stat(socket_.c_str(), &sb), 0);  // the socket is gone
  server_->Stop();  // idempotent
  // The client's handle was closed: a truncate asks no one, and the fs unmounts.
  ASSERT_OK(fs_->Truncate("/f", 0));
  EXPECT_OK(fs_->Unmount());
  fs_.reset();
}

TEST_F(ServeLeases, RemovalRevokesEveryLease) {
  MountAndServe();
  ASSERT_OK(testutil::WriteWhole(*fs_, "/f", testutil::Pattern(16384, 7)));
  auto c = Client();
  ASSIGN_OR_FAIL(uint64_t h, c->Open("/f", O_RDWR));
  ASSERT_OK(c->TakeLease(h, 0, 16384));
  ASSERT_OK(c->Call(kRemoveDevice, Req()));
  bool removed = false;
  for (const auto& r : c->revocations())
    removed |= r.reason == (static_cast<uint32_t>(InvalidateReason::kRemoved) | kRevokeNotify);
  EXPECT_TRUE(removed);
  EXPECT_ERRNO(c->TakeLease(h, 0, 16384), ENODEV);
  EXPECT_ERRNO(c->Open("/f", O_RDONLY), ENODEV);
}

}  // namespace
}  // namespace udax::serve::testing
