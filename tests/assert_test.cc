// tests/assert_test.cc — util/assert.h and util/owned_mutex.h: a failed
// UDAX_ASSERT names file:line, the condition and the message, then aborts;
// without UDAX_ASSERTS nothing is evaluated; OwnedSharedMutex knows its
// holder (AssertHeld / AssertReaderHeld / AssertNotHeld) and catches a
// self-deadlocking lock and an unlock by a thread that does not hold it.
#include "util/assert.h"

#include <gtest/gtest.h>

#include <mutex>
#include <shared_mutex>
#include <thread>

#include "test_util.h"
#include "util/owned_mutex.h"

namespace udax {
namespace {

TEST(AssertTest, ConditionIsEvaluatedOnlyWithAsserts) {
  int evaluated = 0;
  UDAX_ASSERT(++evaluated > 0);
  UDAX_ASSERT_MSG(++evaluated > 0, std::to_string(++evaluated));
  EXPECT_EQ(evaluated, UDAX_ASSERTS_ON ? 2 : 0) << "the message is built only when the check fails";
}

TEST(AssertTest, FailureNamesFileLineConditionAndMessage) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  const int blocks = 3;
  EXPECT_DEATH(UDAX_ASSERT_MSG(blocks == 4, "block " + std::to_string(blocks)),
               "udax: assertion failed: .*assert_test.cc:[0-9]+: blocks == 4: block 3");
  EXPECT_DEATH(UDAX_ASSERT(blocks < 0), "assertion failed: .*assert_test.cc:[0-9]+: blocks < 0\n");
}

TEST(OwnedSharedMutexTest, KnowsItsHolder) {
  OwnedSharedMutex mu;
  mu.AssertNotHeld();
  {
    std::unique_lock<OwnedSharedMutex> lk(mu);
    mu.AssertHeld();
    mu.AssertReaderHeld();
    bool other_sees_it_held = true;
    std::thread([&] { other_sees_it_held = !mu.try_lock_shared(); }).join();
    EXPECT_TRUE(other_sees_it_held);
  }
  {
    std::shared_lock<OwnedSharedMutex> lk(mu);
    mu.AssertReaderHeld();
    std::thread([&] {
      mu.AssertNotHeld();  // held by another thread, not by this one
      std::shared_lock<OwnedSharedMutex> also(mu);
      mu.AssertReaderHeld();
    }).join();
  }
  mu.AssertNotHeld();
}

TEST(OwnedSharedMutexTest, ContractMisuseDies) {
  UDAX_SKIP_WITHOUT_ASSERTS();
  OwnedSharedMutex mu;
  EXPECT_DEATH(mu.AssertHeld(), "REQUIRES: the calling thread holds the lock exclusively");
  EXPECT_DEATH(mu.AssertReaderHeld(), "REQUIRES: the calling thread holds the lock");
  EXPECT_DEATH(mu.unlock(), "unlock\\(\\) of a mutex the thread does not hold exclusively");
  EXPECT_DEATH(mu.unlock_shared(), "unlock_shared\\(\\) of a mutex the thread does not hold shared");
  {
    std::shared_lock<OwnedSharedMutex> lk(mu);
    EXPECT_DEATH(mu.AssertHeld(), "REQUIRES: the calling thread holds the lock exclusively");
    EXPECT_DEATH(mu.lock(), "lock\\(\\) by a thread that already holds the mutex \\(self-deadlock\\)");
    EXPECT_DEATH(mu.AssertNotHeld(), "REQUIRES: the calling thread does not hold the lock");
  }
  std::unique_lock<OwnedSharedMutex> lk(mu);
  EXPECT_DEATH(mu.lock_shared(), "lock_shared\\(\\) by a thread that already holds the mutex");
  std::thread other([&] { EXPECT_FALSE(mu.try_lock()); });
  other.join();
}

}  // namespace
}  // namespace udax
