#!/usr/bin/env bash
# Adds up the crash states every crash test process checked (one "P T R" line
# each, appended to FILE — see CMakeLists.txt) and prints the crash suite's
# summary line: crash states checked: N (P fence, T torn, R reordered).
set -euo pipefail
file=${1:?usage: crash-summary.sh COUNTS_FILE}
[ -f "$file" ] || { echo "crash states checked: 0 (0 fence, 0 torn, 0 reordered)"; exit 0; }
awk '{ p += $1; t += $2; r += $3 }
     END { printf "crash states checked: %d (%d fence, %d torn, %d reordered)\n", p + t + r, p, t, r }' "$file"
