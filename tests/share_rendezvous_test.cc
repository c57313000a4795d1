// tests/share_rendezvous_test.cc — finding the mount from the mount point and
// the listening socket (share/rendezvous.h): stale sockets replaced, live
// ones and other files left alone, the socket removed only while it is ours.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "share_test_util.h"

namespace udax::share::testing {
namespace {

class Rendezvous : public ShareTest {};

// A socket at `path` with nobody listening: what a killed mount leaves.
void MakeStaleSocket(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
}

TEST_F(Rendezvous, SocketPathComesFromTheMountPointsDevice) {
  struct stat st{};
  ASSERT_EQ(::stat(base_.c_str(), &st), 0);
  auto p = ServerSocketPath(base_);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(*p, dir_ + "/" + std::to_string(st.st_dev) + ".sock");
  // Nothing serves there yet: the client is told so.
  EXPECT_EQ(FindSocket(base_).error().err(), ENOTCONN);
  auto l = Listener::Create(*p);
  ASSERT_TRUE(l.has_value()) << l.error().ToString();
  auto found = FindSocket(base_);
  ASSERT_TRUE(found.has_value()) << found.error().ToString();
  EXPECT_EQ(*found, *p);
}

TEST_F(Rendezvous, SocketIsConnectableByAnyoneAndRemovedAtDestruction) {
  {
    auto l = Listener::Create(path_);
    ASSERT_TRUE(l.has_value()) << l.error().ToString();
    struct stat st{};
    ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0666u);
    auto c = ConnectUnix(path_);
    EXPECT_TRUE(c.has_value()) << c.error().ToString();
  }
  struct stat st{};
  EXPECT_NE(::lstat(path_.c_str(), &st), 0);
  EXPECT_EQ(ConnectUnix(path_).error().err(), ENOTCONN);
}

TEST_F(Rendezvous, StaleSocketIsReplaced) {
  MakeStaleSocket(path_);
  EXPECT_EQ(ConnectUnix(path_).error().err(), ENOTCONN);
  auto l = Listener::Create(path_);
  ASSERT_TRUE(l.has_value()) << l.error().ToString();
  EXPECT_TRUE(ConnectUnix(path_).has_value());
}

TEST_F(Rendezvous, LiveSocketIsNotTaken) {
  auto first = Listener::Create(path_);
  ASSERT_TRUE(first.has_value());
  auto second = Listener::Create(path_);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().err(), EADDRINUSE) << second.error().ToString();
  EXPECT_TRUE(ConnectUnix(path_).has_value());  // the first one still serves
}

TEST_F(Rendezvous, OtherFilesAreNotRemoved) {
  int fd = ::open(path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto l = Listener::Create(path_);
  ASSERT_FALSE(l.has_value());
  EXPECT_EQ(l.error().err(), EEXIST) << l.error().ToString();
  struct stat st{};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(Rendezvous, DestructionLeavesASuccessorsSocket) {
  auto old = Listener::Create(path_);
  ASSERT_TRUE(old.has_value());
  // Someone removed ours and a new mount bound the same path.
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  auto successor = Listener::Create(path_);
  ASSERT_TRUE(successor.has_value()) << successor.error().ToString();
  { Listener gone = std::move(old).value(); }
  EXPECT_TRUE(ConnectUnix(path_).has_value());
}

TEST_F(Rendezvous, DirectoryOthersMayWriteIsRefused) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  auto d = ServerSocketDir();
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().err(), EACCES) << d.error().ToString();
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  EXPECT_TRUE(ServerSocketDir().has_value());
}

TEST_F(Rendezvous, OverlongPathIsRefused) {
  auto l = Listener::Create(dir_ + "/" + std::string(200, 'x'));
  ASSERT_FALSE(l.has_value());
  EXPECT_EQ(l.error().err(), ENAMETOOLONG);
}

}  // namespace
}  // namespace udax::share::testing
