#!/bin/bash
# udax io error reporting: "CMD: message (ERRNO)" on stderr, later commands
# still run, exit status 1; bad numbers and usage are EINVAL; a failed mount
# is "io: ...".
source "$(dirname "$0")/lib.bash" "$@"
new_fs img
img=$T/img

run "$UDAX" io "$img" -c "open /nonexistent" -c "open -f /exists" -c "pwrite 0 4" \
  -c "rm /nonexistent" -c "rmdir /nonexistent" -c "mv /nonexistent /x" -c "ls /nonexistent" \
  -c "stat"
expect_rc 1
expect_err_re '^open: .*\(ENOENT\)$'
expect_err_re '^rm: .*\(ENOENT\)$'
expect_err_re '^rmdir: .*\(ENOENT\)$'
expect_err_re '^mv: .*\(ENOENT\)$'
expect_err_re '^ls: .*\(ENOENT\)$'
expect_out "wrote 4/4 bytes at offset 0"
expect_out 'fd.path = "/exists"'

# Commands that need a file, with none open.
for cmd in "pwrite 0 1" "pread 0 1" "truncate 0" "falloc 0 1" "fpunch 0 1" "fzero 0 1" \
  "fsync" "fdatasync" "stat" "fiemap" "close"; do
  run "$UDAX" io "$img" -c "$cmd" -c "ls /"
  expect_rc 1
  expect_err "${cmd%% *}: no file is open (EBADF)"
  expect_out "exists"
done

# Unknown commands and bad arguments.
run "$UDAX" io "$img" -c "frobnicate 1 2" -c "pwrite" -c "pwrite -Z 0 1" -c "open" \
  -c "mv /exists" -c "ls /"
expect_rc 1
expect_err "frobnicate: unknown command (EINVAL)"
expect_err_re '^pwrite: usage: pwrite .*\(EINVAL\)$'
expect_err_re '^open: usage: open .*\(EINVAL\)$'
expect_err_re '^mv: usage: mv .*\(EINVAL\)$'
expect_out "exists"

# Bad numbers: EINVAL, no crash, later commands run.
run "$UDAX" io "$img" -c "open /exists" -c "pwrite zz 1" -c "pwrite 0 zz" -c "pread 1q 1" \
  -c "pwrite -S 0x100 0 1" -c "pwrite -S x 0 1" -c "truncate -1" -c "pwrite 0x 1" \
  -c "pread 99999999999999999999999 1" -c "pwrite 0xffffffffffffffff 2" -c "stat"
expect_rc 1
[[ $(grep -c "(EINVAL)" "$T/err") -eq 9 ]] || fail "expected 9 EINVAL errors"
expect_err "pwrite: "
expect_err "pread: "
expect_err "truncate: "
expect_out "stat.size = 4"

# Out-of-range requests fail cleanly.
run "$UDAX" io "$img" -c "open /exists" -c "pwrite 0xfffffffffffff000 4096" \
  -c "truncate 0xffffffffffffff00" -c "pread 0xfffffffffffff000 4096" -c "stat"
expect_err "pwrite: "
expect_err "truncate: "
expect_out "stat.size = 4"

# Namespace errors carry the right errno.
run "$UDAX" io "$img" -c "mkdir /d" -c "mkdir /d" -c "rmdir /exists" -c "open -f /d/f" -c "rmdir /d" \
  -c "rm /d" -c "open /exists/x"
expect_rc 1
expect_err_re '^mkdir: .*\(EEXIST\)$'
expect_err_re '^rmdir: .*\(ENOTDIR\)$'
expect_err_re '^rmdir: .*\(ENOTEMPTY\)$'
expect_err_re '^rm: .*\((EISDIR|EPERM)\)$'
expect_err_re '^open: .*\(ENOTDIR\)$'

# Quoting: names with blanks; an unterminated quote is an error.
run "$UDAX" io "$img" -c "open -f '/with blank'" -c 'pwrite 0 1' -c "ls /" -c "open '/oops"
expect_rc 1
expect_out "with blank"
expect_err "(EINVAL)"

# A failed mount.
run "$UDAX" io "$T/nonexistent" -c "ls /"
expect_rc 1
expect_err_re '^io: .*\(ENOENT\)$'

# A mounted device is busy for everyone else.
mkfifo "$T/fifo"
"$UDAX" io "$img" <"$T/fifo" >"$T/holder.out" 2>&1 &
holder=$!
exec 3>"$T/fifo"
echo "statfs" >&3
for ((i = 0; i < 300; i++)); do
  grep -q "statfs.f_bsize" "$T/holder.out" && break
  sleep 0.1
done
grep -q "statfs.f_bsize" "$T/holder.out" || fail "the holding udax io did not start"
run "$UDAX" io "$img" -c "ls /"
expect_rc 1
expect_err_re '^io: .*\(EBUSY\)$'
run "$UDAX" fsck "$img"
expect_rc 1
expect_err "(EBUSY)"
run "$UDAX" mkfs -f "$img"
expect_rc 1
expect_err "(EBUSY)"
exec 3>&-
wait "$holder" || fail "the holding udax io failed"

# Empty input is fine.
run "$UDAX" io "$img"
expect_rc 0

run "$UDAX" fsck "$img"
expect_rc 0
echo PASS
