// fs/inode_store.cc — inode records, orphans and an inode's life in core
// (see inode_store.h).
#include "fs/inode_store.h"

#include <sys/stat.h>

#include <cstring>

#include "fs/fs_impl.h"
#include "space/bmap.h"
#include "space/dir.h"

namespace udax {

using media::InodeRec;

namespace {
const media::TreeShape& InodeShape() { return *media::ShapeForMagic(media::kInodeMagic); }
const media::TreeShape& OrphanShape() { return *media::ShapeForMagic(media::kOrphanMagic); }
}  // namespace

void InodeStore::TouchAtime(Inode* ip) {
  std::lock_guard<std::mutex> g(ip->mu);
  media::DiskTime now = ClockNow();
  if (!fs_.AtimeDue(ip->rec, now)) {  // another reader was first
    ip->atime_due.store(false, std::memory_order_relaxed);
    return;
  }
  ip->rec.atime = now;
  ip->times_dirty = true;
  ip->atime_due.store(fs_.atime_mode() == AtimeMode::kStrictatime, std::memory_order_relaxed);
}

Result<InodeRec> InodeStore::Read(Transaction& tx, uint64_t ino) {
  if (auto ip = fs_.inodes().Find(ino)) {
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

Result<InodeRec> InodeStore::ReadForUpdate(FsTxn& t, uint64_t ino) {
  auto it = t.inodes.find(ino);
  if (it != t.inodes.end()) return it->second;
  return Read(t.tx, ino);
}

Status InodeStore::Write(FsTxn& t, const InodeRec& rec) {
  Btree tree(&t.tx, InodeShape(), &t.root->inodes, 0, fs_.allocator());
  RETURN_IF_ERROR(tree.Update(&rec));
  t.inodes[rec.ino] = rec;
  return Status::Ok();
}

Result<InodeRec> InodeStore::Create(FsTxn& t, uint32_t mode, uint64_t parent) {
  RETURN_IF_ERROR(fs_.allocator()->FixFreeList(t));
  InodeRec rec;
  std::memset(&rec, 0, sizeof rec);
  rec.ino = t.root->next_ino++;
  rec.mode = mode;
  rec.nlink = S_ISDIR(mode) ? 2 : 1;
  rec.uid = fs_.owner_uid();
  rec.gid = fs_.owner_gid();
  rec.atime = rec.mtime = rec.ctime = rec.btime = t.Now();
  rec.parent = S_ISDIR(mode) ? parent : 0;
  rec.generation = t.tx.journal()->seq();
  Btree tree(&t.tx, InodeShape(), &t.root->inodes, 0, fs_.allocator());
  RETURN_IF_ERROR(tree.Insert(&rec));
  t.root->inode_count++;
  t.inodes[rec.ino] = rec;
  return rec;
}

Status InodeStore::Delete(FsTxn& t, uint64_t ino) {
  Btree tree(&t.tx, InodeShape(), &t.root->inodes, 0, fs_.allocator());
  RETURN_IF_ERROR(tree.Delete(&ino));
  t.root->inode_count--;
  t.inodes.erase(ino);
  return Status::Ok();
}

Status InodeStore::AddOrphan(FsTxn& t, uint64_t ino) {
  Btree tree(&t.tx, OrphanShape(), &t.root->orphans, 0, fs_.allocator());
  media::OrphanRec rec{ino};
  return tree.Insert(&rec);
}

Status InodeStore::RemoveOrphan(FsTxn& t, uint64_t ino) {
  Btree tree(&t.tx, OrphanShape(), &t.root->orphans, 0, fs_.allocator());
  return tree.Delete(&ino);
}

std::shared_ptr<Inode> InodeStore::Open(const InodeRec& rec) {
  std::shared_ptr<Inode> ip = fs_.inodes().Open(rec);
  // An open checks the day-old rule afresh (a read tests only the flag).
  std::lock_guard<std::mutex> g(ip->mu);
  ip->atime_due.store(fs_.AtimeDue(ip->rec, ClockNow()), std::memory_order_relaxed);
  return ip;
}

Status InodeStore::FlushLazyTimes(Inode* ip) {
  {
    std::lock_guard<std::mutex> g(ip->mu);
    if (!ip->times_dirty) return Status::Ok();
  }
  ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
  InodeRec rec;
  {
    std::lock_guard<std::mutex> g(ip->mu);
    rec = ip->rec;
  }
  RETURN_IF_ERROR(Write(*t, rec));
  return fs_.CommitTxn(*t);
}

void InodeStore::Release(Inode* ip) {
  MetaWriteLock lk(fs_.meta_mu());
  if (!fs_.inodes().Close(ip)) return;
  uint64_t ino = ip->ino;
  uint32_t nlink;
  {
    std::lock_guard<std::mutex> g(ip->mu);
    nlink = ip->rec.nlink;
  }
  if (!fs_.mounted() || fs_.read_only()) {
    fs_.inodes().EraseIfUnused(ino);
    return;
  }
  if (nlink > 0) {
    FlushLazyTimes(ip).IgnoreError();  // best effort; also done at unmount
  }
  if (!fs_.inodes().EraseIfUnused(ino)) return;  // reopened meanwhile
  // Last close of an unlinked file: free its space now (it is on the orphan
  // list, so a crash before this finishes is repaired at the next mount).
  if (nlink == 0) Reclaim(ino).IgnoreError();
}

// An orphan record is a promise that the inode has no links left. A record
// that breaks it (crafted, or damaged in a way the checksums cannot see)
// must not free a file that a directory still names: it is dropped and
// reported, and the inode is left alone.
Status InodeStore::ReclaimOrphans() {
  std::vector<uint64_t> orphans;
  std::vector<std::pair<uint64_t, std::string>> stale;  // ino, why
  {
    Transaction tx(fs_.journal(), true);
    ASSIGN_OR_RETURN(const uint8_t* rb, tx.Read(media::kRootBlockNo, media::kRootMagic));
    media::BtreeRoot root = reinterpret_cast<const media::RootBlock*>(rb)->orphans;
    Btree tree(&tx, OrphanShape(), &root, 0, nullptr);
    std::vector<uint64_t> listed;
    RETURN_IF_ERROR(tree.Scan(nullptr, [&](const void* r) {
      listed.push_back(static_cast<const media::OrphanRec*>(r)->ino);
      return true;
    }));
    for (uint64_t ino : listed) {
      auto rec = Read(tx, ino);
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
    ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
    RETURN_IF_ERROR(RemoveOrphan(*t, ino));
    RETURN_IF_ERROR(fs_.CommitTxn(*t));
    fs_.Note("orphan record names inode " + std::to_string(ino) + ", " + why +
             ": record dropped, nothing freed");
  }
  for (uint64_t ino : orphans) RETURN_IF_ERROR(Reclaim(ino).Prefixed("reclaiming orphan inode " + std::to_string(ino)));
  return Status::Ok();
}

Status InodeStore::Reclaim(uint64_t ino) {
  Allocator::FreeingOp freeing(fs_.allocator());  // may use the reserve (alloc.h)
  bool done = false;
  while (!done) {
    ASSIGN_OR_RETURN(auto t, fs_.BeginTxn());
    RETURN_IF_ERROR(freeing.Begin(*t));
    ASSIGN_OR_RETURN(InodeRec rec, ReadForUpdate(*t, ino));
    if (S_ISDIR(rec.mode)) {
      RETURN_IF_ERROR(DirDestroy(fs_.space(), *t, rec));
      done = true;
    } else {
      RETURN_IF_ERROR(UnmapRange(fs_.space(), *t, rec, 0, UINT64_MAX / 2, kExtentsPerTxn, &done));
      RETURN_IF_ERROR(Write(*t, rec));
    }
    if (done) {
      RETURN_IF_ERROR(Delete(*t, ino));
      RETURN_IF_ERROR(RemoveOrphan(*t, ino));
    }
    RETURN_IF_ERROR(fs_.CommitTxn(*t));
  }
  return Status::Ok();
}

}  // namespace udax
