// tests/crash_env.h — included once by each crash test program.
//
// The tally: when the program ends it prints the distinct crash states its
// tests checked as the last line of its output (after gtest's summary),
// "crash states checked: N (P fence, T torn, R reordered)", and appends the
// counts to $UDAX_CRASH_COUNTS (set by ctest; the crash_states_summary test
// adds up every program's counts).
#pragma once

#include <gtest/gtest.h>

#include <cstdio>

#include "testing/crash_check.h"

namespace udax::testing {

class CrashTallyPrinter : public ::testing::EmptyTestEventListener {
 public:
  // After gtest's own summary (printed at the end of the iteration).
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    const CrashTally& t = ProcessCrashTally();
    AppendCrashTally(t);
    printf("%s\n", CrashTallyLine(t).c_str());
    fflush(stdout);
  }
};

inline const bool kCrashTallyPrinterAdded = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new CrashTallyPrinter);
  return true;
}();

}  // namespace udax::testing
