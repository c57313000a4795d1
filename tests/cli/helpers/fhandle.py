#!/usr/bin/env python3
"""fhandle.py — name_to_handle_at / open_by_handle_at for the CLI tests.

  fhandle.py save PATH HANDLEFILE   writes PATH's file handle to HANDLEFILE
  fhandle.py open MOUNTDIR HANDLEFILE   opens the handle on the mount of
      MOUNTDIR and prints the inode number it names (or the errno name, exit 1)
"""
import ctypes
import errno
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
MAX_HANDLE_SZ = 128
AT_FDCWD = -100


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * MAX_HANDLE_SZ)]


def save(path, out):
    fh = FileHandle(MAX_HANDLE_SZ, 0)
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(AT_FDCWD, path.encode(), ctypes.byref(fh), ctypes.byref(mount_id), 0) != 0:
        e = ctypes.get_errno()
        print(errno.errorcode[e])
        return 1
    with open(out, "wb") as f:
        f.write(bytes(fh)[:8 + fh.handle_bytes])
    return 0


def open_handle(mountdir, path):
    raw = open(path, "rb").read()
    fh = FileHandle.from_buffer_copy(raw + bytes(ctypes.sizeof(FileHandle) - len(raw)))
    mfd = os.open(mountdir, os.O_RDONLY | os.O_DIRECTORY)
    fd = libc.open_by_handle_at(mfd, ctypes.byref(fh), os.O_RDONLY)
    if fd < 0:
        print(errno.errorcode[ctypes.get_errno()])
        return 1
    print(os.fstat(fd).st_ino)
    os.close(fd)
    return 0


if __name__ == "__main__":
    cmd, a, b = sys.argv[1:4]
    sys.exit(save(a, b) if cmd == "save" else open_handle(a, b))
