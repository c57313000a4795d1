// tests/fs_namespace_test.cc — the namespace half of the public API: create /
// open flags, mkdir/rmdir, unlink, rename in all its shapes, hard links,
// symlinks, name/path errors, stat times, readdir, a 100k-entry directory,
// unlink of open files and orphan reclaim after a crash.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace udax {
namespace {

using namespace udax::testutil;

class NamespaceTest : public FsFixture {
 protected:
  uint64_t Ino(const std::string& p) {
    auto s = fs().GetLstat(p);
    EXPECT_TRUE(s.has_value()) << p << ": " << s.error().ToString();
    return s.has_value() ? s->ino : 0;
  }
  uint32_t Nlink(const std::string& p) {
    auto s = fs().GetLstat(p);
    EXPECT_TRUE(s.has_value()) << p << ": " << s.error().ToString();
    return s.has_value() ? s->nlink : 0;
  }
  uint64_t UsedInodes() {
    auto s = fs().GetStatFs();
    EXPECT_TRUE(s.has_value());
    return s.has_value() ? s->used_inodes : 0;
  }
  std::set<std::string> Names(const std::string& dir) {
    std::set<std::string> out;
    auto r = fs().ReadDir(dir);
    EXPECT_TRUE(r.has_value()) << dir << ": " << r.error().ToString();
    if (r.has_value()) {
      for (const auto& e : *r) {
        EXPECT_TRUE(out.insert(e.name).second) << "duplicate " << e.name;
      }
    }
    return out;
  }
  std::string ReadStr(const std::string& p) {
    auto r = ReadWhole(fs(), p);
    EXPECT_TRUE(r.has_value()) << p << ": " << r.error().ToString();
    return r.has_value() ? std::string(r->begin(), r->end()) : std::string("<error>");
  }
};

// ---- create / open -----------------------------------------------------------

TEST_F(NamespaceTest, CreateOpenExclTrunc) {
  {
    ASSIGN_OR_FAIL(File f, fs().Open("/a", O_CREAT | O_RDWR, 0640));
    EXPECT_TRUE(f.is_open());
    ASSIGN_OR_FAIL(size_t n, f.Write("hello", 5));
    EXPECT_EQ(n, 5u);
    ASSIGN_OR_FAIL(Stat st, f.GetStat());
    EXPECT_EQ(st.mode, S_IFREG | 0640u);
    EXPECT_EQ(st.nlink, 1u);
    EXPECT_EQ(st.size, 5u);
  }
  EXPECT_ERRNO(fs().Open("/a", O_CREAT | O_EXCL | O_RDWR), EEXIST);
  EXPECT_EQ(ReadStr("/a"), "hello");
  // O_CREAT without O_EXCL opens the existing file, keeping its content and mode.
  {
    ASSIGN_OR_FAIL(File f, fs().Open("a", O_CREAT | O_RDWR, 0600));
    ASSIGN_OR_FAIL(Stat st, f.GetStat());
    EXPECT_EQ(st.size, 5u);
    EXPECT_EQ(st.mode, S_IFREG | 0640u);
  }
  uint64_t ino = Ino("/a");
  {
    ASSIGN_OR_FAIL(File f, fs().Open("/a", O_RDWR | O_TRUNC));
    EXPECT_EQ(f.ino(), ino);
    ASSIGN_OR_FAIL(Stat st, f.GetStat());
    EXPECT_EQ(st.size, 0u);
    EXPECT_EQ(st.blocks, 0u);
  }
  ASSIGN_OR_FAIL(Stat st, fs().GetStat("/a"));
  EXPECT_EQ(st.size, 0u);
  EXPECT_EQ(st.ino, ino);

  EXPECT_ERRNO(fs().Open("/nope", O_RDONLY), ENOENT);
  EXPECT_ERRNO(fs().Open("/nope/x", O_CREAT | O_RDWR), ENOENT);
  EXPECT_ERRNO(fs().Open("/", O_RDWR), EISDIR);
  EXPECT_ERRNO(fs().Open("/", O_WRONLY), EISDIR);
  EXPECT_OK(fs().Open("/", O_RDONLY | O_DIRECTORY));
  EXPECT_ERRNO(fs().Open("/a", O_RDONLY | O_DIRECTORY), ENOTDIR);
  EXPECT_ERRNO(fs().Open("/a/x", O_CREAT | O_RDWR), ENOTDIR);
  EXPECT_ERRNO(fs().Open("/a/", O_RDONLY), ENOTDIR);
  EXPECT_ERRNO(fs().Open("/newfile/", O_CREAT | O_RDWR), EISDIR);
  EXPECT_ERRNO(fs().GetStat("/newfile"), ENOENT);
  // Exclusive create of a new name works.
  EXPECT_OK(fs().Open("/b", O_CREAT | O_EXCL | O_WRONLY));
  EXPECT_NE(Ino("/b"), ino);
  ExpectFsckClean();
}

TEST_F(NamespaceTest, OpenFlagsAccessModes) {
  ASSERT_OK(WriteWhole(fs(), "/f", Bytes("data")));
  char buf[8];
  {
    ASSIGN_OR_FAIL(File r, fs().Open("/f", O_RDONLY));
    EXPECT_ERRNO(r.Pwrite("x", 1, 0), EBADF);
    EXPECT_ERRNO(r.Write("x", 1), EBADF);
    EXPECT_ERRNO(r.Fallocate(0, 0, 4096), EBADF);
    ASSIGN_OR_FAIL(size_t n, r.Pread(buf, sizeof buf, 0));
    EXPECT_EQ(n, 4u);
  }
  {
    ASSIGN_OR_FAIL(File w, fs().Open("/f", O_WRONLY));
    EXPECT_ERRNO(w.Pread(buf, 1, 0), EBADF);
    EXPECT_ERRNO(w.Read(buf, 1), EBADF);
    EXPECT_OK(w.Pwrite("D", 1, 0));
  }
  {
    ASSIGN_OR_FAIL(File a, fs().Open("/f", O_WRONLY | O_APPEND));
    EXPECT_OK(a.Write("++", 2));
    EXPECT_OK(a.Seek(0));
    EXPECT_OK(a.Write("!", 1));  // O_APPEND ignores the position
  }
  EXPECT_EQ(ReadStr("/f"), "Data++!");
}

// ---- mkdir / rmdir / unlink --------------------------------------------------------

TEST_F(NamespaceTest, MkdirRmdir) {
  uint64_t root_ino = Ino("/");
  EXPECT_EQ(Nlink("/"), 2u);
  ASSERT_OK(fs().Mkdir("/d", 0750));
  ASSIGN_OR_FAIL(Stat st, fs().GetStat("/d"));
  EXPECT_TRUE(S_ISDIR(st.mode));
  EXPECT_EQ(st.mode & 07777, 0750u);
  EXPECT_EQ(st.nlink, 2u);
  EXPECT_EQ(Nlink("/"), 3u);
  EXPECT_ERRNO(fs().Mkdir("/d"), EEXIST);
  EXPECT_ERRNO(fs().Mkdir("/d/"), EEXIST);
  ASSERT_OK(fs().Mkdir("/d/e/"));  // a trailing slash is fine for mkdir
  EXPECT_EQ(Nlink("/d"), 3u);
  EXPECT_EQ(Ino("/d/e/.."), Ino("/d"));
  EXPECT_EQ(Ino("/d/e/../.."), root_ino);
  EXPECT_EQ(Ino("/.."), root_ino);
  EXPECT_EQ(Ino("/d/./e/."), Ino("/d/e"));

  EXPECT_ERRNO(fs().Rmdir("/d"), ENOTEMPTY);
  ASSERT_OK(WriteWhole(fs(), "/d/f", Bytes("x")));
  EXPECT_ERRNO(fs().Rmdir("/d/f"), ENOTDIR);
  EXPECT_ERRNO(fs().Mkdir("/d/f/sub"), ENOTDIR);
  EXPECT_ERRNO(fs().Mkdir("/d/f"), EEXIST);
  EXPECT_ERRNO(fs().Mkdir("/missing/sub"), ENOENT);
  EXPECT_ERRNO(fs().Rmdir("/missing"), ENOENT);
  EXPECT_ERRNO(fs().Unlink("/d"), EISDIR);
  EXPECT_ERRNO(fs().Unlink("/d/e"), EISDIR);
  {
    Status st_root = fs().Rmdir("/");
    EXPECT_TRUE(st_root.err() == EBUSY || st_root.err() == EINVAL) << st_root.ToString();
  }
  {
    Status st_dot = fs().Rmdir("/d/e/.");
    EXPECT_TRUE(st_dot.err() == EINVAL || st_dot.err() == EBUSY) << st_dot.ToString();
  }
  EXPECT_TRUE(fs().GetStat("/d/e").has_value());

  ASSERT_OK(fs().Rmdir("/d/e"));
  EXPECT_EQ(Nlink("/d"), 2u);
  EXPECT_ERRNO(fs().GetStat("/d/e"), ENOENT);
  EXPECT_ERRNO(fs().Rmdir("/d"), ENOTEMPTY);
  ASSERT_OK(fs().Unlink("/d/f"));
  EXPECT_ERRNO(fs().Unlink("/d/f"), ENOENT);
  ASSERT_OK(fs().Rmdir("/d"));
  EXPECT_ERRNO(fs().GetStat("/d"), ENOENT);
  EXPECT_EQ(Nlink("/"), 2u);
  EXPECT_TRUE(Names("/").empty());
  ExpectFsckClean();
}

TEST_F(NamespaceTest, UnlinkRemovesNameAndFreesSpace) {
  uint64_t free0 = FreeBlocks();
  uint64_t inodes0 = UsedInodes();
  ASSERT_OK(WriteWhole(fs(), "/f", Pattern(1 * kMiB, 1)));
  EXPECT_LE(FreeBlocks(), free0 - 256);
  EXPECT_EQ(UsedInodes(), inodes0 + 1);
  ASSERT_OK(WriteWhole(fs(), "/g", Bytes("stay")));
  EXPECT_ERRNO(fs().Unlink("/f/"), ENOTDIR);
  ASSERT_OK(fs().Unlink("/f"));
  EXPECT_ERRNO(fs().GetStat("/f"), ENOENT);
  EXPECT_ERRNO(fs().Open("/f", O_RDONLY), ENOENT);
  EXPECT_EQ(Names("/"), std::set<std::string>{"g"});
  EXPECT_EQ(ReadStr("/g"), "stay");
  ASSERT_OK(fs().Unlink("/g"));
  EXPECT_EQ(FreeBlocks(), free0);
  EXPECT_EQ(UsedInodes(), inodes0);
  ExpectFsckClean();
}

// ---- rename --------------------------------------------------------------------

TEST_F(NamespaceTest, RenameFileOverFile) {
  ASSERT_OK(WriteWhole(fs(), "/a", Pattern(1 * kMiB, 1)));
  uint64_t free_with_a = FreeBlocks();
  uint64_t inodes_with_a = UsedInodes();
  ASSERT_OK(WriteWhole(fs(), "/b", Pattern(2 * kMiB, 2)));
  uint64_t a_ino = Ino("/a"), b_ino = Ino("/b");
  ASSERT_NE(a_ino, b_ino);
  ASSERT_OK(fs().Rename("/a", "/b"));
  EXPECT_ERRNO(fs().GetStat("/a"), ENOENT);
  EXPECT_EQ(Ino("/b"), a_ino);
  EXPECT_EQ(Nlink("/b"), 1u);
  ASSIGN_OR_FAIL(auto data, ReadWhole(fs(), "/b"));
  EXPECT_TRUE(data == Pattern(1 * kMiB, 1));
  // The old /b inode is gone and its 2 MiB are free again.
  EXPECT_EQ(UsedInodes(), inodes_with_a);
  EXPECT_EQ(FreeBlocks(), free_with_a);
  EXPECT_EQ(Names("/"), std::set<std::string>{"b"});
  // Across directories, replacing a file there.
  ASSERT_OK(fs().Mkdir("/d"));
  ASSERT_OK(WriteWhole(fs(), "/d/c", Bytes("ccc")));
  ASSERT_OK(fs().Rename("/b", "/d/c"));
  EXPECT_EQ(Ino("/d/c"), a_ino);
  EXPECT_TRUE(Names("/") == std::set<std::string>{"d"});
  ExpectFsckClean();
  EXPECT_EQ(Ino("/d/c"), a_ino);
}

TEST_F(NamespaceTest, RenameDirOverEmptyDirAndErrors) {
  ASSERT_OK(fs().Mkdir("/x"));
  ASSERT_OK(WriteWhole(fs(), "/x/file", Bytes("in x")));
  ASSERT_OK(fs().Mkdir("/y"));
  ASSERT_OK(fs().Mkdir("/full"));
  ASSERT_OK(WriteWhole(fs(), "/full/f", Bytes("full")));
  ASSERT_OK(WriteWhole(fs(), "/plain", Bytes("plain")));
  uint64_t x_ino = Ino("/x");
  uint64_t inodes = UsedInodes();
  EXPECT_EQ(Nlink("/"), 5u);  // x, y, full

  // dir over non-empty dir; file over dir; dir over file.
  EXPECT_ERRNO(fs().Rename("/x", "/full"), ENOTEMPTY);
  EXPECT_ERRNO(fs().Rename("/plain", "/y"), EISDIR);
  EXPECT_ERRNO(fs().Rename("/x", "/plain"), ENOTDIR);
  EXPECT_ERRNO(fs().Rename("/plain", "/y/"), ENOTDIR);
  EXPECT_ERRNO(fs().Rename("/missing", "/z"), ENOENT);
  EXPECT_ERRNO(fs().Rename("/plain", "/missing/z"), ENOENT);
  EXPECT_ERRNO(fs().Rename("/plain", "/plain/z"), ENOTDIR);
  EXPECT_EQ(ReadStr("/full/f"), "full");
  EXPECT_EQ(ReadStr("/plain"), "plain");
  EXPECT_EQ(ReadStr("/x/file"), "in x");
  EXPECT_TRUE(fs().GetStat("/y").has_value());

  // dir over empty dir: y's inode goes away.
  ASSERT_OK(fs().Rename("/x", "/y"));
  EXPECT_ERRNO(fs().GetStat("/x"), ENOENT);
  EXPECT_EQ(Ino("/y"), x_ino);
  EXPECT_EQ(ReadStr("/y/file"), "in x");
  EXPECT_EQ(Nlink("/"), 4u);
  EXPECT_EQ(Nlink("/y"), 2u);
  EXPECT_EQ(UsedInodes(), inodes - 1);
  EXPECT_EQ(Names("/"), (std::set<std::string>{"y", "full", "plain"}));
  ExpectFsckClean();
}

TEST_F(NamespaceTest, RenameDirOverEmptyDirInAnotherParent) {
  ASSERT_OK(fs().Mkdir("/p"));
  ASSERT_OK(fs().Mkdir("/p/src"));
  ASSERT_OK(fs().Mkdir("/q"));
  ASSERT_OK(fs().Mkdir("/q/dst"));
  ASSERT_OK(fs().Mkdir("/q/other"));
  ASSERT_OK(fs().Rename("/p/src", "/q/dst"));
  EXPECT_EQ(Nlink("/p"), 2u);
  EXPECT_EQ(Nlink("/q"), 4u);
  EXPECT_EQ(Ino("/q/dst/.."), Ino("/q"));
  ExpectFsckClean();
}

TEST_F(NamespaceTest, RenameMovesDirectory) {
  ASSERT_OK(fs().Mkdir("/a"));
  ASSERT_OK(fs().Mkdir("/a/sub"));
  ASSERT_OK(fs().Mkdir("/a/sub/deep"));
  ASSERT_OK(WriteWhole(fs(), "/a/sub/f", Bytes("payload")));
  ASSERT_OK(fs().Mkdir("/b"));
  uint64_t sub = Ino("/a/sub");
  EXPECT_EQ(Nlink("/a"), 3u);
  EXPECT_EQ(Nlink("/b"), 2u);
  EXPECT_EQ(Ino("/a/sub/.."), Ino("/a"));

  ASSERT_OK(fs().Rename("/a/sub", "/b/sub2"));
  EXPECT_ERRNO(fs().GetStat("/a/sub"), ENOENT);
  EXPECT_EQ(Ino("/b/sub2"), sub);
  EXPECT_EQ(Nlink("/a"), 2u);
  EXPECT_EQ(Nlink("/b"), 3u);
  EXPECT_EQ(Nlink("/b/sub2"), 3u);
  // ".." follows the move.
  EXPECT_EQ(Ino("/b/sub2/.."), Ino("/b"));
  EXPECT_EQ(Ino("/b/sub2/deep/../.."), Ino("/b"));
  EXPECT_EQ(ReadStr("/b/sub2/../sub2/f"), "payload");
  EXPECT_TRUE(Names("/a").empty());
  EXPECT_EQ(Names("/b"), std::set<std::string>{"sub2"});

  // Rename within one directory keeps link counts.
  ASSERT_OK(fs().Rename("/b/sub2", "/b/sub3"));
  EXPECT_EQ(Nlink("/b"), 3u);
  EXPECT_EQ(Ino("/b/sub3/.."), Ino("/b"));
  // Move to the root, then rmdir the old parent.
  ASSERT_OK(fs().Rename("/b/sub3", "/top"));
  EXPECT_EQ(Nlink("/b"), 2u);
  EXPECT_EQ(Ino("/top/.."), Ino("/"));
  ASSERT_OK(fs().Rmdir("/b"));
  ExpectFsckClean();
  EXPECT_EQ(Ino("/top/deep/.."), sub);
  EXPECT_EQ(Ino("/top/.."), Ino("/"));
}

TEST_F(NamespaceTest, RenameIntoOwnSubtree) {
  ASSERT_OK(fs().Mkdir("/a"));
  ASSERT_OK(fs().Mkdir("/a/b"));
  ASSERT_OK(fs().Mkdir("/a/b/c"));
  EXPECT_ERRNO(fs().Rename("/a", "/a/x"), EINVAL);
  EXPECT_ERRNO(fs().Rename("/a", "/a/b/c/x"), EINVAL);
  EXPECT_ERRNO(fs().Rename("/a/b", "/a/b/c/x"), EINVAL);
  {
    // Over an existing empty directory in its own subtree: still EINVAL.
    Status s = fs().Rename("/a", "/a/b/c");
    EXPECT_TRUE(s.err() == EINVAL || s.err() == ENOTEMPTY) << s.ToString();
  }
  {
    Status s = fs().Rename("/", "/a/x");
    EXPECT_TRUE(s.err() == EINVAL || s.err() == EBUSY) << s.ToString();
  }
  EXPECT_TRUE(fs().GetStat("/a/b/c").has_value());
  ExpectFsckClean();
}

TEST_F(NamespaceTest, RenameToItself) {
  ASSERT_OK(WriteWhole(fs(), "/f", Bytes("same")));
  ASSERT_OK(fs().Mkdir("/d"));
  uint64_t f = Ino("/f"), d = Ino("/d");
  EXPECT_OK(fs().Rename("/f", "/f"));
  EXPECT_OK(fs().Rename("/d", "/d"));
  EXPECT_OK(fs().Rename("/d", "/d/"));
  EXPECT_EQ(Ino("/f"), f);
  EXPECT_EQ(Ino("/d"), d);
  EXPECT_EQ(ReadStr("/f"), "same");
  // Two hard links to one inode: POSIX says do nothing; both names stay.
  ASSERT_OK(fs().Link("/f", "/g"));
  EXPECT_OK(fs().Rename("/f", "/g"));
  EXPECT_EQ(Ino("/g"), f);
  EXPECT_EQ(Nlink("/g"), 2u);
  EXPECT_EQ(Names("/"), (std::set<std::string>{"f", "g", "d"}));
  ExpectFsckClean();
}

TEST_F(NamespaceTest, RenameOpenTargetKeepsItReadable) {
  ASSERT_OK(WriteWhole(fs(), "/a", Bytes("new")));
  ASSERT_OK(WriteWhole(fs(), "/b", Pattern(256 * 1024, 9)));
  uint64_t free_before_b_gone = FreeBlocks();
  {
    ASSIGN_OR_FAIL(File old, fs().Open("/b", O_RDWR));
    ASSERT_OK(fs().Rename("/a", "/b"));
    EXPECT_EQ(ReadStr("/b"), "new");
    std::vector<uint8_t> buf(256 * 1024);
    ASSIGN_OR_FAIL(size_t n, old.Pread(buf.data(), buf.size(), 0));
    EXPECT_EQ(n, buf.size());
    EXPECT_TRUE(buf == Pattern(256 * 1024, 9));
    ASSIGN_OR_FAIL(Stat st, old.GetStat());
    EXPECT_EQ(st.nlink, 0u);
    EXPECT_EQ(FreeBlocks(), free_before_b_gone);  // still owned by the open file
  }
  EXPECT_EQ(FreeBlocks(), free_before_b_gone + 64);
  ExpectFsckClean();
}

// ---- hard links ------------------------------------------------------------------

TEST_F(NamespaceTest, HardLinks) {
  ASSERT_OK(WriteWhole(fs(), "/f", Bytes("shared")));
  ASSERT_OK(fs().Mkdir("/d"));
  ASSIGN_OR_FAIL(Stat before, fs().GetStat("/f"));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_OK(fs().Link("/f", "/d/g"));
  EXPECT_EQ(Ino("/d/g"), Ino("/f"));
  EXPECT_EQ(Nlink("/f"), 2u);
  EXPECT_EQ(Nlink("/d/g"), 2u);
  ASSIGN_OR_FAIL(Stat after, fs().GetStat("/f"));
  EXPECT_TRUE(after.ctime.sec > before.ctime.sec ||
              (after.ctime.sec == before.ctime.sec && after.ctime.nsec > before.ctime.nsec));
  // Data is shared: write through one name, read through the other.
  {
    ASSIGN_OR_FAIL(File g, fs().Open("/d/g", O_WRONLY));
    ASSERT_OK(g.Pwrite("SH", 2, 0));
    ASSERT_OK(g.Pwrite("+more", 5, 6));
  }
  EXPECT_EQ(ReadStr("/f"), "SHared+more");
  EXPECT_ERRNO(fs().Link("/d", "/d2"), EPERM);
  EXPECT_ERRNO(fs().Link("/", "/r"), EPERM);
  EXPECT_ERRNO(fs().Link("/f", "/d/g"), EEXIST);
  EXPECT_ERRNO(fs().Link("/f", "/d"), EEXIST);
  EXPECT_ERRNO(fs().Link("/missing", "/x"), ENOENT);
  EXPECT_ERRNO(fs().Link("/f", "/missing/x"), ENOENT);
  EXPECT_ERRNO(fs().Link("/f", "/f/x"), ENOTDIR);
  EXPECT_EQ(Nlink("/f"), 2u);
  // Removing one name keeps the other.
  ASSERT_OK(fs().Unlink("/f"));
  EXPECT_EQ(Nlink("/d/g"), 1u);
  EXPECT_EQ(ReadStr("/d/g"), "SHared+more");
  // Many links.
  for (int i = 0; i < 50; i++) ASSERT_OK(fs().Link("/d/g", "/l" + std::to_string(i)));
  EXPECT_EQ(Nlink("/d/g"), 51u);
  ExpectFsckClean();
  EXPECT_EQ(Nlink("/l7"), 51u);
  for (int i = 0; i < 50; i++) ASSERT_OK(fs().Unlink("/l" + std::to_string(i)));
  EXPECT_EQ(Nlink("/d/g"), 1u);
  ExpectFsckClean();
}

// ---- symlinks ---------------------------------------------------------------------

TEST_F(NamespaceTest, SymlinkShortAndLong) {
  ASSERT_OK(fs().Mkdir("/d"));
  ASSERT_OK(WriteWhole(fs(), "/d/f", Bytes("target")));
  uint64_t f = Ino("/d/f");

  // Inline (short), relative.
  ASSERT_OK(fs().Symlink("d/f", "/s"));
  ASSIGN_OR_FAIL(std::string t, fs().Readlink("/s"));
  EXPECT_EQ(t, "d/f");
  ASSIGN_OR_FAIL(Stat ls, fs().GetLstat("/s"));
  EXPECT_TRUE(S_ISLNK(ls.mode));
  EXPECT_EQ(ls.size, 3u);
  EXPECT_NE(ls.ino, f);
  ASSIGN_OR_FAIL(Stat s, fs().GetStat("/s"));
  EXPECT_EQ(s.ino, f);
  EXPECT_TRUE(S_ISREG(s.mode));
  EXPECT_EQ(ReadStr("/s"), "target");

  // Exactly 96 bytes (inline limit) and 97 bytes (out of line).
  for (size_t len : {size_t{96}, size_t{97}, size_t{200}, size_t{4095}}) {
    // A path of len bytes that resolves to d/f: "./././.../d/f" padded with '/'.
    std::string target;
    std::string tail = "d/f";
    while (target.size() + tail.size() + 2 <= len) target += "./";
    while (target.size() + tail.size() < len) target += "/";
    target += tail;
    ASSERT_EQ(target.size(), len);
    std::string name = "/long" + std::to_string(len);
    uint64_t free0 = FreeBlocks();
    ASSERT_OK(fs().Symlink(target, name));
    ASSIGN_OR_FAIL(std::string back, fs().Readlink(name));
    EXPECT_EQ(back, target) << len;
    ASSIGN_OR_FAIL(Stat l, fs().GetLstat(name));
    EXPECT_EQ(l.size, len);
    EXPECT_EQ(Ino(name), l.ino);
    ASSIGN_OR_FAIL(Stat via, fs().GetStat(name));
    EXPECT_EQ(via.ino, f) << len;
    EXPECT_EQ(ReadStr(name), "target");
    if (len > media::kInodeInlineMax) {
      EXPECT_EQ(l.blocks, 8u) << "an out-of-line target takes one block";
      EXPECT_EQ(FreeBlocks(), free0 - 1);
    } else {
      EXPECT_EQ(l.blocks, 0u);
    }
  }
  ExpectFsckClean();
  for (size_t len : {size_t{96}, size_t{97}, size_t{200}, size_t{4095}}) {
    std::string name = "/long" + std::to_string(len);
    ASSIGN_OR_FAIL(Stat l, fs().GetLstat(name));
    ASSIGN_OR_FAIL(std::string back, fs().Readlink(name));
    EXPECT_EQ(back.size(), len);
    EXPECT_EQ(back.substr(back.size() - 3), "d/f");
    uint64_t free0 = FreeBlocks();
    ASSERT_OK(fs().Unlink(name));
    EXPECT_EQ(FreeBlocks(), free0 + l.blocks / 8) << len;
  }
  // Unlinking the symlink never touches the target.
  ASSERT_OK(fs().Unlink("/s"));
  EXPECT_EQ(ReadStr("/d/f"), "target");
  ExpectFsckClean();
}

TEST_F(NamespaceTest, SymlinkResolution) {
  ASSERT_OK(fs().Mkdir("/d"));
  ASSERT_OK(fs().Mkdir("/d/sub"));
  ASSERT_OK(fs().Mkdir("/e"));
  ASSERT_OK(WriteWhole(fs(), "/d/sub/f", Bytes("deep")));
  uint64_t f = Ino("/d/sub/f");
  // Absolute and relative targets; relative ones resolve from the link's directory.
  ASSERT_OK(fs().Symlink("/d/sub/f", "/e/abs"));
  ASSERT_OK(fs().Symlink("../d/sub/f", "/e/rel"));
  ASSERT_OK(fs().Symlink("sub", "/d/lsub"));
  ASSERT_OK(fs().Symlink("/d", "/ld"));
  EXPECT_EQ(fs().GetStat("/e/abs")->ino, f);
  EXPECT_EQ(fs().GetStat("/e/rel")->ino, f);
  // Intermediate components are followed.
  EXPECT_EQ(fs().GetStat("/d/lsub/f")->ino, f);
  EXPECT_EQ(fs().GetStat("/ld/sub/f")->ino, f);
  EXPECT_EQ(fs().GetStat("/ld/lsub/f")->ino, f);
  EXPECT_EQ(ReadStr("/ld/lsub/f"), "deep");
  // ".." after a symlinked directory goes to the parent of the target.
  EXPECT_EQ(fs().GetStat("/d/lsub/..")->ino, Ino("/d"));
  // A trailing slash follows a final symlink to a directory.
  ASSIGN_OR_FAIL(Stat ld_slash, fs().GetLstat("/ld/"));
  EXPECT_TRUE(S_ISDIR(ld_slash.mode));
  EXPECT_TRUE(S_ISLNK(fs().GetLstat("/ld")->mode));
  // Creating through a symlinked directory.
  ASSERT_OK(WriteWhole(fs(), "/ld/new", Bytes("n")));
  EXPECT_EQ(ReadStr("/d/new"), "n");
  ASSERT_OK(fs().Mkdir("/ld/nd"));
  EXPECT_TRUE(S_ISDIR(fs().GetStat("/d/nd")->mode));
  // O_NOFOLLOW on a final symlink.
  EXPECT_ERRNO(fs().Open("/e/abs", O_RDONLY | O_NOFOLLOW), ELOOP);
  EXPECT_OK(fs().Open("/ld/sub/f", O_RDONLY | O_NOFOLLOW));  // only the last is checked
  // Readlink of a non-symlink.
  EXPECT_ERRNO(fs().Readlink("/d/sub/f"), EINVAL);
  EXPECT_ERRNO(fs().Readlink("/missing"), ENOENT);
  // Dangling links: lstat works, stat says ENOENT.
  ASSERT_OK(fs().Symlink("/nowhere", "/dangle"));
  EXPECT_TRUE(fs().GetLstat("/dangle").has_value());
  EXPECT_ERRNO(fs().GetStat("/dangle"), ENOENT);
  EXPECT_ERRNO(fs().Open("/dangle", O_RDONLY), ENOENT);
  // A symlink to a file used as a directory.
  EXPECT_ERRNO(fs().GetStat("/e/abs/x"), ENOTDIR);
  // Existing name; empty target.
  EXPECT_ERRNO(fs().Symlink("x", "/e/abs"), EEXIST);
  EXPECT_ERRNO(fs().Symlink("", "/empty"), ENOENT);
  EXPECT_ERRNO(fs().Symlink("x", "/missing/l"), ENOENT);
  ExpectFsckClean();
  EXPECT_EQ(fs().GetStat("/ld/lsub/f")->ino, f);
}

TEST_F(NamespaceTest, SymlinkLoops) {
  ASSERT_OK(fs().Symlink("self", "/self"));
  ASSERT_OK(fs().Symlink("/loop2", "/loop1"));
  ASSERT_OK(fs().Symlink("loop1", "/loop2"));
  ASSERT_OK(fs().Mkdir("/d"));
  ASSERT_OK(fs().Symlink("../d/back", "/d/back"));
  EXPECT_ERRNO(fs().GetStat("/self"), ELOOP);
  EXPECT_ERRNO(fs().GetStat("/loop1"), ELOOP);
  EXPECT_ERRNO(fs().Open("/loop2", O_RDONLY), ELOOP);
  EXPECT_ERRNO(fs().Open("/loop2", O_CREAT | O_RDWR), ELOOP);
  EXPECT_ERRNO(fs().GetStat("/loop1/x"), ELOOP);
  EXPECT_ERRNO(fs().GetStat("/d/back"), ELOOP);
  EXPECT_ERRNO(fs().Mkdir("/self/x"), ELOOP);
  // lstat and readlink do not follow.
  EXPECT_TRUE(S_ISLNK(fs().GetLstat("/loop1")->mode));
  EXPECT_EQ(*fs().Readlink("/loop1"), "/loop2");
  // A long but finite chain (< 40 links) resolves.
  ASSERT_OK(WriteWhole(fs(), "/end", Bytes("end")));
  std::string prev = "/end";
  for (int i = 0; i < 30; i++) {
    std::string name = "/c" + std::to_string(i);
    ASSERT_OK(fs().Symlink(prev, name));
    prev = name;
  }
  EXPECT_EQ(ReadStr(prev), "end");
  ExpectFsckClean();
}

// ---- name / path errors ----------------------------------------------------------

TEST_F(NamespaceTest, NameAndPathErrors) {
  std::string n255(255, 'n'), n256(256, 'n');
  ASSERT_OK(WriteWhole(fs(), "/" + n255, Bytes("max")));
  EXPECT_EQ(ReadStr("/" + n255), "max");
  EXPECT_ERRNO(fs().Open("/" + n256, O_CREAT | O_RDWR), ENAMETOOLONG);
  EXPECT_ERRNO(fs().Mkdir("/" + n256), ENAMETOOLONG);
  EXPECT_ERRNO(fs().Symlink("x", "/" + n256), ENAMETOOLONG);
  EXPECT_ERRNO(fs().Link("/" + n255, "/" + n256), ENAMETOOLONG);
  EXPECT_ERRNO(fs().Rename("/" + n255, "/" + n256), ENAMETOOLONG);
  EXPECT_ERRNO(fs().GetStat("/" + n256), ENAMETOOLONG);
  EXPECT_ERRNO(fs().GetStat("/" + n256 + "/x"), ENAMETOOLONG);
  EXPECT_ERRNO(fs().Unlink("/" + n256), ENAMETOOLONG);
  // Whole path too long.
  std::string longpath;
  while (longpath.size() < kMaxPathLen) longpath += "/d";
  EXPECT_ERRNO(fs().GetStat(longpath), ENAMETOOLONG);
  EXPECT_ERRNO(fs().Open(longpath, O_CREAT | O_RDWR), ENAMETOOLONG);
  EXPECT_ERRNO(fs().Symlink(std::string(kMaxPathLen, 'x'), "/l"), ENAMETOOLONG);
  // Empty and NUL-containing paths.
  EXPECT_ERRNO(fs().GetStat(""), ENOENT);
  EXPECT_ERRNO(fs().Open("", O_CREAT | O_RDWR), ENOENT);
  EXPECT_ERRNO(fs().Mkdir(std::string("/a\0b", 4)), EINVAL);
  EXPECT_ERRNO(fs().Open(std::string("/a\0b", 4), O_CREAT | O_RDWR), EINVAL);
  // ENOENT and ENOTDIR in intermediate components.
  ASSERT_OK(WriteWhole(fs(), "/file", Bytes("f")));
  EXPECT_ERRNO(fs().GetStat("/no/such"), ENOENT);
  EXPECT_ERRNO(fs().GetStat("/file/x"), ENOTDIR);
  EXPECT_ERRNO(fs().GetStat("/file/"), ENOTDIR);
  EXPECT_ERRNO(fs().GetStat("/file/."), ENOTDIR);
  EXPECT_ERRNO(fs().Mkdir("/file/x"), ENOTDIR);
  EXPECT_ERRNO(fs().Unlink("/file/x"), ENOTDIR);
  EXPECT_ERRNO(fs().Rmdir("/file/x"), ENOTDIR);
  EXPECT_ERRNO(fs().ReadDir("/file"), ENOTDIR);
  EXPECT_ERRNO(fs().ReadDir("/missing"), ENOENT);
  // "." / ".." as the final component of a create.
  {
    Status s = fs().Mkdir("/.");
    EXPECT_TRUE(s.err() == EEXIST || s.err() == EINVAL) << s.ToString();
    s = fs().Mkdir("/..");
    EXPECT_TRUE(s.err() == EEXIST || s.err() == EINVAL) << s.ToString();
    s = fs().Unlink("/.");
    EXPECT_TRUE(s.err() == EISDIR || s.err() == EINVAL) << s.ToString();
  }
  // Redundant slashes are fine.
  EXPECT_EQ(ReadStr("//file"), "f");
  EXPECT_EQ(ReadStr("file"), "f");
  EXPECT_EQ(ReadStr("/./file"), "f");
  ExpectFsckClean();
}

// ---- stat times -------------------------------------------------------------------

bool Later(const Timespec& a, const Timespec& b) {  // a > b
  return a.sec > b.sec || (a.sec == b.sec && a.nsec > b.nsec);
}

Timespec CoarseNow() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}
// Until the clock an overwrite's lazy times come from has passed t.
void WaitForCoarseClockPast(const Timespec& t) {
  while (!Later(CoarseNow(), t)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// An overwrite stamps mtime/ctime from the coarse clock: they never move back
// (the coarse clock lags a precise stamp taken just before), and a time set
// far ahead by utimens becomes now, as in the kernel.
TEST_F(NamespaceTest, OverwriteTimesNeverMoveBack) {
  ASSIGN_OR_FAIL(File f, fs().Open("/t", O_CREAT | O_RDWR));
  ASSERT_OK(f.Pwrite("abcdef", 6, 0));  // extends: a precise stamp
  ASSIGN_OR_FAIL(Stat s0, f.GetStat());
  for (int i = 0; i < 100; i++) {
    ASSERT_OK(f.Pwrite("x", 1, i % 6));  // overwrites at once: coarse stamps
    ASSIGN_OR_FAIL(Stat s, f.GetStat());
    ASSERT_FALSE(Later(s0.mtime, s.mtime)) << "mtime moved back";
    ASSERT_FALSE(Later(s0.ctime, s.ctime)) << "ctime moved back";
    s0 = s;
  }
  Timespec future{CoarseNow().sec + 100000, 0};
  ASSERT_OK(fs().Utimens("/t", future, future));
  ASSERT_OK(f.Pwrite("y", 1, 0));
  ASSIGN_OR_FAIL(Stat s1, f.GetStat());
  EXPECT_TRUE(Later(future, s1.mtime)) << "an overwrite leaves a far-future mtime";
  EXPECT_FALSE(Later(s1.mtime, CoarseNow()));
  ASSERT_OK(f.Close());
  ASSIGN_OR_FAIL(Stat s2, fs().GetStat("/t"));  // persisted at the last close
  EXPECT_EQ(s2.mtime, s1.mtime);
}

TEST_F(NamespaceTest, StatTimesNanoseconds) {
  ASSIGN_OR_FAIL(File f, fs().Open("/t", O_CREAT | O_RDWR));
  ASSIGN_OR_FAIL(Stat s0, fs().GetStat("/t"));
  EXPECT_EQ(s0.mtime, s0.ctime);
  EXPECT_EQ(s0.btime, s0.mtime);
  EXPECT_LT(s0.mtime.nsec, 1000000000u);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  EXPECT_NEAR(static_cast<double>(s0.mtime.sec),
              static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(now).count()), 5.0);

  // An extending write changes mtime and ctime.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_OK(f.Pwrite("abcdef", 6, 0));
  ASSIGN_OR_FAIL(Stat s1, fs().GetStat("/t"));
  EXPECT_TRUE(Later(s1.mtime, s0.mtime));
  EXPECT_TRUE(Later(s1.ctime, s0.ctime));
  EXPECT_EQ(s1.btime, s0.btime);
  // An in-place overwrite (lazy times) is visible through stat and the handle.
  // Its times come from the coarse clock (FsImpl::NowCoarse), which lags.
  WaitForCoarseClockPast(s1.mtime);
  ASSERT_OK(f.Pwrite("XY", 2, 1));
  ASSIGN_OR_FAIL(Stat s2, fs().GetStat("/t"));
  EXPECT_TRUE(Later(s2.mtime, s1.mtime));
  ASSIGN_OR_FAIL(Stat s2h, f.GetStat());
  EXPECT_EQ(s2h.mtime, s2.mtime);
  // A read does not change mtime.
  char buf[6];
  ASSERT_OK(f.Pread(buf, 6, 0));
  EXPECT_EQ(fs().GetStat("/t")->mtime, s2.mtime);

  // utimens sets exact nanoseconds; ctime moves to now.
  Timespec at{1234567890, 123456789}, mt{987654321, 999999999};
  ASSERT_OK(fs().Utimens("/t", at, mt));
  ASSIGN_OR_FAIL(Stat s3, fs().GetStat("/t"));
  EXPECT_EQ(s3.atime, at);
  EXPECT_EQ(s3.mtime, mt);
  EXPECT_TRUE(Later(s3.ctime, s2.ctime));
  ASSIGN_OR_FAIL(Stat s3h, f.GetStat());
  EXPECT_EQ(s3h.mtime, mt) << "the open handle sees the utimens";
  // Negative seconds (before 1970) and zero.
  Timespec old{-12345, 5}, zero{0, 0};
  ASSERT_OK(fs().Utimens("/t", old, zero));
  EXPECT_EQ(fs().GetStat("/t")->atime, old);
  EXPECT_EQ(fs().GetStat("/t")->mtime, zero);
  EXPECT_ERRNO(fs().Utimens("/t", Timespec{1, 1000000000}, mt), EINVAL);
  EXPECT_ERRNO(fs().Utimens("/t", at, Timespec{1, 1000000000}), EINVAL);
  EXPECT_ERRNO(fs().Utimens("/missing", at, mt), ENOENT);
  ASSERT_OK(fs().Utimens("/t", at, mt));

  // chmod / chown change ctime, not mtime.
  ASSIGN_OR_FAIL(Stat s4, fs().GetStat("/t"));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_OK(fs().Chmod("/t", 0600));
  ASSIGN_OR_FAIL(Stat s5, fs().GetStat("/t"));
  EXPECT_EQ(s5.mode, S_IFREG | 0600u);
  EXPECT_TRUE(Later(s5.ctime, s4.ctime));
  EXPECT_EQ(s5.mtime, mt);
  ASSERT_OK(fs().Chmod("/t", 07777 | S_IFDIR));  // file type bits are ignored
  EXPECT_EQ(fs().GetStat("/t")->mode, S_IFREG | 07777u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_OK(fs().Chown("/t", 1234, 5678));
  ASSIGN_OR_FAIL(Stat s6, fs().GetStat("/t"));
  EXPECT_EQ(s6.uid, 1234u);
  EXPECT_EQ(s6.gid, 5678u);
  EXPECT_TRUE(Later(s6.ctime, s5.ctime));
  EXPECT_EQ(s6.mtime, mt);
  ASSERT_OK(fs().Chown("/t", UINT32_MAX, 42));  // -1 leaves the uid
  EXPECT_EQ(fs().GetStat("/t")->uid, 1234u);
  EXPECT_EQ(fs().GetStat("/t")->gid, 42u);
  EXPECT_ERRNO(fs().Chmod("/missing", 0600), ENOENT);
  EXPECT_ERRNO(fs().Chown("/missing", 1, 1), ENOENT);

  // Lchown/Lutimens change a symlink itself; Chown/Utimens its target.
  ASSERT_OK(fs().Symlink("/t", "/link"));
  ASSERT_OK(fs().Lchown("/link", 77, 88));
  ASSIGN_OR_FAIL(Stat ls, fs().GetLstat("/link"));
  EXPECT_EQ(ls.uid, 77u);
  EXPECT_EQ(ls.gid, 88u);
  EXPECT_EQ(fs().GetStat("/t")->uid, 1234u);
  ASSERT_OK(fs().Chown("/link", 99, UINT32_MAX));
  EXPECT_EQ(fs().GetStat("/t")->uid, 99u);
  EXPECT_EQ(fs().GetLstat("/link")->uid, 77u);
  ASSERT_OK(fs().Chown("/t", 1234, UINT32_MAX));
  ASSERT_OK(fs().Lutimens("/link", Timespec{5, 6}, Timespec{7, 8}));
  EXPECT_EQ(fs().GetLstat("/link")->mtime, (Timespec{7, 8}));
  EXPECT_EQ(fs().GetStat("/t")->mtime, mt);
  EXPECT_ERRNO(fs().Lchown("/missing", 1, 1), ENOENT);

  // Directory mtime changes with its entries.
  ASSERT_OK(fs().Mkdir("/dir"));
  ASSIGN_OR_FAIL(Stat d0, fs().GetStat("/dir"));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_OK(WriteWhole(fs(), "/dir/x", Bytes("x")));
  ASSIGN_OR_FAIL(Stat d1, fs().GetStat("/dir"));
  EXPECT_TRUE(Later(d1.mtime, d0.mtime));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_OK(fs().Unlink("/dir/x"));
  EXPECT_TRUE(Later(fs().GetStat("/dir")->mtime, d1.mtime));

  // Exact values survive an unmount (with the file still open at unmount).
  ASSIGN_OR_FAIL(Stat before, fs().GetStat("/t"));
  ASSERT_OK(f.Close());
  Remount();
  ASSIGN_OR_FAIL(Stat after, fs().GetStat("/t"));
  EXPECT_EQ(after.atime, before.atime);
  EXPECT_EQ(after.mtime, before.mtime);
  EXPECT_EQ(after.ctime, before.ctime);
  EXPECT_EQ(after.btime, before.btime);
  EXPECT_EQ(after.mode, before.mode);
  EXPECT_EQ(after.uid, 1234u);
}

TEST_F(NamespaceTest, LazyMtimePersistsAtUnmount) {
  ASSERT_OK(WriteWhole(fs(), "/f", Pattern(8192, 3)));
  ASSIGN_OR_FAIL(File f, fs().Open("/f", O_RDWR));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_OK(f.Pwrite("zz", 2, 100));  // overwrite: lazy time update
  ASSIGN_OR_FAIL(Stat s, f.GetStat());
  // Unmount with the file still open; the handle outlives the mount.
  UnmountNow();
  EXPECT_ERRNO(f.Pwrite("zz", 2, 100), ESHUTDOWN);
  ASSERT_OK(f.Close());
  MountNow();
  ASSIGN_OR_FAIL(Stat s2, fs().GetStat("/f"));
  EXPECT_EQ(s2.mtime, s.mtime);
  EXPECT_EQ(s2.ctime, s.ctime);
}

// ---- readdir ------------------------------------------------------------------------

TEST_F(NamespaceTest, ReadDirListsEveryEntry) {
  ASSERT_OK(fs().Mkdir("/d"));
  EXPECT_TRUE(Names("/d").empty()) << "no . or .. entries";
  std::map<std::string, uint32_t> want;
  for (int i = 0; i < 600; i++) {
    std::string name = "entry_" + std::to_string(i) + std::string(i % 50, 'x');
    switch (i % 3) {
      case 0:
        ASSERT_OK(WriteWhole(fs(), "/d/" + name, Bytes("f")));
        want[name] = S_IFREG;
        break;
      case 1:
        ASSERT_OK(fs().Mkdir("/d/" + name));
        want[name] = S_IFDIR;
        break;
      case 2:
        ASSERT_OK(fs().Symlink("target", "/d/" + name));
        want[name] = S_IFLNK;
        break;
    }
  }
  auto check = [&] {
    ASSIGN_OR_FAIL(auto ents, fs().ReadDir("/d"));
    ASSERT_EQ(ents.size(), want.size());
    std::map<std::string, uint32_t> got;
    for (const auto& e : ents) {
      EXPECT_TRUE(got.emplace(e.name, e.type).second) << "duplicate " << e.name;
      EXPECT_EQ(e.ino, Ino("/d/" + e.name)) << e.name;
    }
    EXPECT_TRUE(got == want);
    EXPECT_EQ(fs().GetStat("/d")->nlink, 2u + 200u);
  };
  check();
  // Via a symlink to the directory, and after a remount.
  ASSERT_OK(fs().Symlink("/d", "/ld"));
  EXPECT_EQ(fs().ReadDir("/ld")->size(), want.size());
  Remount();
  check();
  // Remove a third and list again.
  for (int i = 0; i < 600; i += 3) {
    std::string name = "entry_" + std::to_string(i) + std::string(i % 50, 'x');
    ASSERT_OK(fs().Unlink("/d/" + name));
    want.erase(name);
  }
  check();
  ExpectFsckClean();
}

// Names whose hashes collide are not practical to construct; instead many
// similar names in one directory must each stay distinct.
TEST_F(NamespaceTest, SimilarNamesStayDistinct) {
  ASSERT_OK(fs().Mkdir("/d"));
  std::vector<std::string> names;
  for (int i = 0; i < 256; i++) {
    std::string n(1, static_cast<char>(i == 0 || i == '/' ? 'A' + (i % 26) : i));
    if (i == 0 || i == '/') n += "_special";
    if (n == "." || n == "..") n += "_";
    names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  for (size_t i = 0; i < names.size(); i++)
    ASSERT_OK(WriteWhole(fs(), "/d/" + names[i], Bytes(std::to_string(i)))) << i;
  for (size_t i = 0; i < names.size(); i++) EXPECT_EQ(ReadStr("/d/" + names[i]), std::to_string(i));
  EXPECT_EQ(Names("/d").size(), names.size());
  ExpectFsckClean();
}

// A directory whose entry tree grew (and emptied again) can still be removed,
// also while open and across a crash (the orphan reclaim at mount).
TEST_F(NamespaceTest, RemoveDirectoriesThatOnceHeldManyEntries) {
  uint64_t inodes0 = UsedInodes();
  ASSERT_OK(testutil::GiveRootItsLeaf(*fs_));
  uint64_t all_free0 = AllFreeBlocks();
  for (const char* d : {"/a", "/b", "/c", "/v"}) {
    ASSERT_OK(fs().Mkdir(d));
    for (int i = 0; i < 700; i++) ASSERT_OK(WriteWhole(fs(), std::string(d) + "/e" + std::to_string(i), {}));
    for (int i = 0; i < 700; i++) ASSERT_OK(fs().Unlink(std::string(d) + "/e" + std::to_string(i)));
    EXPECT_TRUE(Names(d).empty());
  }
  ASSERT_OK(fs().Rmdir("/a"));
  ASSERT_OK(fs().Mkdir("/src"));
  ASSERT_OK(fs().Rename("/src", "/v"));  // over an emptied directory
  {
    ASSIGN_OR_FAIL(File b, fs().Open("/b", O_RDONLY | O_DIRECTORY));
    ASSERT_OK(fs().Rmdir("/b"));
    EXPECT_ERRNO(fs().GetStat("/b"), ENOENT);
  }
  ASSIGN_OR_FAIL(File c, fs().Open("/c", O_RDONLY | O_DIRECTORY));
  ASSERT_OK(fs().Rmdir("/c"));
  CrashForTesting(*fs_);
  fs_.reset();
  ASSERT_OK(c.Close());
  MountNow();
  ASSERT_OK(fs().Rmdir("/v"));
  EXPECT_EQ(UsedInodes(), inodes0);
  EXPECT_EQ(AllFreeBlocks(), all_free0);
  ExpectFsckClean();
}

// ---- a large directory ----------------------------------------------------------------

class BigDirTest : public NamespaceTest {
 protected:
  uint64_t DeviceBytes() const override { return 512 * kMiB; }
};

TEST_F(BigDirTest, HundredThousandEntries) {
  constexpr int kN = 100000;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(fs().Mkdir("/big"));
  auto name = [](int i) { return "/big/file_" + std::to_string(i); };
  std::vector<uint64_t> inos(kN);
  for (int i = 0; i < kN; i++) {
    auto f = fs().Open(name(i), O_CREAT | O_EXCL | O_WRONLY);
    ASSERT_TRUE(f.has_value()) << i << ": " << f.error().ToString();
    inos[i] = f->ino();
  }
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; i++) {
    auto s = fs().GetStat(name(i));
    ASSERT_TRUE(s.has_value()) << i << ": " << s.error().ToString();
    ASSERT_EQ(s->ino, inos[i]) << i;
  }
  EXPECT_ERRNO(fs().GetStat("/big/file_" + std::to_string(kN)), ENOENT);
  EXPECT_ERRNO(fs().Open(name(kN / 2), O_CREAT | O_EXCL | O_WRONLY), EEXIST);
  auto t2 = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; i += 2) ASSERT_OK(fs().Unlink(name(i))) << i;
  auto t3 = std::chrono::steady_clock::now();
  ASSIGN_OR_FAIL(auto ents, fs().ReadDir("/big"));
  ASSERT_EQ(ents.size(), static_cast<size_t>(kN / 2));
  std::vector<bool> seen(kN, false);
  for (const auto& e : ents) {
    ASSERT_EQ(e.name.rfind("file_", 0), 0u) << e.name;
    int i = std::stoi(e.name.substr(5));
    ASSERT_TRUE(i >= 0 && i < kN);
    EXPECT_EQ(i % 2, 1) << "removed entry listed: " << e.name;
    EXPECT_FALSE(seen[i]) << "listed twice: " << e.name;
    seen[i] = true;
    EXPECT_EQ(e.ino, inos[i]);
    EXPECT_EQ(e.type, static_cast<uint32_t>(S_IFREG));
  }
  for (int i = 1; i < kN; i += 2) EXPECT_TRUE(seen[i]) << "missing " << i;
  for (int i = 0; i < kN; i += 2 * 997) EXPECT_ERRNO(fs().GetStat(name(i)), ENOENT);
  for (int i = 1; i < kN; i += 2 * 997) EXPECT_TRUE(fs().GetStat(name(i)).has_value());
  auto t4 = std::chrono::steady_clock::now();
  auto ms = [](auto a, auto b) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
  };
  std::cout << "create " << ms(t0, t1) << " ms, lookup " << ms(t1, t2) << " ms, unlink half "
            << ms(t2, t3) << " ms, list " << ms(t3, t4) << " ms\n";
  EXPECT_LT(ms(t0, t4), 20000);
  ExpectFsckClean(/*remount=*/false);
}

// ---- unlink of open files, orphans ----------------------------------------------------

TEST_F(NamespaceTest, UnlinkOpenFileKeepsDataUntilClose) {
  uint64_t free0 = FreeBlocks();
  uint64_t inodes0 = UsedInodes();
  auto data = Pattern(2 * kMiB, 5);
  {
    ASSIGN_OR_FAIL(File f, fs().Open("/victim", O_CREAT | O_RDWR));
    ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
    uint64_t free_used = FreeBlocks();
    EXPECT_LE(free_used, free0 - 512);
    ASSERT_OK(fs().Unlink("/victim"));
    EXPECT_ERRNO(fs().GetStat("/victim"), ENOENT);
    EXPECT_TRUE(Names("/").empty());
    // Still readable and writable through the handle.
    ASSIGN_OR_FAIL(Stat st, f.GetStat());
    EXPECT_EQ(st.nlink, 0u);
    EXPECT_EQ(st.size, data.size());
    std::vector<uint8_t> back(data.size());
    ASSIGN_OR_FAIL(size_t n, f.Pread(back.data(), back.size(), 0));
    EXPECT_EQ(n, data.size());
    EXPECT_TRUE(back == data);
    auto more = Pattern(kMiB, 6);
    ASSERT_OK(f.Pwrite(more.data(), more.size(), data.size()));
    ASSERT_OK(f.Pwrite("head", 4, 0));
    ASSIGN_OR_FAIL(size_t m, f.Pread(back.data(), 4, 0));
    EXPECT_EQ(m, 4u);
    EXPECT_EQ(std::string(back.begin(), back.begin() + 4), "head");
    ASSERT_OK(f.Truncate(kMiB));
    ASSERT_OK(f.Fallocate(0, 0, 3 * kMiB));
    EXPECT_LE(FreeBlocks(), free0 - 768);
    // A new file with the same name is a different inode.
    ASSERT_OK(WriteWhole(fs(), "/victim", Bytes("new")));
    EXPECT_NE(Ino("/victim"), f.ino());
    ASSERT_OK(fs().Unlink("/victim"));
    // A second handle on the same inode keeps it alive after the first closes.
    EXPECT_EQ(UsedInodes(), inodes0 + 1);
  }
  EXPECT_EQ(FreeBlocks(), free0);
  EXPECT_EQ(UsedInodes(), inodes0);
  ExpectFsckClean();
}

TEST_F(NamespaceTest, UnlinkedFileWithTwoHandles) {
  uint64_t free0 = FreeBlocks();
  ASSERT_OK(WriteWhole(fs(), "/f", Pattern(kMiB, 1)));
  ASSIGN_OR_FAIL(File a, fs().Open("/f", O_RDWR));
  ASSIGN_OR_FAIL(File b, fs().Open("/f", O_RDONLY));
  ASSERT_OK(fs().Unlink("/f"));
  ASSERT_OK(a.Close());
  std::vector<uint8_t> buf(kMiB);
  ASSIGN_OR_FAIL(size_t n, b.Pread(buf.data(), buf.size(), 0));
  EXPECT_EQ(n, buf.size());
  EXPECT_TRUE(buf == Pattern(kMiB, 1));
  EXPECT_LT(FreeBlocks(), free0);
  ASSERT_OK(b.Close());
  EXPECT_EQ(FreeBlocks(), free0);
  ExpectFsckClean();
}

TEST_F(NamespaceTest, OrphanReclaimedAfterCrash) {
  ASSERT_OK(WriteWhole(fs(), "/keep", Bytes("keep")));
  uint64_t free0 = FreeBlocks();
  uint64_t inodes0 = UsedInodes();
  {
    ASSIGN_OR_FAIL(File f, fs().Open("/orphan", O_CREAT | O_RDWR));
    auto data = Pattern(3 * kMiB, 7);
    ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
    ASSIGN_OR_FAIL(File g, fs().Open("/orphan_dir_file", O_CREAT | O_RDWR));
    ASSERT_OK(g.Pwrite(data.data(), kMiB, 0));
    ASSERT_OK(fs().Unlink("/orphan"));
    ASSERT_OK(fs().Unlink("/orphan_dir_file"));
    EXPECT_LT(FreeBlocks(), free0 - 1000);
    CrashForTesting(*fs_);
    // The handles outlive the crashed mount; closing them must not touch the device.
  }
  fs_.reset();
  MountNow();
  EXPECT_EQ(FreeBlocks(), free0);
  EXPECT_EQ(UsedInodes(), inodes0);
  EXPECT_EQ(ReadStr("/keep"), "keep");
  EXPECT_EQ(Names("/"), std::set<std::string>{"keep"});
  ExpectFsckClean();
}

TEST_F(NamespaceTest, OrphanReclaimedAfterUnmountWithOpenHandle) {
  uint64_t free0 = FreeBlocks();
  ASSIGN_OR_FAIL(File f, fs().Open("/o", O_CREAT | O_RDWR));
  auto data = Pattern(kMiB, 8);
  ASSERT_OK(f.Pwrite(data.data(), data.size(), 0));
  ASSERT_OK(fs().Unlink("/o"));
  UnmountNow();
  ASSERT_OK(f.Close());
  // Check before any recovery (fsck -n): the orphan is recorded on the
  // device, and expected there — a note, not a problem (nor a leak).
  {
    auto r = Fsck(path_, FsckOptions{.recover = false});
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->clean()) << JoinProblems(*r);
    ASSERT_EQ(r->notes.size(), 1u);
    EXPECT_NE(r->notes[0].find("1 orphan inode(s)"), std::string::npos) << r->notes[0];
  }
  MountNow();
  EXPECT_EQ(FreeBlocks(), free0);
  ExpectFsckClean();
}

TEST_F(NamespaceTest, CrashAfterOperationsKeepsThem) {
  ASSERT_OK(fs().Mkdir("/d"));
  ASSERT_OK(WriteWhole(fs(), "/d/f", Pattern(100000, 4)));
  ASSERT_OK(fs().Symlink("/d/f", "/l"));
  ASSERT_OK(fs().Rename("/d/f", "/d/g"));
  ASSERT_OK(fs().Link("/d/g", "/h"));
  CrashForTesting(*fs_);
  fs_.reset();
  MountNow();
  ASSIGN_OR_FAIL(auto data, ReadWhole(fs(), "/h"));
  EXPECT_TRUE(data == Pattern(100000, 4));
  EXPECT_EQ(Nlink("/h"), 2u);
  EXPECT_EQ(*fs().Readlink("/l"), "/d/f");
  EXPECT_ERRNO(fs().GetStat("/l"), ENOENT);
  ExpectFsckClean();
}


// PathAt: paths relative to a directory named by inode number (the *at
// calls), and an empty path naming the inode itself (AT_EMPTY_PATH).
TEST_F(NamespaceTest, PathsRelativeToAnInode) {
  ASSERT_OK(fs().Mkdir("/d"));
  ASSERT_OK(fs().Mkdir("/d/sub"));
  ASSIGN_OR_FAIL(Stat d, fs().GetStat("/d"));
  ASSIGN_OR_FAIL(Stat sub, fs().GetStat("/d/sub"));

  // Names in a directory given by number.
  ASSIGN_OR_FAIL(File f, fs().Open(PathAt(d.ino, "f"), O_CREAT | O_RDWR, 0640));
  ASSERT_OK(f.Pwrite("abc", 3, 0).status());
  ASSIGN_OR_FAIL(Stat fs1, fs().GetStat("/d/f"));
  EXPECT_EQ(fs1.ino, f.ino());
  EXPECT_EQ(fs1.mode, S_IFREG | 0640u);
  ASSERT_OK(fs().Mkdir(PathAt(sub.ino, "deeper"), 0700));
  EXPECT_TRUE(S_ISDIR(fs().GetStat("/d/sub/deeper")->mode));
  ASSERT_OK(fs().Symlink("../f", PathAt(sub.ino, "ln")));
  EXPECT_EQ(*fs().Readlink(PathAt(sub.ino, "ln")), "../f");
  EXPECT_EQ(fs().GetStat(PathAt(sub.ino, "ln"))->ino, f.ino());  // relative target, from /d/sub
  ASSERT_OK(fs().Link(PathAt(d.ino, "f"), PathAt(sub.ino, "hard")));
  EXPECT_EQ(fs().GetStat("/d/sub/hard")->nlink, 2u);
  ASSERT_OK(fs().Rename(PathAt(sub.ino, "hard"), PathAt(d.ino, "moved")));
  EXPECT_EQ(fs().GetStat("/d/moved")->ino, f.ino());
  ASSERT_OK(fs().Unlink(PathAt(d.ino, "moved")));
  EXPECT_ERRNO(fs().GetStat("/d/moved").status(), ENOENT);
  // Multi-component and ".." paths from an inode; an absolute one ignores it.
  EXPECT_EQ(fs().GetStat(PathAt(sub.ino, "../f"))->ino, f.ino());
  EXPECT_EQ(fs().GetStat(PathAt(d.ino, "sub/deeper"))->mode, S_IFDIR | 0700u);
  EXPECT_EQ(fs().GetStat(PathAt(sub.ino, "/d/f"))->ino, f.ino());

  // The empty path is the inode itself.
  EXPECT_EQ(fs().GetLstat(PathAt(f.ino(), ""))->size, 3u);
  ASSERT_OK(fs().Chmod(PathAt(f.ino(), ""), 0600));
  ASSERT_OK(fs().Lchown(PathAt(f.ino(), ""), 5, 6));
  ASSERT_OK(fs().Truncate(PathAt(f.ino(), ""), 1));
  ASSERT_OK(fs().Lutimens(PathAt(f.ino(), ""), Timespec{1, 2}, Timespec{3, 4}));
  ASSIGN_OR_FAIL(Stat fs2, fs().GetStat("/d/f"));
  EXPECT_EQ(fs2.mode, S_IFREG | 0600u);
  EXPECT_EQ(fs2.uid, 5u);
  EXPECT_EQ(fs2.mtime, (Timespec{3, 4}));
  EXPECT_EQ(fs2.size, 1u);
  ASSIGN_OR_FAIL(File again, fs().Open(PathAt(f.ino(), ""), O_RDONLY));
  EXPECT_EQ(again.ino(), f.ino());
  ASSIGN_OR_FAIL(auto entries, fs().ReadDir(PathAt(d.ino, "")));
  EXPECT_EQ(entries.size(), 2u);  // f, sub
  EXPECT_EQ(*fs().Readlink(PathAt(fs().GetLstat("/d/sub/ln")->ino, "")), "../f");

  // An unlinked open file is still there by number, and only while open.
  ASSERT_OK(fs().Unlink("/d/f"));
  ASSIGN_OR_FAIL(Stat orphan, fs().GetLstat(PathAt(f.ino(), "")));
  EXPECT_EQ(orphan.nlink, 0u);
  EXPECT_ERRNO(fs().Link(PathAt(f.ino(), ""), "/d/revived"), ENOENT);  // orphans get no names
  ASSERT_OK(again.Close());
  ASSERT_OK(f.Close());
  EXPECT_ERRNO(fs().GetLstat(PathAt(f.ino(), "")).status(), ENOENT);

  // Errors: a name is needed to create or remove; a file is no directory; a
  // removed directory takes no names.
  EXPECT_ERRNO(fs().Mkdir(PathAt(d.ino, "")), ENOENT);
  EXPECT_ERRNO(fs().Unlink(PathAt(d.ino, "")), ENOENT);
  ASSIGN_OR_FAIL(File g, fs().Open("/d/g", O_CREAT | O_WRONLY));
  EXPECT_ERRNO(fs().Open(PathAt(g.ino(), "x"), O_CREAT | O_WRONLY).status(), ENOTDIR);
  EXPECT_ERRNO(fs().GetStat(PathAt(1u << 30, "")).status(), ENOENT);
  EXPECT_ERRNO(fs().GetStat(PathAt(0, "")).status(), ENOENT);
  ASSERT_OK(fs().Rmdir("/d/sub/deeper"));
  ASSIGN_OR_FAIL(Stat sub2, fs().GetStat("/d/sub"));
  ASSERT_OK(fs().Unlink("/d/sub/ln"));
  ASSERT_OK(fs().Rmdir("/d/sub"));
  EXPECT_ERRNO(fs().Mkdir(PathAt(sub2.ino, "late")), ENOENT);
  ASSERT_OK(g.Close());
}

}  // namespace
}  // namespace udax

namespace udax {
namespace {

// New inodes belong to the mount's owner: MountOptions uid/gid, or the
// process's effective ids when it mounted.
TEST(OwnerTest, NewInodesBelongToTheMountsOwner) {
  testutil::TempDevice dev("owner");
  ASSERT_OK(Filesystem::Mkfs(dev.path(), MkfsOptions{.size = 16 * testutil::kMiB}));
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(dev.path()));
    ASSERT_OK(fs->Mkdir("/d"));
    ASSIGN_OR_FAIL(Stat st, fs->GetStat("/d"));
    EXPECT_EQ(st.uid, geteuid());
    EXPECT_EQ(st.gid, getegid());
    ASSERT_OK(fs->Unmount());
  }
  ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(dev.path(), MountOptions{.uid = 1234, .gid = 5678}));
  ASSIGN_OR_FAIL(File f, fs->Open("/d/f", O_CREAT | O_RDWR, 0600));
  ASSERT_OK(fs->Symlink("f", "/d/l"));
  for (const char* p : {"/d/f", "/d/l"}) {
    ASSIGN_OR_FAIL(Stat st, fs->GetLstat(p));
    EXPECT_EQ(st.uid, 1234u) << p;
    EXPECT_EQ(st.gid, 5678u) << p;
  }
  ASSIGN_OR_FAIL(Stat d, fs->GetStat("/d"));
  EXPECT_EQ(d.uid, geteuid()) << "an existing inode keeps its owner";
  ASSERT_OK(f.Close());
  ASSERT_OK(fs->Unmount());
}

}  // namespace
}  // namespace udax
