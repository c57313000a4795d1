#!/bin/bash
# The FUSE mount against what a kernel filesystem (tmpfs, ext4) gets right
# (issue 13): no stale buffered read after asynchronous O_DIRECT writes, an
# open directory removed or replaced by rename lives as an orphan until its
# last close (and after a crash), atime under relatime/strictatime/noatime,
# file handles across cache drops and remounts, lseek's errors, and
# setuid/setgid killed by writes, truncate, fallocate and chown.
#
# Exits 77 (ctest: skipped) only when this machine cannot mount FUSE.
source "$(dirname "$0")/lib.bash" "$@"
HELPERS=$(cd "$(dirname "$0")/helpers" && pwd)

chmod 755 "$T"  # nobody reaches the mount (section 6)
fuse_setup
mount_udax() {
  run "$UDAX" mount -l "$T/server.log" "$@" "$img" "$M"
  expect_rc 0
}
umount_udax() {
  run "$UDAX" umount "$M"
  expect_rc 0
}
# section N — whether section N runs: all, or those listed in $SECTIONS
# (e.g. SECTIONS="1 4", to watch one fail against an older binary).
section() { [[ -z ${SECTIONS:-} || " $SECTIONS " == *" $1 "* ]]; }
# drop_caches — the kernel forgets every page, dentry and inode it can
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

new_fs img 128m
img=$T/img
# allow_other: some checks run as nobody (as root, the kernel permits it)
mount_udax -o allow_other

# ---- 1. asynchronous O_DIRECT writes against buffered readers: never a stale byte
if section 1; then
run python3 "$HELPERS/aio_stale.py" "$M/aio" 250
expect_rc 0
expect_out "ok 250"
fi

# ---- 2. an open directory replaced by rename, or removed, lives until its last close
if section 2; then
mkdir "$M/other" "$M/victim"
touch "$M/other/inside"
cat >"$T/step1.py" <<'PY'
import os, sys
m = sys.argv[1]
fd = os.open(f"{m}/victim", os.O_RDONLY | os.O_DIRECTORY)
ino = os.fstat(fd).st_ino
os.unlink(f"{m}/other/inside")
os.rename(f"{m}/other", f"{m}/victim")          # replaces the open directory
st = os.fstat(fd)
assert st.st_ino == ino and st.st_nlink == 0, (st.st_ino, ino, st.st_nlink)
try:
    os.mkdir("new", dir_fd=fd)
    sys.exit("a removed directory took a new entry")
except FileNotFoundError:
    pass
os.close(fd)
fd = os.open(f"{m}/victim", os.O_RDONLY | os.O_DIRECTORY)
os.rmdir(f"{m}/victim")                          # removed while open
assert os.fstat(fd).st_nlink == 0
os.close(fd)
print("orphan directories ok")
PY
run python3 "$T/step1.py" "$M"
expect_rc 0
expect_out "orphan directories ok"
# a server killed with a removed directory open: the next mount reclaims it
umount_udax
"$UDAX" mount -f -o allow_other "$img" "$M" 2>>"$T/server.err" &
SERVER_PID=$!
for _ in $(seq 200); do is_mounted && break; sleep 0.05; done
is_mounted || fail "foreground server did not mount"
mkdir "$M/held-dir"
exec 7<"$M/held-dir"
held_ino=$(stat -c %i "$M/held-dir")
rmdir "$M/held-dir"
stat -L -c %h /proc/self/fd/7 | grep -qx 0 || fail "fstat of a removed open directory: $(stat -L -c %h /proc/self/fd/7 2>&1)"
kill -9 $SERVER_PID
wait $SERVER_PID 2>/dev/null || true
SERVER_PID=
exec 7<&-
fusermount3 -uz "$M" 2>/dev/null || umount -l "$M"
run "$UDAX" fsck -n "$img"
expect_rc 0
expect_out "orphan"   # the removed directory is on the orphan list (a note)
run "$UDAX" fsck "$img"
expect_rc 0
mount_udax -o allow_other
fi

# ---- 3. atime: relatime (the default), strictatime, noatime
if section 3; then
ns() { stat -c %x "$1"; }
echo hello >"$M/at"
sleep 0.05
cat "$M/at" >/dev/null
a1=$(ns "$M/at")
[[ $(date -d "$a1" +%s%N) -gt $(date -d "$(stat -c %y "$M/at")" +%s%N) ]] || fail "relatime: a read after a write did not update atime ($a1, mtime $(stat -c %y "$M/at"))"
sleep 0.05
cat "$M/at" >/dev/null
[[ $(ns "$M/at") == "$a1" ]] || fail "relatime: a second read updated atime"
sleep 0.05
echo more >>"$M/at"
cat "$M/at" >/dev/null
[[ $(date -d "$(ns "$M/at")" +%s%N) -gt $(date -d "$(stat -c %y "$M/at")" +%s%N) ]] || fail "relatime: a read after an append did not update atime"
umount_udax
mount_udax -o strictatime
a1=$(ns "$M/at")
sleep 0.05
cat "$M/at" >/dev/null
a2=$(ns "$M/at")
sleep 0.05
cat "$M/at" >/dev/null
[[ $a2 != "$a1" && $(ns "$M/at") != "$a2" ]] || fail "strictatime: reads did not update atime ($a1, $a2, $(ns "$M/at"))"
umount_udax
mount_udax -o noatime
echo again >>"$M/at"
a1=$(ns "$M/at")
cat "$M/at" >/dev/null
[[ $(ns "$M/at") == "$a1" ]] || fail "noatime: a read updated atime"
umount_udax
# atime persists (lazily: written at the last close)
mount_udax -o allow_other
sleep 0.05
echo x >>"$M/at"
cat "$M/at" >/dev/null
a1=$(ns "$M/at")
umount_udax
mount_udax -o allow_other
[[ $(ns "$M/at") == "$a1" ]] || fail "atime not persisted across a remount ($a1, $(ns "$M/at"))"
fi

# ---- 4. file handles survive cache drops and remounts
if section 4; then
mkdir -p "$M/fh"
echo handle >"$M/fh/file"
run python3 "$HELPERS/fhandle.py" save "$M/fh/file" "$T/h.file"
expect_rc 0
run python3 "$HELPERS/fhandle.py" save "$M/fh" "$T/h.dir"
expect_rc 0
file_ino=$(stat -c %i "$M/fh/file") dir_ino=$(stat -c %i "$M/fh")
drop_caches
run python3 "$HELPERS/fhandle.py" open "$M" "$T/h.file"
expect_rc 0
expect_out "$file_ino"
umount_udax
mount_udax -o allow_other
run python3 "$HELPERS/fhandle.py" open "$M" "$T/h.file"
expect_rc 0
expect_out "$file_ino"
run python3 "$HELPERS/fhandle.py" open "$M" "$T/h.dir"
expect_rc 0
expect_out "$dir_ino"
# ".." of a directory reached by handle only (the kernel connects it)
cat >"$T/step2.py" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[3])
import fhandle, ctypes
raw = open(sys.argv[2], "rb").read()
fh = fhandle.FileHandle.from_buffer_copy(raw + bytes(ctypes.sizeof(fhandle.FileHandle) - len(raw)))
mfd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fd = fhandle.libc.open_by_handle_at(mfd, ctypes.byref(fh), os.O_RDONLY | os.O_DIRECTORY)
assert fd >= 0, ctypes.get_errno()
print("parent", os.stat("..", dir_fd=fd).st_ino, os.stat(sys.argv[1]).st_ino)
PY
run python3 "$T/step2.py" "$M" "$T/h.dir" "$HELPERS"
expect_rc 0
root_ino=$(stat -c %i "$M")
expect_out "parent $root_ino $root_ino"
# a removed file's handle is stale, never another file
rm "$M/fh/file"
drop_caches
run python3 "$HELPERS/fhandle.py" open "$M" "$T/h.file"
expect_rc 1
expect_out "ESTALE"
fi

# ---- 5. lseek: SEEK_DATA/SEEK_HOLE errors as Linux
if section 5; then
head -c 100 /dev/zero >"$M/seek"
cat >"$T/step3.py" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for whence in (os.SEEK_DATA, os.SEEK_HOLE):
    for off in (-1, -4096, 100, 1 << 40):
        try:
            os.lseek(fd, off, whence)
            sys.exit(f"lseek({off}, {whence}) succeeded")
        except OSError as e:
            assert e.errno == errno.ENXIO, (off, whence, e)
assert os.lseek(fd, 0, os.SEEK_DATA) == 0 and os.lseek(fd, 0, os.SEEK_HOLE) == 100
assert os.lseek(fd, 99, os.SEEK_HOLE) == 100
print("lseek ok")
PY
run python3 "$T/step3.py" "$M/seek"
expect_rc 0
expect_out "lseek ok"
fi

# ---- 6. setuid/setgid killed as Linux kills them (tmpfs and ext4 agree)
if section 6; then
# as nobody (not the owner, not in the group, no CAP_FSETID) on mode 6666
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
for op in "falloc 0 4096" "falloc -k 0 8192" "fpunch 0 4096" "fzero 0 4096" "pwrite 0 10" "truncate 100"; do
  rm -f "$M/suid"
  head -c 8192 /dev/zero >"$M/suid"
  chmod 6666 "$M/suid"
  as_nobody xfs_io -c "$op" "$M/suid" >/dev/null || fail "xfs_io -c '$op' as nobody"
  mode=$(stat -c %a "$M/suid")
  [[ $mode == 666 ]] || fail "$op by a non-owner on mode 6666 left mode $mode (want 666)"
done
# the owner without CAP_FSETID, in the file's group: setuid goes, setgid of a
# file that is not group-executable stays
chmod 6666 "$M/suid"
setpriv --inh-caps=-fsetid --bounding-set=-fsetid xfs_io -c "pwrite 0 10" "$M/suid" >/dev/null
mode=$(stat -c %a "$M/suid")
[[ $mode == 2666 ]] || fail "write by the owner without CAP_FSETID left mode $mode (want 2666)"
# with CAP_FSETID (root): nothing changes on a write...
chmod 6777 "$M/suid"
xfs_io -c "pwrite 0 10" -c "fzero 0 4096" "$M/suid" >/dev/null
mode=$(stat -c %a "$M/suid")
[[ $mode == 6777 ]] || fail "write with CAP_FSETID left mode $mode (want 6777)"
# ...but chown kills setuid (and setgid of a group-executable file) even then
chown 65534 "$M/suid"
mode=$(stat -c %a "$M/suid")
[[ $mode == 777 ]] || fail "chown of mode 6777 left mode $mode (want 777)"
fi

umount_udax
run "$UDAX" fsck "$img"
expect_rc 0
# no server hit a sanitizer report or a UBSan runtime error (a sanitizer build)
touch "$T/server.log" "$T/server.err"
if grep -E "Sanitizer|runtime error" "$T/server.log" "$T/server.err" >&2; then fail "a server reported a sanitizer error"; fi
echo "PASS: fuse_posix"
