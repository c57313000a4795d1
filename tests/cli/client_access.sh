#!/bin/bash
# A user who may not read and write the device (docs/shared.md, admission):
# `udax io MOUNTPOINT` as uid 65534 is refused with EACCES and told to use
# the mount point — and through the FUSE mount (-o allow_other) the same
# uid still reads the file. Root runs it (setpriv drops to 65534).
#
# Exits 77 (skipped) without FUSE, or without root or setpriv.
source "$(dirname "$0")/lib.bash" "$@"

fuse_setup
export UDAX_SHARE_DIR=$T/run
if ((EUID != 0)) || ! command -v setpriv >/dev/null; then
  echo "SKIP: needs root and setpriv to run a client as uid 65534"
  exit 77
fi
chmod 0755 "$T"  # uid 65534 reaches the mount point (not the device: 0600)
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
nobody test -x "$UDAX" || { echo "SKIP: uid 65534 cannot run $UDAX"; exit 77; }

new_fs img 64m
img=$T/img
chmod 0600 "$img"
run "$UDAX" mount -o allow_other -l "$T/server.log" "$img" "$M"
expect_rc 0
is_mounted || fail "no fuse.udax mount on $M"
printf 'for everyone\n' >"$M/f"
chmod 0644 "$M/f"

# Root (the device's owner) is a direct client.
run "$UDAX" io "$M" -c "open /f" -c "pread -v 0 12"
expect_rc 0
expect_out "for.everyone"

# uid 65534 is not, and hears why.
run nobody "$UDAX" io "$M" -c "open /f" -c "pread 0 12"
expect_rc 1
expect_err "(EACCES)"
expect_err "uid 65534"
expect_err "use the files through the mount point"

# ... and still reads through the mount.
run nobody cat "$M/f"
expect_rc 0
expect_out "for everyone"

run "$UDAX" umount "$M"
expect_rc 0
echo "PASS"
