// fuse/fuse_server.cc — FuseServer: the libfuse3 session of a udax FUSE
// mount (fuse_new, fuse_mount, the request loop, unmount). See udax/fuse.h.
#include "udax/fuse.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <spawn.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "fuse/fuse_ops.h"
#include "udax/fs.h"

extern char** environ;

namespace udax::fusefs {

struct FuseServer::Context {
  FuseContext fuse;
};

namespace {
// The -o list libfuse gets: the kernel does permission checks against the
// stored modes; the device names the mount in /proc/mounts.
std::string MountOptionString(const FuseServerOptions& o) {
  std::string s = "default_permissions,subtype=udax";
  if (!o.fsname.empty()) {
    std::string name;
    for (char c : o.fsname) {  // libfuse's option syntax: ',' and '\' are escaped
      if (c == ',' || c == '\\') name += '\\';
      name += c;
    }
    s += ",fsname=" + name;
  }
  if (o.read_only) s += ",ro";
  if (o.allow_other) s += ",allow_other";
  if (o.debug) s += ",debug";
  for (const std::string& e : o.extra_options) s += "," + e;
  return s;
}
}  // namespace

Result<std::unique_ptr<FuseServer>> FuseServer::Mount(Filesystem* fs, const std::string& mountpoint,
                                                      const FuseServerOptions& opts) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0)
    return Errno(errno, "mount point " + mountpoint + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return Errno(ENOTDIR, "mount point " + mountpoint + " is not a directory");

  auto ctx = std::make_unique<Context>();
  ctx->fuse.fs = fs;
  Result<Stat> root = fs->GetLstat("/");
  if (!root) return root.error();
  ctx->fuse.root_ino = root->ino;
  // FUSE names the root FUSE_ROOT_ID; another inode of that number could
  // not be told from it (mkfs gives the root that number).
  if (root->ino != FUSE_ROOT_ID && fs->GetLstat(PathAt(FUSE_ROOT_ID, std::string_view())).has_value())
    return Errno(EUCLEAN, "inode " + std::to_string(FUSE_ROOT_ID) + " is not the root: cannot serve it over FUSE");
  ctx->fuse.single_threaded = opts.single_threaded;
  ctx->fuse.owner_uid = opts.owner_uid.value_or(geteuid());
  ctx->fuse.owner_gid = opts.owner_gid.value_or(getegid());
  std::unique_ptr<FuseServer> server(new FuseServer(std::move(ctx), mountpoint, opts.single_threaded));

  std::string options = MountOptionString(opts);
  const char* argv[] = {"udax", "-o", options.c_str(), nullptr};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  const fuse_lowlevel_ops& ops = UdaxOperations();
  server->se_ = fuse_session_new(&args, &ops, sizeof ops, &server->ctx_->fuse);
  fuse_opt_free_args(&args);
  if (!server->se_) return Errno(EINVAL, "libfuse refused the mount options: " + options);
  server->ctx_->fuse.se = server->se_;
  if (fuse_session_mount(server->se_, mountpoint.c_str()) != 0)
    return Errno(EPERM, "cannot mount FUSE on " + mountpoint + " (is /dev/fuse usable? fusermount3 installed?)");
  server->mounted_ = true;
  return server;
}

FuseServer::FuseServer(std::unique_ptr<Context> ctx, std::string mountpoint, bool single_threaded)
    : ctx_(std::move(ctx)), mountpoint_(std::move(mountpoint)), single_threaded_(single_threaded) {}

FuseServer::~FuseServer() {
  Unmount();
  if (se_) fuse_session_destroy(se_);
}

Status FuseServer::Daemonize() {
  if (fuse_daemonize(0) != 0) return Errno(ECHILD, "cannot detach the FUSE server into the background");
  return Status::Ok();
}

void FuseServer::LogToSyslog() {
  openlog("udax", LOG_PID, LOG_DAEMON);
  fuse_set_log_func([](fuse_log_level level, const char* fmt, va_list ap) {
    vsyslog(static_cast<int>(level), fmt, ap);  // fuse_log_level follows syslog's levels
  });
}

Status FuseServer::Serve() {
  if (fuse_set_signal_handlers(se_) != 0) return Errno(EINVAL, "cannot install signal handlers");
  int res;
  if (single_threaded_) {
    res = fuse_session_loop(se_);
  } else {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    res = fuse_session_loop_mt(se_, cfg);
    fuse_loop_cfg_destroy(cfg);
  }
  fuse_remove_signal_handlers(se_);
  CloseAllHandles(&ctx_->fuse);  // the loop is over: no request can use them
  if (res < 0) return Errno(-res, std::string("FUSE session failed: ") + std::strerror(-res));
  return Status::Ok();  // unmounted, or a termination signal (res > 0)
}

void FuseServer::Stop() {
  fuse_session_exit(se_);
  // The loop's threads wait in read(2) on /dev/fuse; taking the mount away
  // ends those reads.
  UnmountMountpoint(mountpoint_, true).IgnoreError();
}

Status UnmountMountpoint(const std::string& mountpoint, bool lazy) {
  if (::umount2(mountpoint.c_str(), lazy ? MNT_DETACH : 0) == 0) return Status::Ok();
  int err = errno;
  if (err == EBUSY) return Errno(EBUSY, mountpoint + " is busy (a file is open or a process is in it)");
  if (err == EINVAL) return Errno(EINVAL, mountpoint + " is not mounted");
  // Not root: the setuid helper may unmount what this user mounted.
  std::vector<const char*> argv = {"fusermount3", "-u", "-q"};
  if (lazy) argv.push_back("-z");
  argv.push_back(mountpoint.c_str());
  argv.push_back(nullptr);
  pid_t pid;
  int status = 1;
  if (posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char**>(argv.data()), environ) != 0 ||
      ::waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Errno(err, "cannot unmount " + mountpoint + ": " + std::strerror(err));
  return Status::Ok();
}

void FuseServer::Unmount() {
  if (!mounted_) return;
  fuse_session_unmount(se_);
  mounted_ = false;
}

}  // namespace udax::fusefs
