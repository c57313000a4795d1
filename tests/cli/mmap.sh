#!/bin/bash
# udax io mapping commands (xfs_io's mmap/mread/mwrite/msync/munmap) over DAX
# mappings: stores reach the file, loads see pwrite data and holes as zeros,
# msync + crash keeps the data, a SIGBUS is reported and the run goes on,
# truncate/punch print invalidate lines, read-only mappings refuse stores.
source "$(dirname "$0")/lib.bash" "$@"
new_fs img
img=$T/img
zeros="00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................"

# mwrite + msync + munmap; the bytes are in the file (pread sees them). mmap,
# mwrite, msync and a last munmap print nothing.
run "$UDAX" io "$img" -c "open -f /f" -c "truncate 64k" -c "mmap 0 64k" -c "mwrite -S 0x5a 4k 32" \
  -c "msync" -c "munmap" -c "pread -v 4080 64"
expect_rc 0
expect_no_err
expect_out "00000ff0:  $zeros"
expect_out "00001000:  5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a  ZZZZZZZZZZZZZZZZ"
expect_out "00001010:  5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a  ZZZZZZZZZZZZZZZZ"
expect_out "00001020:  $zeros"
expect_out "read 64/64 bytes at offset 4080"
[[ $(wc -l <"$T/out") -eq 6 ]] || fail "mmap/mwrite/msync/munmap printed something"

# The default mwrite seed is xfs_io's 'X' (0x58); a second invocation sees it.
run "$UDAX" io "$img" -c "open /f" -c "mmap 0 64k" -c "mwrite 8k 16" -c "msync 8k 4k"
expect_rc 0
expect_no_err
run "$UDAX" io "$img" -c "open /f" -c "pread -v 8k 16"
expect_rc 0
expect_out "00002000:  58 58 58 58 58 58 58 58 58 58 58 58 58 58 58 58  XXXXXXXXXXXXXXXX"

# mread -v shows what pwrite wrote, and zeros in a hole; the dump offsets are
# xfs_io's: from the mapping start with -v, from the file start with -f.
run "$UDAX" io "$img" -c "open -f /g" -c "pwrite -S 0x41 0 20" -c "truncate 32k" -c "mmap 0 32k" \
  -c "mread -v 0 20" -c "mread -v 16k 16" -c "mread" -c "mread -r -v 8 8"
expect_rc 0
expect_no_err
expect_out "00000000:  41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41  AAAAAAAAAAAAAAAA"
expect_out "00000010:  41 41 41 41  AAAA"
expect_out "00004000:  $zeros"
expect_out "00000008:  41 41 41 41 41 41 41 41  AAAAAAAA"
run "$UDAX" io "$img" -c "open /g" -c "mmap 16k 16k" -c "mread -v 16k 16" -c "mread -f 16k 16"
expect_rc 0
expect_no_err
expect_out "00000000:  $zeros"
expect_out "00004000:  $zeros"

# Offsets are file offsets and must lie inside the mapping: EINVAL, no access.
run "$UDAX" io "$img" -c "open /g" -c "mmap 16k 16k" -c "mread 0 16" -c "mread 24k 16k" \
  -c "mwrite 32k 1" -c "msync 16k 64k" -c "msync 17k 1k" -c "mread 16k" -c "mread -v 32752 16"
expect_rc 1
expect_err "mread: offset (0) is before start of mapping (16384) (EINVAL)"
expect_err "mread: range (24576:16384) is beyond mapping (16384:16384) (EINVAL)"
expect_err "mwrite: range (32768:1) is beyond mapping (16384:16384) (EINVAL)"
expect_err "msync: range (16384:65536) is beyond mapping (16384:16384) (EINVAL)"
expect_err "msync: offset (17408) is not page aligned (EINVAL)"
expect_err_re '^mread: usage: mread .*\(EINVAL\)$'
expect_out "00003ff0:  $zeros"

# mwrite into a hole, msync, crash: the next mount has the data, fsck is clean.
run "$UDAX" io "$img" -c "open -f /h" -c "truncate 1m" -c "mmap 0 1m" -c "mwrite -S 0x77 512k 4k" \
  -c "msync 512k 4k" -c "crash" -c "mkdir /never"
expect_rc 0
expect_no_err
run "$UDAX" io "$img" -c "open /h" -c "stat" -c "pread -v 524272 32" -c "pread -v 528368 32" \
  -c "ls /"
expect_rc 0
expect_no_err
expect_out "stat.size = 1048576"
expect_out "0007fff0:  $zeros"
expect_out "00080000:  77 77 77 77 77 77 77 77 77 77 77 77 77 77 77 77  wwwwwwwwwwwwwwww"
expect_out "00080ff0:  77 77 77 77 77 77 77 77 77 77 77 77 77 77 77 77  wwwwwwwwwwwwwwww"
expect_out "00081000:  $zeros"
expect_no_line "never"
run "$UDAX" fsck "$img"
expect_rc 0

# Beyond EOF inside the mapping (64k of a 4k file): SIGBUS, reported on
# stderr; the next commands still run; exit status 1.
run "$UDAX" io "$img" -c "open -f /e" -c "pwrite -S 0x33 0 4k" -c "mmap 0 64k" -c "mread 8192 16" \
  -c "mwrite 12k 1" -c "mread -v 4080 16" -c "stat"
expect_rc 1
expect_err "mread: access beyond end of file (SIGBUS)"
expect_err "mwrite: access beyond end of file (SIGBUS)"
[[ $(grep -c . "$T/err") -eq 2 ]] || fail "expected exactly two SIGBUS lines"
expect_out "00000ff0:  33 33 33 33 33 33 33 33 33 33 33 33 33 33 33 33  3333333333333333"
expect_out "stat.size = 4096"
# The store beyond EOF changed nothing.
run "$UDAX" io "$img" -c "open /e" -c "stat" -c "fiemap"
expect_rc 0
expect_out "stat.size = 4096"
run "$UDAX" fsck "$img"
expect_rc 0

# truncate and fpunch while mapped: each mapping hears about the range it lost.
# (A truncate down over allocated blocks currently reports the range twice:
# once as the blocks are freed, once for the size change; expect_out accepts
# one or more.)
run "$UDAX" io "$img" -c "open -f /t" -c "pwrite 0 64k" -c "mmap 0 64k" -c "mread" \
  -c "truncate 4096" -c "fpunch 0 4096" -c "mread 8k 1"
expect_rc 1
ino=$(sed -n 's/^invalidate: ino=\([0-9]*\) .*/\1/p' "$T/out" | head -1)
[[ -n $ino ]] || fail "no invalidate line"
expect_out "invalidate: ino=$ino offset=4096 len=61440 reason=Truncate"
expect_out "invalidate: ino=$ino offset=0 len=4096 reason=Truncate"
expect_err "mread: access beyond end of file (SIGBUS)"
run "$UDAX" io "$img" -c "stat /t"
expect_out "stat.ino = $ino"

# Two mappings of the same file both hear a punch; munmap makes the other
# one current and lists it, xfs_io style.
run "$UDAX" io "$img" -c "open -f /p" -c "pwrite 0 32k" -c "mmap 0 32k" -c "mmap -r 16k 16k" \
  -c "mmap" -c "fpunch 16k 8k" -c "mread -v 16k 16" -c "munmap" -c "mmap 0" -c "mread -v 20k 16"
expect_rc 0
expect_no_err
expect_out_re '^ 000  0x[0-9a-f]+ - 0x[0-9a-f]+ rw- +/p \(0 : 32768\)$'
expect_out_re '^\[001\] 0x[0-9a-f]+ - 0x[0-9a-f]+ r-- +/p \(16384 : 16384\)$'
expect_out_re '^invalidate: ino=[0-9]+ offset=16384 len=8192 reason=Truncate$'
[[ $(grep -c '^invalidate: .* offset=16384 len=8192 reason=Truncate$' "$T/out") -eq 2 ]] ||
  fail "both mappings should hear the punch"
expect_out_re '^\[000\] 0x[0-9a-f]+ - 0x[0-9a-f]+ rw- +/p \(0 : 32768\)$'
expect_out "00005000:  $zeros"
expect_out "00000000:  $zeros"

# A read-only mapping refuses mwrite (nothing is stored); mmap -r, and the
# default for a file opened read-only, map read-only.
run "$UDAX" io "$img" -c "open /e" -c "mmap -r 0 4k" -c "mwrite -S 0x11 0 16" -c "mread -v 0 16" \
  -c "open -r /e" -c "mmap 0 4k" -c "mwrite 0 1" -c "mmap -rw 0 4k" -c "mmap -w 0 4k" -c "mmap"
expect_rc 1
expect_err "mwrite: mapping is read-only (EACCES)"
[[ $(grep -c 'mwrite: mapping is read-only (EACCES)' "$T/err") -eq 2 ]] ||
  fail "both read-only mappings should refuse mwrite"
expect_err "mmap: file not open for writing (EACCES)"
expect_out "00000000:  33 33 33 33 33 33 33 33 33 33 33 33 33 33 33 33  3333333333333333"
expect_out_re '^ 000  0x[0-9a-f]+ - 0x[0-9a-f]+ r-- +/e \(0 : 4096\)$'
expect_out_re '^\[001\] 0x[0-9a-f]+ - 0x[0-9a-f]+ r-- +/e \(0 : 4096\)$'
[[ $(grep -cE '^[ [][0-9]{3}[] ] 0x' "$T/out") -eq 2 ]] || fail "expected two mappings listed"

# Mappings outlive close (and the file being reopened elsewhere); the end of
# the run unmaps them before unmounting.
run "$UDAX" io "$img" -c "open /e" -c "mmap 0 4k" -c "close" -c "mwrite -S 0x44 0 4" -c "msync" \
  -c "mread -v 0 4" -c "open /g" -c "mmap 0 4k" -c "mmap 0" -c "mread -v 0 4"
expect_rc 0
expect_no_err
expect_out "00000000:  44 44 44 44  DDDD"
run "$UDAX" io "$img" -c "open /e" -c "pread -v 0 8"
expect_out "00000000:  44 44 44 44 33 33 33 33  DDDD3333"

# crash with live mappings, after a store without msync in another file.
run "$UDAX" io "$img" -c "open /e" -c "mmap 0 4k" -c "mwrite -S 0x55 0 4" -c "crash"
expect_rc 0
run "$UDAX" fsck "$img"
expect_rc 0

# Bad arguments and no mapping.
run "$UDAX" io "$img" -c "open /g" -c "mmap 1 4096" -c "mmap 0 0" -c "mmap 0 x" -c "mmap -x 0 4k" \
  -c "mmap" -c "mmap 0" -c "mread" -c "mwrite 0 1" -c "msync" -c "munmap" -c "mmap 0 4k" \
  -c "mmap 5" -c "mwrite -S 256 0 1" -c "mmap -r" -c "ls /"
expect_rc 1
expect_err_re '^mmap: .*page-aligned.*\(EINVAL\)$'
expect_err_re '^mmap: .*length.*\(EINVAL\)$'
expect_err "mmap: invalid length 'x' (EINVAL)"
expect_err "mmap: PROT_EXEC mappings are not supported (EINVAL)"
[[ $(grep -c "^mmap: no mapped regions, try 'help mmap' (EINVAL)$" "$T/err") -eq 2 ]] ||
  fail "mmap with no mapping"
for cmd in mread mwrite msync munmap; do
  expect_err "$cmd: no mapped regions, try 'help mmap' (EINVAL)"
done
expect_err "mmap: value 5 is out of range (0-0) (EINVAL)"
expect_err "mwrite: invalid seed '256' (EINVAL)"
expect_err_re '^mmap: usage: mmap .*\(EINVAL\)$'
expect_out_re '^h$'
run "$UDAX" io "$img" -c "mmap 0 4k"
expect_rc 1
expect_err "mmap: no file is open (EBADF)"

# A write fault into a hole on a full device: SIGBUS (ENOSPC), reported.
new_fs small 4m
run "$UDAX" io "$T/small" -c "open -f /big" -c "truncate 16m" -c "mmap 0 16m" -c "mwrite -S 1" \
  -c "stat"
expect_rc 1
expect_err_re '^mwrite: .*space.* \(SIGBUS\)$'
expect_out "stat.size = 16777216"
run "$UDAX" fsck "$T/small"
expect_rc 0

# From stdin, and documented in --help.
printf '%s\n' "open /g" "mmap 0 4k" "mread -v 0 4" "munmap" >"$T/cmds"
run_in "$T/cmds" "$UDAX" io "$img"
expect_rc 0
expect_out "00000000:  41 41 41 41  AAAA"
run "$UDAX" io --help
expect_rc 0
for cmd in "mmap [N]" "mread [-f] [-r] [-v] [off len]" "mwrite [-r] [-S seed] [off len]" \
  "msync [-a] [-i] [-s] [off len]" "munmap"; do
  expect_out "$cmd"
done

run "$UDAX" fsck "$img"
expect_rc 0
echo PASS
