#!/bin/bash
# udax mkfs: sizes, refusing to overwrite without -f, -f, bad arguments.
source "$(dirname "$0")/lib.bash" "$@"

img=$T/img

# Without -s, a missing file is an error (and is not created).
run "$UDAX" mkfs "$img"
expect_rc 1
expect_err "mkfs: "
[[ ! -e $img ]] || fail "mkfs without -s created $img"

# A bad size is EINVAL.
run "$UDAX" mkfs -s zz "$img"
expect_rc 1
expect_err "(EINVAL)"
run "$UDAX" mkfs -s 0 "$img"
expect_rc 1
expect_err "(EINVAL)"

# Creates and sizes a regular file.
run "$UDAX" mkfs -s 64m "$img"
expect_rc 0
[[ $(stat -c %s "$img") -eq $((64 << 20)) ]] || fail "image is not 64 MiB"
run "$UDAX" fsck "$img"
expect_rc 0

# Data written now must not survive a forced mkfs.
run "$UDAX" io "$img" -c "open -f /keep" -c "pwrite 0 4k"
expect_rc 0

# Refused without -f; the filesystem is untouched.
run "$UDAX" mkfs -s 64m "$img"
expect_rc 1
expect_err "mkfs: "
run "$UDAX" mkfs "$img"
expect_rc 1
run "$UDAX" io "$img" -c "ls /"
expect_rc 0
expect_out "keep"

# -f overwrites (keeping the size when -s is not given).
run "$UDAX" mkfs -f "$img"
expect_rc 0
[[ $(stat -c %s "$img") -eq $((64 << 20)) ]] || fail "mkfs -f changed the size"
run "$UDAX" io "$img" -c "ls /"
expect_rc 0
expect_no_out "keep"
run "$UDAX" fsck "$img"
expect_rc 0

# -f with a new size; hex and suffixes.
run "$UDAX" mkfs -f -s 0x2000000 "$img"
expect_rc 0
[[ $(stat -c %s "$img") -eq $((32 << 20)) ]] || fail "mkfs -s 0x2000000 is not 32 MiB"
run "$UDAX" info "$img"
expect_rc 0
expect_out "size_bytes: $((32 << 20))"

# An existing non-udax file is formatted without -f.
head -c $((16 << 20)) /dev/zero >"$T/zeros"
run "$UDAX" mkfs "$T/zeros"
expect_rc 0
run "$UDAX" fsck "$T/zeros"
expect_rc 0

# Syntax errors.
run "$UDAX" mkfs
expect_fail
run "$UDAX" mkfs --bogus "$img"
expect_fail
run "$UDAX" --version
expect_rc 0
expect_out "0.1.0"
run "$UDAX" --help
expect_rc 0
expect_out "mkfs"
expect_out "io"
run "$UDAX"
expect_fail
run "$UDAX" nosuchcommand
expect_fail
echo PASS
