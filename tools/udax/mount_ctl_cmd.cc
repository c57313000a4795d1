// tools/udax/mount_ctl_cmd.cc — `udax remove MOUNTPOINT` and
// `udax poison MOUNTPOINT DEVOFF LEN`: the failure paths of a FUSE-mounted
// udax (docs/failure.md, docs/fuse.md), through the ioctls of
// udax/fuse_ioctl.h on the mount's root directory. Root or the mount's owner.
//
//   remove   the device goes away under the mount (as an unbind would):
//            every later request fails with ENODEV, `udax umount` works, and
//            the image keeps every committed change.
//   poison   a memory failure of device bytes [DEVOFF, +LEN) (4 KiB aligned):
//            reads there give EIO; the blocks are listed as bad for good.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.h"
#include "udax/fuse_ioctl.h"

namespace udax::cli {
namespace {

// Sends `cmd` to the udax mount on `mountpoint`.
int SendIoctl(const char* ctx, const std::string& mountpoint, unsigned long cmd, void* arg) {
  int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    PrintError(ctx, Status::Error(errno, mountpoint + ": " + std::strerror(errno)));
    return 1;
  }
  int rc = ::ioctl(fd, cmd, arg);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    std::string why = err == ENOTTY ? "not a udax mount" : std::strerror(err);
    PrintError(ctx, Status::Error(err, mountpoint + ": " + why));
    return 1;
  }
  return 0;
}

}  // namespace

void SetupRemove(CLI::App& app, int* exit_code) {
  auto mountpoint = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "remove", "remove the device under a udax FUSE mount: later requests fail with ENODEV");
  sub->add_option("MOUNTPOINT", *mountpoint, "where it is mounted")->required();
  sub->callback([mountpoint, exit_code] {
    *exit_code = SendIoctl("remove", *mountpoint, UDAX_IOC_REMOVE_DEVICE, nullptr);
  });
}

void SetupPoison(CLI::App& app, int* exit_code) {
  struct Args {
    std::string mountpoint, offset, length;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "poison", "inject a memory failure of device bytes [DEVOFF, +LEN) under a udax FUSE mount");
  sub->add_option("MOUNTPOINT", args->mountpoint, "where it is mounted")->required();
  sub->add_option("DEVOFF", args->offset, "device offset (bytes, 4 KiB aligned; k/m/g, 0x)")->required();
  sub->add_option("LEN", args->length, "length (bytes, 4 KiB aligned)")->required();
  sub->callback([args, exit_code] {
    udax_ioc_range r{};
    Status st = ParseNumber(args->offset, "offset", &r.offset);
    if (st.ok()) st = ParseNumber(args->length, "length", &r.length);
    if (!st.ok()) {
      PrintError("poison", st);
      *exit_code = 1;
      return;
    }
    *exit_code = SendIoctl("poison", args->mountpoint, UDAX_IOC_INJECT_POISON, &r);
  });
}

}  // namespace udax::cli
