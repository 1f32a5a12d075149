"""The file operations the storage engine needs, behind one small interface, with two backends.

* :class:`OsFileSystem` — real files (the default). Writes and reads are positional
  (``os.pwrite``/``os.pread``), so a file's seek position means nothing to us and the server
  can read a region of a file (``os.preadv`` on its ``fileno()``) while we keep appending to it.
  Its files hold descriptors only within a :class:`DescriptorBudget` (least recently used ones
  closed, reopened on their next use), so the number of partitions is not capped by the
  process's open-files limit.
* :class:`MemoryFileSystem` — the in-memory backend: the same partition-log code runs on it with
  no files at all (fast tests), and it can simulate what the OS cannot be made to do on demand:
  a crash that loses everything not fsynced (:meth:`MemoryFileSystem.crash`) and a full disk
  (``space_limit``).

Paths are plain strings joined with ``/``; the memory backend never touches the OS.

Thread safety: none; each file system is used from the broker's event loop (or from a test).
The one exception are sync targets (``sync_target()`` of a file, :meth:`OsFileSystem.dir_sync_target`):
made on the owner's thread, their ``fsync``/``close`` may run in another thread (the broker
fsyncs there so that its event loop keeps serving requests), and ``settle`` runs back on the
owner's thread once the fsync succeeded. A file's sync target opens the file by its path in
that thread (so a queue of flushes holds no descriptors).
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import resource
import shutil
import threading
import weakref
from collections import OrderedDict


def soft_open_files_limit() -> int | None:
    """The process's soft ``RLIMIT_NOFILE`` (None where it is unlimited or unknown)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - platforms without the limit
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def default_descriptor_budget(limit: int | None = None) -> int:
    """How many segment and index files the storage engine keeps open at once: the process's
    open-files limit less what it leaves for the rest (client sockets, checkpoint and metadata
    files written now and then, the sync threads' short-lived descriptors, Python's own):
    a quarter of the limit, at least ``MIN_DESCRIPTOR_RESERVE``. Never below
    ``MIN_DESCRIPTOR_BUDGET`` (a tiny limit then fails loudly on the sockets, not silently)."""
    limit = soft_open_files_limit() if limit is None else limit
    if limit is None:
        return UNLIMITED_DESCRIPTOR_BUDGET
    return max(MIN_DESCRIPTOR_BUDGET, limit - max(MIN_DESCRIPTOR_RESERVE, limit // 4))


# Descriptors the budget leaves below the process limit at the least, and the smallest budget.
MIN_DESCRIPTOR_RESERVE = 64
MIN_DESCRIPTOR_BUDGET = 16
# With no limit (RLIM_INFINITY) the budget is still finite: the kernel's per-process maximum.
UNLIMITED_DESCRIPTOR_BUDGET = 1 << 20
_RUNNING_OUT = (errno.EMFILE, errno.ENFILE)


def is_out_of_descriptors(error: BaseException) -> bool:
    """True for EMFILE/ENFILE (the process's or the system's open-files limit reached),
    also when wrapped (``__cause__``) in a storage error."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in _RUNNING_OUT:
            return True
        error = error.__cause__
    return False


class DescriptorBudget:
    """The open descriptors of the :class:`OsFile`s of one file system, at most ``limit``.

    A file holds a descriptor only while it is used: each operation reopens it if needed
    (by its current path, which :class:`OsFileSystem` keeps up to date through renames) and
    marks it most recently used; opening one more descriptor over the limit first closes the
    least recently used ones. Everything that reads or writes a file does so on the owner's
    thread, so between two operations nothing holds a descriptor that eviction could pull
    away: a fetch response reads each chunk through :meth:`OsFile.fileno` (one ``preadv``, no
    await in between), and a sync thread opens a descriptor of its own
    (:class:`OsSyncTarget`).

    A file removed from the namespace (unlinked, or its directory removed) cannot be reopened:
    it keeps its descriptor, outside the LRU order ("pinned"), until it is closed or dropped, so
    a region of a deleted segment still reads (an open descriptor outlives the unlink).

    The budget refers to files weakly: a file dropped without ``close()`` closes its descriptor.
    ``reopened`` and ``evicted`` count what the budget did (benchmarks, tests).
    """

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        # id(file) -> weak reference, for the files holding a descriptor, least recently used first.
        self._lru: OrderedDict[int, weakref.ref] = OrderedDict()
        self._pinned = 0  # descriptors of removed files (outside the LRU)
        self._lock = threading.Lock()  # guards _pinned: a file may be dropped on another thread
        # Directory -> name -> weak reference, for the open files. Only a file's own directory
        # is tracked: renaming or removing a partition directory moves or removes the files in
        # it; a directory above one with open files is never renamed.
        self._files: dict[str, dict[str, weakref.ref]] = {}
        self.reopened = 0
        self.evicted = 0

    @property
    def open_count(self) -> int:
        return len(self._lru) + self._pinned

    def _open(self, path: str, flags: int) -> int:
        """A new descriptor for ``path``, evicting first to stay within the limit."""
        self._evict(self.limit - 1)
        return self.retrying(lambda: os.open(path, flags, 0o644))

    def retrying(self, operation):
        """``operation()``; if it runs out of descriptors (EMFILE, ENFILE: client sockets or
        another process took them), close half of the idle files' descriptors and run it once
        more (raising what that raises)."""
        try:
            return operation()
        except OSError as error:
            if error.errno not in _RUNNING_OUT or not self._lru:
                raise
        self._evict(self._pinned + len(self._lru) // 2)
        return operation()

    def _evict(self, keep: int) -> None:
        lru = self._lru
        while len(lru) + self._pinned > keep and lru:
            _, ref = lru.popitem(last=False)
            victim = ref()
            if victim is not None:
                victim._release()
                self.evicted += 1

    # -- where the files are (kept by OsFileSystem's rename, unlink and rmtree) ---------------
    def _track(self, handle: "OsFile") -> None:
        directory, _, name = handle.path.rpartition("/")
        self._files.setdefault(directory, {})[name] = handle._ref

    def _untrack(self, handle: "OsFile") -> None:
        directory, _, name = handle.path.rpartition("/")
        names = self._files.get(directory)
        if names is not None and names.get(name) is handle._ref:
            del names[name]
            if not names:
                del self._files[directory]

    def _tracked(self, path: str) -> "OsFile | None":
        directory, _, name = path.rpartition("/")
        ref = self._files.get(directory, {}).get(name)
        return ref() if ref is not None else None

    def _moved(self, source: str, target: str) -> None:
        handle = self._tracked(source)
        if handle is not None:
            self._untrack(handle)
            handle.path = target
            self._track(handle)
        moved = self._files.pop(source, None)  # a directory: the files in it follow it
        if moved:
            for name, ref in moved.items():
                handle = ref()
                if handle is not None:
                    handle.path = f"{target}/{name}"
            self._files.setdefault(target, {}).update(moved)

    def _removed(self, path: str | None = None, directory: str | None = None) -> None:
        """A file (``path``) or the files of ``directory`` were removed: they keep their descriptors."""
        if path is not None:
            found = self._tracked(path)
            removed = [found] if found is not None else []
        else:
            removed = [ref() for ref in self._files.get(directory, {}).values()]
        for handle in removed:
            if handle is not None:
                self._untrack(handle)
                if self._lru.pop(handle._key, None) is not None:
                    handle._pinned = True
                    with self._lock:
                        self._pinned += 1

    def _unpin(self) -> None:
        with self._lock:
            self._pinned -= 1


class OsSyncTarget:
    """An fsync to run on another thread, with a descriptor of its own opened there: the
    budget may close the file's descriptor meanwhile. A file is found by its path when the
    fsync runs (a rename moves it; a file removed by then has nothing left to make durable);
    a removed file's and a directory's descriptor is duplicated or opened beforehand.

    ``data_only``: fdatasync, which skips metadata a read does not need (timestamps) but, as
    the file's size is needed, still makes appended bytes durable: what a log file needs."""

    __slots__ = ("_file", "_path", "_fd", "_sync", "data_only")

    def __init__(self, file: "OsFile | None" = None, fd: int = -1, data_only: bool = False):
        self._file = weakref.ref(file) if file is not None else None
        self._path = file.path if file is not None else None  # if the file is dropped meanwhile
        self._fd = fd
        self.data_only = data_only
        self._sync = _fdatasync if data_only else os.fsync

    def fsync(self) -> None:
        fd = self._fd
        if fd < 0:
            file = self._file() if self._file is not None else None
            path = file.path if file is not None else self._path
            try:
                fd = os.open(path, os.O_RDONLY | _CLOEXEC)
            except FileNotFoundError:
                return  # deleted (retention, a compacted segment replaced, the topic deleted)
        try:
            self._sync(fd)  # releases the GIL for the whole system call
        finally:
            if fd != self._fd:
                os.close(fd)

    def descriptor(self) -> tuple[int, bool] | None:
        """For a sync the owner's thread submits to the kernel (storage/kernel_aio.py): a
        descriptor of the file and whether the caller closes it once submitted, or None when
        the file is gone (nothing left to make durable)."""
        if self._fd >= 0:
            return self._fd, False
        file = self._file() if self._file is not None else None
        try:
            if file is not None and not file.closed:
                return file.fileno(), False  # reopened by its current name if the budget closed it
            return os.open(self._path, os.O_RDONLY | _CLOEXEC), True
        except FileNotFoundError:
            return None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def settle(self) -> None:
        """Nothing to do: on disk the fsync itself made the data durable."""


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_fdatasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


class OsFile:
    """A read-write file on disk, holding a descriptor only while its budget lets it (see
    :class:`DescriptorBudget`). Writes and reads are positional. ``file`` is what a
    :class:`~odradek.storage.segment.FileRegion` reads from: the file itself, whose
    :meth:`fileno` the server reads a region from with ``os.preadv`` (broker/records_source.py).
    """

    __slots__ = ("path", "_fd", "_budget", "_closed", "_pinned", "_key", "_ref", "__weakref__")

    def __init__(self, path: str, budget: DescriptorBudget):
        self.path = path
        self._budget = budget
        self._closed = False
        self._pinned = False
        self._key = id(self)
        self._ref = weakref.ref(self)
        self._fd = -1
        # Not O_APPEND: on Linux pwrite() ignores its offset on an O_APPEND file, and the
        # preallocated indexes are written in place.
        self._fd = budget._open(path, os.O_RDWR | os.O_CREAT | _CLOEXEC)
        budget._lru[self._key] = self._ref

    def fileno(self) -> int:
        """The descriptor, reopened if the budget closed it; valid until the next operation
        on any file of the budget."""
        fd = self._fd
        if fd < 0:
            return self._reopen()
        if not self._pinned:
            self._budget._lru.move_to_end(self._key)
        return fd

    def _reopen(self) -> int:
        if self._closed:
            raise OSError(errno.EBADF, "file is closed", self.path)
        budget = self._budget
        # No O_CREAT: a file that vanished must fail here rather than come back empty.
        self._fd = budget._open(self.path, os.O_RDWR | _CLOEXEC)
        budget._lru[self._key] = self._ref
        budget.reopened += 1
        return self._fd

    def _release(self) -> None:
        """Close the descriptor (evicted, closed or dropped); the file stays usable."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    @property
    def file(self) -> "OsFile":
        return self

    @property
    def has_descriptor(self) -> bool:
        return self._fd >= 0

    def size(self) -> int:
        return os.fstat(self.fileno()).st_size

    def pread(self, size: int, position: int) -> bytes:
        return os.pread(self.fileno(), size, position)

    def pwrite(self, data, position: int) -> None:
        fd = self.fileno()
        written = os.pwrite(fd, data, position)
        if written == len(data):
            return
        view = memoryview(data)[written:]
        position += written
        while view:
            written = os.pwrite(fd, view, position)
            view = view[written:]
            position += written

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fileno(), size)

    def fsync(self) -> None:
        os.fsync(self.fileno())

    def sync_target(self, data_only: bool = False) -> OsSyncTarget:
        if self._pinned:  # removed: no path to reopen it by in the thread
            return OsSyncTarget(fd=os.dup(self.fileno()), data_only=data_only)
        return OsSyncTarget(self, data_only=data_only)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._forget()

    def _forget(self) -> None:
        budget = self._budget
        budget._untrack(self)
        if self._fd >= 0:
            if self._pinned:
                budget._unpin()
            else:
                budget._lru.pop(self._key, None)
        self._pinned = False
        self._release()

    def __del__(self) -> None:
        if self._fd >= 0:
            self._forget()

    @property
    def closed(self) -> bool:
        return self._closed


class OsFileSystem:
    """Real files. ``write_file_atomic`` is the .tmp + fsync + rename + fsync(dir) dance that
    checkpoints and metadata files rely on.

    The files it opens share one :class:`DescriptorBudget` of ``max_open_files`` descriptors
    (default: :func:`default_descriptor_budget` of the process limit now). It knows every
    open file by directory and name so that :meth:`rename` (of a file, or of the directory
    holding it: a partition directory renamed for deletion) moves the file's path along and
    :meth:`unlink`/:meth:`rmtree` keep a removed file's descriptor."""

    def __init__(self, max_open_files: int | None = None):
        self.budget = DescriptorBudget(max_open_files or default_descriptor_budget())

    def open(self, path: str) -> OsFile:
        handle = OsFile(path, self.budget)
        self.budget._track(handle)
        return handle

    def tracked_file(self, path: str) -> OsFile | None:
        """The open file at ``path`` (tests)."""
        return self.budget._tracked(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rename(self, source: str, target: str) -> None:
        os.replace(source, target)
        self.budget._moved(source.rstrip("/"), target.rstrip("/"))

    def unlink(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.budget._removed(path=path)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)
        self.budget._removed(directory=path.rstrip("/"))

    def file_size(self, path: str) -> int:
        return os.stat(path).st_size

    def mtime_ms(self, path: str) -> int:
        return int(os.stat(path).st_mtime * 1000)

    def read_file(self, path: str) -> bytes:
        return self.budget.retrying(lambda: _read_whole_file(path))

    def write_file_atomic(self, path: str, data: bytes) -> None:
        self.budget.retrying(lambda: self._write_file_atomic(path, data))

    def write_file(self, path: str, data: bytes, *, sync: bool = False, other_thread: bool = False) -> None:
        """Write ``path`` in place (fsynced with ``sync``; no rename, no directory fsync): for a
        file a crash may tear or lose because a start detects that and has what replaces it (a
        new partition's empty leader-epoch-checkpoint; a producer snapshot, checked by its CRC).
        ``other_thread``: called off the owner's thread, so out of descriptors it raises rather
        than evict (the budget is the owner's); the owner retries."""
        if other_thread:
            _write_whole_file(path, data, sync)
        else:
            self.budget.retrying(lambda: _write_whole_file(path, data, sync))

    def _write_file_atomic(self, path: str, data: bytes) -> None:
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._fsync_dir(os.path.dirname(path) or ".")

    def fsync_dir(self, path: str) -> None:
        self.budget.retrying(lambda: self._fsync_dir(path))

    def _fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def dir_sync_target(self, path: str) -> OsSyncTarget:
        """:meth:`fsync_dir` as a sync target (the directory opened now, fsynced later)."""
        return OsSyncTarget(fd=self.budget.retrying(lambda: os.open(path, os.O_RDONLY | _CLOEXEC)))

    def lock(self, path: str):
        """Take an exclusive, non-blocking fcntl lock on ``path`` (created if absent). Returns
        an object whose ``close()`` releases it; raises BlockingIOError if another process
        holds it. (fcntl locks are per process: a second lock from the same process succeeds,
        so the log directory also refuses a second open in-process.)"""
        key = os.path.realpath(path)
        if key in _LOCKED_IN_THIS_PROCESS:
            raise BlockingIOError(errno.EAGAIN, f"{path} is already locked by this process")
        fd = self.budget.retrying(lambda: os.open(path, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o644))
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise BlockingIOError(errno.EAGAIN, f"{path} is locked by another process") from None
        _LOCKED_IN_THIS_PROCESS.add(key)
        return _OsLock(fd, key)


def _write_whole_file(path: str, data: bytes, sync: bool) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def _read_whole_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# fcntl locks belong to the process, so they cannot stop a second open from this process.
_LOCKED_IN_THIS_PROCESS: set[str] = set()


class _OsLock:
    def __init__(self, fd: int, key: str):
        self._fd = fd
        self._key = key

    def close(self) -> None:
        if self._fd >= 0:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
            _LOCKED_IN_THIS_PROCESS.discard(self._key)


class MemorySyncTarget:
    """The memory backend's sync target. The model's state belongs to its owner's thread, so
    the fsync takes effect in :meth:`settle`, on that thread, after the flush: until then the
    data counts as not fsynced (:meth:`MemoryFileSystem.crash` may lose it), and what becomes
    durable is the content at that moment (as a real fsync may also write later appends)."""

    __slots__ = ("_apply",)

    def __init__(self, apply):
        self._apply = apply

    def fsync(self) -> None:
        pass

    def close(self) -> None:
        pass

    def settle(self) -> None:
        self._apply()


class MemoryFile:
    """A file of the memory backend. ``length`` is its size; ``data`` holds its first bytes,
    and every byte between ``len(data)`` and ``length`` is zero (sparse growth, as when an
    index is preallocated, allocates nothing). ``durable`` is the (data, length) that survives
    :meth:`MemoryFileSystem.crash`, updated by :meth:`fsync`."""

    __slots__ = ("path", "data", "length", "durable", "closed", "written", "_fs")

    def __init__(self, path: str, fs: "MemoryFileSystem"):
        self.path = path
        self.data = bytearray()
        self.length = 0
        self.durable = (b"", 0)
        self.closed = False
        self.written = 0  # bytes up to the last written one: what counts against space_limit
        self._fs = fs

    @property
    def file(self):
        # No fileno(): the server reads a region over a memory file with its pread.
        return self

    def size(self) -> int:
        return max(self.length, len(self.data))

    def pread(self, size: int, position: int) -> bytes:
        if self._fs.read_error is not None:
            raise self._fs.read_error
        end = min(position + size, self.size())
        if end <= position:
            return b""
        chunk = bytes(self.data[position:end])
        return chunk + bytes(end - position - len(chunk))

    def pwrite(self, data, position: int) -> None:
        end = position + len(data)
        if end > self.written:
            self._fs._reserve(end - self.written)
            self.written = end
        if position > len(self.data):
            self.data.extend(bytes(position - len(self.data)))
        self.data[position:end] = data
        self.length = max(self.length, end)

    def truncate(self, size: int) -> None:
        if size < len(self.data):
            del self.data[size:]
        self.length = size
        self.written = min(self.written, size)

    def fsync(self) -> None:
        self.durable = (bytes(self.data), self.size())

    def sync_target(self, data_only: bool = False) -> MemorySyncTarget:
        # The model keeps no metadata apart from the content and size, both of which fdatasync
        # makes durable: data_only syncs the same.
        return MemorySyncTarget(self.fsync)

    def close(self) -> None:
        self.closed = True


class MemoryFileSystem:
    """The in-memory backend. File contents are durable once fsynced. Directory entries
    (create, rename, unlink) are durable at once, unless ``names_need_dir_fsync``: then, as on
    a real file system, a directory's entries survive :meth:`crash` as they were at its last
    :meth:`fsync_dir` (a file created or renamed since is lost or back under its old name, a
    directory never fsynced comes back empty). ``space_limit`` (bytes written past the end of
    files, in total) simulates a full disk: a write past it raises ``OSError(ENOSPC)``;
    ``read_error`` makes reads fail."""

    def __init__(self, space_limit: int | None = None, *, names_need_dir_fsync: bool = False):
        self.files: dict[str, MemoryFile] = {}
        self.dirs: set[str] = {""}
        self.space_limit = space_limit
        self.names_need_dir_fsync = names_need_dir_fsync
        # Per directory, its entries at its last fsync_dir: name -> file (None for a directory).
        self.durable_entries: dict[str, dict[str, MemoryFile | None]] = {"": {}}
        # Set to an OSError to make every read fail with it (a dying disk).
        self.read_error: OSError | None = None
        self.locks: set[str] = set()

    def copy(self) -> "MemoryFileSystem":
        """An independent copy of every directory and file as it is now (a snapshot of a broker
        in memory mode); locks are not copied. Directory entries count as durable in the copy."""
        copied = MemoryFileSystem(self.space_limit, names_need_dir_fsync=self.names_need_dir_fsync)
        copied.dirs = set(self.dirs)
        for key, original in self.files.items():
            clone = copied.files[key] = MemoryFile(key, copied)
            clone.data, clone.length, clone.written = bytearray(original.data), original.length, original.written
            clone.durable = (bytes(original.data), original.size())
        if self.names_need_dir_fsync:
            for directory in copied.dirs:
                copied.fsync_dir(directory)
        return copied

    def power_loss_copy(self, rng: random.Random | None = None) -> "MemoryFileSystem":
        """What a power loss now would leave, as an independent copy (:meth:`crash` applied to
        a copy that keeps every file's durable content and every directory's durable entries):
        the broker using this file system goes on, the copy can be opened by another one."""
        copied = MemoryFileSystem(self.space_limit, names_need_dir_fsync=self.names_need_dir_fsync)
        copied.dirs = set(self.dirs)
        clones: dict[int, MemoryFile] = {}

        def clone_of(original: MemoryFile) -> MemoryFile:
            clone = clones.get(id(original))
            if clone is None:
                clone = clones[id(original)] = MemoryFile(original.path, copied)
                clone.data, clone.length, clone.written = bytearray(original.data), original.length, original.written
                clone.durable = original.durable
            return clone

        for key, original in self.files.items():
            copied.files[key] = clone_of(original)
        copied.durable_entries = {
            directory: {name: None if entry is None else clone_of(entry) for name, entry in entries.items()}
            for directory, entries in self.durable_entries.items()}
        copied.crash(rng)
        return copied

    def _reserve(self, extra: int) -> None:
        if self.space_limit is None:
            return
        used = sum(f.written for f in self.files.values())
        if used + extra > self.space_limit:
            raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    @staticmethod
    def _norm(path: str) -> str:
        return os.path.normpath(path).lstrip("/") if path not in ("", "/") else ""

    def open(self, path: str) -> MemoryFile:
        key = self._norm(path)
        parent = os.path.dirname(key)
        if parent not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", parent)
        existing = self.files.get(key)
        if existing is None:
            existing = self.files[key] = MemoryFile(key, self)
        existing.closed = False
        return existing

    def exists(self, path: str) -> bool:
        key = self._norm(path)
        return key in self.files or key in self.dirs

    def is_dir(self, path: str) -> bool:
        return self._norm(path) in self.dirs

    def listdir(self, path: str) -> list[str]:
        key = self._norm(path)
        if key not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        prefix = key + "/" if key else ""
        names = {
            entry[len(prefix):].split("/", 1)[0]
            for entry in (*self.files, *self.dirs)
            if entry.startswith(prefix) and entry != key
        }
        return sorted(names)

    def makedirs(self, path: str) -> None:
        key = self._norm(path)
        while key not in self.dirs:
            self.dirs.add(key)
            key = os.path.dirname(key)

    def rename(self, source: str, target: str) -> None:
        src, dst = self._norm(source), self._norm(target)
        if src in self.files:
            moved = self.files.pop(src)
            moved.path = dst
            self.files[dst] = moved
            return
        if src not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "no such file", source)
        for entry in sorted(self.dirs):
            if entry == src or entry.startswith(src + "/"):
                self.dirs.discard(entry)
                self.dirs.add(dst + entry[len(src):])
        for entry in list(self.files):
            if entry.startswith(src + "/"):
                moved = self.files.pop(entry)
                moved.path = dst + entry[len(src):]
                self.files[moved.path] = moved

    def unlink(self, path: str) -> None:
        self.files.pop(self._norm(path), None)

    def rmtree(self, path: str) -> None:
        key = self._norm(path)
        for entry in list(self.files):
            if entry.startswith(key + "/"):
                del self.files[entry]
        for entry in list(self.dirs):
            if entry == key or entry.startswith(key + "/"):
                self.dirs.discard(entry)

    def file_size(self, path: str) -> int:
        return self.files[self._norm(path)].size()

    def mtime_ms(self, path: str) -> int:
        return 0

    def read_file(self, path: str) -> bytes:
        key = self._norm(path)
        if key not in self.files:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        handle = self.files[key]
        return handle.pread(handle.size(), 0)

    def write_file_atomic(self, path: str, data: bytes) -> None:
        handle = self.open(path + ".tmp")
        handle.truncate(0)
        handle.pwrite(data, 0)
        handle.fsync()
        self.rename(path + ".tmp", path)
        self.fsync_dir(os.path.dirname(self._norm(path)))

    def write_file(self, path: str, data: bytes, *, sync: bool = False, other_thread: bool = False) -> None:
        handle = self.open(path)
        handle.truncate(0)
        handle.pwrite(data, 0)
        if sync:
            handle.fsync()  # else a crash takes it back to its last durable content

    def fsync_dir(self, path: str) -> None:
        if not self.names_need_dir_fsync:
            return
        key = self._norm(path)
        prefix = key + "/" if key else ""
        self.durable_entries[key] = {name: self.files.get(prefix + name) for name in self.listdir(key)}

    def dir_sync_target(self, path: str) -> MemorySyncTarget:
        if not self.is_dir(path):
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        return MemorySyncTarget(lambda: self.fsync_dir(path) if self.is_dir(path) else None)

    def lock(self, path: str):
        key = self._norm(path)
        if key in self.locks:
            raise BlockingIOError(errno.EAGAIN, f"{path} is locked")
        self.locks.add(key)
        self.open(path)
        fs = self

        class _Lock:
            def close(self_inner) -> None:
                fs.locks.discard(key)

        return _Lock()

    def crash(self, rng: random.Random | None = None) -> None:
        """Simulate power loss: every file falls back to its last fsynced content. With ``rng``,
        the file's current content up to a random point survives too, the synced content after
        it (the OS may have written some of the page cache back): torn tails of appends, and
        appends into zeros written ahead that reached the disk only in part."""
        self.locks.clear()
        if self.names_need_dir_fsync:
            self._restore_durable_entries()
        for handle in self.files.values():
            kept, length = handle.durable
            if rng is not None and handle.data != kept:
                cut = rng.randint(0, len(handle.data))
                kept = bytes(handle.data[:cut]) + kept[cut:]
                length = max(length, len(kept))
            handle.data = bytearray(kept)
            handle.length = length
            handle.written = min(handle.written, len(kept))
            handle.closed = True

    def _restore_durable_entries(self) -> None:
        """Rebuild the namespace from what each directory's last fsync_dir recorded."""
        files: dict[str, MemoryFile] = {}
        dirs = {""}
        pending = [""]
        while pending:
            directory = pending.pop()
            for name, handle in self.durable_entries.get(directory, {}).items():
                path = f"{directory}/{name}" if directory else name
                if handle is None:
                    dirs.add(path)
                    pending.append(path)
                else:
                    handle.path = path
                    files[path] = handle
        self.files, self.dirs = files, dirs
