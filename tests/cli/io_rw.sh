#!/bin/bash
# udax io: write, read back (hexdump), persistence across invocations, stat,
# fiemap, truncate and the namespace commands.
source "$(dirname "$0")/lib.bash" "$@"
new_fs img
img=$T/img

run "$UDAX" io "$img" -c "open -f /f" -c "pwrite -S 0xab 0 8k" -c "pread -v 0 16"
expect_rc 0
expect_no_err
expect_out "wrote 8192/8192 bytes at offset 0"
expect_out_re "^8 KiB, [0-9]+ ops; [0-9.]+ sec \(.* ops/sec\)$"
expect_out "00000000:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  ................"
expect_out "read 16/16 bytes at offset 0"

# The data survives a second invocation.
run "$UDAX" io "$img" -c "open /f" -c "pread -v 8176 16" -c "stat"
expect_rc 0
expect_out "00001ff0:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  ................"
expect_out "read 16/16 bytes at offset 8176"
expect_out 'fd.path = "/f"'
expect_out "stat.type = regular file"
expect_out "stat.size = 8192"
expect_out "stat.nlink = 1"
expect_out "stat.mode = 0100644"
expect_out_re '^stat\.ino = [0-9]+$'
expect_out_re '^stat\.blocks = (16|[1-9][0-9]+)$'
expect_out_re '^stat\.mtime = [0-9]+\.[0-9]{9}$'

# Default seed 0xcd, short reads at end of file, reads past it.
run "$UDAX" io "$img" -c "open /f" -c "pwrite 8192 100" -c "pread -v 8280 40" -c "pread 9000 10"
expect_rc 0
expect_out "wrote 100/100 bytes at offset 8192"
expect_out "00002058:  cd cd cd cd cd cd cd cd cd cd cd cd  ............"
expect_out "read 12/40 bytes at offset 8280"
expect_out "read 0/10 bytes at offset 9000"

# fiemap: a hole between two extents, in 512-byte units.
run "$UDAX" io "$img" -c "open -f /sparse" -c "pwrite 0 4k" -c "pwrite 12k 4k" -c "fiemap"
expect_rc 0
expect_out "/sparse:"
expect_out_re $'^\t0: \\[0\\.\\.7\\]: [0-9]+\\.\\.[0-9]+$'
expect_out_re $'^\t1: \\[8\\.\\.23\\]: hole$'
expect_out_re $'^\t2: \\[24\\.\\.31\\]: [0-9]+\\.\\.[0-9]+$'

# truncate, fpunch, fzero, falloc, fsync, fdatasync.
run "$UDAX" io "$img" -c "open /sparse" -c "truncate 64k" -c "fpunch 0 4k" -c "pread -v 0 16" \
  -c "pwrite -S 0x11 20k 4k" -c "fzero 20k 16" -c "pread -v 20k 32" -c "falloc 64k 64k" \
  -c "falloc -k 256k 4k" -c "fsync" -c "fdatasync" -c "stat"
expect_rc 0
expect_no_err
expect_out "00000000:  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................"
expect_out "00005000:  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................"
expect_out "00005010:  11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11  ................"
expect_out "stat.size = 131072"

# Namespace commands.
run "$UDAX" io "$img" -c "mkdir /d" -c "mkdir /d/e" -c "open -f /d/x" -c "pwrite 0 10" -c "close" \
  -c "mv /d/x /d/y" -c "ln /d/y /d/z" -c "symlink /d/y /d/s"
expect_rc 0
expect_no_err
run "$UDAX" io "$img" -c "ls /d"
expect_rc 0
[[ $(cat "$T/out") == $'e\ns\ny\nz' ]] || fail "ls /d is not e s y z, one per line, sorted"
run "$UDAX" io "$img" -c "ls -l /d" -c "stat /d"
expect_rc 0
expect_no_err
expect_out_re '^drwxr-xr-x +[0-9]+ +[0-9]+ e$'
expect_out_re '^lrwxrwxrwx +1 +[0-9]+ s -> /d/y$'
expect_out_re '^-rw-r--r-- +2 +10 y$'
expect_out_re '^-rw-r--r-- +2 +10 z$'
expect_out "stat.type = directory"
run "$UDAX" io "$img" -c "rm /d/y" -c "rm /d/z" -c "rm /d/s" -c "rmdir /d/e" -c "rmdir /d" -c "ls /"
expect_rc 0
expect_no_err
expect_no_line "d"
run "$UDAX" io "$img" -c "ls /d"
expect_rc 1
expect_err "ls: "
expect_err "(ENOENT)"

# Commands from stdin, one per line, comments and blank lines ignored.
printf '%s\n' "# a comment" "" "open -f /stdin" "pwrite -S 0x5a 0 3" "pread -v 0 3" >"$T/cmds"
run_in "$T/cmds" "$UDAX" io "$img"
expect_rc 0
expect_out "00000000:  5a 5a 5a  ZZZ"

# statfs
run "$UDAX" io "$img" -c "statfs"
expect_rc 0
expect_out_re '^statfs\.f_bsize = 4096$'
expect_out_re '^statfs\.f_blocks = [0-9]+$'

run "$UDAX" fsck "$img"
expect_rc 0
echo PASS
