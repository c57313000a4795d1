#!/bin/bash
# udax bench --client-only --quick --json: the client rows (a direct client
# in a second process) come out with numbers, against the library row of the
# same run and tmpfs, and client_revoke_100 against the raw revokes; the
# worker's subcommand is hidden, refuses a mount point nobody serves, and a
# worker killed in the middle of the run makes its rows errors — the bench
# finishes, the other rows keep their numbers.
source "$(dirname "$0")/lib.bash" "$@"

run "$UDAX" bench --help
expect_rc 0
expect_out "--client-only"
if grep -qF -- "--client-worker" "$T/out"; then fail "bench --help shows the hidden --client-worker"; fi

# The worker alone: no mount serves there, so it says so on stdout and exits 1.
mkdir "$T/nomount"
UDAX_SHARE_DIR=$T/share run "$UDAX" bench --client-worker "$T/nomount" --seed 1 --rw-ops 10 --create-ops 10 \
  --max-seconds 0.1
expect_rc 1
grep -q "^error [0-9]* client worker: connect" "$T/out" || fail "the worker does not report its connect failure"

run timeout 240 "$UDAX" bench --client-only --quick --json
expect_rc 0
python3 -c '
import json, sys
rows = json.load(sys.stdin)
by = {(r["name"], r["baseline_name"]): r for r in rows}
def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)
for r in rows:
    assert "error" not in r, r
    for k in ["udax", "baseline", "ratio"]:
        assert num(r[k]) and r[k] > 0, (k, r)
for op in ["pwrite_4k", "pread_4k", "create_unlink"]:
    lib = by[(op, "tmpfs")]
    c_lib, c_tmpfs = by[("client_" + op, "udax-lib")], by[("client_" + op, "tmpfs")]
    for c in (c_lib, c_tmpfs):
        assert c["unit"] == "ops/s", c
    # the same client number against the library row of this run, and tmpfs
    assert c_lib["udax"] == c_tmpfs["udax"], (c_lib, c_tmpfs)
    assert c_lib["baseline"] == lib["udax"], (c_lib, lib)
    assert c_tmpfs["baseline"] == lib["baseline"], (c_tmpfs, lib)
    assert abs(c_lib["ratio"] - c_lib["udax"] / c_lib["baseline"]) < 0.002, c_lib
rv = by[("client_revoke_100", "mmap-prot-none-100")]
assert rv["unit"] == "ms", rv
assert abs(rv["ratio"] - rv["baseline"] / rv["udax"]) < 0.002, rv
names = [r["name"] for r in rows]
assert names.count("client_revoke_100") == 1 and len([n for n in names if n.startswith("client_")]) == 7, names
' <"$T/out" || fail "bench --client-only --json: the client rows"

# kill -9 of the worker as soon as it exists: its rows are errors, not a hang.
"$UDAX" bench --client-only --quick --json >"$T/killed.json" 2>"$T/killed.err" &
bench=$!
worker=
for _ in $(seq 1 200); do
  worker=$(pgrep -P "$bench" -f -- "--client-worker" || true)
  [[ -n $worker ]] && break
  sleep 0.05
done
[[ -n $worker ]] || fail "no client worker appeared under the bench"
kill -9 "$worker"
set +e
wait "$bench"
RC=$?
set -e
LAST="bench with its worker killed"
cp "$T/killed.json" "$T/out"
cp "$T/killed.err" "$T/err"
expect_rc 0
python3 -c '
import json, sys
rows = json.load(sys.stdin)
client = [r for r in rows if r["name"].startswith("client_")]
assert len(client) == 7, client
for r in client:
    assert r["udax"] is None and r["ratio"] is None, r
    assert "client worker" in r["error"], r
for r in rows:
    if not r["name"].startswith("client_"):
        assert "error" not in r and r["udax"] > 0, r
' <"$T/out" || fail "bench with its worker killed: the client rows"
echo "ok: bench client rows"
