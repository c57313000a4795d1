# tests/cli/lib.bash — helpers sourced by the CLI test scripts (not a test
# itself: only *.sh files are registered with ctest).
#
# Usage, at the top of a script:  source "$(dirname "$0")/lib.bash" "$@"
# Provides $UDAX (absolute path of the binary), $T (a temp dir removed on
# exit), run/expect_* helpers. `run` records the exit status in $RC, stdout
# in $T/out and stderr in $T/err, and fails the test at once if the command
# died by a signal (exit status >= 128).
set -euo pipefail

UDAX=${1:?usage: bash $0 /path/to/udax}
[[ $UDAX == /* ]] || UDAX=$PWD/$UDAX
[[ -x $UDAX ]] || { echo "FAIL: $UDAX is not executable" >&2; exit 1; }
T=$(mktemp -d /tmp/udax-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT

fail() {
  echo "FAIL: $*" >&2
  if [[ -f $T/out ]]; then echo "--- stdout:" >&2; head -c 4000 "$T/out" >&2 || true; fi
  if [[ -f $T/err ]]; then echo "--- stderr:" >&2; head -c 4000 "$T/err" >&2 || true; fi
  exit 1
}

# run CMD... — runs CMD (stdin from /dev/null unless redirected by the caller
# via run_in), recording RC, $T/out and $T/err.
run() {
  LAST="$*"
  set +e
  "$@" >"$T/out" 2>"$T/err" </dev/null
  RC=$?
  set -e
  if ((RC >= 128)); then fail "killed by a signal (exit $RC): $LAST"; fi
}

# run_in FILE CMD... — like run, with stdin from FILE.
run_in() {
  local in=$1
  shift
  LAST="$* < $in"
  set +e
  "$@" >"$T/out" 2>"$T/err" <"$in"
  RC=$?
  set -e
  if ((RC >= 128)); then fail "killed by a signal (exit $RC): $LAST"; fi
}

expect_rc() {
  [[ $RC -eq $1 ]] || fail "expected exit status $1, got $RC: $LAST"
}
expect_fail() {
  [[ $RC -ne 0 ]] || fail "expected a failure, got exit status 0: $LAST"
}
# expect_out TEXT — stdout contains TEXT (fixed string).
expect_out() {
  grep -qF -- "$1" "$T/out" || fail "stdout lacks '$1': $LAST"
}
# expect_no_line TEXT — no stdout line is exactly TEXT.
expect_no_line() {
  if grep -qxF -- "$1" "$T/out"; then fail "stdout has the line '$1': $LAST"; fi
}
expect_no_out() {
  if grep -qF -- "$1" "$T/out"; then fail "stdout has '$1': $LAST"; fi
}
# expect_out_re REGEX — stdout has a line matching the extended regex.
expect_out_re() {
  grep -qE -- "$1" "$T/out" || fail "stdout lacks /$1/: $LAST"
}
expect_err() {
  grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1': $LAST"
}
expect_err_re() {
  grep -qE -- "$1" "$T/err" || fail "stderr lacks /$1/: $LAST"
}
expect_no_err() {
  [[ ! -s $T/err ]] || fail "unexpected stderr: $LAST"
}

# new_fs NAME [SIZE] — a fresh filesystem image $T/NAME (default 64 MiB).
new_fs() {
  run "$UDAX" mkfs -s "${2:-64m}" "$T/$1"
  expect_rc 0
}

# fuse_setup — for the scripts that mount: exits 77 (ctest: skipped, not
# passed) when this machine cannot mount FUSE at all (no /dev/fuse or no
# fusermount3); else sets $M (an empty mount point under $T), $SERVER_PID
# (empty; a script that starts a server in the background sets it, and the
# exit trap kills it), and a trap that detaches a mount left behind.
fuse_setup() {
  if [[ ! -c /dev/fuse ]] || ! command -v fusermount3 >/dev/null; then
    echo "SKIP: FUSE is not available here (/dev/fuse, fusermount3)"
    exit 77
  fi
  M=$T/mnt
  mkdir -p "$M"
  SERVER_PID=
  trap fuse_cleanup EXIT
}
fuse_cleanup() {
  if mountpoint -q "$M" 2>/dev/null; then fusermount3 -uz "$M" 2>/dev/null || umount -l "$M" 2>/dev/null || true; fi
  if [[ -n $SERVER_PID ]]; then kill -9 "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$T"
}
# is_mounted — a fuse.udax filesystem is mounted on $M.
is_mounted() { grep -q " $M fuse.udax " /proc/mounts; }

# ---- direct clients driven through fifos (udax io MOUNTPOINT reads its
# commands from stdin as they arrive):
# client_start NAME; client_send NAME LINE...; client_wait NAME REGEX [COUNT]
# waits (10 s) until COUNT (default 1) lines of NAME's output match;
# client_stop NAME closes its stdin and leaves its exit status in RC.
declare -A CLIENT_FD CLIENT_PID
client_start() {
  mkfifo "$T/$1.in"
  (
    for fd in "${CLIENT_FD[@]}"; do exec {fd}>&-; done  # the other clients' stdin: theirs alone
    exec "$UDAX" io "$M" <"$T/$1.in" >"$T/$1.out" 2>&1
  ) &
  CLIENT_PID[$1]=$!
  local fd
  exec {fd}>"$T/$1.in"
  CLIENT_FD[$1]=$fd
}
client_send() {
  local name=$1
  shift
  printf '%s\n' "$@" >&"${CLIENT_FD[$name]}"
}
client_wait() {
  local name=$1 re=$2 count=${3:-1} i
  for ((i = 0; i < 1000; i++)); do
    (($(grep -cE -- "$re" "$T/$name.out" || true) >= count)) && return 0
    kill -0 "${CLIENT_PID[$name]}" 2>/dev/null || break
    sleep 0.01
  done
  (($(grep -cE -- "$re" "$T/$name.out" || true) >= count)) && return 0
  echo "--- $name said:" >&2
  cat "$T/$name.out" >&2
  fail "client $name: no${count:+ $count} line(s) matching /$re/"
}
client_stop() {
  exec {CLIENT_FD[$1]}>&-
  set +e
  wait "${CLIENT_PID[$1]}"
  RC=$?
  set -e
}
