#!/bin/bash
# udax io crash: a power cut right after commands returned; everything they
# made durable is there on the next mount, and fsck finds nothing wrong.
source "$(dirname "$0")/lib.bash" "$@"
new_fs img
img=$T/img

run "$UDAX" io "$img" -c "mkdir /d" -c "open -f /d/f" -c "pwrite -S 0x42 0 64k" \
  -c "pwrite -S 0x43 1m 4k" -c "open -f /g" -c "truncate 5000" -c "symlink /d/f /s" -c "crash" \
  -c "mkdir /never"
expect_rc 0
expect_out "wrote 65536/65536 bytes at offset 0"

run "$UDAX" io "$img" -c "ls /" -c "open /d/f" -c "stat" -c "pread -v 65520 16" \
  -c "pread -v 1m 16" -c "open /g" -c "stat"
expect_rc 0
expect_no_err
expect_out_re "^s$"
expect_out_re "^d$"
expect_out_re "^g$"
expect_no_line "never"
expect_out "stat.size = 1052672"
expect_out "0000fff0:  42 42 42 42 42 42 42 42 42 42 42 42 42 42 42 42  BBBBBBBBBBBBBBBB"
expect_out "00100000:  43 43 43 43 43 43 43 43 43 43 43 43 43 43 43 43  CCCCCCCCCCCCCCCC"
expect_out "stat.size = 5000"

run "$UDAX" fsck "$img"
expect_rc 0

# crash's exit status reflects the commands before it.
run "$UDAX" io "$img" -c "open /nonexistent" -c "crash"
expect_rc 1
expect_err "open: "
run "$UDAX" fsck "$img"
expect_rc 0

# A crash with files open and removed (orphans) and after namespace churn.
run "$UDAX" io "$img" -c "open -f /orphan" -c "pwrite 0 128k" -c "rm /orphan" -c "mv /g /g2" \
  -c "rm /s" -c "crash"
expect_rc 0
run "$UDAX" fsck "$img"
expect_rc 0
run "$UDAX" io "$img" -c "ls /"
expect_rc 0
expect_out "g2"
expect_no_line "orphan"
expect_no_line "s"

# Crashing straight after mount, or from stdin, is fine too.
run "$UDAX" io "$img" -c "crash"
expect_rc 0
printf 'open -f /from-stdin\npwrite 0 1k\ncrash\npwrite 0 1m\n' >"$T/cmds"
run_in "$T/cmds" "$UDAX" io "$img"
expect_rc 0
run "$UDAX" io "$img" -c "open /from-stdin" -c "stat"
expect_rc 0
expect_out "stat.size = 1024"
run "$UDAX" fsck "$img"
expect_rc 0
echo PASS
