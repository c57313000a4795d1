#!/bin/bash
# Read-only users of an image: `info`, `fsck -n` and `io -r` work on a 0444
# image owned by an unprivileged user, as that user, with a dirty journal
# (replayed in memory only), several at once; a read-write `io` is refused
# clearly (permission, or "device busy" beside a reader); nothing changes a
# byte of the image. With FUSE: two `mount -r` of one image at once, each
# unmounted by `udax umount` while the other still holds the image.
#
# Exits 77 (skipped) only when no tool can run a command as another user.
source "$(dirname "$0")/lib.bash" "$@"

if command -v setpriv >/dev/null; then
  as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
elif command -v runuser >/dev/null; then
  as_nobody() { runuser -u nobody -- "$@"; }
else
  echo "SKIP: neither setpriv nor runuser is available"
  exit 77
fi

# A directory the unprivileged user may enter ($T is private to root).
D=$(mktemp -d /tmp/udax-ro.XXXXXX)
chmod 0755 "$D"
M1=$D/m1 M2=$D/m2 HOLDER=
cleanup() {
  for m in "$M1" "$M2"; do
    if mountpoint -q "$m" 2>/dev/null; then fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; fi
  done
  if [[ -n $HOLDER ]]; then kill "$HOLDER" 2>/dev/null || true; fi
  rm -rf "$D" "$T"
}
trap cleanup EXIT

img=$D/img
head -c 50000 /dev/urandom >"$D/data"
run "$UDAX" mkfs -s 16m "$img"
expect_rc 0
# A crash after commits: the journal holds the only copy of the last ones.
run "$UDAX" io "$img" -c "mkdir /d" -c "put $D/data /d/f" -c "crash"
run "$UDAX" info "$img"
expect_rc 0
expect_out "journal_state: dirty"
chown nobody:nogroup "$img"
chmod 0444 "$img"
sum=$(sha256sum <"$img")

run as_nobody "$UDAX" info "$img"
expect_rc 0
expect_out "journal_state: dirty"
expect_out "inode_count: 3"
run as_nobody "$UDAX" fsck -n "$img"
expect_rc 0
expect_out "clean: 3 inodes"
expect_out "checked as replayed"
run as_nobody "$UDAX" fsck -n --json "$img"
expect_rc 0
expect_out '"clean": true'
run as_nobody "$UDAX" io -r "$img" -c "cat /d/f"
expect_rc 0
cmp -s "$D/data" "$T/out" || fail "io -r cat does not give the committed bytes"
run as_nobody "$UDAX" io -r "$img" -c "open /d/f" -c "pwrite 0 10"
expect_fail
expect_err "EROFS"

# Writing needs the file open for writing: refused with the reason.
run as_nobody "$UDAX" io "$img" -c "ls"
expect_fail
expect_err "Permission denied"
run as_nobody "$UDAX" fsck "$img"
expect_fail
expect_err "Permission denied"

# ---- several readers at once, and no writer beside them
mkfifo "$D/ctl"
as_nobody "$UDAX" io -r "$img" <"$D/ctl" >"$D/holder.out" 2>"$D/holder.err" &
HOLDER=$!
exec 3>"$D/ctl"
# Until the holder has the device: its shared flock shows in /proc/locks (a
# probe taking the lock itself could make the holder find the device busy).
ino=$(stat -c %i "$img")
for ((i = 0; i < 200; i++)); do
  grep -q ":$ino 0 EOF" /proc/locks && break
  sleep 0.05
done
((i < 200)) || fail "the read-only holder never opened $img: $(cat "$D/holder.err")"
run as_nobody "$UDAX" info "$img"
expect_rc 0
run as_nobody "$UDAX" fsck -n "$img"
expect_rc 0
expect_out "clean"
run as_nobody "$UDAX" io -r "$img" -c "cat /d/f"
expect_rc 0
cmp -s "$D/data" "$T/out" || fail "a second reader reads other bytes"
# root may open the file read-write, but not while a reader holds it.
run "$UDAX" io "$img" -c "ls"
expect_fail
expect_err "device busy"
echo "cat /d/f" >&3
exec 3>&-
wait "$HOLDER" || fail "the holder failed: $(cat "$D/holder.err")"
HOLDER=
cmp -s "$D/data" "$D/holder.out" || fail "the holder read other bytes"
[[ $(sha256sum <"$img") == "$sum" ]] || fail "a read-only user changed the image"

# ---- FUSE: two read-only mounts of one image
if [[ -c /dev/fuse ]] && command -v fusermount3 >/dev/null && [[ $(id -u) == 0 ]]; then
  mkdir "$M1" "$M2"
  run "$UDAX" mount -r -l "$D/s1.log" "$img" "$M1"
  expect_rc 0
  run "$UDAX" mount -r -l "$D/s2.log" "$img" "$M2"
  expect_rc 0
  cmp -s "$D/data" "$M1/d/f" || fail "first read-only mount reads other bytes"
  cmp -s "$D/data" "$M2/d/f" || fail "second read-only mount reads other bytes"
  if touch "$M1/new" 2>"$T/err"; then fail "created a file on a read-only mount"; fi
  grep -q "Read-only file system" "$T/err" || fail "touch error: $(cat "$T/err")"
  run "$UDAX" mount -l "$D/s3.log" "$img" "$D"
  expect_fail
  expect_err "device busy"
  # umount waits for its own server, not for the other reader.
  start=$SECONDS
  run "$UDAX" umount "$M1"
  expect_rc 0
  ((SECONDS - start < 30)) || fail "umount of a read-only mount waited for the other reader"
  grep -q " $M1 fuse.udax " /proc/mounts && fail "$M1 still mounted"
  cmp -s "$D/data" "$M2/d/f" || fail "the second mount lost its file"
  run "$UDAX" umount "$M2"
  expect_rc 0
  # Both servers are gone: a writer may have the image now.
  chmod 0644 "$img"
  run "$UDAX" fsck -n "$img"
  expect_rc 0
  [[ $(sha256sum <"$img") == "$sum" ]] || fail "a read-only FUSE mount changed the image"
fi

[[ $(sha256sum <"$img") == "$sum" ]] || fail "the image changed"
echo PASS
