#!/bin/bash
# udax io on a full device: tiny files until ENOSPC, then `rm` of every one
# works (the reserve belongs to removals); a put too big for the device
# reports a short write with what was written and the real error (ENOSPC,
# never EIO); fsck is clean and the space is back at the end.
source "$(dirname "$0")/lib.bash" "$@"
new_fs img 8m
img=$T/img

free_blocks() {
  run "$UDAX" io "$img" -c statfs
  expect_rc 0
  sed -n "s/^statfs.f_bfree = //p" "$T/out"
}
free0=$(free_blocks)
[[ -n $free0 ]] || fail "statfs shows no free_blocks"

# Tiny files until the device is full.
printf 'tiny\n' >"$T/tiny"
for i in $(seq 0 2999); do echo "put $T/tiny /f$i"; done >"$T/puts"
run_in "$T/puts" "$UDAX" io "$img"
expect_rc 1
expect_err "(ENOSPC)"
if grep -q "EIO" "$T/err"; then fail "a full device reported EIO"; fi
run "$UDAX" io "$img" -c "ls /"
expect_rc 0
grep '^f' "$T/out" | sed 's|^|rm /|' >"$T/rms"
made=$(wc -l <"$T/rms")
((made > 500 && made < 3000)) || fail "$made tiny files fit in 8 MiB"
[[ $(free_blocks) -eq 0 ]] || fail "statfs shows free blocks on the full device"

# Every one of them is removed, one `rm` each.
run_in "$T/rms" "$UDAX" io "$img"
expect_rc 0
expect_no_err
run "$UDAX" io "$img" -c "ls /"
expect_rc 0
[[ ! -s $T/out ]] || fail "names left after rm of every file"
run "$UDAX" fsck "$img"
expect_rc 0

# A put bigger than the device: a short write, what was written, ENOSPC.
head -c $((12 << 20)) /dev/zero | tr '\0' 'x' >"$T/big"
run "$UDAX" io "$img" -c "put $T/big /big"
expect_rc 1
expect_err_re "put: short write to /big: wrote [0-9]+ of $((12 << 20)) bytes: no space left on device \(ENOSPC\)"
if grep -q "EIO" "$T/err"; then fail "a full device reported EIO"; fi
# pwrite says the same.
run "$UDAX" io "$img" -c "open /big" -c "pwrite 0 16m"
expect_rc 1
expect_err_re "short write to /big: wrote [0-9]+ of $((16 << 20)) bytes: no space left on device \(ENOSPC\)"
run "$UDAX" io "$img" -c "rm /big"
expect_rc 0
run "$UDAX" fsck "$img"
expect_rc 0
# statfs leaves out the node free list (its level moves by up to 56 blocks)
# and / keeps its entry leaf: within that, every block is free again.
free1=$(free_blocks)
((free1 <= free0 && free1 >= free0 - 57)) || fail "free blocks $free1 after removing everything, $free0 at first"
echo PASS
