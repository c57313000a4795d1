#!/bin/bash
# Memory failure and device removal under a mount with direct clients
# connected (docs/shared.md): `udax poison MNT` of a block two clients map
# (one file reflinked into another) reaches both ("invalidate: ...
# reason=MemoryFailure"), both get EIO there and go on elsewhere; `udax remove
# MNT` reaches every client ("reason=Removed"), their later commands fail with
# ENODEV, `udax umount` works, and the image keeps every committed change.
source "$(dirname "$0")/lib.bash" "$@"

fuse_setup
export UDAX_SHARE_DIR=$T/run  # a private rendezvous: never a real mount's
new_fs img 64m
img=$T/img
run "$UDAX" mount -o revoke_ms=1000 -l "$T/server.log" "$img" "$M"
expect_rc 0
is_mounted || fail "no fuse.udax mount on $M"

# /a (64 KiB) and /b sharing its blocks; the device offset of a's second block.
run "$UDAX" io "$M" -c "open -f /a" -c "pwrite -q -S 0x11 0 64k" -c "open -f /b" -c "reflink /a" -c "open /a" -c "bmap"
expect_rc 0
dev=$(awk '$1 == 0 { print $2; exit }' "$T/out")
[[ $dev =~ ^[0-9]+$ ]] || fail "no extent at file offset 0 in bmap"
bad=$((dev + 4096))

client_start A
client_start B
client_send A "open /a" "mmap -r 0 64k" "mread 0 64k" "stat"
client_wait A "^stat.size = 65536"
client_send B "open /b" "mmap -r 0 64k" "mread 0 64k" "stat"
client_wait B "^stat.size = 65536"

# ---- poison of the shared block: both hear it, both get EIO there
run "$UDAX" poison "$M" "$bad" 4k
expect_rc 0
client_wait A "^invalidate: ino=[0-9]+ offset=4096 len=4096 reason=MemoryFailure$"
client_wait B "^invalidate: ino=[0-9]+ offset=4096 len=4096 reason=MemoryFailure$"
client_send A "pread -q 4096 4096" "pread -v 8192 4"
client_wait A "^pread: .*\(EIO\)"
client_wait A "^00002000:  11 11 11 11"
client_send B "mread 4096 16" "pread -v 0 4"
client_wait B "^mread: .*\(SIGBUS\)"
client_wait B "^00000000:  11 11 11 11"

# ---- removal: every client hears it; later commands ENODEV; umount works
run "$UDAX" remove "$M"
expect_rc 0
client_wait A "reason=Removed$"
client_wait B "reason=Removed$"
client_send A "stat"
client_wait A "ENODEV"
client_send B "pread 0 16"
client_wait B "ENODEV"
run "$UDAX" umount "$M"
expect_rc 0
is_mounted && fail "still mounted after udax umount"
client_stop A
client_stop B
run "$UDAX" fsck "$img"
expect_rc 0
run "$UDAX" io "$img" -r -c "open -r /a" -c "pread -v 0 4" -c "open -r /b" -c "pread -v 16384 4"
expect_out "00000000:  11 11 11 11"
expect_out "00004000:  11 11 11 11"
echo "PASS"
