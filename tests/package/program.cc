// tests/package/program.cc — a program outside the tree, built against an
// installed libudax (pkg-config or find_package; tests/package/install_test.sh).
// It uses the public API only: mkfs, mount, write, read, map, store through
// the mapping, unmount, mount again and check every byte, then fsck. Any
// difference exits 1 with what was wrong.
//
// Usage: program IMAGE
#include <fcntl.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <udax/check.h>
#include <udax/fs.h>
#include <udax/mapping.h>

namespace {

constexpr size_t kLen = 64 * 1024;       // written with Pwrite
constexpr size_t kStoreOff = 8192;       // then overwritten through the mapping
constexpr size_t kStoreLen = 4096 + 100;

int Fail(const std::string& what, const udax::Status& st = udax::Status::Ok()) {
  std::fprintf(stderr, "program: %s%s%s\n", what.c_str(), st.ok() ? "" : ": ", st.ok() ? "" : st.ToString().c_str());
  return 1;
}

uint8_t Written(size_t i) { return static_cast<uint8_t>(i * 7 + 3); }
uint8_t Stored(size_t i) { return static_cast<uint8_t>(i * 13 + 5); }
uint8_t Expected(size_t i) {
  return i >= kStoreOff && i < kStoreOff + kStoreLen ? Stored(i) : Written(i);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return Fail("usage: program IMAGE");
  const std::string image = argv[1];
  udax::MkfsOptions mo;
  mo.size = 64ull << 20;
  mo.force = true;
  if (udax::Status st = udax::Filesystem::Mkfs(image, mo); !st.ok()) return Fail("mkfs", st);

  {
    auto fs = udax::Filesystem::Mount(image);
    if (!fs.has_value()) return Fail("mount", fs.error());
    auto f = (*fs)->Open("/data", O_CREAT | O_RDWR, 0644);
    if (!f.has_value()) return Fail("open", f.error());
    std::vector<uint8_t> buf(kLen);
    for (size_t i = 0; i < kLen; i++) buf[i] = Written(i);
    auto n = f->Pwrite(buf.data(), kLen, 0);
    if (!n.has_value() || *n != kLen) return Fail("pwrite", n.error());
    std::vector<uint8_t> back(kLen);
    n = f->Pread(back.data(), kLen, 0);
    if (!n.has_value() || *n != kLen || back != buf) return Fail("pread gave other bytes", n.error());

    auto m = f->Map(0, kLen, udax::Prot::kReadWrite);
    if (!m.has_value()) return Fail("map", m.error());
    if (std::memcmp(m->data(), buf.data(), kLen) != 0) return Fail("the mapping shows other bytes");
    for (size_t i = kStoreOff; i < kStoreOff + kStoreLen; i++) m->data()[i] = Stored(i);
    if (udax::Status st = m->Persist(m->data() + kStoreOff, kStoreLen); !st.ok()) return Fail("persist", st);
    if (udax::Status st = m->Unmap(); !st.ok()) return Fail("unmap", st);

    auto owners = (*fs)->QueryRmap(0, mo.size);
    if (!owners.has_value()) return Fail("rmap", owners.error());
    bool found = false;
    for (const udax::BlockOwner& o : *owners) found |= o.kind == udax::BlockOwner::Kind::kFileData && o.ino == f->ino();
    if (!found) return Fail("the rmap names no block of /data");
    if (udax::Status st = f->Close(); !st.ok()) return Fail("close", st);
    if (udax::Status st = (*fs)->Unmount(); !st.ok()) return Fail("unmount", st);
  }

  auto fs = udax::Filesystem::Mount(image);
  if (!fs.has_value()) return Fail("mount again", fs.error());
  auto f = (*fs)->Open("/data", O_RDONLY);
  if (!f.has_value()) return Fail("open again", f.error());
  std::vector<uint8_t> back(kLen);
  auto n = f->Pread(back.data(), kLen, 0);
  if (!n.has_value() || *n != kLen) return Fail("pread after the remount", n.error());
  for (size_t i = 0; i < kLen; i++) {
    if (back[i] != Expected(i)) {
      return Fail("after the remount byte " + std::to_string(i) + " is " + std::to_string(back[i]) +
                  ", not " + std::to_string(Expected(i)));
    }
  }
  if (udax::Status st = f->Close(); !st.ok()) return Fail("close", st);
  if (udax::Status st = (*fs)->Unmount(); !st.ok()) return Fail("unmount", st);

  auto report = udax::Fsck(image, udax::FsckOptions{.recover = false});
  if (!report.has_value()) return Fail("fsck", report.error());
  if (!report->clean()) return Fail("fsck: " + report->problems.front());
  std::printf("program: %zu bytes written, %zu stored through the mapping, all back after a remount; fsck clean\n",
              kLen, kStoreLen);
  return 0;
}
