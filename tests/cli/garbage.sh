#!/bin/bash
# Hostile input: garbage and truncated images, corrupted metadata, garbage
# command streams. mkfs/fsck/info/io must never die by a signal (exit < 128,
# checked by `run`) and must say what is wrong.
source "$(dirname "$0")/lib.bash" "$@"

new_fs good 16m
run "$UDAX" io "$T/good" -c "mkdir /d" -c "open -f /d/f" -c "pwrite 0 300k" -c "symlink x /s"
expect_rc 0

head -c $((16 << 20)) /dev/urandom >"$T/random"
: >"$T/empty"
head -c 100 "$T/good" >"$T/trunc100"
head -c 4096 "$T/good" >"$T/trunc4k"
head -c $((64 << 10)) "$T/good" >"$T/trunc64k"
head -c $((8 << 20)) "$T/good" >"$T/trunc8m"
# A good image with its first blocks, then its middle, overwritten by noise.
cp "$T/good" "$T/noise_head"
dd if=/dev/urandom of="$T/noise_head" bs=4096 count=16 conv=notrunc status=none
cp "$T/good" "$T/noise_mid"
dd if=/dev/urandom of="$T/noise_mid" bs=4096 seek=1 count=1024 conv=notrunc status=none
mkdir "$T/a_directory"

for img in random empty trunc100 trunc4k trunc64k trunc8m noise_head noise_mid a_directory; do
  f=$T/$img
  run "$UDAX" fsck "$f"
  [[ $img == noise_* ]] || expect_rc 1
  [[ -s $T/out || -s $T/err ]] || fail "fsck $img printed nothing"
  if [[ $RC -ne 0 ]]; then [[ -s $T/err ]] || grep -q problem "$T/out" || fail "fsck $img: no error"; fi
  run "$UDAX" fsck --json "$f"
  python3 -c 'import json, sys; json.load(sys.stdin)' <"$T/out" || fail "fsck --json $img"
  run "$UDAX" info "$f"
  [[ $RC -eq 0 || -s $T/err ]] || fail "info $img failed silently"
  run "$UDAX" io "$f" -c "ls -l /" -c "open /d/f" -c "pread 0 300k" -c "fiemap" \
    -c "open -f /new" -c "pwrite 0 64k" -c "rm /d/f" -c "statfs"
  if [[ $img != noise_* ]]; then
    expect_rc 1
    expect_err_re '^io: .*\([A-Z0-9?]+\)$'
  fi
  [[ $RC -eq 0 || -s $T/err ]] || fail "io $img failed silently"
  run "$UDAX" io "$f" -c "crash"
  # mkfs without -f: formats non-udax content, refuses a recognisable one;
  # never dies. Then the result must be usable.
  cp -r "$f" "$f.mkfs"
  run "$UDAX" mkfs "$f.mkfs"
  [[ $RC -eq 0 || -s $T/err ]] || fail "mkfs $img failed silently"
  run "$UDAX" mkfs -f "$f.mkfs"
  if [[ $img == trunc8m || $img == random || $img == noise_head || $img == noise_mid ]]; then
    expect_rc 0
    run "$UDAX" fsck "$f.mkfs"
    expect_rc 0
  fi
  rm -rf "$f.mkfs"
done

# Garbage command streams: random bytes and random words on stdin.
head -c 65536 /dev/urandom >"$T/noise"
run_in "$T/noise" "$UDAX" io "$T/good"
words=(open close pwrite pread truncate falloc fpunch fzero fsync fdatasync stat fiemap statfs
  mkdir rmdir rm mv ln symlink ls put get cat -f -t -v -S -k -l 0 1 4k 0x 0xffffffffffffffff
  -1 1g /d /d/f /x "'" '"' '\' /d/../d // "" 99999999999999999999 /s)
RANDOM=42
for ((i = 0; i < 400; i++)); do
  line=""
  for ((k = 0; k < RANDOM % 5 + 1; k++)); do line+="${words[RANDOM % ${#words[@]}]} "; done
  echo "$line"
done | grep -v -e '^put' -e '^get' >"$T/fuzz" || true
run_in "$T/fuzz" "$UDAX" io "$T/good"
run "$UDAX" fsck "$T/good"
expect_rc 0

# Hostile arguments to the tool itself.
run "$UDAX" io
run "$UDAX" io "$T/good" -c
run "$UDAX" mkfs -s 1 "$T/tiny"
expect_fail
expect_err "mkfs: "
run "$UDAX" mkfs -s 99999999999999999999 "$T/huge"
expect_fail
run "$UDAX" mkfs "$T/a_directory"
expect_fail
run "$UDAX" io "$T/a_directory" -c "ls"
expect_fail
echo PASS
