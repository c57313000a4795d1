// tools/udax/mount_cmd.cc — `udax mount` and `udax umount`: the FUSE mount
// (src/fuse/) from the command line.
//
//   udax mount [-f] [-s] [-d] [-r] [-l FILE] [-o OPT[,OPT...]] DEVICE MOUNTPOINT
//     mounts DEVICE (journal replayed, orphans reclaimed; with -r the journal
//     is replayed in memory only and nothing is written) and serves it on
//     MOUNTPOINT. Without -f it returns once the mount is usable and serves
//     in the background; an error (busy device, damaged image, bad mount
//     point) is printed and exits 1 before that. Once the kernel mount
//     exists it also serves direct clients (Filesystem::Connect; udax/serve.h,
//     docs/shared.md) on a socket named after the mount; if that fails (no
//     socket directory, say) it warns and goes on as a plain FUSE mount.
//     -o revoke_ms=N (default 1000): how long a direct client has to
//     acknowledge a revocation before it is killed; udax's, never passed to
//     libfuse (a bad N is a usage error, exit 2). -s: one request at a time;
//     -d: libfuse's request trace (implies -f); -r (or -o ro): read-only;
//     -o: more libfuse/kernel options (allow_other, ...); -l: the server's
//     messages (errors, libfuse's, sanitizers') are appended to FILE — by
//     default a detached server logs to syslog, a foreground one to stderr.
//   udax umount MOUNTPOINT
//     (direct clients may be connected: the server revokes and disconnects
//     them before it unmounts udax) unmounts and waits (up to kUnmountWait) until the server has unmounted
//     udax cleanly and released the device, so `udax fsck DEVICE` can follow
//     at once. It cannot wait for the device's own flock: a read-only server
//     holds it shared, like every other read-only user of the image. So the
//     server holds an exclusive flock on the mount point's directory (opened
//     before FUSE covers it) until it has unmounted udax, and umount waits
//     for that lock once the kernel mount is gone.
// The server ends on unmount or on SIGINT/SIGTERM/SIGHUP (both end with a
// clean udax unmount). A killed server is a power cut: the next mount
// replays the journal, and nothing that returned is lost.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.h"
#include "udax/fs.h"
#include "udax/fuse.h"
#include "udax/serve.h"

namespace udax::cli {
namespace {

constexpr auto kUnmountWait = std::chrono::seconds(60);
constexpr uint64_t kMaxRevokeMs = 3600 * 1000;  // -o revoke_ms=N: at most an hour

struct MountArgs {
  std::string device, mountpoint;
  bool foreground = false, single = false, debug = false, read_only = false;
  std::string log;
  std::vector<std::string> options;
};

// The server's "still busy with this mount" lock (see the top of the file):
// -1 when the directory cannot be opened or locked (umount then waits for
// nothing; FuseServer::Mount reports a bad mount point).
int LockMountpoint(const std::string& mountpoint) {
  int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    fd = -1;
  }
  return fd;
}

std::string Absolute(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

int RunMount(const MountArgs& args) {
  fusefs::FuseServerOptions fo;
  fo.read_only = args.read_only;
  fo.single_threaded = args.single;
  fo.debug = args.debug;
  fo.fsname = Absolute(args.device);
  AtimeMode atime = AtimeMode::kRelatime;  // Linux's default
  DirectServerOptions direct;
  direct.device = Absolute(args.device);
  const std::string mountpoint = Absolute(args.mountpoint);  // Daemonize changes directory
  for (const std::string& o : args.options) {  // -o a,b -o c
    std::stringstream ss(o);
    for (std::string one; std::getline(ss, one, ',');) {
      if (one == "allow_other") fo.allow_other = true;
      else if (one == "ro") fo.read_only = true;  // as -r
      else if (one == "relatime") atime = AtimeMode::kRelatime;  // udax's: FUSE leaves atime to the server
      else if (one == "strictatime") atime = AtimeMode::kStrictatime;
      else if (one == "noatime") atime = AtimeMode::kNoatime;
      else if (one.rfind("revoke_ms=", 0) == 0) {
        uint64_t ms = 0;
        Status st = ParseNumber(one.substr(10), "revoke_ms", &ms);
        if (st.ok() && (ms == 0 || ms > kMaxRevokeMs))
          st = Status::Error(EINVAL, "revoke_ms must be between 1 and " + std::to_string(kMaxRevokeMs));
        if (!st.ok()) {
          PrintError("mount", st);
          return kUsageExitCode;
        }
        direct.revoke_timeout = std::chrono::milliseconds(ms);
      }
      else if (!one.empty()) fo.extra_options.push_back(one);
    }
  }
  int log_fd = -1;  // opened here, so that an error still reaches the terminal
  if (!args.log.empty()) {
    log_fd = ::open(args.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      PrintError("mount", Status::Error(errno, "log file " + args.log + ": " + std::strerror(errno)));
      return 1;
    }
  }
  MountOptions mo;
  mo.read_only = fo.read_only;
  mo.atime = atime;
  Result<std::unique_ptr<Filesystem>> fs = Filesystem::Mount(args.device, mo);
  if (!fs) {
    PrintError("mount", fs.error());
    return 1;
  }
  // Held (across Daemonize: the child shares it) until udax is unmounted.
  const int mountpoint_lock = LockMountpoint(args.mountpoint);
  Result<std::unique_ptr<fusefs::FuseServer>> server = fusefs::FuseServer::Mount(fs->get(), args.mountpoint, fo);
  if (!server) {
    PrintError("mount", server.error());
    (*fs)->Unmount().IgnoreError();
    if (mountpoint_lock >= 0) ::close(mountpoint_lock);
    return 1;
  }
  if (!args.foreground && !args.debug) {
    Status st = (*server)->Daemonize();
    if (!st.ok()) {
      PrintError("mount", st);
      server->reset();
      (*fs)->Unmount().IgnoreError();
      return 1;
    }
    if (log_fd < 0) fusefs::FuseServer::LogToSyslog();  // stderr is /dev/null now
  }
  if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
  // The direct service starts after Daemonize (its fork keeps no threads)
  // and on a thread of its own: it names its socket after stat(mountpoint),
  // which this process's FUSE loop must answer — so it runs once Serve does.
  std::unique_ptr<DirectServer> direct_server;
  std::thread starter([&] {
    if (auto ds = DirectServer::Start(**fs, mountpoint, direct); ds.has_value()) {
      direct_server = std::move(ds).value();
    } else {
      PrintError("mount: warning: not serving direct clients", ds.error());
    }
  });
  Status served = (*server)->Serve();
  server->reset();  // the kernel mount goes first: no request can arrive after this
  starter.join();   // (a stat still waiting for the loop fails now)
  direct_server.reset();  // every client revoked and disconnected before udax unmounts
  Status unmounted = (*fs)->Unmount();
  if (mountpoint_lock >= 0) ::close(mountpoint_lock);  // udax umount may return now
  if (!served.ok()) PrintError("mount", served);
  if (!unmounted.ok()) PrintError("mount: unmount", unmounted);
  return served.ok() && unmounted.ok() ? 0 : 1;
}

// "\040" escapes of /proc/self/mountinfo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && s.size() - i >= 4) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The device of the udax mount on `mountpoint` (its mountinfo source), or "".
std::string MountedDevice(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    for (std::string w; ls >> w;) f.push_back(w);
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") dash++;
    if (f.size() < 5 || dash + 2 >= f.size()) continue;
    if (Unescape(f[4]) == mountpoint && f[dash + 1] == "fuse.udax") return Unescape(f[dash + 2]);
  }
  return "";
}

int RunUmount(const std::string& arg) {
  std::string mountpoint = Absolute(arg);
  std::string device = MountedDevice(mountpoint);
  if (device.empty()) {
    PrintError("umount", Status::Error(EINVAL, mountpoint + " is not a udax mount"));
    return 1;
  }
  if (Status st = fusefs::UnmountMountpoint(mountpoint, false); !st.ok()) {
    PrintError("umount", st);
    return 1;
  }
  // The server unmounts udax and closes the device after the kernel mount
  // is gone, then lets go of the directory under it (LockMountpoint).
  int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;  // the directory went away: nothing to wait for
  auto deadline = std::chrono::steady_clock::now() + kUnmountWait;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::close(fd);
      PrintError("umount", Status::Error(ETIMEDOUT, "the server still holds " + device));
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::close(fd);  // (releases the lock)
  return 0;
}

}  // namespace

void SetupMount(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MountArgs>();
  CLI::App* sub = app.add_subcommand("mount", "serve the filesystem on DEVICE at MOUNTPOINT through FUSE");
  sub->add_flag("-f,--foreground", args->foreground, "stay in the foreground");
  sub->add_flag("-s,--single-threaded", args->single, "serve one request at a time");
  sub->add_flag("-d,--debug", args->debug, "trace every FUSE request on stderr (implies -f)");
  sub->add_flag("-r,--read-only", args->read_only, "mount read-only");
  sub->add_option("-o", args->options, "more mount options, comma separated (allow_other, ...)");
  sub->add_option("-l,--log", args->log,
                  "append the server's messages to FILE (default: syslog when detached, else stderr)");
  sub->add_option("DEVICE", args->device, "device or image file")->required();
  sub->add_option("MOUNTPOINT", args->mountpoint, "an existing directory")->required();
  sub->callback([args, exit_code] { *exit_code = RunMount(*args); });
}

void SetupUmount(CLI::App& app, int* exit_code) {
  auto mountpoint = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("umount", "unmount a udax FUSE mount and wait until the device is released");
  sub->add_option("MOUNTPOINT", *mountpoint, "where it is mounted")->required();
  sub->callback([mountpoint, exit_code] { *exit_code = RunUmount(*mountpoint); });
}

}  // namespace udax::cli
