#!/bin/bash
# udax fsck --json and info --json: valid JSON with the documented fields;
# the text forms show the same values.
source "$(dirname "$0")/lib.bash" "$@"
new_fs img
img=$T/img
run "$UDAX" io "$img" -c "mkdir /d" -c "open -f /d/f" -c "pwrite 0 100k" -c "symlink /d/f /s"
expect_rc 0

run "$UDAX" fsck --json "$img"
expect_rc 0
python3 -c '
import json, sys
j = json.load(sys.stdin)
for k in ["device", "clean", "problems", "notes", "inodes", "directories", "files", "symlinks",
          "used_blocks", "free_blocks", "metadata_blocks", "data_blocks"]:
    assert k in j, "fsck --json lacks " + k
assert j["clean"] is True, j
assert j["problems"] == [], j
assert isinstance(j["notes"], list)
assert j["device"] == sys.argv[1], j["device"]
assert j["directories"] >= 2 and j["files"] >= 1 and j["symlinks"] >= 1, j
assert j["inodes"] >= j["directories"] + j["files"] + j["symlinks"], j
assert j["data_blocks"] >= 25, j
assert j["used_blocks"] >= j["data_blocks"], j
for k in ["inodes", "directories", "files", "symlinks", "used_blocks", "free_blocks",
          "metadata_blocks", "data_blocks"]:
    assert isinstance(j[k], int) and j[k] >= 0, k
' "$img" <"$T/out" || fail "fsck --json"

run "$UDAX" fsck "$img"
expect_rc 0
expect_out "clean"

run "$UDAX" info --json "$img"
expect_rc 0
python3 -c '
import json, sys
j = json.load(sys.stdin)
for k in ["device_bytes", "size_bytes", "block_size", "total_blocks", "free_blocks", "used_blocks",
          "inode_count", "log_blocks", "uuid", "features", "journal_state", "fences_per_commit"]:
    assert k in j, "info --json lacks " + k
assert j["block_size"] == 4096, j
assert j["device_bytes"] == 64 << 20, j
assert j["size_bytes"] <= j["device_bytes"], j
assert j["free_blocks"] + j["used_blocks"] == j["total_blocks"], j
assert j["inode_count"] >= 4, j
assert isinstance(j["features"], list), j
assert j["journal_state"] == "clean", j
' <"$T/out" || fail "info --json"

run "$UDAX" info "$img"
expect_rc 0
for k in device_bytes size_bytes block_size total_blocks free_blocks used_blocks inode_count \
  log_blocks uuid features journal_state fences_per_commit; do
  expect_out_re "^$k: "
done
expect_out "block_size: 4096"
expect_out "journal_state: clean"

# Cannot check: exit 1, an error, and --json still prints one object.
run "$UDAX" fsck "$T/nonexistent"
expect_rc 1
expect_err "(ENOENT)"
run "$UDAX" fsck --json "$T/nonexistent"
expect_rc 1
python3 -c 'import json, sys; j = json.load(sys.stdin); assert j["clean"] is False' <"$T/out" ||
  fail "fsck --json on a missing device"
run "$UDAX" info "$T/nonexistent"
expect_rc 1
expect_err "(ENOENT)"
run "$UDAX" info --json "$T/nonexistent"
expect_rc 1
echo PASS
