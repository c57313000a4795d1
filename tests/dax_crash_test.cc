// tests/dax_crash_test.cc — crash points over the DAX fault path: stores
// through a mapping into holes (each write fault allocates, zeroes and
// commits) followed by Persist, cut at every fence. After recovery: every
// store whose Persist returned before the cut is there, the one in flight is
// old-or-new, nothing else changed, and fsck is clean. Its fence states count
// in the crash suite's total (crash_env.h); the exhaustive sweep
// (crash_sweep_test.cc) also cuts DAX stores into holes and shared blocks
// at torn and reordered states.
#include <fcntl.h>

#include "crash_env.h"
#include "test_util.h"
#include "testing/crash_recorder.h"
#include "udax/fs.h"
#include "udax/mapping.h"

namespace udax {
namespace {

using testutil::kMiB;
using testutil::TempDevice;

TEST(DaxCrashTest, HoleWriteFaultsAreDurableAtEveryFence) {
  TempDevice dev, img("crash");
  ASSERT_OK(Filesystem::Mkfs(dev.path(), MkfsOptions{.size = 16 * kMiB}));
  constexpr int kPages = 24;
  constexpr uint64_t kStride = 48 * 1024;  // spread over several 64 KiB allocation windows
  {
    ASSIGN_OR_FAIL(auto fs, Filesystem::Mount(dev.path()));
    ASSIGN_OR_FAIL(File f, fs->Open("/m", O_CREAT | O_RDWR, 0644));
    ASSERT_OK(f.Truncate(kPages * kStride));
    ASSIGN_OR_FAIL(Mapping m, f.Map(0, kPages * kStride, Prot::kReadWrite));
    testing::CrashRecorder rec(ImplOf(*fs)->device());
    ASSERT_OK(rec.Start());
    ImplOf(*fs)->device()->SetPersistObserver(&rec);
    for (int i = 0; i < kPages; i++) {
      uint8_t* p = m.data() + i * kStride + (i % 7) * 100;
      std::memset(p, 0x40 + i, 300);
      ASSERT_OK(m.Persist(p, 300));
      EXPECT_EQ(rec.MarkOpDone(i), 0u) << "op " << i << " returned with unfenced writes";
    }
    ImplOf(*fs)->device()->SetPersistObserver(nullptr);
    m = Mapping();
    f = File();
    CrashForTesting(*fs);

    uint64_t fences = rec.fences();
    ASSERT_GT(fences, static_cast<uint64_t>(kPages));
    for (uint64_t k = 0; k <= fences; k++) {
      ASSERT_OK(rec.WriteImage(k, img.path()));
      {
        ASSIGN_OR_FAIL(auto cfs, Filesystem::Mount(img.path()));
        ASSIGN_OR_FAIL(auto data, testutil::ReadWhole(*cfs, "/m"));
        ASSERT_EQ(data.size(), kPages * kStride) << "fence " << k;
        for (int i = 0; i < kPages; i++) {
          size_t at = i * kStride + (i % 7) * 100;
          uint8_t want = 0x40 + i;
          bool done = rec.op_done_fence(i) <= k;
          int64_t bad_new = testutil::FirstNot(data.data() + at, 300, want);
          int64_t bad_zero = testutil::FirstNot(data.data() + at, 300, 0);
          if (done) {
            ASSERT_EQ(bad_new, -1) << "fence " << k << ": completed store " << i << " lost";
          } else {
            ASSERT_TRUE(bad_new == -1 || bad_zero == -1)
                << "fence " << k << ": store " << i << " neither old nor new";
          }
        }
        // Everything outside the stores reads as zero.
        for (int i = 0; i < kPages; i++) {
          size_t at = i * kStride + (i % 7) * 100;
          ASSERT_EQ(testutil::FirstNot(data.data() + i * kStride, at - i * kStride, 0), -1) << k;
          size_t after = at + 300, stop = (i + 1) * kStride;
          ASSERT_EQ(testutil::FirstNot(data.data() + after, stop - after, 0), -1) << k;
        }
        ASSERT_OK(cfs->Unmount());
      }
      ASSIGN_OR_FAIL(auto rep, Fsck(img.path()));
      ASSERT_TRUE(rep.clean()) << "fence " << k << testutil::JoinProblems(rep);
      testing::ProcessCrashTally().fence++;
    }
  }
}

}  // namespace
}  // namespace udax
