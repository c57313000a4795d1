// tests/helpers/test_client.cc — a separate process for the process-level
// tests of direct clients (tests/client_process_test.cc). Public API only.
//
//   udax_test_client load MOUNTPOINT DIR SEED
//     Connects as a direct client, makes DIR, writes and maps DIR/f9 (kept
//     mapped and touched), prints "R", then runs the mixed load of
//     tests/helpers/load_model.h forever, one report line per operation on
//     stdout. When a call fails with ENOTCONN (the mount is gone) it checks
//     what a client must see then — the mapping revoked (Guarded access
//     fails, the callback heard Removed), later calls ENOTCONN — prints
//     "X ok" (revoked when the call failed), "X late" (revoked only
//     after) or "X bad WHY", and exits 0. Any other failure: exit 3.
//
//   udax_test_client serve DEVICE MOUNTPOINT REVOKE_MS
//     Mounts DEVICE, serves it to direct clients at MOUNTPOINT (a plain
//     directory will do), prints "serving", and stops, unmounts and exits 0
//     at EOF on stdin.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "load_model.h"
#include "udax/fs.h"
#include "udax/mapping.h"
#include "udax/serve.h"

namespace {

using namespace udax;
using namespace udax::loadtest;

void Say(const std::string& line) {
  // One write: a line is whole or absent when the process is killed.
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDOUT_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::_Exit(4);
    done += static_cast<size_t>(n);
  }
}

Status Do(Filesystem& fs, const std::string& dir, const Op& op, const Files& files) {
  std::string path = FileName(dir, op.file);
  if (op.kind == "create") {
    auto f = fs.Open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    return f ? f->Close() : f.error();
  }
  if (op.kind == "write") {
    auto f = fs.Open(path, O_RDWR);
    if (!f) return f.error();
    auto data = Payload(op.seed, op.len);
    auto n = f->Pwrite(data.data(), data.size(), op.off);
    if (!n) return n.error();
    if (*n != data.size()) return Status::Error(EIO, "short write");
    return f->Close();
  }
  if (op.kind == "append") {
    auto f = fs.Open(path, O_WRONLY | O_APPEND);
    if (!f) return f.error();
    auto data = Payload(op.seed, op.len);
    auto n = f->Write(data.data(), data.size());
    if (!n) return n.error();
    if (*n != data.size()) return Status::Error(EIO, "short append");
    return f->Close();
  }
  if (op.kind == "trunc") return fs.Truncate(path, op.len);
  if (op.kind == "unlink") return fs.Unlink(path);
  if (op.kind == "clone") {
    auto d = fs.Open(path, O_RDWR);
    if (!d) return d.error();
    auto s = fs.Open(FileName(dir, op.src), O_RDONLY);
    if (!s) return s.error();
    Status st = d->Clone(*s);
    if (!st.ok()) return st;
    st = s->Close();
    return st.ok() ? d->Close() : st;
  }
  if (op.kind == "mstore") {
    auto f = fs.Open(path, O_RDWR);
    if (!f) return f.error();
    size_t size = files.at(op.file).size();
    auto m = f->Map(0, size, Prot::kReadWrite);
    if (!m) return m.error();
    auto data = Payload(op.seed, op.len);
    Status st = Guarded([&] { std::memcpy(m->data() + op.off, data.data(), data.size()); });
    if (!st.ok()) return st;
    st = m->Persist(m->data() + op.off, data.size());
    if (!st.ok()) return st;
    st = m->Unmap();
    return st.ok() ? f->Close() : st;
  }
  return Status::Error(EINVAL, "unknown op " + op.kind);
}

// The mount is gone: what the client must see now. "ok" when the held
// mapping was already revoked (its callback heard Removed) as the call
// failed; "late" when that came only after (within 2 s); "bad WHY" else.
std::string CheckDisconnected(Filesystem& fs, Mapping& held, const std::atomic<bool>& heard_removed) {
  auto revoked = [&] {
    Status touch = Guarded([&] {
      volatile uint8_t v = held.data()[0];
      (void)v;
    });
    return !touch.ok() && heard_removed.load();
  };
  std::string verdict = "ok";
  if (!revoked()) {
    verdict = "late";
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!revoked()) {
      if (std::chrono::steady_clock::now() > give_up)
        return heard_removed.load() ? "bad the held mapping can still be read"
                                    : "bad the held mapping's callback did not hear Removed";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  auto st = fs.GetStat("/");
  if (st) return "bad stat succeeds";
  if (st.error().err() != ENOTCONN) return "bad stat: " + st.error().ToString();
  return verdict;
}

int Load(const std::string& mountpoint, const std::string& dir, uint64_t seed) {
  auto c = Filesystem::Connect(mountpoint);
  if (!c) {
    std::fprintf(stderr, "connect: %s\n", c.error().ToString().c_str());
    return 2;
  }
  Filesystem& fs = **c;
  Status st = fs.Mkdir(dir);
  if (!st.ok()) {
    std::fprintf(stderr, "mkdir: %s\n", st.ToString().c_str());
    return 2;
  }
  Files files;
  uint64_t seed_base = seed * 1000003;
  uint64_t no = 0;
  // f9: written and kept mapped (touched) all along.
  Op held_ops[2];
  held_ops[0].kind = "create";
  held_ops[1].kind = "write";
  held_ops[1].len = kHeldBytes;
  for (Op& op : held_ops) {
    op.no = no++;
    op.file = kHeldFile;
    op.seed = seed_base + op.no;
    Say(op.Line());
    st = Do(fs, dir, op, files);
    if (!st.ok()) {
      std::fprintf(stderr, "f9: %s\n", st.ToString().c_str());
      return 2;
    }
    Apply(op, files);
    Say("D " + std::to_string(op.no) + "\n");
  }
  auto hf = fs.Open(FileName(dir, kHeldFile), O_RDONLY);
  if (!hf) return 2;
  auto held = hf->Map(0, kHeldBytes, Prot::kRead);
  if (!held) {
    std::fprintf(stderr, "map f9: %s\n", held.error().ToString().c_str());
    return 2;
  }
  std::atomic<bool> heard_removed{false};
  held->OnInvalidate([&](uint64_t, uint64_t, uint64_t, InvalidateReason why) {
    if (why == InvalidateReason::kRemoved) heard_removed = true;
  });
  if (held->data()[kHeldBytes - 1] != Payload(seed_base + 1, kHeldBytes)[kHeldBytes - 1]) {
    std::fprintf(stderr, "f9 reads wrong through its mapping\n");
    return 2;
  }
  Say("R\n");

  Generator gen(seed);
  for (;;) {
    Op op = gen.Pick(files, no++, seed_base);
    Say(op.Line());
    st = Do(fs, dir, op, files);
    if (st.ok()) {
      Apply(op, files);
      Say("D " + std::to_string(op.no) + "\n");
      continue;
    }
    Say("E " + std::to_string(op.no) + " " + ErrnoName(st.err()) + "\n");
    if (st.err() != ENOTCONN) {
      std::fprintf(stderr, "%s: %s\n", op.kind.c_str(), st.ToString().c_str());
      return 3;
    }
    Say("X " + CheckDisconnected(fs, *held, heard_removed) + "\n");
    held->Unmap().IgnoreError();
    hf->Close().IgnoreError();
    fs.Unmount().IgnoreError();
    return 0;
  }
}

int Serve(const std::string& device, const std::string& mountpoint, int revoke_ms) {
  auto m = Filesystem::Mount(device);
  if (!m) {
    std::fprintf(stderr, "mount: %s\n", m.error().ToString().c_str());
    return 2;
  }
  DirectServerOptions o;
  o.device = device;
  o.revoke_timeout = std::chrono::milliseconds(revoke_ms);
  auto s = DirectServer::Start(**m, mountpoint, o);
  if (!s) {
    std::fprintf(stderr, "serve: %s\n", s.error().ToString().c_str());
    return 2;
  }
  Say("serving\n");
  char buf[256];
  while (::read(STDIN_FILENO, buf, sizeof buf) > 0) {
  }
  (*s)->Stop();
  s->reset();
  Status st = (*m)->Unmount();
  if (!st.ok()) {
    std::fprintf(stderr, "unmount: %s\n", st.ToString().c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "load" && argc == 5) return Load(argv[2], argv[3], std::strtoull(argv[4], nullptr, 10));
  if (mode == "serve" && argc == 5) return Serve(argv[2], argv[3], std::atoi(argv[4]));
  std::fprintf(stderr,
               "usage: udax_test_client load MOUNTPOINT DIR SEED\n"
               "       udax_test_client serve DEVICE MOUNTPOINT REVOKE_MS\n");
  return 64;
}
