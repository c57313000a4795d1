// tests/device_test.cc — device/: opening and sizing, the exclusive lock,
// bounds-checked access, persistence primitives and their fence counts, the
// persist observer, the Live -> Dying lifecycle with references, the holder.
#include "device/pmem_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "test_util.h"

namespace udax {
namespace {

using testutil::kMiB;
using testutil::TempDevice;

constexpr uint64_t kSize = 4 * kMiB;

std::unique_ptr<PmemDevice> OpenOrDie(const std::string& path, DeviceOptions o) {
  auto d = PmemDevice::Open(path, o);
  EXPECT_TRUE(d.has_value()) << d.error().ToString();
  return d.has_value() ? std::move(d).value() : nullptr;
}

TEST(DeviceTest, OpenCreatesAndSizes) {
  TempDevice t;
  auto missing = PmemDevice::Open(t.path(), {});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().err(), ENOENT);
  {
    auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->size(), kSize);
    EXPECT_EQ(d->path(), t.path());
    EXPECT_EQ(d->state(), DeviceState::kLive);
  }
  EXPECT_EQ(testutil::FileSize(t.path()), kSize);
  // Reopen without a size keeps it; with a size resizes it.
  {
    auto d = OpenOrDie(t.path(), {});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->size(), kSize);
  }
  {
    auto d = OpenOrDie(t.path(), {.size = 2 * kSize});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->size(), 2 * kSize);
  }
  // An empty file is not a device.
  ASSERT_EQ(::truncate(t.path().c_str(), 0), 0);
  auto empty = PmemDevice::Open(t.path(), {});
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().err(), EINVAL) << empty.error().ToString();
  // A directory is not a device.
  EXPECT_FALSE(PmemDevice::Open("/dev/shm", {}).has_value());
}

TEST(DeviceTest, ExclusiveLock) {
  TempDevice t;
  auto a = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(a);
  auto b = PmemDevice::Open(t.path(), {});
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().err(), EBUSY);
  EXPECT_NE(b.error().message().find("device busy"), std::string::npos) << b.error().message();
  // A non-exclusive open does not take (or test) the lock.
  auto c = PmemDevice::Open(t.path(), {.exclusive = false});
  EXPECT_TRUE(c.has_value());
  a.reset();
  auto d = PmemDevice::Open(t.path(), {});
  EXPECT_TRUE(d.has_value()) << "the lock is dropped with the device";
}

// The device is mapped 2 MiB-aligned, so a backing with huge pages (devdax,
// fsdax, a huge=always tmpfs) can map it with them.
TEST(DeviceTest, MappedTwoMegabyteAligned) {
  TempDevice t;
  auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(d);
  ASSIGN_OR_FAIL(auto span, d->Range(0, 4096));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(span.data()) % (2 * kMiB), 0u);
}

TEST(DeviceTest, BoundsCheckedAccess) {
  TempDevice t;
  auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->Range(0, kSize).has_value());
  EXPECT_TRUE(d->Range(kSize - 10, 10).has_value());
  EXPECT_TRUE(d->Range(kSize, 0).has_value());
  EXPECT_EQ(d->Range(kSize - 10, 11).error().err(), EFAULT);
  EXPECT_EQ(d->Range(kSize + 1, 0).error().err(), EFAULT);
  EXPECT_EQ(d->Range(UINT64_MAX, 2).error().err(), EFAULT);
  EXPECT_EQ(d->Range(10, UINT64_MAX).error().err(), EFAULT);
  EXPECT_EQ(d->Range(UINT64_MAX - 5, 10).error().err(), EFAULT) << "no wrap-around";
  EXPECT_TRUE(d->Contains(0, kSize));
  EXPECT_FALSE(d->Contains(1, kSize));
  EXPECT_FALSE(d->Contains(UINT64_MAX, 1));
  EXPECT_NE(d->BlockPtr(kSize / 4096 - 1, 4096), nullptr);
  EXPECT_EQ(d->BlockPtr(kSize / 4096, 4096), nullptr);
  EXPECT_EQ(d->BlockPtr(UINT64_MAX / 4096, 4096), nullptr);
  char buf[16] = {};
  EXPECT_FALSE(d->CopyIn(kSize - 8, buf, 16, true).ok());
  EXPECT_FALSE(d->CopyOut(buf, kSize - 8, 16).ok());
  EXPECT_FALSE(d->Fill(kSize, 0, 1, true).ok());
  EXPECT_FALSE(d->Flush(kSize - 1, 2).ok());
  EXPECT_FALSE(d->Persist(UINT64_MAX - 1, 4).ok());
}

TEST(DeviceTest, CopiesAndFillsPersistAcrossReopen) {
  TempDevice t;
  auto data = testutil::Pattern(10000, 3);
  {
    auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
    ASSERT_TRUE(d);
    ASSERT_TRUE(d->CopyIn(12345, data.data(), data.size(), true).ok());
    ASSERT_TRUE(d->Fill(kSize - 4096, 0x7E, 4096, true).ok());
    std::vector<uint8_t> back(data.size());
    ASSERT_TRUE(d->CopyOut(back.data(), 12345, back.size()).ok());
    EXPECT_TRUE(back == data);
    EXPECT_EQ(d->BlockPtr(kSize / 4096 - 1, 4096)[4095], 0x7E);
  }
  auto raw = testutil::ReadImage(t.path(), 12345, data.size());
  EXPECT_TRUE(raw == data);
  auto d = OpenOrDie(t.path(), {});
  ASSERT_TRUE(d);
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(d->CopyOut(back.data(), 12345, back.size()).ok());
  EXPECT_TRUE(back == data);
}

TEST(DeviceTest, FenceCounts) {
  TempDevice t;
  auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(d);
  char buf[64] = {1};
  uint64_t f = d->fence_count();
  ASSERT_TRUE(d->CopyIn(0, buf, sizeof buf, /*drain=*/false).ok());
  ASSERT_TRUE(d->Fill(4096, 1, 100, false).ok());
  ASSERT_TRUE(d->Flush(0, 64).ok());
  EXPECT_EQ(d->fence_count(), f) << "no fence without drain";
  ASSERT_TRUE(d->CopyIn(0, buf, sizeof buf, true).ok());
  EXPECT_EQ(d->fence_count(), f + 1);
  ASSERT_TRUE(d->Fill(0, 0, 64, true).ok());
  EXPECT_EQ(d->fence_count(), f + 2);
  ASSERT_TRUE(d->Persist(0, 64).ok());
  EXPECT_EQ(d->fence_count(), f + 3);
  d->Drain();
  EXPECT_EQ(d->fence_count(), f + 4);
  // A failed (out of range) drain-call does not fence.
  EXPECT_FALSE(d->CopyIn(kSize, buf, 1, true).ok());
  EXPECT_EQ(d->fence_count(), f + 4);
}

class RecordingObserver : public PersistObserver {
 public:
  void OnFlush(uint64_t off, uint64_t len) override { events.push_back({'F', off, len}); }
  void OnDrain() override { events.push_back({'D', 0, 0}); }
  struct Ev {
    char kind;
    uint64_t off, len;
  };
  std::vector<Ev> events;
};

TEST(DeviceTest, ObserverSeesFlushesAndDrainsInOrder) {
  TempDevice t;
  auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(d);
  RecordingObserver obs;
  d->SetPersistObserver(&obs);
  char buf[100] = {};
  ASSERT_TRUE(d->CopyIn(8192, buf, 100, false).ok());
  ASSERT_TRUE(d->Fill(0, 3, 50, true).ok());
  ASSERT_TRUE(d->Persist(4096, 10).ok());
  d->SetPersistObserver(nullptr);
  ASSERT_TRUE(d->CopyIn(0, buf, 1, true).ok());
  ASSERT_EQ(obs.events.size(), 5u);
  EXPECT_EQ(obs.events[0].kind, 'F');
  EXPECT_EQ(obs.events[0].off, 8192u);
  EXPECT_EQ(obs.events[0].len, 100u);
  EXPECT_EQ(obs.events[1].kind, 'F');
  EXPECT_EQ(obs.events[1].len, 50u);
  EXPECT_EQ(obs.events[2].kind, 'D');
  EXPECT_EQ(obs.events[3].kind, 'F');
  EXPECT_EQ(obs.events[3].off, 4096u);
  EXPECT_EQ(obs.events[4].kind, 'D');
}

TEST(DeviceTest, LifecycleAndReferences) {
  TempDevice t;
  auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(d);
  {
    auto r = d->TryRef();
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(static_cast<bool>(*r));
    DeviceRef moved = std::move(*r);
    EXPECT_TRUE(static_cast<bool>(moved));
    EXPECT_FALSE(static_cast<bool>(*r));  // NOLINT(bugprone-use-after-move)
    DeviceRef other;
    other = std::move(moved);
    EXPECT_TRUE(static_cast<bool>(other));
    other.Release();
    EXPECT_FALSE(static_cast<bool>(other));
  }
  d->Kill();
  EXPECT_EQ(d->state(), DeviceState::kDying);
  auto r = d->TryRef();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().err(), ENODEV);
  d->Kill();  // idempotent
  EXPECT_EQ(d->state(), DeviceState::kDying);
}

class NullHolder : public DeviceHolder {
 public:
  void NotifyFailure(uint64_t, uint64_t, FailureFlags) override {}
};

TEST(DeviceTest, OneHolder) {
  TempDevice t;
  auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(d);
  NullHolder a, b;
  EXPECT_EQ(d->holder(), nullptr);
  ASSERT_TRUE(d->SetHolder(&a).ok());
  EXPECT_TRUE(d->SetHolder(&a).ok()) << "the same holder again is fine";
  EXPECT_EQ(d->SetHolder(&b).err(), EBUSY);
  d->ClearHolder(&b);  // not the holder: no effect
  EXPECT_EQ(d->holder(), &a);
  d->ClearHolder(&a);
  EXPECT_EQ(d->holder(), nullptr);
  EXPECT_TRUE(d->SetHolder(&b).ok());
  EXPECT_EQ(d->holder(), &b);
}

}  // namespace
// ---- contracts (util/assert.h) ---------------------------------------------------

// A reference released twice (here: a byte copy of one, as a struct copied
// with memcpy would make) would let Remove() free the memory under a live
// operation.
TEST(DeviceTest, ContractReferenceReleasedTwiceDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  TempDevice t;
  auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(d);
  auto r = d->TryRef();
  ASSERT_TRUE(r.has_value());
  EXPECT_DEATH(
      {
        alignas(DeviceRef) unsigned char copy[sizeof(DeviceRef)];
        std::memcpy(static_cast<void*>(copy), static_cast<void*>(&*r), sizeof(DeviceRef));
        reinterpret_cast<DeviceRef*>(copy)->Release();
        r->Release();
      },
      "device reference released more often than");
  r->Release();
  EXPECT_EQ(PmemDevice::thread_refs(), 0);
  EXPECT_TRUE(d->Remove(100).ok()) << "one reference, released once: the removal drains";
}

TEST(DeviceTest, ContractDeviceDestroyedWithAReferenceHeldDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  TempDevice t;
  auto d = OpenOrDie(t.path(), {.create = true, .size = kSize});
  ASSERT_TRUE(d);
  auto r = d->TryRef();
  ASSERT_TRUE(r.has_value());
  EXPECT_DEATH(d.reset(), "destroyed while 1 reference\\(s\\) are held");
  r->Release();
  d.reset();
}

}  // namespace udax
