#!/bin/bash
# udax io put/get/cat: host files round-trip byte for byte.
source "$(dirname "$0")/lib.bash" "$@"
new_fs img
img=$T/img

head -c $((1 << 20)) /dev/urandom >"$T/random"
head -c 12345 /dev/urandom >"$T/odd"
: >"$T/empty"

run "$UDAX" io "$img" -c "mkdir /dir" -c "put $T/random /dir/random" -c "put $T/odd /odd" \
  -c "put $T/empty /empty"
expect_rc 0
expect_no_err

# A new invocation reads them back.
run "$UDAX" io "$img" -c "get /dir/random $T/random.out" -c "get /odd $T/odd.out" \
  -c "get /empty $T/empty.out"
expect_rc 0
expect_no_err
cmp "$T/random" "$T/random.out" || fail "1 MiB round trip differs"
cmp "$T/odd" "$T/odd.out" || fail "12345-byte round trip differs"
cmp "$T/empty" "$T/empty.out" || fail "empty round trip differs"

# cat writes the bytes, and only them, to stdout.
run "$UDAX" io "$img" -c "cat /dir/random"
expect_rc 0
cmp "$T/random" "$T/out" || fail "cat differs"

# put over an existing file replaces it (truncates).
run "$UDAX" io "$img" -c "put $T/random /replaced" -c "put $T/odd /replaced" -c "open /replaced" \
  -c "stat"
expect_rc 0
expect_out "stat.size = 12345"

# Errors: missing host file, missing udax file.
run "$UDAX" io "$img" -c "put $T/nonexistent /x" -c "get /nonexistent $T/x" -c "cat /nonexistent"
expect_rc 1
expect_err "put: "
expect_err "get: "
expect_err "cat: "
[[ $(grep -c "(ENOENT)" "$T/err") -eq 3 ]] || fail "expected three ENOENT errors"
[[ ! -e $T/x ]] || fail "failed get created the host file"

# cat into a closed pipe: an error, not death by SIGPIPE.
set +e
"$UDAX" io "$img" -c "cat /dir/random" -c "cat /dir/random" 2>"$T/err" | head -c 1 >/dev/null
rc=${PIPESTATUS[0]}
set -e
((rc < 128)) || fail "cat into a closed pipe killed udax (exit $rc)"

run "$UDAX" fsck "$img"
expect_rc 0
echo PASS
