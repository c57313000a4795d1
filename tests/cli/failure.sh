#!/usr/bin/env bash
# udax io poison / remove: memory failure of a file's block (invalidate line,
# EIO, bad-block list in info, fsck clean, kept across mounts), argument
# errors, device removal under a mapping (invalidate line, ENODEV afterwards,
# clean exit), and the image after removal.
source "$(dirname "$0")/lib.bash" "$@"
new_fs img
IMG=$T/img

# A file of two extents' worth of data; its first block's device offset.
run "$UDAX" io "$IMG" -c "open -f /a" -c "pwrite -q -S 0x11 0 64k" -c "fsync" -c "bmap" -c "stat"
expect_rc 0
dev=$(awk '$1 == 0 { print $2; exit }' "$T/out")
[[ $dev =~ ^[0-9]+$ ]] || fail "no extent at file offset 0 in bmap"
len0=$(awk '$1 == 0 { print $3; exit }' "$T/out")
((len0 >= 8192)) || fail "the first extent is shorter than two blocks"
ino=$(sed -n 's/^stat\.ino = //p' "$T/out")
[[ $ino =~ ^[0-9]+$ ]] || fail "no stat.ino"
bad=$((dev + 4096))  # the file's second block (file offset 4096)

# ---- memory failure --------------------------------------------------------

run "$UDAX" io "$IMG" -c "open /a" -c "mmap 0 64k" -c "poison $bad 4k" \
  -c "pread -q 4096 4096" -c "pread -q 0 4096" -c "pread -q 8192 4096" -c "mread 0 16"
expect_rc 1  # the pread of the poisoned block
expect_out "invalidate: ino=$ino offset=4096 len=4096 reason=MemoryFailure"
[[ $(grep -c '^invalidate: ' "$T/out") -eq 1 ]] || fail "expected exactly one invalidate line"
expect_out "poisoned 4096 bytes at device offset $bad"
# The invalidate line comes first: the callback runs inside `poison`.
[[ $(head -1 "$T/out") == "invalidate: "* ]] || fail "invalidate line is not first"
expect_err "pread: "
expect_err "(EIO)"
[[ $(grep -c '^pread: ' "$T/err") -eq 1 ]] || fail "only the poisoned block's pread may fail"
if grep -q '^mread: ' "$T/err"; then fail "mread of a good block failed"; fi

run "$UDAX" info "$IMG"
expect_rc 0
expect_out "bad_blocks: 1"
expect_out "bad: $bad 4096"
run "$UDAX" info --json "$IMG"
expect_rc 0
python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["bad_blocks"] == 1, j
assert j["bad_extents"] == [{"device_offset": int(sys.argv[1]), "length": 4096}], j
' "$bad" <"$T/out" || fail "info --json bad_extents"

run "$UDAX" fsck "$IMG"
expect_rc 0

# A remount keeps the bad block listed, and refuses it again.
run "$UDAX" io "$IMG" -c "open /a" -c "pread -q 4096 4096"
expect_rc 1
expect_err "(EIO)"
run "$UDAX" io "$IMG" -c "open /a" -c "pread -v 0 16" -c "pread -v 8192 16"
expect_rc 0
expect_out "00000000:  11 11 11 11"
expect_out "00002000:  11 11 11 11"
run "$UDAX" info "$IMG"
expect_out "bad_blocks: 1"
expect_out "bad: $bad 4096"

# ---- argument errors ---------------------------------------------------------

size=$(stat -c %s "$IMG")
run "$UDAX" io "$IMG" -c "poison $size 4k"
expect_rc 1
expect_err "past the end of the device"
expect_err "(EINVAL)"
run "$UDAX" io "$IMG" -c "poison $((size - 4096)) 8k"
expect_rc 1
expect_err "past the end of the device"
run "$UDAX" io "$IMG" -c "poison $((bad + 1)) 4096"
expect_rc 1
expect_err "page-aligned"
expect_err "(EINVAL)"
run "$UDAX" io "$IMG" -c "poison $bad 100"
expect_rc 1
expect_err "page-aligned"
run "$UDAX" io "$IMG" -c "poison $bad 0"
expect_rc 1
expect_err "(EINVAL)"
run "$UDAX" io "$IMG" -c "poison $bad"
expect_rc 1
expect_err "usage: poison devoff len"
run "$UDAX" io "$IMG" -c "poison x 4k"
expect_rc 1
expect_err "invalid device offset 'x'"
run "$UDAX" io "$IMG" -c "remove now"
expect_rc 1
expect_err "usage: remove"
run "$UDAX" info "$IMG"
expect_out "bad_blocks: 1"  # nothing more was poisoned

# ---- device removal ----------------------------------------------------------

run "$UDAX" io "$IMG" -c "open -f /b" -c "pwrite -q -S 0x22 0 16k" -c "fsync"
expect_rc 0
run "$UDAX" io "$IMG" -c "stat /b"
ino_b=$(sed -n 's/^stat\.ino = //p' "$T/out")

run "$UDAX" io "$IMG" -c "open /b" -c "mmap 0 16k" -c "remove" -c "mread 0 16" \
  -c "pread -q 0 4096" -c "ls /" -c "open /a" -c "poison $bad 4k" -c "remove"
expect_rc 1
expect_out "invalidate: ino=$ino_b offset=0 len=16384 reason=Removed"
[[ $(grep -c '^invalidate: ' "$T/out") -eq 1 ]] || fail "expected exactly one invalidate line"
expect_out "device removed"
expect_err "mread: "
expect_err "pread: filesystem shut down: device removed (ENODEV)"
expect_err "ls: /: filesystem shut down: device removed (ENODEV)"
expect_err "open: /a: filesystem shut down: device removed (ENODEV)"
expect_err "poison: filesystem shut down: device removed (ENODEV)"
expect_err_re "^remove: .*already removed \(ENODEV\)$"
# The final munmap/close/unmount after removal do not fail the run.
if grep -qE '^(munmap|close|io): ' "$T/err"; then fail "end of run failed after removal"; fi

# remove as the last command, a mapping and a file still held: exit 0.
run "$UDAX" io "$IMG" -c "open /b" -c "mmap -r 0 8k" -c "remove"
expect_rc 0
expect_out "invalidate: ino=$ino_b offset=0 len=8192 reason=Removed"
expect_no_err

# Commands from stdin after removal: each fails, the run ends.
printf 'remove\nstat /b\nsync\n' >"$T/cmds"
run_in "$T/cmds" "$UDAX" io "$IMG"
expect_rc 1
expect_err "stat: /b: filesystem shut down: device removed (ENODEV)"
expect_err "sync: filesystem shut down: device removed (ENODEV)"

# ---- after removal: the image mounts, fsck is clean, data intact ---------------

run "$UDAX" fsck "$IMG"
expect_rc 0
run "$UDAX" io "$IMG" -c "open /b" -c "pread -v 0 16" -c "pread -v 12288 16" -c "stat"
expect_rc 0
expect_out "00000000:  22 22 22 22"
expect_out "00003000:  22 22 22 22"
expect_out "stat.size = 16384"
run "$UDAX" info "$IMG"
expect_out "bad_blocks: 1"
expect_out "bad: $bad 4096"
run "$UDAX" fsck "$IMG"
expect_rc 0
echo PASS
