#!/usr/bin/env bash
# udax demo: the failure story runs unattended and exits 0 only when every
# step behaved as documented; its key lines are checked here, and the image it
# leaves (--device) is checked with fsck and io afterwards.
source "$(dirname "$0")/lib.bash" "$@"

# Default image: made under /dev/shm (or /tmp) and removed at the end.
run "$UDAX" demo
expect_rc 0
expect_no_err
expect_no_out "FAIL"
for n in 1 2 3 4 5 6; do expect_out "[$n/6] "; done
img=$(sed -n 's/^demo finished: every step behaved as documented (\(.*\) removed)$/\1/p' "$T/out")
[[ -n $img ]] || fail "no 'demo finished ... removed' line"
[[ ! -e $img ]] || fail "the demo left its image $img behind"

# 2: the clone shares every block.
expect_out "/data/b cloned: Fiemap shows both files on the same 256 device blocks, flag shared"
# 3: the threads run inside Guarded.
expect_out_re '^  ok    threads storing \(stores in [0-9]+ ms\): a#0 \+[1-9][0-9]*, a#1 \+[1-9][0-9]*, b#0 \+[1-9][0-9]*, b#1 \+[1-9][0-9]*$'
# 4: one shared block fails; both sharers hear it at the same file offset.
off=$(sed -n 's/^  ok    on_invalidate: \/data\/a offset=\([0-9]*\) len=4096 reason=MemoryFailure$/\1/p' "$T/out")
[[ -n $off ]] || fail "no MemoryFailure callback for /data/a"
dev=$(sed -n 's/^  ok    InjectPoison(device offset \([0-9]*\), 4096)$/\1/p' "$T/out")
[[ -n $dev ]] || fail "no InjectPoison line"
expect_out "Fiemap: file offset $off (block $((off / 4096))) of both files is device offset $dev, flag shared"
expect_out "on_invalidate: /data/b offset=$off len=4096 reason=MemoryFailure"
expect_out "Pread /data/a at $off: EIO (memory failure: file offset $off is poisoned)"
expect_out "Pread /data/b at $off: EIO (memory failure: file offset $off is poisoned)"
expect_out "load through the /data/a mapping there: Guarded returns EIO"
expect_out_re '^  ok    threads storing after the failure \(stores in [0-9]+ ms\): a#0 \+[1-9]'
# 5: removal revokes both mappings and ends every thread cleanly.
expect_out "on_invalidate: /data/a offset=0 len=1048576 reason=Removed"
expect_out "on_invalidate: /data/b offset=0 len=1048576 reason=Removed"
[[ $(grep -cE '^  ok    thread [ab]#[01] ended [0-9.]+ ms after removal began, [0-9]+ stores: ENODEV \(mapping revoked: device removed \(SIGBUS\)\)$' "$T/out") -eq 4 ]] ||
  fail "expected four threads ending with ENODEV"
expect_out "later operations fail with ENODEV: filesystem shut down: device removed"
expect_out "Unmount() ok"
# 6: re-attached, clean, the data intact but the failed block.
expect_out_re '^  ok    fsck: clean: 3 files, '
expect_out_re "^  ok    /data/a: 255 blocks hold the pattern, block $((off / 4096)) reads EIO, slots hold the last stores: [1-9]"
expect_out_re "^  ok    /data/b: 255 blocks hold the pattern, block $((off / 4096)) reads EIO"
expect_out "/data/log: the 4 lines appended before the removal"
expect_out "BadBlocks() after the remount: [$dev, +4096)"
expect_out "unmounted; fsck clean again"

# --device keeps the image: fsck is clean, the failed block still reads EIO.
run "$UDAX" demo --device "$T/img"
expect_rc 0
expect_out "demo finished: every step behaved as documented ($T/img kept)"
[[ -f $T/img ]] || fail "--device image was not kept"
off=$(sed -n 's/^  ok    on_invalidate: \/data\/a offset=\([0-9]*\) len=4096 reason=MemoryFailure$/\1/p' "$T/out")
run "$UDAX" fsck "$T/img"
expect_rc 0
run "$UDAX" io "$T/img" -c "open /data/b" -c "pread $off 4096" -c "pread -v 0 4" -c "cat /data/log"
expect_rc 1
expect_err "(EIO)"
expect_out "4. poisoned device offset"

# An existing filesystem is not overwritten without -f.
run "$UDAX" demo --device "$T/img"
expect_rc 1
expect_out "FAIL  expected: mkfs of $T/img succeeds"
expect_out "(use -f to overwrite)"
expect_out "demo FAILED in step 1 of 6"
run "$UDAX" demo --device "$T/img" -f
expect_rc 0
expect_out "demo finished: every step behaved as documented"

# Only image files; the options are documented.
run "$UDAX" demo --device /dev/null
expect_rc 1
expect_err "/dev/null is not a regular file"
[[ -c /dev/null ]] || fail "/dev/null was touched"
run "$UDAX" demo --help
expect_rc 0
for opt in "--device PATH" "--keep" "-f,--force"; do expect_out "$opt"; done
echo PASS
