"""fsync and fdatasync without a thread: Linux's native AIO (``io_submit``), completions
signalled on an eventfd.

Why: an acks=all produce is answered once its records are synced. Run on the event loop, the
sync stops the loop for the whole system call (a quarter of a millisecond on a quick SSD, far
more on a busy disk); run in a Python thread, its end has to wait for the loop thread to hand
over the GIL (up to ``sys.getswitchinterval()``, 5 ms, while the loop is busy) and costs two
thread switches. An AIO sync (``IOCB_CMD_FDSYNC`` / ``IOCB_CMD_FSYNC``, Linux 4.18 and later)
runs in the kernel's own worker while the loop goes on reading and appending, and its end is
one eventfd the loop already polls.

The kernel keeps its own reference to a file from the submission on, so a descriptor may be
closed right after :meth:`KernelAio.submit` returns (the descriptor budget closes idle files
at any time). Only the standard library's :mod:`ctypes` is used: the system calls have no
wrapper in libc or in :mod:`os`.

Sans event loop: the owner polls :attr:`KernelAio.eventfd` for reading (``loop.add_reader``)
and calls :meth:`KernelAio.completions` when it is readable.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys

# The AIO system call numbers (io_setup, io_destroy, io_submit, io_getevents) by machine.
_SYSCALLS = {
    "x86_64": (206, 207, 209, 208),
    "aarch64": (0, 1, 2, 4),
}
_IOCB_CMD_FSYNC = 2
_IOCB_CMD_FDSYNC = 3
_IOCB_FLAG_RESFD = 1  # signal completion on aio_resfd (an eventfd)


class _Iocb(ctypes.Structure):
    # struct iocb of <linux/aio_abi.h>, little-endian (aio_key before aio_rw_flags)
    _fields_ = [
        ("aio_data", ctypes.c_uint64),
        ("aio_key", ctypes.c_uint32),
        ("aio_rw_flags", ctypes.c_int32),
        ("aio_lio_opcode", ctypes.c_uint16),
        ("aio_reqprio", ctypes.c_int16),
        ("aio_fildes", ctypes.c_uint32),
        ("aio_buf", ctypes.c_uint64),
        ("aio_nbytes", ctypes.c_uint64),
        ("aio_offset", ctypes.c_int64),
        ("aio_reserved2", ctypes.c_uint64),
        ("aio_flags", ctypes.c_uint32),
        ("aio_resfd", ctypes.c_uint32),
    ]


class _IoEvent(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_uint64),
        ("obj", ctypes.c_uint64),
        ("res", ctypes.c_int64),
        ("res2", ctypes.c_int64),
    ]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class KernelAio:
    """One AIO context with room for ``capacity`` syncs in flight; see the module doc."""

    def __init__(self, capacity: int, syscalls: tuple[int, int, int, int], libc):
        self.capacity = capacity
        self._setup, self._destroy, self._submit, self._getevents = syscalls
        self._syscall = libc.syscall
        self._context = ctypes.c_ulong(0)
        if self._syscall(self._setup, ctypes.c_long(capacity), ctypes.byref(self._context)) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"io_setup: {os.strerror(code)}")
        try:
            self.eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except OSError:
            self._syscall(self._destroy, self._context)
            raise
        self._in_flight: dict[int, tuple[_Iocb, object]] = {}  # id -> (its iocb, kept alive; token)
        self._next_id = 0
        self._events = (_IoEvent * capacity)()
        self._no_wait = _Timespec(0, 0)

    @classmethod
    def open(cls, capacity: int) -> "KernelAio | None":
        """A context, or None where there is none: not Linux, a machine whose system call
        numbers are not known here, or AIO refused (``fs.aio-max-nr`` reached, a seccomp
        filter)."""
        if not sys.platform.startswith("linux") or not hasattr(os, "eventfd"):
            return None
        syscalls = _SYSCALLS.get(platform.machine())
        if syscalls is None:
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            return cls(capacity, syscalls, libc)
        except (OSError, AttributeError):
            return None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def submit(self, fd: int, data_only: bool, token) -> None:
        """Start an fdatasync (``data_only``) or fsync of ``fd``; its end comes back from
        :meth:`completions` with ``token``. Raises OSError when the kernel refuses it (EINVAL
        where it has no AIO fsync, EAGAIN when ``capacity`` syncs are in flight)."""
        iocb = _Iocb()
        ident = self._next_id
        self._next_id = ident + 1
        iocb.aio_data = ident
        iocb.aio_lio_opcode = _IOCB_CMD_FDSYNC if data_only else _IOCB_CMD_FSYNC
        iocb.aio_fildes = fd
        iocb.aio_flags = _IOCB_FLAG_RESFD
        iocb.aio_resfd = self.eventfd
        pointers = (ctypes.POINTER(_Iocb) * 1)(ctypes.pointer(iocb))
        submitted = self._syscall(self._submit, self._context, ctypes.c_long(1), pointers)
        if submitted != 1:
            code = ctypes.get_errno() if submitted < 0 else errno.EAGAIN
            raise OSError(code, f"io_submit: {os.strerror(code)}")
        self._in_flight[ident] = (iocb, token)

    def completions(self, wait: bool = False) -> list[tuple[object, int]]:
        """The syncs that ended since the last call: (token, 0 or the errno it failed with);
        with ``wait``, every sync in flight, once it has ended."""
        try:
            os.eventfd_read(self.eventfd)
        except BlockingIOError:
            pass
        ended = []
        while self._in_flight:
            at_least = min(len(self._in_flight), self.capacity) if wait else 0
            count = self._syscall(self._getevents, self._context, ctypes.c_long(at_least), ctypes.c_long(self.capacity),
                                  self._events, None if wait else ctypes.byref(self._no_wait))
            if count < 0:
                code = ctypes.get_errno()
                if code == errno.EINTR:
                    continue
                raise OSError(code, f"io_getevents: {os.strerror(code)}")
            for event in self._events[:count]:
                _, token = self._in_flight.pop(event.data)
                ended.append((token, -event.res if event.res < 0 else 0))
            if count < self.capacity and not wait:
                break
        return ended

    def close(self) -> None:
        """Wait for the syncs in flight (the kernel's io_destroy does), then free the context."""
        if self._context.value:
            self._syscall(self._destroy, self._context)
            self._context = ctypes.c_ulong(0)
            self._in_flight.clear()
            os.close(self.eventfd)
