// share/rendezvous.h — how a direct client finds the mount from the mount
// point alone, and the listening Unix socket the mount serves on.
//
// The socket is `<dir>/<st_dev>.sock`, where st_dev is what stat(mountpoint)
// returns for the mounted filesystem (the FUSE mount's anonymous device number,
// unique while the mount lives) and <dir> is, in order:
//   $UDAX_SHARE_DIR (tests, unusual setups), then
//   /run/udax when the mount runs as root, else $XDG_RUNTIME_DIR/udax.
// A client looks in $UDAX_SHARE_DIR, $XDG_RUNTIME_DIR/udax, then /run/udax,
// and takes the first socket of that name it finds. See docs/shared.md.
//
// Invariants:
//  * Listener::Create never removes anything but a socket nobody listens on
//    (connect() says ECONNREFUSED): a live mount's socket gives EADDRINUSE, a
//    file of another type EEXIST;
//  * the directory it creates or accepts is owned by this euid and writable by
//    no one else (no other user can plant or swap a socket in it);
//  * a Listener unlinks its path on destruction only while the path is still
//    the socket it bound (same device and inode), never a successor's.
// Thread safety: a Listener is used by one thread at a time; the functions are
// thread-safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "share/fd.h"
#include "udax/status.h"

namespace udax::share {

// "<st_dev>.sock".
std::string SocketName(dev_t mount_dev);

// The directory a mount running as this euid serves in (created 0755 for
// root, 0700 otherwise, when missing).
Result<std::string> ServerSocketDir();
// The directories a client looks in, in order.
std::vector<std::string> ClientSocketDirs();

// The socket path a mount uses for the filesystem mounted at `mountpoint`
// (stat()ed now: call it after the mount is established).
Result<std::string> ServerSocketPath(const std::string& mountpoint);
// The socket of the mount at `mountpoint`, or ENOTCONN when none of the
// client's directories holds one ("not a udax mount, or it serves no clients").
Result<std::string> FindSocket(const std::string& mountpoint);

class Listener {
 public:
  // Binds and listens on `path`, replacing a stale socket (see above).
  static Result<Listener> Create(const std::string& path);

  Listener() = default;
  Listener(Listener&&) noexcept;
  Listener& operator=(Listener&&) noexcept;
  ~Listener();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  void Unlink();
  UniqueFd fd_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// Connects a stream socket to `path` (close-on-exec). ENOTCONN when no mount
// listens there (no such socket, or a stale one).
Result<UniqueFd> ConnectUnix(const std::string& path);

}  // namespace udax::share
