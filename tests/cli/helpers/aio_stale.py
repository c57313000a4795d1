#!/usr/bin/env python3
"""aio_stale.py FILE ROUNDS — buffered readers against asynchronous O_DIRECT
writers (io_submit, raw system calls through ctypes: no libaio needed).

Round r writes every page of FILE with the byte r through io_submit; once
io_getevents has reported all of them, the round is complete. Reader threads
keep reading pages through a buffered descriptor; a read that starts after
round r completed must see r or a later round, never an older byte. Prints
"ok ROUNDS READS" or "stale: ..." (exit 1).
"""
import ctypes
import mmap
import os
import sys
import threading

PAGES = 32
PAGE = 4096
IOCB_CMD_PWRITE = 1
NR_IO_SETUP, NR_IO_DESTROY, NR_IO_GETEVENTS, NR_IO_SUBMIT = 206, 207, 208, 209
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class Iocb(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("key", ctypes.c_uint32), ("rw_flags", ctypes.c_int32),
                ("opcode", ctypes.c_uint16), ("reqprio", ctypes.c_int16), ("fildes", ctypes.c_uint32),
                ("buf", ctypes.c_uint64), ("nbytes", ctypes.c_uint64), ("offset", ctypes.c_int64),
                ("reserved2", ctypes.c_uint64), ("flags", ctypes.c_uint32), ("resfd", ctypes.c_uint32)]


class IoEvent(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("obj", ctypes.c_uint64), ("res", ctypes.c_int64),
                ("res2", ctypes.c_int64)]


def check(rc, what):
    if rc < 0:
        raise OSError(ctypes.get_errno(), what)
    return rc


def main(path, rounds):
    rounds = min(rounds, 255)  # a round's byte is its number
    with open(path, "wb") as f:
        f.write(bytes(PAGES * PAGE))
    dfd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    ctx = ctypes.c_ulong(0)
    check(libc.syscall(NR_IO_SETUP, PAGES, ctypes.byref(ctx)), "io_setup")
    bufs = [mmap.mmap(-1, PAGE) for _ in range(PAGES)]  # page-aligned, as O_DIRECT wants
    addrs = [ctypes.addressof(ctypes.c_char.from_buffer(b)) for b in bufs]
    completed = [0]
    stop = threading.Event()
    bad = []
    reads = [0]

    def reader(seed):
        fd = os.open(path, os.O_RDONLY)
        page = seed
        while not stop.is_set() and not bad:
            page = (page * 7 + 3) % PAGES
            floor = completed[0]
            got = os.pread(fd, PAGE, page * PAGE)
            reads[0] += 1
            low = min(got)
            if low < floor:
                bad.append(f"stale: page {page} read byte {low} after round {floor} completed")
        os.close(fd)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        for r in range(1, rounds + 1):
            iocbs = (Iocb * PAGES)()
            ptrs = (ctypes.POINTER(Iocb) * PAGES)()
            for p in range(PAGES):
                bufs[p].seek(0)
                bufs[p].write(bytes([r]) * PAGE)
                iocbs[p] = Iocb(data=p, opcode=IOCB_CMD_PWRITE, fildes=dfd, buf=addrs[p], nbytes=PAGE,
                                offset=p * PAGE)
                ptrs[p] = ctypes.pointer(iocbs[p])
            check(libc.syscall(NR_IO_SUBMIT, ctx, PAGES, ptrs), "io_submit")
            events = (IoEvent * PAGES)()
            done = 0
            while done < PAGES:
                n = check(libc.syscall(NR_IO_GETEVENTS, ctx, 1, PAGES - done, events, None), "io_getevents")
                for e in events[:n]:
                    if e.res != PAGE:
                        raise OSError(-e.res if e.res < 0 else 0, f"async write of page {e.data}: {e.res}")
                done += n
            completed[0] = r
            if bad:
                break
    finally:
        stop.set()
        for t in threads:
            t.join()
        libc.syscall(NR_IO_DESTROY, ctx)
        os.close(dfd)
    if bad:
        print(bad[0])
        return 1
    print(f"ok {rounds} {reads[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
