// share/rendezvous.cc — socket paths from a mount point, the listening socket
// (stale-socket replacement), and connecting to it.
#include "share/rendezvous.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "share/sys_error.h"

namespace udax::share {

namespace {

// A sockaddr_un for `path`, or ENAMETOOLONG.
Result<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(a.sun_path))
    return Errno(ENAMETOOLONG, "socket path '" + path + "' is empty or longer than " +
                                   std::to_string(sizeof(a.sun_path) - 1) + " bytes");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// `dir` exists (created with `mode` if missing), is a directory owned by this
// euid, and nobody else may write it.
Status EnsurePrivateDir(const std::string& dir, mode_t mode) {
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return SysError("mkdir " + dir);
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) return SysError("stat " + dir);
  if (!S_ISDIR(st.st_mode)) return Errno(ENOTDIR, dir + " is not a directory");
  if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return Errno(EACCES, dir + " must be owned by uid " + std::to_string(::geteuid()) +
                             " and writable by nobody else");
  return Status::Ok();
}

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

}  // namespace

std::string SocketName(dev_t mount_dev) {
  return std::to_string(static_cast<unsigned long long>(mount_dev)) + ".sock";
}

Result<std::string> ServerSocketDir() {
  const bool root = ::geteuid() == 0;
  std::string dir;
  if (const char* o = Env("UDAX_SHARE_DIR")) {
    dir = o;
  } else if (root) {
    dir = "/run/udax";
  } else if (const char* x = Env("XDG_RUNTIME_DIR")) {
    dir = std::string(x) + "/udax";
  } else {
    return Errno(ENOENT, "no directory for the client socket: run as root, or set "
                         "XDG_RUNTIME_DIR (or UDAX_SHARE_DIR)");
  }
  RETURN_IF_ERROR(EnsurePrivateDir(dir, root ? 0755 : 0700));
  return dir;
}

std::vector<std::string> ClientSocketDirs() {
  std::vector<std::string> dirs;
  if (const char* o = Env("UDAX_SHARE_DIR")) dirs.push_back(o);
  if (const char* x = Env("XDG_RUNTIME_DIR")) dirs.push_back(std::string(x) + "/udax");
  dirs.push_back("/run/udax");
  return dirs;
}

Result<std::string> ServerSocketPath(const std::string& mountpoint) {
  struct stat st{};
  if (::stat(mountpoint.c_str(), &st) != 0) return SysError("stat " + mountpoint);
  ASSIGN_OR_RETURN(std::string dir, ServerSocketDir());
  return dir + "/" + SocketName(st.st_dev);
}

Result<std::string> FindSocket(const std::string& mountpoint) {
  struct stat st{};
  if (::stat(mountpoint.c_str(), &st) != 0) return SysError("stat " + mountpoint);
  std::string looked;
  for (const std::string& dir : ClientSocketDirs()) {
    std::string path = dir + "/" + SocketName(st.st_dev);
    struct stat s{};
    if (::lstat(path.c_str(), &s) == 0 && S_ISSOCK(s.st_mode)) return path;
    looked += (looked.empty() ? "" : ", ") + path;
  }
  return Errno(ENOTCONN, "no udax mount serves direct clients at " + mountpoint +
                             " (looked for " + looked + ")");
}

Result<Listener> Listener::Create(const std::string& path) {
  ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(path));
  Listener l;
  l.fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!l.fd_.valid()) return SysError("socket");
  auto bind_it = [&] {
    return ::bind(l.fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  };
  if (bind_it() != 0) {
    if (errno != EADDRINUSE) return SysError("bind " + path);
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) return SysError("stat " + path);
    if (!S_ISSOCK(st.st_mode)) return Errno(EEXIST, path + " exists and is not a socket");
    auto probe = ConnectUnix(path);
    if (probe.has_value()) return Errno(EADDRINUSE, "a udax mount already serves at " + path);
    if (probe.error().err() != ENOTCONN) return probe.error();
    // Stale: its mount died without removing it.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return SysError("unlink stale " + path);
    if (bind_it() != 0) return SysError("bind " + path);
  }
  l.path_ = path;  // from here on the destructor removes it
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return SysError("stat " + path);
  l.dev_ = st.st_dev;
  l.ino_ = st.st_ino;
  // Anyone may connect; admission is by the peer's credentials (admission.h).
  if (::chmod(path.c_str(), 0666) != 0) return SysError("chmod " + path);
  if (::listen(l.fd_.get(), 64) != 0) return SysError("listen " + path);
  return l;
}

Listener::Listener(Listener&& o) noexcept
    : fd_(std::move(o.fd_)), path_(std::move(o.path_)), dev_(o.dev_), ino_(o.ino_) {
  o.path_.clear();
}

Listener& Listener::operator=(Listener&& o) noexcept {
  if (this != &o) {
    Unlink();
    fd_ = std::move(o.fd_);
    path_ = std::move(o.path_);
    o.path_.clear();
    dev_ = o.dev_;
    ino_ = o.ino_;
  }
  return *this;
}

Listener::~Listener() { Unlink(); }

void Listener::Unlink() {
  if (path_.empty()) return;
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    ::unlink(path_.c_str());
  path_.clear();
}

Result<UniqueFd> ConnectUnix(const std::string& path) {
  ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return SysError("socket");
  int r;
  do {
    r = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED)
      return Errno(ENOTCONN, "no udax mount serves at " + path + " (" + std::strerror(errno) + ")");
    return SysError("connect " + path);
  }
  return fd;
}

}  // namespace udax::share
