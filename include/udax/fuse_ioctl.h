/* udax/fuse_ioctl.h — the ioctls a udax FUSE mount (`udax mount`) answers on
 * any file or directory in it: the failure paths of docs/failure.md for
 * programs outside the library. Only root or the mount's owner may use them
 * (EPERM otherwise). Plain C, so that any program can include it.
 *
 *   UDAX_IOC_REMOVE_DEVICE   the device goes away under the mount, in the
 *                            order of Filesystem::RemoveDevice: new work
 *                            fails at once, work in flight drains, then the
 *                            memory is taken away. Every later request gets
 *                            ENODEV; the mount can then be unmounted, and the
 *                            image keeps every committed change.
 *   UDAX_IOC_INJECT_POISON   a memory failure of device bytes
 *                            [offset, offset+length) (4 KiB aligned), as
 *                            Filesystem::InjectPoison: reads there give EIO,
 *                            the blocks go to the persistent bad-block list.
 */
#ifndef UDAX_FUSE_IOCTL_H
#define UDAX_FUSE_IOCTL_H

#include <linux/ioctl.h>
#include <stdint.h>

struct udax_ioc_range {
  uint64_t offset;
  uint64_t length;
};

#define UDAX_IOC_MAGIC 0xDA
#define UDAX_IOC_REMOVE_DEVICE _IO(UDAX_IOC_MAGIC, 1)
#define UDAX_IOC_INJECT_POISON _IOW(UDAX_IOC_MAGIC, 2, struct udax_ioc_range)

#endif /* UDAX_FUSE_IOCTL_H */
