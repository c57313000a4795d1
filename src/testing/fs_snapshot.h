// testing/fs_snapshot.h — reads a mounted udax filesystem into a TreeSnap
// (testing/fs_model.h) through the public API only, so it can be compared
// with the model (tests only).
#pragma once

#include <string>

#include "testing/fs_model.h"
#include "udax/fs.h"

namespace udax::testing {

// Every reachable path: lstat, readlink, readdir (entry types must agree with
// lstat: a disagreement is an error), and for files with `with_data` the
// allocated blocks (Fiemap) and their content (Pread; past EOF reads as 0).
Result<TreeSnap> SnapshotFs(Filesystem& fs, bool with_data);
// The snapshot entry of an open file (metadata from File::GetStat).
Result<SnapEntry> SnapshotFile(File& f, bool with_data);

}  // namespace udax::testing
