"""The file operations the storage engine needs, behind one small interface, with two backends.

* :class:`OsFileSystem` — real files (the default). Writes and reads are positional
  (``os.pwrite``/``os.pread``), so a file's seek position means nothing to us and the server
  can read a region of a file (``os.preadv`` on its ``fileno()``) while we keep appending to it.
* :class:`MemoryFileSystem` — the in-memory backend: the same partition-log code runs on it with
  no files at all (fast tests), and it can simulate what the OS cannot be made to do on demand:
  a crash that loses everything not fsynced (:meth:`MemoryFileSystem.crash`) and a full disk
  (``space_limit``).

Paths are plain strings joined with ``/``; the memory backend never touches the OS.

Thread safety: none; each file system is used from the broker's event loop (or from a test).
The one exception are sync targets (``sync_target()`` of a file, :meth:`OsFileSystem.dir_sync_target`):
made on the owner's thread, their ``fsync``/``close`` may run in another thread (the broker
fsyncs there so that its event loop keeps serving requests), and ``settle`` runs back on the
owner's thread once the fsync succeeded.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import random
import shutil


class OsSyncTarget:
    """A duplicated descriptor to fsync from another thread: a segment rolled, closed or
    deleted meanwhile closes the original descriptor, never this one."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int):
        self._fd = fd

    def fsync(self) -> None:
        os.fsync(self._fd)  # releases the GIL for the whole system call

    def close(self) -> None:
        os.close(self._fd)

    def settle(self) -> None:
        """Nothing to do: on disk the fsync itself made the data durable."""


class OsFile:
    """An open read-write file on disk. ``file`` is the ``io.FileIO`` object: it has a real
    ``fileno()``, which the server reads a :class:`~odradek.storage.segment.FileRegion` from
    with ``os.preadv`` (broker/records_source.py)."""

    __slots__ = ("path", "file", "_fd")

    def __init__(self, path: str):
        self.path = path
        # Not O_APPEND: on Linux pwrite() ignores its offset on an O_APPEND file, and the
        # preallocated indexes are written in place.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        self.file = io.FileIO(self._fd, "r+b", closefd=True)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def pread(self, size: int, position: int) -> bytes:
        return os.pread(self._fd, size, position)

    def pwrite(self, data, position: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, position)
            view = view[written:]
            position += written

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def sync_target(self) -> OsSyncTarget:
        return OsSyncTarget(os.dup(self._fd))

    def close(self) -> None:
        self.file.close()

    @property
    def closed(self) -> bool:
        return self.file.closed


class OsFileSystem:
    """Real files. ``write_file_atomic`` is the .tmp + fsync + rename + fsync(dir) dance that
    checkpoints and metadata files rely on."""

    def open(self, path: str) -> OsFile:
        return OsFile(path)

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

    def unlink(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def file_size(self, path: str) -> int:
        return os.stat(path).st_size

    def mtime_ms(self, path: str) -> int:
        return int(os.stat(path).st_mtime * 1000)

    def read_file(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def write_file_atomic(self, path: str, data: bytes) -> None:
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.fsync_dir(os.path.dirname(path) or ".")

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def dir_sync_target(self, path: str) -> OsSyncTarget:
        """:meth:`fsync_dir` as a sync target (the directory opened now, fsynced later)."""
        return OsSyncTarget(os.open(path, os.O_RDONLY))

    def lock(self, path: str):
        """Take an exclusive, non-blocking fcntl lock on ``path`` (created if absent). Returns
        an object whose ``close()`` releases it; raises BlockingIOError if another process
        holds it. (fcntl locks are per process: a second lock from the same process succeeds,
        so the log directory also refuses a second open in-process.)"""
        key = os.path.realpath(path)
        if key in _LOCKED_IN_THIS_PROCESS:
            raise BlockingIOError(errno.EAGAIN, f"{path} is already locked by this process")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise BlockingIOError(errno.EAGAIN, f"{path} is locked by another process") from None
        _LOCKED_IN_THIS_PROCESS.add(key)
        return _OsLock(fd, key)


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

    def sync_target(self) -> MemorySyncTarget:
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
        a random prefix of each file's unsynced appended bytes survives too (the OS may have
        written some of the page cache back), which produces torn tails."""
        self.locks.clear()
        if self.names_need_dir_fsync:
            self._restore_durable_entries()
        for handle in self.files.values():
            kept, length = handle.durable
            if rng is not None and len(handle.data) > len(kept) and handle.data[: len(kept)] == kept:
                kept = bytes(handle.data[: rng.randint(len(kept), len(handle.data))])
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
