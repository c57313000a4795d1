#!/bin/bash
# Direct clients through the CLI (docs/shared.md): `udax mount` serves them,
# `udax io MOUNTPOINT` is one. A client's writes are read back with cat
# through the mount; two clients mapping one file see each other's stores
# (and cat sees them); a truncate by one invalidates the other's mapping
# ("invalidate: ... reason=Truncate", printed as it happens: the clients
# read their commands from fifos, one line as it arrives); `udax status
# MNT --json` lists the clients; `udax umount` with clients connected works
# and their later commands fail with ENOTCONN.
#
# Exits 77 (skipped) only when FUSE is missing.
source "$(dirname "$0")/lib.bash" "$@"

fuse_setup
export UDAX_SHARE_DIR=$T/run

new_fs img 64m
img=$T/img
run "$UDAX" mount -o revoke_ms=500 -l "$T/server.log" "$img" "$M"
expect_rc 0
is_mounted || fail "no fuse.udax mount on $M"


# ---- one client writes, cat reads it back through the mount
run "$UDAX" io "$M" -c "open -f /file" -c "pwrite -S 0x61 0 8k" -c "close"
expect_rc 0
expect_out "wrote 8192/8192 bytes at offset 0"
head -c 8192 /dev/zero | tr '\0' a >"$T/want"
cmp "$T/want" "$M/file" || fail "cat through the mount does not read the client's write"

# ---- two clients map one file: A's stores are B's loads, and cat's
client_start A
client_start B
client_send A "open -f /shared" "truncate 64k" "mmap -rw 0 64k" "mwrite -S 0x42 4096 4096" "stat"
client_wait A "^stat.size = 65536"
client_send B "open /shared" "mmap -r 0 64k" "mread -v 4096 16"
client_wait B "^0*1000: +(42 ){15}42"
head -c 4096 /dev/zero | tr '\0' B >"$T/want"
cmp <(tail -c +4097 "$M/shared" | head -c 4096) "$T/want" || fail "cat does not see A's stores"
client_send B "mread -v 0 16"   # B touches the start too (its mapping holds the page)
client_wait B "^0+: +(00 ){15}00"

# ---- udax status lists both
run "$UDAX" status "$M" --json
expect_rc 0
python3 - "$T/out" "${CLIENT_PID[A]}" "${CLIENT_PID[B]}" <<'EOF' || fail "udax status --json does not list both clients"
import json, sys
doc = json.load(open(sys.argv[1]))
def clients(d):
    if isinstance(d, dict):
        if isinstance(d.get("clients"), list):
            return d["clients"]
        for v in d.values():
            c = clients(v)
            if c is not None:
                return c
    return None
pids = {c.get("pid") for c in clients(doc) or []}
want = {int(sys.argv[2]), int(sys.argv[3])}
if not want <= pids:
    sys.exit(f"clients listed: {sorted(pids)}, want {sorted(want)}")
EOF

# ---- a truncate by A invalidates B's mapping, at once
# (B's next command flushes the line; that it is printed even before one is
# client_process_test's IoClientsTest.AnInvalidationIsPrintedWithoutWaitingForTheNextCommand.)
client_send A "truncate 0" "stat"
client_wait A "^stat.size = 0"
client_send B "mread 0 16"
client_wait B "^mread: .*\(SIGBUS\)"
grep -A1 -E "^invalidate: ino=[0-9]+ offset=[0-9]+ len=[0-9]+ reason=Truncate$" "$T/B.out" | grep -q "^mread: .*(SIGBUS)" ||
  fail "B did not hear the truncate before its next access: $(cat "$T/B.out")"

# ---- udax umount with both connected: works; their next commands fail
run "$UDAX" umount "$M"
expect_rc 0
is_mounted && fail "still mounted after udax umount"
client_send A "stat /shared"
client_wait A "ENOTCONN"
client_send B "pread 0 16"
client_wait B "ENOTCONN"
client_stop A
((RC == 1)) || fail "client A: exit status $RC (want 1: commands failed)"
client_stop B
((RC == 1)) || fail "client B: exit status $RC"
run "$UDAX" fsck "$img"
expect_rc 0
echo "PASS"
