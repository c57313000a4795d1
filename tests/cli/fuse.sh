#!/bin/bash
# udax mount / udax umount: the FUSE mount, driven by ordinary programs
# (coreutils, tar, diff, python) — contents and metadata as on any
# filesystem, reflink through copy_file_range, unlinked open files, the
# kernel's permission checks, clean errors, and a killed server is a power
# cut that loses nothing that returned.
#
# Exits 77 (ctest: skipped, not passed) only when this machine cannot mount
# FUSE at all (no /dev/fuse or no fusermount3).
source "$(dirname "$0")/lib.bash" "$@"

fuse_setup

new_fs img 256m
img=$T/img

# ---- mount in the background; the mount is usable when the command returns
run "$UDAX" mount -l "$T/server.log" "$img" "$M"
expect_rc 0
is_mounted || fail "no fuse.udax mount on $M after udax mount returned"
grep -q "^$img $M fuse.udax " /proc/mounts || fail "the mount's source is not the device: $(grep "$M" /proc/mounts)"

# ---- namespace and contents through coreutils
printf 'hello udax\n' >"$M/a"
[[ $(cat "$M/a") == "hello udax" ]] || fail "read back through the mount"
mkdir -p "$M/d/e"
ln "$M/a" "$M/d/hard"
ln -s a "$M/sym"
[[ $(readlink "$M/sym") == a ]] || fail "readlink"
[[ $(cat "$M/sym") == "hello udax" ]] || fail "read through a symlink"
[[ $(stat -c %h "$M/a") == 2 ]] || fail "nlink after ln: $(stat -c %h "$M/a")"
[[ $(stat -c %i "$M/a") == $(stat -c %i "$M/d/hard") ]] || fail "a hard link has the same inode"
mv "$M/a" "$M/b"
[[ ! -e $M/a && -f $M/b ]] || fail "rename"
printf 'x' >"$M/victim"
mv "$M/b" "$M/victim"                       # rename over an existing file
[[ $(cat "$M/victim") == "hello udax" ]] || fail "rename replacing a target"
if mv "$M/d" "$M/d/e/inside" 2>"$T/err"; then fail "moving a directory into itself succeeded"; fi
if rmdir "$M/d" 2>"$T/err"; then fail "rmdir of a non-empty directory succeeded"; fi
grep -q "not empty" "$T/err" || fail "rmdir error: $(cat "$T/err")"
chmod 0600 "$M/victim"
[[ $(stat -c %a "$M/victim") == 600 ]] || fail "chmod: $(stat -c %a "$M/victim")"
touch -d "2001-02-03 04:05:06.123456789 UTC" "$M/victim"
[[ $(stat -c %y "$M/victim") == "2001-02-03 04:05:06.123456789 +0000" ]] || fail "utimens with ns: $(stat -c %y "$M/victim")"
touch -h -d "2002-01-01 00:00:00 UTC" "$M/sym"   # the link itself, not its target
[[ $(stat -c %Y "$M/sym") == 1009843200 ]] || fail "touch -h on a symlink"
[[ $(stat -c %Y "$M/victim") == 981173106 ]] || fail "touch -h changed the target"
truncate -s 1M "$M/sparse"
[[ $(stat -c %s "$M/sparse") == 1048576 && $(stat -c %b "$M/sparse") == 0 ]] || fail "sparse truncate: $(stat -c '%s %b' "$M/sparse")"
cmp -n 1048576 "$M/sparse" /dev/zero || fail "a hole reads as zeroes"
python3 - "$M/holes" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
M = 1 << 20
os.pwrite(fd, b"a" * 4096, 0)
os.pwrite(fd, b"b" * 8192, M)
os.ftruncate(fd, 2 * M)
want = [(0, os.SEEK_DATA, 0), (0, os.SEEK_HOLE, 4096), (4096, os.SEEK_DATA, M),
        (5000, os.SEEK_HOLE, 5000), (M, os.SEEK_HOLE, M + 8192), (M + 100, os.SEEK_DATA, M + 100),
        (M + M // 2, os.SEEK_HOLE, M + M // 2)]
for off, whence, pos in want:
    got = os.lseek(fd, off, whence)
    assert got == pos, (off, whence, got, pos)
for off in (M + 8192, 2 * M, 3 * M):
    try:
        os.lseek(fd, off, os.SEEK_DATA)
        raise AssertionError(("SEEK_DATA found data at", off))
    except OSError as e:
        assert e.errno == errno.ENXIO, e
os.close(fd)
EOF
cp --sparse=always "$M/holes" "$M/holes.cp"
cmp "$M/holes" "$M/holes.cp" || fail "sparse copy differs"
fallocate -l 256k "$M/falloc"
[[ $(stat -c %s "$M/falloc") == 262144 && $(stat -c %b "$M/falloc") == 512 ]] || fail "fallocate: $(stat -c '%s %b' "$M/falloc")"
df -B4096 "$M" | grep -q "$img" || fail "statfs"
# the kernel's page cache (kept across opens) never serves bytes udax changed
# under it: punch, zero range, truncate, copy_file_range onto cached pages
head -c 65536 /dev/zero | tr '\0' 'Q' >"$M/cached"
[[ $(head -c 4 "$M/cached") == QQQQ ]] || fail "read before punching"
fallocate -p -o 0 -l 8192 "$M/cached"
[[ $(head -c 8192 "$M/cached" | tr -d '\0' | wc -c) == 0 ]] || fail "a punched range read stale bytes"
[[ $(dd if="$M/cached" bs=4096 skip=2 count=1 status=none | tr -d Q | wc -c) == 0 ]] || fail "punch changed bytes after it"
fallocate -z -o 8192 -l 4096 "$M/cached"
[[ $(dd if="$M/cached" bs=4096 skip=2 count=1 status=none | tr -d '\0' | wc -c) == 0 ]] || fail "a zeroed range read stale bytes"
truncate -s 20000 "$M/cached" && truncate -s 65536 "$M/cached"
[[ $(dd if="$M/cached" bs=1 skip=20000 count=100 status=none | tr -d '\0' | wc -c) == 0 ]] || fail "bytes past a truncate came back"

# ---- a tree of assorted sizes: cp -a, diff -r, tar round trip, rm -rf
src=$T/src
mkdir -p "$src/x/y"
i=0
for n in 0 1 4095 4096 4097 65536 1048589; do
  head -c $n /dev/urandom >"$src/f$n"
  head -c $((n / 3)) /dev/urandom >"$src/x/y/g$n"
  i=$((i + 1))
done
ln -s ../f4096 "$src/x/link"
cp -a "$src" "$M/tree"
diff -r "$src" "$M/tree" || fail "cp -a tree differs"
tar -C "$M" -cf "$T/tree.tar" tree
mkdir "$M/untar"
tar -C "$M/untar" -xf "$T/tree.tar"
diff -r "$src" "$M/untar/tree" || fail "tar round trip differs"
rm -rf "$M/untar"
[[ ! -e $M/untar ]] || fail "rm -rf"
[[ $(ls -a "$M/tree/x" | tr '\n' ' ') == ". .. link y " ]] || fail "ls -a: $(ls -a "$M/tree/x")"
# concurrent requests from several processes (the server is multi-threaded)
for k in 1 2 3 4; do cp -a "$src" "$M/par$k" & done
wait
for k in 1 2 3 4; do diff -r "$src" "$M/par$k" || fail "concurrent copy $k differs"; done
rm -rf "$M"/par1 "$M"/par2 & rm -rf "$M"/par3 "$M"/par4 & wait

# ---- copy_file_range of whole blocks is a reflink (checked below by fiemap)
head -c 1048576 /dev/urandom >"$M/big"
python3 - "$M/big" "$M/big.clone" <<'EOF'
import os, sys
s = os.open(sys.argv[1], os.O_RDONLY)
d = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
n = os.copy_file_range(s, d, 1 << 20, 0, 0)
assert n == 1 << 20, n
EOF
cmp "$M/big" "$M/big.clone" || fail "copy_file_range copy differs"
# a clone onto a file whose pages the kernel has cached
head -c 1048576 /dev/zero >"$M/big.over"
cat "$M/big.over" >/dev/null
python3 - "$M/big" "$M/big.over" <<'EOF'
import os, sys
s = os.open(sys.argv[1], os.O_RDONLY)
d = os.open(sys.argv[2], os.O_WRONLY)
assert os.copy_file_range(s, d, 1 << 20, 0, 0) == 1 << 20
EOF
cmp "$M/big" "$M/big.over" || fail "cached pages survived a clone onto them"
# CoW: the source keeps its byte. (A byte that differs from the source's:
# a random 'Z' already there made this check fail one run in 256.)
byte_at() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
orig=$(byte_at "$M/big" 5000)
new=$(((orig + 1) % 256))
printf "$(printf '\\%03o' "$new")" | dd of="$M/big.clone" bs=1 seek=5000 conv=notrunc status=none
[[ $(byte_at "$M/big.clone" 5000) == "$new" ]] || fail "write into a reflinked file"
[[ $(byte_at "$M/big" 5000) == "$orig" ]] || fail "a write into the clone reached the source"

# ---- an unlinked open file stays usable until its last close
python3 - "$M/ghost" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"still here" * 1000)
os.unlink(sys.argv[1])
assert not os.path.exists(sys.argv[1])
assert os.fstat(fd).st_nlink == 0
os.pwrite(fd, b"more", 10000)
assert os.pread(fd, 10, 0) == b"still here"
assert os.pread(fd, 4, 10000) == b"more"
os.ftruncate(fd, 20000)
os.fchmod(fd, 0o600)
assert os.fstat(fd).st_size == 20000 and os.fstat(fd).st_mode & 0o777 == 0o600
d = os.path.dirname(sys.argv[1])
assert not [n for n in os.listdir(d) if n.startswith(".fuse_hidden")], os.listdir(d)
os.close(fd)
EOF
# a directory that held an open, unlinked file can be removed at once
mkdir "$M/odir"
python3 - "$M/odir" <<'EOF'
import os, sys
fd = os.open(sys.argv[1] + "/f", os.O_RDWR | os.O_CREAT, 0o644)
os.unlink(sys.argv[1] + "/f")
os.rmdir(sys.argv[1])
os.write(fd, b"x")
os.close(fd)
EOF

# ---- the kernel checks permissions against udax's modes; owners are the callers
run "$UDAX" umount "$M"
expect_rc 0
run "$UDAX" mount -l "$T/server.log" -o allow_other "$img" "$M"
expect_rc 0
chmod 0755 "$T" "$M"   # (mktemp -d made $T 0700)
mkdir -m 1777 "$M/pub"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
if nobody touch "$M/denied" 2>"$T/err"; then fail "nobody created a file in a 0755 root directory"; fi
grep -q "Permission denied" "$T/err" || fail "expected EACCES: $(cat "$T/err")"
nobody sh -c "echo mine > '$M/pub/theirs' && mkdir '$M/pub/dir' && ln -s x '$M/pub/ln'" || fail "nobody could not create in a 1777 directory"
[[ $(stat -c %u:%g "$M/pub/theirs") == 65534:65534 ]] || fail "new file's owner: $(stat -c %u:%g "$M/pub/theirs")"
[[ $(stat -c %u:%g "$M/pub/dir") == 65534:65534 ]] || fail "new directory's owner"
[[ $(stat -c %u:%g "$M/pub/ln") == 65534:65534 ]] || fail "new symlink's owner"
if nobody cat "$M/victim" 2>/dev/null; then fail "nobody read a 0600 root file"; fi
chown -h 123:456 "$M/pub/ln"                     # lchown: the link, not its (missing) target
[[ $(stat -c %u:%g "$M/pub/ln") == 123:456 ]] || fail "chown -h of a symlink"

# ---- errors: a busy device, a bad mount point, a path that is not a udax mount
run "$UDAX" mount -l "$T/server.log" "$img" "$T/other"
expect_rc 1
expect_err "device busy"
run "$UDAX" io "$img" -c "ls /"
expect_rc 1
expect_err "device busy"
run "$UDAX" umount "$T"
expect_rc 1
expect_err "not a udax mount"

# ---- udax umount returns when the device is free: fsck can follow at once
run "$UDAX" umount "$M"
expect_rc 0
is_mounted && fail "still mounted after udax umount"
run "$UDAX" fsck "$img"
expect_rc 0
run "$UDAX" info "$img"
expect_out "journal_state: clean"
run "$UDAX" io "$img" -c "cat /victim" -c "open /big.clone" -c "fiemap" -c "ls /pub"
expect_rc 0
expect_out "hello udax"
expect_out "shared"
expect_out "theirs"
run "$UDAX" mount -l "$T/server.log" "$T/missing-image" "$M"
expect_rc 1
expect_err "mount: "
run "$UDAX" mount -l "$T/server.log" "$img" "$T/no-such-dir"
expect_rc 1
expect_err "no-such-dir"
head -c 8m /dev/urandom >"$T/garbage.img"
run "$UDAX" mount -l "$T/server.log" "$T/garbage.img" "$M"
expect_rc 1
expect_err "mount: "
is_mounted && fail "a garbage image was mounted"
printf 'x' >"$T/afile"
run "$UDAX" mount -l "$T/server.log" "$img" "$T/afile"
expect_rc 1
expect_err "not a directory"
is_mounted && fail "a failed mount left a mount behind"

# ---- read-only
run "$UDAX" mount -l "$T/server.log" -r "$img" "$M"
expect_rc 0
if sh -c "echo x >'$M/new'" 2>"$T/err"; then fail "wrote to a read-only mount"; fi
grep -q "Read-only file system" "$T/err" || fail "expected EROFS: $(cat "$T/err")"
[[ $(cat "$M/victim") == "hello udax" ]] || fail "read on a read-only mount"
run "$UDAX" umount "$M"
expect_rc 0
run "$UDAX" mount -l "$T/server.log" -o ro "$img" "$M"
expect_rc 0
if sh -c "mkdir '$M/nodir'" 2>"$T/err"; then fail "mkdir on a -o ro mount"; fi
grep -q "Read-only file system" "$T/err" || fail "expected EROFS with -o ro: $(cat "$T/err")"
run "$UDAX" umount "$M"
expect_rc 0

# ---- SIGTERM: the server unmounts cleanly
"$UDAX" mount -f "$img" "$M" 2>>"$T/server.err" &
SERVER_PID=$!
for _ in $(seq 200); do is_mounted && break; sleep 0.05; done
is_mounted || fail "foreground server did not mount"
echo after-term >"$M/t"
# handles still open when the server ends are closed by it (an unlinked one
# freed): under ASan a leaked handle fails the server's exit status
exec 9<>"$M/held-at-term"
echo x >&9
rm "$M/held-at-term"
exec 8<"$M/t"
kill -TERM $SERVER_PID
wait $SERVER_PID || fail "server exit status after SIGTERM: $? ($(cat "$T/server.err"))"
SERVER_PID=
exec 9>&- 8<&-
fusermount3 -uz "$M" 2>/dev/null || true
run "$UDAX" info "$img"
expect_out "journal_state: clean"
run "$UDAX" fsck -n "$img"
expect_rc 0

# ---- kill -9 mid-work is a power cut: whatever returned is there
"$UDAX" mount -f "$img" "$M" 2>>"$T/server.err" &
SERVER_PID=$!
for _ in $(seq 200); do is_mounted && break; sleep 0.05; done
is_mounted || fail "foreground server did not mount"
mkdir "$M/crash"
for k in $(seq 50); do head -c $((k * 1000)) /dev/zero | tr '\0' "$(printf \\$(printf %o $((65 + k % 26))))" >"$M/crash/f$k"; done
mv "$M/crash/f1" "$M/crash/renamed"
# an unlinked file held open across the crash: an orphan the next mount reclaims
free_before=$(stat -f -c %f "$M")
exec 7<>"$M/crash/held"
head -c 1048576 /dev/zero >&7
rm "$M/crash/held"
kill -9 $SERVER_PID
wait $SERVER_PID 2>/dev/null || true
SERVER_PID=
exec 7>&-
fusermount3 -uz "$M" 2>/dev/null || umount -l "$M"
run "$UDAX" fsck "$img"
expect_rc 0
run "$UDAX" mount -l "$T/server.log" "$img" "$M"
expect_rc 0
[[ -f $M/crash/renamed && ! -e $M/crash/f1 ]] || fail "rename lost in the crash"
free_after=$(stat -f -c %f "$M")
((free_after >= free_before - 8)) || fail "the orphan's 256 blocks were not reclaimed: $free_before free before, $free_after after"
for k in $(seq 2 50); do
  [[ $(stat -c %s "$M/crash/f$k") == $((k * 1000)) ]] || fail "f$k size after the crash: $(stat -c %s "$M/crash/f$k")"
  c=$(printf \\$(printf %o $((65 + k % 26))))
  [[ $(tr -d "$c" <"$M/crash/f$k" | wc -c) == 0 ]] || fail "f$k content after the crash"
done
run "$UDAX" umount "$M"
expect_rc 0
run "$UDAX" fsck "$img"
expect_rc 0
# ---- kill -9 at random moments under a busy writer: every file whose close
# returned (and was logged) is there, whole, after recovery; fsck is clean
for round in 1 2 3 4; do
  "$UDAX" mount -f "$img" "$M" 2>>"$T/server.err" &
  SERVER_PID=$!
  for _ in $(seq 200); do is_mounted && break; sleep 0.05; done
  is_mounted || fail "foreground server did not mount (round $round)"
  mkdir -p "$M/busy$round"
  python3 - "$M/busy$round" "$T/done$round" <<'EOF' &
import os, sys
d, log = sys.argv[1], open(sys.argv[2], "w", buffering=1)
i = 0
try:
    while True:
        data = bytes([65 + i % 26]) * (1000 + 997 * i % 20000)
        p = f"{d}/f{i}"
        with open(p + ".tmp", "wb") as f:
            f.write(data)
        os.rename(p + ".tmp", p)
        log.write(f"{i} {len(data)}\n")
        i += 1
except OSError:
    pass
EOF
  writer=$!
  for _ in $(seq 400); do [[ -s $T/done$round ]] && (($(wc -l <"$T/done$round") >= 5)) && break; sleep 0.01; done
  sleep 0.$((RANDOM % 20))   # then a random moment, mid-operation
  kill -9 $SERVER_PID
  wait $SERVER_PID 2>/dev/null || true
  SERVER_PID=
  wait $writer || true
  fusermount3 -uz "$M" 2>/dev/null || umount -l "$M"
  run "$UDAX" fsck "$img"
  expect_rc 0
  run "$UDAX" mount -l "$T/server.log" "$img" "$M"
  expect_rc 0
  n=$(wc -l <"$T/done$round")
  ((n > 0)) || fail "the writer finished no file before the kill (round $round)"
  python3 - "$M/busy$round" "$T/done$round" <<'EOF' || fail "round $round: a file closed and renamed before the kill is missing or wrong"
import sys
d = sys.argv[1]
for line in open(sys.argv[2]):
    i, n = map(int, line.split())
    data = open(f"{d}/f{i}", "rb").read()
    assert data == bytes([65 + i % 26]) * n, (i, n, len(data))
EOF
  run "$UDAX" umount "$M"
  expect_rc 0
done

# ---- failure paths for every program: a memory failure, then the device
# removed under the mount (udax/fuse_ioctl.h through `udax poison`/`remove`)
run "$UDAX" mount -l "$T/server.log" "$img" "$M"
expect_rc 0
head -c 1048576 /dev/urandom >"$M/victim2"
cp "$M/victim2" "$T/victim2.copy"
run "$UDAX" umount "$M"
expect_rc 0
run "$UDAX" io "$img" -c "open /victim2" -c "fiemap"
expect_rc 0
first_sector=$(sed -nE 's/^\s*0: \[0\.\.[0-9]+\]: ([0-9]+)\.\..*/\1/p' "$T/out")
[[ -n $first_sector ]] || fail "no extent for /victim2"
run "$UDAX" mount -l "$T/server.log" -o allow_other "$img" "$M"
expect_rc 0
run "$UDAX" poison "$M" $(((first_sector + 16) * 512)) 4096   # the file's third block
expect_rc 0
if dd if="$M/victim2" of=/dev/null bs=4096 skip=2 count=1 status=none 2>"$T/err"; then
  fail "read of a poisoned block succeeded"
fi
grep -q "Input/output error" "$T/err" || fail "expected EIO: $(cat "$T/err")"
cmp <(dd if="$M/victim2" bs=4096 skip=3 status=none) <(dd if="$T/victim2.copy" bs=4096 skip=3 status=none) ||
  fail "blocks after the poisoned one changed"
setpriv --reuid=65534 --regid=65534 --clear-groups "$UDAX" remove "$M" >"$T/out" 2>"$T/err" &&
  fail "nobody removed the device"
grep -q "EPERM" "$T/err" || fail "remove by nobody: $(cat "$T/err")"
python3 - "$M" "$UDAX" <<'EOF'
import errno, os, subprocess, sys
m, udax = sys.argv[1], sys.argv[2]
fd = os.open(m + "/victim2", os.O_RDONLY)
direct = os.open(m + "/victim2", os.O_RDWR | os.O_DIRECT)  # reads that always reach udax
assert len(os.pread(fd, 4096, 0)) == 4096
assert subprocess.run([udax, "remove", m]).returncode == 0
# A page the kernel has cached still reads as the bytes committed before the
# removal (kernel memory, not the device's); anything that reaches udax fails.
assert len(os.pread(fd, 4096, 0)) == 4096
for what, call in [("read", lambda: os.pread(direct, 4096, 8192 * 8)),
                   ("write", lambda: os.pwrite(direct, b"x" * 4096, 0)),
                   ("create", lambda: os.open(m + "/new", os.O_CREAT | os.O_WRONLY)),
                   ("stat", lambda: os.stat(m + "/other")),
                   ("listdir", lambda: os.listdir(m))]:
    try:
        call()
    except OSError as e:
        assert e.errno == errno.ENODEV, (what, e)
    else:
        raise AssertionError(what + " after the device was removed succeeded")
os.close(fd)
os.close(direct)
EOF
run "$UDAX" remove "$M"
expect_rc 1
expect_err "ENODEV"
run "$UDAX" umount "$M"
expect_rc 0
run "$UDAX" fsck "$img"
expect_rc 0
expect_out "1 bad block"
run "$UDAX" io "$img" -c "get /victim2 $T/victim2.back"
expect_rc 1
expect_err "poisoned (EIO)"
cmp -n 8192 "$T/victim2.back" "$T/victim2.copy" || fail "data before the poisoned block lost"
run "$UDAX" io "$img" -c "cat /victim"
expect_out "hello udax"
run "$UDAX" remove "$T"
expect_rc 1
expect_err "not a udax mount"

# the servers' messages: -l collected the detached ones (the removal was
# logged), and no server hit a sanitizer report or a UBSan runtime error
grep -q "removing the device" "$T/server.log" || fail "udax mount -l logged nothing: $(head -c 2000 "$T/server.log")"
if grep -E "Sanitizer|runtime error" "$T/server.log" "$T/server.err" >&2; then fail "a server reported a sanitizer error"; fi
echo "PASS"
