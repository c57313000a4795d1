// tests/client_test.cc — direct clients (Filesystem::Connect) of a
// filesystem mounted in this process and served by a DirectServer: the
// whole API through the connection, coherence between the mount, clients
// and their DAX mappings, the direct data path (no request per I/O), and
// revocation of client mappings before the blocks behind them change.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "client/client_fs.h"
#include "client_test_util.h"

namespace udax {
namespace {

using testutil::Bytes;
using testutil::ClientFixture;
using testutil::Pattern;

using Recorder = testutil::InvalidateLog;

client::ClientFs* ClientOf(Filesystem& fs) { return dynamic_cast<client::ClientFs*>(BackendOf(fs)); }

class ClientTest : public ClientFixture {};

TEST_F(ClientTest, NamespaceCallsGoThroughTheMount) {
  auto c = Connect();
  ASSERT_TRUE(c);
  ASSERT_OK(c->Mkdir("/d", 0750));
  ASSERT_OK(c->Symlink("target", "/d/l"));
  auto f = c->Open("/d/f", O_CREAT | O_RDWR, 0640);
  ASSERT_OK(f);
  ASSERT_OK(f->Close());
  ASSERT_OK(c->Rename("/d/f", "/d/g"));
  ASSERT_OK(c->Link("/d/g", "/d/h"));
  // The mount sees each change.
  auto st = fs().GetStat("/d/g");
  ASSERT_OK(st);
  EXPECT_EQ(st->mode, S_IFREG | 0640u);
  EXPECT_EQ(st->nlink, 2u);
  auto target = fs().Readlink("/d/l");
  ASSERT_OK(target);
  EXPECT_EQ(*target, "target");
  // And the client sees the mount's.
  ASSERT_OK(fs().Mkdir("/d/sub"));
  auto ents = c->ReadDir("/d");
  ASSERT_OK(ents);
  std::vector<std::string> names;
  for (auto& e : *ents) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"g", "h", "l", "sub"}));
  EXPECT_ERRNO(c->Rmdir("/d"), ENOTEMPTY);
  EXPECT_ERRNO(c->Open("/nope", O_RDONLY), ENOENT);
  ASSERT_OK(c->Unlink("/d/h"));
  EXPECT_ERRNO(fs().GetStat("/d/h"), ENOENT);
  auto sfs = c->GetStatFs();
  ASSERT_OK(sfs);
  EXPECT_EQ(sfs->free_blocks, fs().GetStatFs()->free_blocks);
  ASSERT_OK(c->Unmount());
  EXPECT_ERRNO(c->GetStat("/d"), ENOTCONN);
}

TEST_F(ClientTest, ManyDirectoryEntriesArePaged) {
  auto c = Connect();
  ASSERT_TRUE(c);
  ASSERT_OK(fs().Mkdir("/big"));
  for (int i = 0; i < 600; ++i) {
    auto f = fs().Open("/big/a-rather-long-file-name-to-fill-pages-" + std::to_string(i), O_CREAT | O_WRONLY);
    ASSERT_OK(f);
  }
  auto ents = c->ReadDir("/big");
  ASSERT_OK(ents);
  EXPECT_EQ(ents->size(), 600u);
}

TEST_F(ClientTest, DataWrittenByEitherSideIsReadByTheOther) {
  auto c = Connect();
  ASSERT_TRUE(c);
  auto data = Pattern(256 * 1024, 7);
  ASSERT_OK(testutil::WriteWhole(*c, "/f", data));  // appends: through the mount
  auto back = testutil::ReadWhole(fs(), "/f");
  ASSERT_OK(back);
  EXPECT_EQ(*back, data);

  auto cf = c->Open("/f", O_RDWR);
  ASSERT_OK(cf);
  auto lf = fs().Open("/f", O_RDWR);
  ASSERT_OK(lf);
  for (int round = 0; round < 3; ++round) {
    auto a = Pattern(4096, 100 + round);
    ASSERT_OK(cf->Pwrite(a.data(), a.size(), 8192));  // direct, in place
    std::vector<uint8_t> got(4096);
    ASSERT_OK(lf->Pread(got.data(), got.size(), 8192));
    EXPECT_EQ(got, a) << "round " << round;
    auto b = Pattern(4096, 200 + round);
    ASSERT_OK(lf->Pwrite(b.data(), b.size(), 8192));
    ASSERT_OK(cf->Pread(got.data(), got.size(), 8192));
    EXPECT_EQ(got, b) << "round " << round;
  }
}

TEST_F(ClientTest, OverwritesAndReadsInsideTheFileSendNoRequest) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(1 << 20, 3)));
  auto c = Connect();
  ASSERT_TRUE(c);
  auto f = c->Open("/f", O_RDWR);
  ASSERT_OK(f);
  std::vector<uint8_t> buf(4096, 0x11), got(4096);
  ASSERT_OK(f->Pwrite(buf.data(), buf.size(), 0));  // leases the range
  ASSERT_OK(f->Pread(got.data(), got.size(), 0));   // atime due: once through the mount
  ASSERT_OK(f->Pread(got.data(), got.size(), 0));
  auto* cfs = ClientOf(*c);
  ASSERT_NE(cfs, nullptr);
  uint64_t before = cfs->requests();
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK(f->Pread(got.data(), got.size(), 0));
    ASSERT_EQ(got, buf);
  }
  EXPECT_EQ(cfs->requests(), before) << "reads of leased data must not ask the mount";
  before = cfs->requests();
  for (int i = 0; i < 200; ++i) ASSERT_OK(f->Pwrite(buf.data(), buf.size(), 0));
  // At most the mtime stamps of a coarse clock tick (4 ms) apart.
  EXPECT_LE(cfs->requests() - before, 20u);
}

TEST_F(ClientTest, TruncateByTheMountRevokesTheClientsLeaseAndMapping) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(64 * 1024, 5)));
  auto c = Connect();
  ASSERT_TRUE(c);
  auto f = c->Open("/f", O_RDWR);
  ASSERT_OK(f);
  auto m = f->Map(0, 64 * 1024, Prot::kReadWrite);
  ASSERT_OK(m);
  Recorder rec;
  m->OnInvalidate(rec.Callback());
  std::vector<uint8_t> got(4096);
  ASSERT_OK(f->Pread(got.data(), got.size(), 32768));
  m->data()[40000] = 0x42;  // faults through the mount
  ASSERT_OK(m->Persist(m->data() + 40000, 1));
  auto lf = fs().Open("/f", O_RDWR);
  ASSERT_OK(lf);
  uint8_t b = 0;
  ASSERT_OK(lf->Pread(&b, 1, 40000));
  EXPECT_EQ(b, 0x42);  // the client's store is in the device

  ASSERT_OK(lf->Truncate(16 * 1024));
  EXPECT_TRUE(rec.Heard(InvalidateReason::kTruncate));
  Status past = Guarded([&] { b = m->data()[40000]; });
  EXPECT_ERRNO(past, EFAULT);  // beyond EOF now
  auto n = f->Pread(got.data(), got.size(), 32768);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0u);  // the cached size was forgotten
  // Inside EOF the mapping faults again and sees the data.
  EXPECT_EQ(m->data()[100], Pattern(64 * 1024, 5)[100]);
}

TEST_F(ClientTest, ClientStoresAreSeenThroughAnotherClientsMappingAndTheMount) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", std::vector<uint8_t>(64 * 1024, 0)));
  auto a = Connect(), b = Connect();
  ASSERT_TRUE(a && b);
  auto fa = a->Open("/f", O_RDWR), fb = b->Open("/f", O_RDWR);
  ASSERT_OK(fa);
  ASSERT_OK(fb);
  auto ma = fa->Map(0, 64 * 1024, Prot::kReadWrite), mb = fb->Map(0, 64 * 1024, Prot::kReadWrite);
  ASSERT_OK(ma);
  ASSERT_OK(mb);
  std::memcpy(ma->data() + 4096, "from a", 6);
  ASSERT_OK(ma->Persist(ma->data() + 4096, 6));
  EXPECT_EQ(std::memcmp(mb->data() + 4096, "from a", 6), 0);
  auto lf = fs().Open("/f", O_RDWR);
  ASSERT_OK(lf);
  char buf[6];
  ASSERT_OK(lf->Pread(buf, 6, 4096));
  EXPECT_EQ(std::memcmp(buf, "from a", 6), 0);
  ASSERT_OK(lf->Pwrite("mount!", 6, 8192));
  EXPECT_EQ(std::memcmp(ma->data() + 8192, "mount!", 6), 0);
  EXPECT_EQ(std::memcmp(mb->data() + 8192, "mount!", 6), 0);
}

TEST_F(ClientTest, PunchCloneAndCopyOnWriteRevokeTheOtherClientsMapping) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(64 * 1024, 9)));
  ASSERT_OK(testutil::WriteWhole(fs(), "/src", Pattern(64 * 1024, 10)));
  auto a = Connect(), b = Connect();
  ASSERT_TRUE(a && b);
  auto fa = a->Open("/f", O_RDWR), fb = b->Open("/f", O_RDWR);
  ASSERT_OK(fa);
  ASSERT_OK(fb);
  auto ma = fa->Map(0, 64 * 1024, Prot::kReadWrite);
  ASSERT_OK(ma);
  Recorder rec;
  ma->OnInvalidate(rec.Callback());
  auto touch = [&] { volatile uint8_t v = ma->data()[0] + ma->data()[20000] + ma->data()[50000]; (void)v; };
  touch();
  // A punch by the other client.
  ASSERT_OK(fb->Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 16384, 8192));
  EXPECT_TRUE(rec.Heard(InvalidateReason::kTruncate));
  EXPECT_EQ(ma->data()[16384 + 10], 0);  // a hole now
  // A clone onto the file, by the other client.
  auto src = b->Open("/src", O_RDONLY);
  ASSERT_OK(src);
  size_t before = rec.count();
  touch();
  ASSERT_OK(fb->CloneRange(*src, 0, 16384, 32768));
  EXPECT_GT(rec.count(), before);
  EXPECT_EQ(ma->data()[32768 + 5], Pattern(64 * 1024, 10)[5]);
  // Now f shares blocks with src: a store by b copies, and a's mapping of
  // that range is revoked (it must see b's new block).
  auto mb = fb->Map(0, 64 * 1024, Prot::kReadWrite);
  ASSERT_OK(mb);
  touch();
  before = rec.count();
  mb->data()[32768] = 0x77;
  ASSERT_OK(mb->Persist(mb->data() + 32768, 1));
  EXPECT_TRUE(rec.Heard(InvalidateReason::kCopyOnWrite));
  EXPECT_EQ(ma->data()[32768], 0x77);
  std::vector<uint8_t> s(1);
  ASSERT_OK(src->Pread(s.data(), 1, 0));
  EXPECT_EQ(s[0], Pattern(64 * 1024, 10)[0]) << "the clone source must keep its byte";
}

TEST_F(ClientTest, AppendsFromTwoClientsInterleaveWhole) {
  auto a = Connect(), b = Connect();
  ASSERT_TRUE(a && b);
  auto fa = a->Open("/log", O_CREAT | O_WRONLY | O_APPEND), fb = b->Open("/log", O_CREAT | O_WRONLY | O_APPEND);
  ASSERT_OK(fa);
  ASSERT_OK(fb);
  for (int i = 0; i < 50; ++i) {
    ASSERT_OK(fa->Write("aaaa", 4));
    ASSERT_OK(fb->Write("bbbb", 4));
  }
  auto st = fs().GetStat("/log");
  ASSERT_OK(st);
  EXPECT_EQ(st->size, 400u);
}

TEST_F(ClientTest, ReflinkAndDedupeThroughTheClient) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/a", Pattern(64 * 1024, 1)));
  auto c = Connect();
  ASSERT_TRUE(c);
  auto a = c->Open("/a", O_RDONLY), b = c->Open("/b", O_CREAT | O_RDWR);
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(b->Clone(*a));
  auto ext = b->Fiemap();
  ASSERT_OK(ext);
  ASSERT_FALSE(ext->empty());
  EXPECT_TRUE((*ext)[0].flags & kExtentShared);
  auto same = b->DedupeRange(*a, 0, 64 * 1024, 0);
  ASSERT_OK(same);
  EXPECT_EQ(*same, 64u * 1024);
  // A write through the client to a shared block copies it.
  ASSERT_OK(b->Pwrite("x", 1, 0));
  auto back = testutil::ReadWhole(fs(), "/a");
  ASSERT_OK(back);
  EXPECT_EQ(*back, Pattern(64 * 1024, 1));
  auto other = Connect();
  ASSERT_TRUE(other);
  auto o = other->Open("/a", O_RDONLY);
  ASSERT_OK(o);
  EXPECT_ERRNO(b->CloneRange(*o, 0, 0, 0), EXDEV);  // another connection, another filesystem
}

TEST_F(ClientTest, AnUnlinkedOpenFileLivesUntilTheClientClosesIt) {
  auto c = Connect();
  ASSERT_TRUE(c);
  uint64_t free0 = FreeBlocks();
  auto f = c->Open("/tmpf", O_CREAT | O_RDWR);
  ASSERT_OK(f);
  auto data = Pattern(1 << 20, 4);
  ASSERT_OK(f->Pwrite(data.data(), data.size(), 0));
  ASSERT_OK(c->Unlink("/tmpf"));
  std::vector<uint8_t> got(data.size());
  ASSERT_OK(f->Pread(got.data(), got.size(), 0));
  EXPECT_EQ(got, data);
  EXPECT_LT(FreeBlocks(), free0);
  ASSERT_OK(f->Close());
  // The close rides on the client's next request: once that returned, the
  // orphan is gone.
  ASSERT_OK(c->GetStat("/"));
  EXPECT_EQ(FreeBlocks(), free0);
}

TEST_F(ClientTest, StoppingTheServerRevokesAndDisconnectsClients) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(16 * 1024, 2)));
  auto c = Connect();
  ASSERT_TRUE(c);
  auto f = c->Open("/f", O_RDWR);
  ASSERT_OK(f);
  auto m = f->Map(0, 16 * 1024, Prot::kRead);
  ASSERT_OK(m);
  Recorder rec;
  m->OnInvalidate(rec.Callback());
  EXPECT_EQ(m->data()[0], Pattern(16 * 1024, 2)[0]);
  server_->Stop();
  EXPECT_TRUE(rec.Heard(InvalidateReason::kRemoved));
  // The socket's EOF follows the stop's revocation: the program hears it once.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(rec.count(), 1u);
  Status st = Guarded([&] { volatile uint8_t v = m->data()[0]; (void)v; });
  EXPECT_FALSE(st.ok());
  EXPECT_ERRNO(f->Pwrite("x", 1, 0), ENOTCONN);
  EXPECT_ERRNO(c->GetStat("/f"), ENOTCONN);
  ASSERT_OK(m->Unmap());
  ASSERT_OK(f->Close());
  ASSERT_OK(c->Unmount());
  ExpectFsckClean(false);
}

TEST_F(ClientTest, RemovalReachesEveryClient) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(16 * 1024, 8)));
  std::vector<std::unique_ptr<Filesystem>> clients;
  std::vector<File> files;
  std::vector<Mapping> maps;
  std::vector<std::unique_ptr<Recorder>> recs;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(Connect());
    ASSERT_TRUE(clients.back());
    auto f = clients.back()->Open("/f", O_RDWR);
    ASSERT_OK(f);
    auto m = f->Map(0, 16 * 1024, Prot::kReadWrite);
    ASSERT_OK(m);
    recs.push_back(std::make_unique<Recorder>());
    m->OnInvalidate(recs.back()->Callback());
    m->data()[i * 4096] = static_cast<uint8_t>(0xa0 + i);
    ASSERT_OK(m->Persist(m->data() + i * 4096, 1));
    files.push_back(std::move(*f));
    maps.push_back(std::move(*m));
  }
  auto idle = Connect();  // holds nothing: told all the same, and lets go of the device
  ASSERT_TRUE(idle);
  ASSERT_OK(clients[0]->RemoveDevice());
  EXPECT_EQ(ClientOf(*idle)->device()->state(), DeviceState::kDead);
  uint64_t sent = ClientOf(*idle)->requests();
  EXPECT_ERRNO(idle->GetStat("/f"), ENODEV);
  EXPECT_EQ(ClientOf(*idle)->requests(), sent) << "a removed device needs no request to say so";
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(recs[i]->Heard(InvalidateReason::kRemoved)) << "client " << i;
    EXPECT_ERRNO(files[i].Pwrite("x", 1, 0), ENODEV);
    EXPECT_ERRNO(clients[i]->GetStat("/f"), ENODEV);
  }
  maps.clear();
  files.clear();
  clients.clear();
  server_->Stop();
  ASSERT_OK(fs().Unmount());
  fs_.reset();
  MountNow();
  auto back = testutil::ReadWhole(fs(), "/f");
  ASSERT_OK(back);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*back)[i * 4096], 0xa0 + i);
}

TEST_F(ClientTest, MemoryFailureInASharedBlockReachesBothClients) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/a", Pattern(32 * 1024, 6)));
  {
    auto a = fs().Open("/a", O_RDONLY), b = fs().Open("/b", O_CREAT | O_RDWR);
    ASSERT_OK(a);
    ASSERT_OK(b);
    ASSERT_OK(b->Clone(*a));
  }
  auto ca = Connect(), cb = Connect();
  ASSERT_TRUE(ca && cb);
  auto fa = ca->Open("/a", O_RDONLY), fb = cb->Open("/b", O_RDONLY);
  ASSERT_OK(fa);
  ASSERT_OK(fb);
  auto ma = fa->Map(0, 32 * 1024, Prot::kRead), mb = fb->Map(0, 32 * 1024, Prot::kRead);
  ASSERT_OK(ma);
  ASSERT_OK(mb);
  Recorder ra, rb;
  ma->OnInvalidate(ra.Callback());
  mb->OnInvalidate(rb.Callback());
  EXPECT_EQ(ma->data()[8192], mb->data()[8192]);
  auto ext = fa->Fiemap();
  ASSERT_OK(ext);
  uint64_t bad = (*ext)[0].device_offset + 8192;
  ASSERT_OK(ca->InjectPoison(bad, 4096));
  EXPECT_TRUE(ra.Heard(InvalidateReason::kMemoryFailure));
  EXPECT_TRUE(rb.Heard(InvalidateReason::kMemoryFailure));
  std::vector<uint8_t> got(4096);
  EXPECT_ERRNO(fa->Pread(got.data(), got.size(), 8192), EIO);
  EXPECT_ERRNO(fb->Pread(got.data(), got.size(), 8192), EIO);
  EXPECT_ERRNO(Guarded([&] { volatile uint8_t v = ma->data()[8192]; (void)v; }), EIO);
  // Elsewhere both go on.
  ASSERT_OK(fa->Pread(got.data(), got.size(), 0));
  EXPECT_EQ(ma->data()[20000], Pattern(32 * 1024, 6)[20000]);
  EXPECT_EQ(mb->data()[20000], Pattern(32 * 1024, 6)[20000]);
}

TEST_F(ClientTest, AForkedChildIsNotAClient) {
  ASSERT_OK(testutil::WriteWhole(fs(), "/f", Pattern(16 * 1024, 3)));
  auto c = Connect();
  ASSERT_TRUE(c);
  auto f = c->Open("/f", O_RDWR);
  ASSERT_OK(f);
  auto m = f->Map(0, 16 * 1024, Prot::kReadWrite);
  ASSERT_OK(m);
  m->data()[0] = 1;  // installed in the parent
  pid_t pid = testutil::ForkChild([&] {
    // Neither the channel nor the device came along; every call says so.
    if (c->GetStat("/f").error().err() != ENOTCONN) return 1;
    if (f->Pwrite("x", 1, 0).error().err() != ENOTCONN) return 2;
    if (Guarded([&] { m->data()[0] = 2; }).ok()) return 3;  // the mapping was not inherited
    return 0;
  });
  int status = testutil::WaitChild(pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The parent goes on.
  EXPECT_EQ(m->data()[0], 1);
  ASSERT_OK(f->Pwrite("y", 1, 1));
  EXPECT_EQ(m->data()[1], 'y');
}

// Blocks freed under a client's readers are reused by another file at once:
// the client's reads (direct and through its mapping) must never show that
// file's bytes — each sees the old data, zeroes, EOF, or an error.
TEST_F(ClientTest, ReadersNeverSeeTheNextOwnersBytes) {
  constexpr size_t kSize = 256 * 1024;
  const std::vector<uint8_t> mine(kSize, 0xaa), other(kSize, 0xbb);
  ASSERT_OK(testutil::WriteWhole(fs(), "/a", mine));
  auto c = Connect();
  ASSERT_TRUE(c);
  auto fa = c->Open("/a", O_RDONLY);
  ASSERT_OK(fa);
  auto m = fa->Map(0, kSize, Prot::kRead);
  ASSERT_OK(m);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<uint64_t> reads{0};
  auto check = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i)
      if (p[i] != 0xaa && p[i] != 0) {
        bad.fetch_add(1);
        return;
      }
  };
  std::thread reader([&] {
    std::vector<uint8_t> buf(4096);
    for (uint64_t i = 0; !stop.load(); ++i) {
      uint64_t off = (i * 7919 % (kSize / 4096)) * 4096;
      auto n = fa->Pread(buf.data(), buf.size(), off);
      if (n.has_value()) check(buf.data(), *n);
      reads.fetch_add(1);
    }
  });
  std::thread mapper([&] {
    uint8_t copy[64];
    for (uint64_t i = 0; !stop.load(); ++i) {
      uint64_t off = (i * 104729 % (kSize / 64)) * 64;
      if (Guarded([&] { std::memcpy(copy, m->data() + off, sizeof copy); }).ok()) check(copy, sizeof copy);
    }
  });
  auto la = fs().Open("/a", O_RDWR);
  ASSERT_OK(la);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (int round = 0; round < 40 || (reads.load() < 100 && std::chrono::steady_clock::now() < until); ++round) {
    ASSERT_OK(la->Truncate(0));  // the blocks go back to the allocator...
    ASSERT_OK(testutil::WriteWhole(fs(), "/b", other));  // ...and to /b
    ASSERT_OK(fs().Unlink("/b"));
    ASSERT_OK(la->Pwrite(mine.data(), mine.size(), 0));
  }
  stop.store(true);
  reader.join();
  mapper.join();
  EXPECT_EQ(bad.load(), 0) << "a client read showed another file's bytes";
  EXPECT_GT(reads.load(), 10u);  // the readers did run alongside (slow under load: each miss asks the mount)
}

}  // namespace
}  // namespace udax
