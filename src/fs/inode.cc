// fs/inode.cc — inode records in the inode B+tree, the in-core inode table,
// and the orphan list (unlinked inodes still to be freed: only inodes with no
// links are ever reclaimed from it).
//
// Inode numbers are never reused (root.next_ino only grows; 2^64 is enough),
// so a stale number can never name a different file.
#include <sys/stat.h>
#include <time.h>

#include <cstring>

#include "fs/fs_impl.h"

namespace udax {

using media::InodeRec;

namespace {
const media::TreeShape& InodeShape() { return *media::ShapeForMagic(media::kInodeMagic); }
const media::TreeShape& OrphanShape() { return *media::ShapeForMagic(media::kOrphanMagic); }
}  // namespace

media::DiskTime FsImpl::Now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return media::DiskTime{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec), 0};
}

media::DiskTime FsImpl::NowCoarse() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return media::DiskTime{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec), 0};
}

namespace {
bool NotAfter(const media::DiskTime& a, const media::DiskTime& b) {
  return a.sec < b.sec || (a.sec == b.sec && a.nsec <= b.nsec);
}
constexpr int64_t kRelatimeMaxAge = 24 * 60 * 60;  // seconds, as Linux's relatime
}  // namespace

// Linux's relatime_need_update: atime not after mtime or ctime, or a day old.
bool FsImpl::AtimeDue(const InodeRec& r, const media::DiskTime& now) const {
  switch (atime_mode_) {
    case AtimeMode::kNoatime: return false;
    case AtimeMode::kStrictatime: return true;
    case AtimeMode::kRelatime:
      return NotAfter(r.atime, r.mtime) || NotAfter(r.atime, r.ctime) || now.sec - r.atime.sec >= kRelatimeMaxAge;
  }
  return false;
}

void FsImpl::TouchAtime(Inode* ip) {
  std::lock_guard<std::mutex> g(ip->mu);
  media::DiskTime now = Now();
  if (!AtimeDue(ip->rec, now)) {  // another reader was first
    ip->atime_due.store(false, std::memory_order_relaxed);
    return;
  }
  ip->rec.atime = now;
  ip->times_dirty = true;
  ip->atime_due.store(atime_mode_ == AtimeMode::kStrictatime, std::memory_order_relaxed);
}

media::DiskTime ToDisk(Timespec t) { return media::DiskTime{t.sec, t.nsec, 0}; }
Timespec FromDisk(media::DiskTime t) { return Timespec{t.sec, t.nsec}; }

Result<InodeRec> FsImpl::ReadInode(Transaction& tx, uint64_t ino) {
  if (auto ip = FindInCore(ino)) {
    std::lock_guard<std::mutex> g(ip->mu);
    return ip->rec;
  }
  ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
  media::BtreeRoot root = reinterpret_cast<const media::RootBlock*>(rb)->inodes;
  Btree tree(&tx, InodeShape(), &root, 0, nullptr);
  InodeRec rec;
  ASSIGN_OR_RETURN(bool found, tree.Lookup(&ino, &rec));
  if (!found) return Errno(ENOENT, "inode " + std::to_string(ino) + " does not exist");
  return rec;
}

Result<InodeRec> FsImpl::ReadInodeFor(FsTxn& t, uint64_t ino) {
  auto it = t.inodes.find(ino);
  if (it != t.inodes.end()) return it->second;
  return ReadInode(t.tx, ino);
}

Status FsImpl::WriteInode(FsTxn& t, const InodeRec& rec) {
  Btree tree(&t.tx, InodeShape(), &t.root->inodes, 0, space_.allocator());
  RETURN_IF_ERROR(tree.Update(&rec));
  t.inodes[rec.ino] = rec;
  return Status::Ok();
}

Result<InodeRec> FsImpl::CreateInode(FsTxn& t, uint32_t mode, uint64_t parent) {
  RETURN_IF_ERROR(space_.allocator()->FixFreeList(t));
  InodeRec rec;
  std::memset(&rec, 0, sizeof rec);
  rec.ino = t.root->next_ino++;
  rec.mode = mode;
  rec.nlink = S_ISDIR(mode) ? 2 : 1;
  rec.uid = owner_uid_;
  rec.gid = owner_gid_;
  rec.atime = rec.mtime = rec.ctime = rec.btime = t.Now();
  rec.parent = S_ISDIR(mode) ? parent : 0;
  rec.generation = t.tx.journal()->seq();
  Btree tree(&t.tx, InodeShape(), &t.root->inodes, 0, space_.allocator());
  RETURN_IF_ERROR(tree.Insert(&rec));
  t.root->inode_count++;
  t.inodes[rec.ino] = rec;
  return rec;
}

Status FsImpl::DeleteInode(FsTxn& t, uint64_t ino) {
  Btree tree(&t.tx, InodeShape(), &t.root->inodes, 0, space_.allocator());
  RETURN_IF_ERROR(tree.Delete(&ino));
  t.root->inode_count--;
  t.inodes.erase(ino);
  return Status::Ok();
}

Status FsImpl::AddOrphan(FsTxn& t, uint64_t ino) {
  Btree tree(&t.tx, OrphanShape(), &t.root->orphans, 0, space_.allocator());
  media::OrphanRec rec{ino};
  return tree.Insert(&rec);
}

Status FsImpl::RemoveOrphan(FsTxn& t, uint64_t ino) {
  Btree tree(&t.tx, OrphanShape(), &t.root->orphans, 0, space_.allocator());
  return tree.Delete(&ino);
}

std::shared_ptr<Inode> FsImpl::FindInCore(uint64_t ino) {
  std::lock_guard<std::mutex> g(inodes_mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second;
}

std::shared_ptr<Inode> FsImpl::GetInCore(const InodeRec& rec) {
  std::shared_ptr<Inode> ip;
  {
    std::lock_guard<std::mutex> g(inodes_mu_);
    auto& slot = inodes_[rec.ino];
    if (!slot) slot = std::make_shared<Inode>(rec);
    slot->open_count++;
    ip = slot;
  }
  // An open checks the day-old rule afresh (a read tests only the flag).
  std::lock_guard<std::mutex> g(ip->mu);
  ip->atime_due.store(AtimeDue(ip->rec, Now()), std::memory_order_relaxed);
  return ip;
}

Status FsImpl::FlushLazyTimes(Inode* ip) {
  {
    std::lock_guard<std::mutex> g(ip->mu);
    if (!ip->times_dirty) return Status::Ok();
  }
  ASSIGN_OR_RETURN(auto t, BeginTxn());
  InodeRec rec;
  {
    std::lock_guard<std::mutex> g(ip->mu);
    rec = ip->rec;
  }
  RETURN_IF_ERROR(WriteInode(*t, rec));
  return CommitTxn(*t);
}

void FsImpl::Release(Inode* ip) {
  MetaWriteLock lk(meta_mu_);
  bool last = false;
  {
    std::lock_guard<std::mutex> g(inodes_mu_);
    if (--ip->open_count == 0) last = true;
  }
  if (!last) return;
  uint64_t ino = ip->ino;
  uint32_t nlink;
  {
    std::lock_guard<std::mutex> g(ip->mu);
    nlink = ip->rec.nlink;
  }
  if (!mounted_ || read_only_) {
    std::lock_guard<std::mutex> g(inodes_mu_);
    if (ip->open_count == 0) inodes_.erase(ino);
    return;
  }
  if (nlink > 0) {
    FlushLazyTimes(ip).IgnoreError();  // best effort; also done at unmount
  }
  {
    std::lock_guard<std::mutex> g(inodes_mu_);
    if (ip->open_count != 0) return;
    inodes_.erase(ino);
  }
  // Last close of an unlinked file: free its space now (it is on the orphan
  // list, so a crash before this finishes is repaired at the next mount).
  if (nlink == 0) ReclaimInode(ino).IgnoreError();
}

// An orphan record is a promise that the inode has no links left. A record
// that breaks it (crafted, or damaged in a way the checksums cannot see)
// must not free a file that a directory still names: it is dropped and
// reported, and the inode is left alone.
Status FsImpl::ReclaimOrphans() {
  std::vector<uint64_t> orphans;
  std::vector<std::pair<uint64_t, std::string>> stale;  // ino, why
  {
    Transaction tx(journal_.get(), true);
    ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
    media::BtreeRoot root = reinterpret_cast<const media::RootBlock*>(rb)->orphans;
    Btree tree(&tx, OrphanShape(), &root, 0, nullptr);
    std::vector<uint64_t> listed;
    RETURN_IF_ERROR(tree.Scan(nullptr, [&](const void* r) {
      listed.push_back(static_cast<const media::OrphanRec*>(r)->ino);
      return true;
    }));
    for (uint64_t ino : listed) {
      auto rec = ReadInode(tx, ino);
      if (!rec.has_value() && rec.error().err() != ENOENT) return rec.error();
      if (!rec.has_value()) {
        stale.emplace_back(ino, "which does not exist");
      } else if (rec->nlink > 0) {
        stale.emplace_back(ino, "which has " + std::to_string(rec->nlink) + " link" +
                                    (rec->nlink == 1 ? "" : "s"));
      } else {
        orphans.push_back(ino);
      }
    }
  }
  for (const auto& [ino, why] : stale) {
    ASSIGN_OR_RETURN(auto t, BeginTxn());
    RETURN_IF_ERROR(RemoveOrphan(*t, ino));
    RETURN_IF_ERROR(CommitTxn(*t));
    Note("orphan record names inode " + std::to_string(ino) + ", " + why +
         ": record dropped, nothing freed");
  }
  for (uint64_t ino : orphans) RETURN_IF_ERROR(ReclaimInode(ino).Prefixed("reclaiming orphan inode " + std::to_string(ino)));
  return Status::Ok();
}

}  // namespace udax
