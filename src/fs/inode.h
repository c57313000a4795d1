// fs/inode.h — Inode, the in-core inode (the kernel's struct inode): exists
// while a File or a Mapping holds it open; the in-core table (inode_table.h)
// finds it by number. Also the clock that stamps inode records.
//
// Locking (meta_lock.h for the order):
//  * Inode::mu guards rec, times_dirty and last_ext; taken inside meta_mu_,
//    never the other way round;
//  * open_count is guarded by the in-core table's mutex (InodeTable);
//  * mappings (AddressSpace) has its own mutex for the list; invalidation
//    runs with meta_mu_ exclusive.
// Invariants:
//  * `rec` equals the committed record plus lazy timestamps (times_dirty);
//  * last_ext is exact while meta_mu_'s epoch equals last_ext.epoch.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#include "fs/address_space.h"
#include "media/format.h"
#include "udax/fs.h"

namespace udax {

// The last mapped extent a read or an overwrite of an inode found: exact
// while meta_mu_'s epoch equals `epoch` (any exclusive section ends it — a
// conservative rule that needs no bookkeeping at each extent-map change).
struct LastExtent {
  uint64_t epoch = 0;  // 0: empty
  media::BmapRec ext{};
};

class Inode {
 public:
  explicit Inode(const media::InodeRec& r) : ino(r.ino), rec(r) {}
  const uint64_t ino;
  std::mutex mu;         // guards rec, times_dirty and last_ext
  media::InodeRec rec;   // committed record + lazy timestamps
  bool times_dirty = false;
  // The next read updates atime (the mount's AtimeMode, FsImpl::AtimeDue):
  // the one test a read makes; kept by every change of the record's times.
  std::atomic<bool> atime_due{false};
  LastExtent last_ext;   // for Pread/Pwrite (file_io.cc), under meta_mu_ shared
  int open_count = 0;    // guarded by InodeTable's mutex (open Files + Mappings)
  AddressSpace mappings; // live DAX mappings of this inode
};

// The clock of inode times: precise (CLOCK_REALTIME) for every change a
// transaction makes; coarse (CLOCK_REALTIME_COARSE, tick granularity, a few
// ns instead of ~30) for the lazy times of plain overwrites, as the kernel
// stamps them.
inline media::DiskTime ClockNow() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return media::DiskTime{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec), 0};
}
inline media::DiskTime ClockNowCoarse() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return media::DiskTime{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec), 0};
}
inline media::DiskTime ToDisk(Timespec t) { return media::DiskTime{t.sec, t.nsec, 0}; }
inline Timespec FromDisk(media::DiskTime t) { return Timespec{t.sec, t.nsec}; }

}  // namespace udax
