#!/bin/bash
# Crafted symlink records (issue 12): a valid image, then one field of a
# symlink's inode record changed with the block's crc re-computed. `udax io`'s
# readlink and ls -l must print the EUCLEAN message naming the block and the
# field — never crash, never print bytes from past the record, never allocate
# the size the record claims; fsck must report the record.
source "$(dirname "$0")/lib.bash" "$@"

# craft IMAGE FIELD VALUE — sets InodeRec.FIELD (size or inline_len) of the
# image's one symlink, re-computing its leaf's crc32c; prints the leaf's block.
cat >"$T/craft.py" <<'EOF'
import struct, sys
img, field, value = sys.argv[1], sys.argv[2], int(sys.argv[3])
BS = 4096
POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)
def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
with open(img, "r+b") as f:
    def block(bno):
        f.seek(bno * BS)
        return bytearray(f.read(BS))
    def leaves(bno):  # every leaf of the inode tree, left to right
        b = block(bno)
        level, nrecs = struct.unpack_from("<HH", b, 24)
        if level == 0:
            yield bno, b, nrecs
            return
        for i in range(nrecs):
            yield from leaves(struct.unpack_from("<Q", b, 32 + 16 * i + 8)[0])
    root = block(1)
    found = None
    for bno, b, nrecs in leaves(struct.unpack_from("<Q", root, 48)[0]):  # RootBlock.inodes.block
        for i in range(nrecs):
            off = 32 + 256 * i
            if struct.unpack_from("<I", b, off + 8)[0] & 0o170000 == 0o120000:  # a symlink
                found = (bno, b, off)
    if found is None:
        sys.exit("no symlink in the image")
    bno, b, off = found
    if field == "size":
        struct.pack_into("<Q", b, off + 24, value)
    else:
        struct.pack_into("<H", b, off + 156, value)  # inline_len
    struct.pack_into("<I", b, 4, crc32c(bytes(b[0:4]) + bytes(b[8:])))
    f.seek(bno * BS)
    f.write(b)
print(bno)
EOF

# case_ NAME TARGET FIELD VALUE — a fresh image with /d/link -> TARGET (and
# /d/other), the field changed; then readlink, ls -l and fsck.
case_() {
  local name=$1 target=$2 field=$3 value=$4
  new_fs "$name" 16m
  # 40 files before the link: the inode tree has several leaves, and the
  # crafted record is not in the leaf of the root directory and /d/other.
  local fill=() i
  for i in $(seq 40); do fill+=(-c "open -f /f$i"); done
  run "$UDAX" io "$T/$name" -c "mkdir /d" -c "open -f /d/other" -c "pwrite 0 5k" "${fill[@]}" \
    -c "symlink $target /d/link"
  expect_rc 0
  local bno
  bno=$(python3 "$T/craft.py" "$T/$name" "$field" "$value") || fail "$name: craft failed"

  # At most 200 MiB resident: the claimed sizes (2 GiB, 1 TiB) are never allocated.
  run /usr/bin/time -f "maxrss_kb=%M" "$UDAX" io "$T/$name" -c "readlink /d/link"
  expect_rc 1
  expect_err_re "block $bno: .*$field"
  expect_err "EUCLEAN"
  local rss
  rss=$(sed -n 's/^maxrss_kb=//p' "$T/err")
  [[ -n $rss && $rss -lt 204800 ]] || fail "$name: readlink used ${rss:-?} KiB"
  expect_no_out "LLLL"

  run "$UDAX" io "$T/$name" -c "ls -l /d"
  expect_rc 1
  expect_err_re "block $bno: .*$field"
  expect_err "EUCLEAN"

  # The rest works: the other file reads back.
  run "$UDAX" io "$T/$name" -c "open /d/other" -c "pread 0 5k"
  expect_rc 0

  run "$UDAX" fsck "$T/$name"
  expect_rc 1
  grep -qE "block $bno: .*$field" "$T/out" "$T/err" || fail "$name: fsck does not report block $bno's $field"
}

case_ inline_len_past_slot target inline_len 4000
case_ size_2_gib "$(printf 'L%.0s' {1..200})" size $((2 << 30))
case_ size_2_pow_40 "$(printf 'L%.0s' {1..200})" size $((1 << 40))
case_ size_zero target size 0
echo PASS
