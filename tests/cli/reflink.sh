#!/usr/bin/env bash
# udax io reflink / dedupe / bmap / rmap, and the shared counts in info/fsck.
source "$(dirname "$0")/lib.bash" "$@"
new_fs img
IMG=$T/img

run "$UDAX" io "$IMG" -c "open -f /a" -c "pwrite -S 0x11 0 64k" -c "open -f /b" -c "reflink /a" -c "bmap"
expect_rc 0
expect_out "linked 65536/65536 bytes at offset 0"
expect_out_re "^0 [0-9]+ 65536 shared$"

# Copy-on-write through write(): /b's second block is private, /a unchanged.
run "$UDAX" io "$IMG" -c "open /b" -c "pwrite -S 0x22 4096 4096" -c "bmap" -c "fiemap"
expect_rc 0
expect_out_re "^4096 [0-9]+ 4096 -$"
expect_out " shared"
run "$UDAX" io "$IMG" -c "open /a" -c "pread -v 4096 16"
expect_out "00001000:  11 11 11 11"

# rmap of /a's first block names both owners; of block 0, the static metadata.
run "$UDAX" io "$IMG" -c "open /a" -c "bmap"
dev=$(head -1 "$T/out" | cut -d' ' -f2)
run "$UDAX" io "$IMG" -c "rmap $dev"
expect_rc 0
expect_out_re "^$dev [0-9]+ ino=[0-9]+ offset=0$"
[[ $(grep -c "ino=" "$T/out") -eq 2 ]] || fail "expected two owners of a shared block"
run "$UDAX" io "$IMG" -c "rmap 0"
expect_out "metadata=static"

# dedupe: equal ranges are shared, different ones refused.
run "$UDAX" io "$IMG" -c "open -f /c" -c "pwrite -S 0x11 0 64k" -c "dedupe /a 0 0 64k"
expect_rc 0
expect_out "deduped 65536/65536 bytes at offset 0"
run "$UDAX" io "$IMG" -c "open /c" -c "dedupe /b 0 0 8k" -c "stat"
expect_rc 1
expect_err "(EBADE)"
expect_out "stat.size = 65536"

# Errors as Linux.
run "$UDAX" io "$IMG" -c "open /c" -c "reflink /a 100 0 4096"
expect_rc 1
expect_err "(EINVAL)"
run "$UDAX" io "$IMG" -c "mkdir /d" -c "open /c" -c "reflink /d"
expect_rc 1
expect_err "(EISDIR)"

run "$UDAX" info --json "$IMG"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["shared_blocks"] >= 16, j; assert "reflink" in j["features"], j' "$T/out" || fail "info shared_blocks/features"
run "$UDAX" fsck "$IMG"
expect_rc 0
echo PASS
