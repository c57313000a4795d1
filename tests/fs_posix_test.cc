// tests/fs_posix_test.cc — library behaviour a kernel filesystem has
// (issue 13): atime under relatime / strictatime / noatime (lazy, persisted),
// setuid/setgid killed by data changes and chown for the thread's Caller,
// and an open directory removed or replaced by rename living as an orphan
// until its last close, or reclaimed by the next mount after a crash.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <time.h>

#include <functional>
#include <string>

#include "test_util.h"

namespace udax {
namespace {

using namespace udax::testutil;

class PosixTest : public FsFixture {
 protected:
  Stat StatOf(const std::string& p) {
    auto s = fs().GetLstat(p);
    EXPECT_TRUE(s.has_value()) << p << ": " << s.error().ToString();
    return s.has_value() ? *s : Stat{};
  }
  void ReadOnce(const std::string& p) {
    auto f = fs().Open(p, O_RDONLY);
    ASSERT_TRUE(f.has_value()) << f.error().ToString();
    char c;
    ASSERT_OK(f->Pread(&c, 1, 0));
    ASSERT_OK(f->Close());
  }
  void MakeFile(const std::string& p) {
    auto f = fs().Open(p, O_CREAT | O_RDWR, 0644);
    ASSERT_TRUE(f.has_value()) << f.error().ToString();
    ASSERT_OK(f->Pwrite("hello", 5, 0));
    ASSERT_OK(f->Close());
  }
  void Remount(AtimeMode mode) {
    UnmountNow();
    MountOptions o;
    o.atime = mode;
    MountNow(o);
  }
};

bool After(const Timespec& a, const Timespec& b) { return a.sec > b.sec || (a.sec == b.sec && a.nsec > b.nsec); }

TEST_F(PosixTest, RelatimeUpdatesOnceAfterEachChange) {
  MakeFile("/f");
  Stat before = StatOf("/f");
  ReadOnce("/f");
  Stat after_read = StatOf("/f");
  EXPECT_TRUE(After(after_read.atime, before.mtime)) << "the first read after a write updates atime";
  ReadOnce("/f");
  EXPECT_EQ(StatOf("/f").atime, after_read.atime) << "a second read does not";
  // an overwrite (the lazy fast path) makes it due again
  {
    auto f = fs().Open("/f", O_RDWR);
    ASSERT_TRUE(f.has_value());
    struct timespec d{0, 20 * 1000 * 1000};
    nanosleep(&d, nullptr);  // past the coarse clock's tick
    ASSERT_OK(f->Pwrite("j", 1, 0));
    EXPECT_TRUE(f->AtimeUpdateDue());
    char c;
    ASSERT_OK(f->Pread(&c, 1, 0));
    EXPECT_FALSE(f->AtimeUpdateDue());
    ASSERT_OK(f->Close());
  }
  Stat s = StatOf("/f");
  EXPECT_TRUE(!After(s.mtime, s.atime)) << "atime not before mtime after the read";
  // lazy, but persisted at the last close
  Remount(AtimeMode::kRelatime);
  EXPECT_EQ(StatOf("/f").atime, s.atime);
}

TEST_F(PosixTest, RelatimeUpdatesADayOldAtime) {
  MakeFile("/f");
  Stat s = StatOf("/f");
  Timespec old{s.mtime.sec - 2 * 86400, 0};
  ASSERT_OK(fs().Utimens("/f", old, Timespec{s.mtime.sec - 3 * 86400, 0}));  // atime after mtime, but old
  ReadOnce("/f");
  EXPECT_TRUE(After(StatOf("/f").atime, old));
}

TEST_F(PosixTest, StrictatimeAndNoatime) {
  MakeFile("/f");
  Remount(AtimeMode::kStrictatime);
  ReadOnce("/f");
  Timespec a1 = StatOf("/f").atime;
  struct timespec d{0, 2 * 1000 * 1000};
  nanosleep(&d, nullptr);
  ReadOnce("/f");
  EXPECT_TRUE(After(StatOf("/f").atime, a1)) << "strictatime: every read";
  Remount(AtimeMode::kNoatime);
  {
    auto f = fs().Open("/f", O_RDWR);
    ASSERT_TRUE(f.has_value());
    ASSERT_OK(f->Pwrite("x", 1, 5));  // a change: relatime would update next
    EXPECT_FALSE(f->AtimeUpdateDue());
    ASSERT_OK(f->Close());
  }
  Timespec a2 = StatOf("/f").atime;
  ReadOnce("/f");
  EXPECT_EQ(StatOf("/f").atime, a2) << "noatime: never";
}

// A caller that is not the owner, not in the group, without CAP_FSETID.
Caller Stranger() {
  Caller c;
  c.uid = c.gid = 65534;
  c.has_fsetid = [] { return false; };
  c.in_group = [](uint32_t) { return false; };
  return c;
}
Caller Capable() {
  Caller c;
  c.has_fsetid = [] { return true; };
  return c;
}

TEST_F(PosixTest, DataChangesKillSetuidSetgidForAStranger) {
  const std::vector<std::pair<std::string, std::function<Status(File&)>>> ops = {
      {"pwrite (fast path)", [](File& f) { return f.Pwrite("a", 1, 0).error(); }},
      {"pwrite (extend)", [](File& f) { return f.Pwrite("a", 1, 9000).error(); }},
      {"truncate", [](File& f) { return f.Truncate(100); }},
      {"fallocate", [](File& f) { return f.Fallocate(0, 0, 8192); }},
      {"fallocate keep-size", [](File& f) { return f.Fallocate(FALLOC_FL_KEEP_SIZE, 0, 16384); }},
      {"punch", [](File& f) { return f.Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096); }},
      {"zero range", [](File& f) { return f.Fallocate(FALLOC_FL_ZERO_RANGE, 0, 4096); }},
  };
  for (const auto& [name, op] : ops) {
    for (const Caller& who : {Stranger(), Capable()}) {
      bool capable = who.has_fsetid();
      MakeFile("/s");
      ASSERT_OK(fs().Chmod("/s", 06666));
      auto f = fs().Open("/s", O_RDWR);
      ASSERT_TRUE(f.has_value());
      {
        CallerScope as(who);
        ASSERT_OK(op(*f)) << name;
        EXPECT_EQ(who.privs_killed, !capable) << name;
      }
      EXPECT_EQ(StatOf("/s").mode & 07777, capable ? 06666u : 0666u) << name << (capable ? " (capable)" : "");
      ASSERT_OK(f->Close());
      ASSERT_OK(fs().Unlink("/s"));
    }
  }
}

TEST_F(PosixTest, SetgidOfANonExecutableFileStaysForItsGroup) {
  MakeFile("/s");
  ASSERT_OK(fs().Chown("/s", 1000, 1000));
  ASSERT_OK(fs().Chmod("/s", 06666));
  Caller member = Stranger();
  member.in_group = [](uint32_t gid) { return gid == 1000; };
  auto f = fs().Open("/s", O_RDWR);
  ASSERT_TRUE(f.has_value());
  {
    CallerScope as(member);
    ASSERT_OK(f->Pwrite("a", 1, 0));
  }
  EXPECT_EQ(StatOf("/s").mode & 07777, 02666u);  // setuid always goes
  ASSERT_OK(fs().Chmod("/s", 06676));             // group-executable: setgid is real
  {
    CallerScope as(member);
    ASSERT_OK(f->Pwrite("a", 1, 0));
  }
  EXPECT_EQ(StatOf("/s").mode & 07777, 0676u);
  ASSERT_OK(f->Close());
}

TEST_F(PosixTest, ChownKillsSetuidEvenWhenCapable) {
  MakeFile("/s");
  ASSERT_OK(fs().Chmod("/s", 06777));
  Caller root = Capable();
  {
    CallerScope as(root);
    ASSERT_OK(fs().Chown("/s", 1, UINT32_MAX));
  }
  EXPECT_EQ(StatOf("/s").mode & 07777, 0777u);  // and setgid of a group-executable file
  ASSERT_OK(fs().Chmod("/s", 06666));
  {
    CallerScope as(root);
    ASSERT_OK(fs().Chown("/s", 2, UINT32_MAX));
  }
  EXPECT_EQ(StatOf("/s").mode & 07777, 02666u);
  ASSERT_OK(fs().Mkdir("/d", 02755));
  ASSERT_OK(fs().Chown("/d", 3, 3));
  EXPECT_EQ(StatOf("/d").mode & 07777, 02755u) << "a directory keeps its setgid";
}

TEST_F(PosixTest, OpenDirectoryReplacedOrRemovedIsAnOrphanUntilClosed) {
  ASSERT_OK(fs().Mkdir("/victim"));
  ASSERT_OK(fs().Mkdir("/other"));
  uint64_t ino = StatOf("/victim").ino;
  auto d = fs().Open("/victim", O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  ASSERT_OK(fs().Rename("/other", "/victim"));
  ASSIGN_OR_FAIL(Stat s, d->GetStat());
  EXPECT_EQ(s.ino, ino);
  EXPECT_EQ(s.nlink, 0u);
  ASSIGN_OR_FAIL(Stat by_ino, fs().GetLstat(PathAt(ino, std::string_view())));
  EXPECT_EQ(by_ino.nlink, 0u);
  EXPECT_ERRNO(fs().Mkdir(PathAt(ino, "new")), ENOENT);
  ASSERT_OK(d->Close());
  EXPECT_ERRNO(fs().GetLstat(PathAt(ino, std::string_view())), ENOENT) << "freed at the last close";
  ExpectFsckClean();
}

TEST_F(PosixTest, RemovedOpenDirectoryIsReclaimedAfterACrash) {
  ASSERT_OK(fs().Mkdir("/held"));
  uint64_t ino = StatOf("/held").ino;
  auto d = fs().Open("/held", O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(d.has_value());
  ASSERT_OK(fs().Rmdir("/held"));
  CrashForTesting(fs());
  d->Close().IgnoreError();
  fs_.reset();
  MountNow();
  EXPECT_ERRNO(fs().GetLstat(PathAt(ino, std::string_view())), ENOENT);
  ExpectFsckClean();
}

}  // namespace
}  // namespace udax
