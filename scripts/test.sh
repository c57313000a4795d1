#!/usr/bin/env bash
# Installs dependencies, builds (Release, and ASan+UBSan unless UDAX_SKIP_ASAN=1),
# fuzzes for a minute (scripts/fuzz.sh; UDAX_FUZZ_SECONDS) and runs the whole
# test suite with ctest. The last line is ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
status=0
# A short coverage-guided fuzzing run over every path that reads an image
# (docs/fuzzing.md); UDAX_FUZZ_SECONDS=0 skips it.
if [ "${UDAX_FUZZ_SECONDS:-60}" != 0 ]; then
  scripts/fuzz.sh "${UDAX_FUZZ_SECONDS:-60}" || status=1
fi
if [ "${UDAX_SKIP_ASAN:-0}" != 1 ]; then
  scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDAX_SANITIZE=address,undefined
  echo "== tests under ASan+UBSan"
  # handle_segv/sigbus=0: udax installs its own fault handlers (DAX) and chains
  # real faults to the default action, which the death tests expect.
  # The differential test runs a quarter of its Release steps under ASan (~5x slower).
  (cd build-asan && UDAX_DIFF_STEPS=8000 ASAN_OPTIONS=detect_leaks=1:handle_segv=0:handle_sigbus=0 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest -j"$(nproc)" --output-on-failure --timeout 600) || status=1
fi
echo "== tests (Release)"
# The crash suite's "crash states checked: ..." line (its Release total; under
# ASan it checks 1/8 of the states by itself) is printed just before ctest's
# summary, which stays the last lines of the output.
# The contract death tests (*.Contract*) ran above, in the ASan build, where
# assertions are on; Release compiles the assertions out, so they are not run
# again here. ctest lists tests that skipped after its summary: the summary
# line is then printed once more, so that it stays the last line.
(cd build && ctest -j"$(nproc)" --output-on-failure --timeout 600 -E '[.]Contract' |
   awk '/% tests passed/ && !done { system("bash ../scripts/crash-summary.sh crash_states.txt"); done = 1; summary = $0 }
        { print; fflush(); last = $0 }
        END { if (summary != "" && last != summary) print summary }') || status=1
exit $status
