// tests/share_admission_test.cc — who may be a direct client: the admission
// rule (share/admission.h) and the supplementary groups it reads from
// /proc/PID/status (share/peer.h).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share/admission.h"
#include "share/peer.h"

namespace udax::share {
namespace {

struct stat Device(uid_t uid, gid_t gid, mode_t mode) {
  struct stat st{};
  st.st_uid = uid;
  st.st_gid = gid;
  st.st_mode = S_IFCHR | mode;
  return st;
}

PeerCredentials Who(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
  PeerCredentials c;
  c.pid = 42;
  c.uid = uid;
  c.gid = gid;
  c.groups = std::move(groups);
  return c;
}

TEST(Admission, RootMayAlways) {
  EXPECT_TRUE(MayReadWrite(Who(0, 0), Device(1000, 1000, 0000)));
  EXPECT_TRUE(MayReadWrite(Who(0, 5), Device(1000, 1000, 0600)));
}

TEST(Admission, OwnerNeedsBothOwnerBits) {
  EXPECT_TRUE(MayReadWrite(Who(1000, 1000), Device(1000, 2000, 0600)));
  EXPECT_FALSE(MayReadWrite(Who(1000, 1000), Device(1000, 2000, 0400)));
  EXPECT_FALSE(MayReadWrite(Who(1000, 1000), Device(1000, 2000, 0200)));
}

TEST(Admission, OwnerClassAppliesEvenWhenGroupOrOtherWouldAllow) {
  // POSIX: the owner class is the one checked for the owner.
  EXPECT_FALSE(MayReadWrite(Who(1000, 2000), Device(1000, 2000, 0466)));
}

TEST(Admission, GroupByPrimaryOrSupplementaryGroup) {
  EXPECT_TRUE(MayReadWrite(Who(1001, 2000), Device(1000, 2000, 0660)));
  EXPECT_TRUE(MayReadWrite(Who(1001, 3000, {7, 2000}), Device(1000, 2000, 0660)));
  EXPECT_FALSE(MayReadWrite(Who(1001, 3000, {7, 8}), Device(1000, 2000, 0660)));
  EXPECT_FALSE(MayReadWrite(Who(1001, 2000), Device(1000, 2000, 0640)));
  // A member of the group does not fall back to the other bits.
  EXPECT_FALSE(MayReadWrite(Who(1001, 2000), Device(1000, 2000, 0606)));
}

TEST(Admission, OthersNeedBothOtherBits) {
  EXPECT_FALSE(MayReadWrite(Who(65534, 65534), Device(0, 6, 0660)));
  EXPECT_FALSE(MayReadWrite(Who(65534, 65534), Device(0, 6, 0664)));
  EXPECT_TRUE(MayReadWrite(Who(65534, 65534), Device(0, 6, 0666)));
}

TEST(Admission, RefusalNamesTheUidTheDeviceAndTheMount) {
  std::string m = RefusalMessage(Who(65534, 65534), "/dev/dax0.0");
  EXPECT_NE(m.find("uid 65534"), std::string::npos) << m;
  EXPECT_NE(m.find("/dev/dax0.0"), std::string::npos) << m;
  EXPECT_NE(m.find("through the mount"), std::string::npos) << m;
}

TEST(PeerGroups, ParsesTheGroupsLine) {
  auto g = ParseSupplementaryGroups("Name:\tcat\nUid:\t0 0 0 0\nGroups:\t4 24 27 65534 \nNgid:\t0\n");
  ASSERT_TRUE(g.has_value()) << g.error().ToString();
  EXPECT_EQ(*g, (std::vector<gid_t>{4, 24, 27, 65534}));
  auto empty = ParseSupplementaryGroups("Groups:\t\nNgid:\t0\n");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

TEST(PeerGroups, RefusesMissingOrBadLines) {
  EXPECT_EQ(ParseSupplementaryGroups("Name:\tcat\n").error().err(), EUCLEAN);
  EXPECT_EQ(ParseSupplementaryGroups("Groups:\t4 x5\n").error().err(), EUCLEAN);
  EXPECT_EQ(ParseSupplementaryGroups("Groups:\t-4\n").error().err(), EUCLEAN);
  EXPECT_EQ(ParseSupplementaryGroups("Groups:\t99999999999\n").error().err(), EUCLEAN);
  // "NGroups:" is not "Groups:".
  EXPECT_EQ(ParseSupplementaryGroups("XGroups:\t1\n").error().err(), EUCLEAN);
}

TEST(PeerGroups, OwnProcessStatusParses) {
  // What IdentifyPeer reads for a real process: this one's.
  std::vector<gid_t> want(static_cast<size_t>(::getgroups(0, nullptr)));
  ASSERT_EQ(::getgroups(static_cast<int>(want.size()), want.data()), static_cast<int>(want.size()));
  FILE* f = ::fopen("/proc/self/status", "r");
  ASSERT_NE(f, nullptr);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  ::fclose(f);
  auto g = ParseSupplementaryGroups(text);
  ASSERT_TRUE(g.has_value()) << g.error().ToString();
  EXPECT_EQ(*g, want);
}

}  // namespace
}  // namespace udax::share
