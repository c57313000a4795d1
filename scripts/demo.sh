#!/usr/bin/env bash
# udax's main job on an emulated pmem device in a file: install, build, make a
# filesystem, write and read files, fsck it, show info.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >/dev/null
scripts/build.sh build
UDAX=build/udax
img=${UDAX_DEMO_IMAGE:-/dev/shm/udax-demo.img}
trap 'rm -f "$img" /tmp/udax-demo-host.txt' EXIT
echo "== mkfs: a 256 MiB emulated pmem device in $img"
$UDAX mkfs -f -s 256m "$img"
echo "== write and read files"
printf 'hello from the host\n' > /tmp/udax-demo-host.txt
$UDAX io "$img" -c "mkdir /docs" -c "put /tmp/udax-demo-host.txt /docs/hello.txt" \
  -c "open -f /data.bin" -c "pwrite -S 0x5a 0 1m" -c "pread -v 0 32" -c "fiemap" -c "close" \
  -c "symlink /docs/hello.txt /link" -c "cat /link" -c "ls -l /" -c "statfs"
echo "== crash after a write (no unmount), then recover"
$UDAX io "$img" -c "open -f /after-crash" -c "pwrite -S 0x11 0 64k" -c "crash" || true
$UDAX info "$img"
echo "== fsck (replays the journal)"
$UDAX fsck "$img"
$UDAX io "$img" -c "open /after-crash" -c "pread -v 0 16" -c "stat"
$UDAX info "$img"
echo "== demo finished: every step behaved as documented"
