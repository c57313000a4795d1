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

# A new image is private (0600, whatever the umask allows beyond it); an
# existing file keeps its mode.
[[ $(stat -c %a "$img") == 600 ]] || fail "new image has mode $(stat -c %a "$img"), not 600"
(umask 0; run "$UDAX" mkfs -s 8m "$T/umask0"; expect_rc 0)
[[ $(stat -c %a "$T/umask0") == 600 ]] || fail "image made under umask 0 has mode $(stat -c %a "$T/umask0")"
chmod 640 "$img"
run "$UDAX" mkfs -f "$img"
expect_rc 0
[[ $(stat -c %a "$img") == 640 ]] || fail "mkfs -f changed an existing file's mode to $(stat -c %a "$img")"

# A file that holds no data is taken without -f: all zeroes, a fresh
# truncate (holes), a fresh fallocate.
head -c $((16 << 20)) /dev/zero >"$T/zeros"
run "$UDAX" mkfs "$T/zeros"
expect_rc 0
run "$UDAX" fsck "$T/zeros"
expect_rc 0
truncate -s 16m "$T/holes"
run "$UDAX" mkfs "$T/holes"
expect_rc 0
if fallocate -l 16m "$T/falloc" 2>/dev/null; then
  run "$UDAX" mkfs "$T/falloc"
  expect_rc 0
fi

# A file holding other data is refused without -f, and left as it was — even
# when -s asks for another size.
head -c $((8 << 20)) /dev/zero >"$T/data"
printf 'precious' | dd of="$T/data" bs=1 seek=$((5 << 20)) conv=notrunc status=none
cp "$T/data" "$T/data.orig"
for args in "" "-s 16m" "-s 4m"; do
  # shellcheck disable=SC2086
  run "$UDAX" mkfs $args "$T/data"
  expect_rc 1
  expect_err "$T/data holds data that is not a udax filesystem; -f overwrites it"
  cmp -s "$T/data" "$T/data.orig" || fail "refused mkfs $args changed $T/data"
done
# An existing udax image is not resized by a refused mkfs either.
run "$UDAX" mkfs -s 16m "$img"
expect_rc 1
expect_err "already contains a udax filesystem"
[[ $(stat -c %s "$img") -eq $((32 << 20)) ]] || fail "refused mkfs -s 16m resized the image"
run "$UDAX" mkfs -f "$T/data"
expect_rc 0
run "$UDAX" fsck "$T/data"
expect_rc 0

# A symlink planted at the target is not followed to a file (with or without
# -f, existing or dangling); the file it points to is untouched.
cp "$T/data.orig" "$T/victim"
ln -s "$T/victim" "$T/link"
ln -s "$T/nothing-yet" "$T/dangling"
for args in "" "-f" "-s 8m" "-f -s 8m"; do
  # shellcheck disable=SC2086
  run "$UDAX" mkfs $args "$T/link"
  expect_rc 1
  expect_err "is a symbolic link to a file: refusing to follow it"
  cmp -s "$T/victim" "$T/data.orig" || fail "mkfs $args through a symlink changed its target"
done
run "$UDAX" mkfs -s 8m "$T/dangling"
expect_rc 1
expect_err "is a symbolic link to a file: refusing to follow it"
[[ ! -e $T/nothing-yet ]] || fail "mkfs created the target of a dangling symlink"

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
