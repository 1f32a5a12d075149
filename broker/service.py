"""A broker serving on the running event loop: its state, its listeners and its background work,
started and stopped as one. ``odradek serve`` (broker/cli.py) and the embedded broker
(``odradek.Broker``, broker/embedded.py) both run a broker through this.

Start: :meth:`BrokerService.start` opens the state (locks and recovers the data directories),
binds every listener and starts the maintenance task; :meth:`BrokerService.ready` then returns
once the broker is *ready*: listening, and the group and transaction coordinators' background
load of ``__consumer_offsets`` and ``__transaction_state`` finished, so that no request answers
COORDINATOR_LOAD_IN_PROGRESS because the broker had only just started. (Topics can be created
as soon as :meth:`start` returns: the topic table is loaded by then.)

Stop: :meth:`BrokerService.stop` in Kafka's order: stop accepting, answer the requests in
flight, then flush and close the logs (clean-shutdown marker). It is safe to call after a
:meth:`start` that failed part way, and more than once.

Reset and snapshots (the control API's, broker/control/): the broker state (:class:`Broker`) is
replaced by a fresh one while the listeners and the control API stay bound. :meth:`reset` drops
every client connection, throws the old state away without flushing it, empties the data
directories and opens an empty state with the same cluster id (producer ids keep increasing, so
an id handed out before is never handed out again). A snapshot is the data directories' files
after a clean close, kept in this process's memory under a name; :meth:`restore_snapshot` puts
them back in place of the current state.

Ownership: one service per broker, used on the broker's event loop only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
import uuid

import structlog

from odradek.storage.fs import MemoryFileSystem
from odradek.storage.log_directory import LOCK_FILE

from .broker import Broker
from .config import BrokerConfig

log = structlog.get_logger("odradek.broker")

# How often ready() looks at the coordinators' load, which runs in slices on this same loop.
READY_POLL_SECONDS = 0.001


class BrokerService:
    def __init__(self, config: BrokerConfig, fs=None):
        """``fs``: the file system of the data directories, None for the real one (the memory
        backend, ``odradek.storage.fs.MemoryFileSystem``, in memory mode)."""
        from .handlers import REGISTRY
        from .server import BrokerServer

        from .control.server import ControlServer

        self.config = config
        self.in_memory = isinstance(fs, MemoryFileSystem)
        self.broker = Broker(config, fs=fs)
        self.server = BrokerServer(self.broker, REGISTRY)
        self.control = ControlServer(self)
        self.snapshots: dict[str, Snapshot] = {}
        self._removals: list[threading.Thread] = []  # old data directories being removed after a reset
        self._maintenance: asyncio.Future | None = None
        self._opened = False
        self._stopped = False

    @property
    def bound(self) -> dict[str, tuple[str, int]]:
        """Listener name -> (host, port) bound (the real port also when the configured one is 0)."""
        return self.server.bound

    @property
    def control_url(self) -> str | None:
        """The control API's ``http://127.0.0.1:PORT``; None when ``odradek.control.port`` is -1."""
        return self.control.url if self.control.port is not None else None

    async def start(self) -> None:
        self.broker.open()
        self._opened = True
        await self.server.start()
        self.broker.set_bound_listeners(self.server.bound)
        self._maintenance = asyncio.ensure_future(self.broker.run_maintenance())
        if self.config["odradek.control.port"] >= 0:
            await self.control.start(self.config["odradek.control.port"])

    def coordinators_loaded(self) -> bool:
        return not (self.broker.group_coordinator.runtime.loading
                    or self.broker.transaction_coordinator.runtime.loading)

    async def ready(self) -> None:
        """Return once the coordinators' load finished (at once for an empty data directory)."""
        while not self.coordinators_loaded():
            await asyncio.sleep(READY_POLL_SECONDS)

    async def stop(self) -> None:
        if self._stopped or not self._opened:  # an open() that failed left nothing to stop
            return
        self._stopped = True
        if self._maintenance is not None:
            self._maintenance.cancel()
        try:
            await self.control.stop()
            await self.server.shutdown()
        finally:
            self.broker.close()
            for removal in self._removals:
                removal.join()

    # --- reset and snapshots ---

    async def reset(self) -> float:
        """Drop every topic, group, committed offset, producer state and transaction: an empty
        broker on the same listeners. Returns the milliseconds it took."""
        began = time.perf_counter()
        old = self._take_down(durable=False)
        if self.in_memory:
            fs = MemoryFileSystem()
        else:
            fs = None
            for path in old.log_dirs:
                self._empty(path)
        await self._bring_up(old, fs)
        elapsed_ms = (time.perf_counter() - began) * 1000
        log.info("broker reset", ms=round(elapsed_ms, 2))
        return elapsed_ms

    async def save_snapshot(self, name: str) -> Snapshot:
        """Keep the broker's data under ``name`` (replacing a snapshot of that name). The state
        is closed cleanly first and opened again, so client connections are dropped."""
        old = self._take_down(durable=True)
        if self.in_memory:
            fs = old.topics.fs
            snapshot = Snapshot(name, memory=fs.copy())
        else:
            fs = None
            snapshot = Snapshot(name, files=_read_directories(old.log_dirs))
        self.snapshots[name] = snapshot
        await self._bring_up(old, fs)
        log.info("snapshot saved", snapshot=name, bytes=snapshot.size)
        return snapshot

    async def restore_snapshot(self, name: str) -> float:
        """Replace the broker's state with the snapshot ``name`` (KeyError when there is none).
        Returns the milliseconds it took."""
        snapshot = self.snapshots[name]
        began = time.perf_counter()
        old = self._take_down(durable=False)
        if self.in_memory:
            fs = snapshot.memory.copy()
        else:
            fs = None
            for path in old.log_dirs:
                self._empty(path)
            _write_directories(snapshot.files)
        await self._bring_up(old, fs)
        elapsed_ms = (time.perf_counter() - began) * 1000
        log.info("snapshot restored", snapshot=name, ms=round(elapsed_ms, 2))
        return elapsed_ms

    def _empty(self, path: str) -> None:
        """Leave ``path`` an empty directory at once: renamed aside and removed by a thread
        (joined by :meth:`stop`), or emptied in place where it cannot be renamed (a mount point)."""
        self._removals = [removal for removal in self._removals if removal.is_alive()]
        aside = f"{path}.reset-{uuid.uuid4().hex[:12]}"
        try:
            os.rename(path, aside)
            os.mkdir(path)
        except OSError:
            _empty_directory(path)
            return
        removal = threading.Thread(target=shutil.rmtree, args=(aside,), kwargs={"ignore_errors": True},
                                   name="odradek-reset-removal", daemon=True)
        removal.start()
        self._removals.append(removal)

    def _take_down(self, *, durable: bool) -> Broker:
        """Stop the broker state (not the listeners): connections dropped, timers and
        background work stopped, the logs closed (flushed with a clean-shutdown marker when
        ``durable``, else just closed)."""
        if self._maintenance is not None:
            self._maintenance.cancel()
            self._maintenance = None
        self.server.abort_connections()
        old = self.broker
        old.begin_shutdown()
        if durable:
            old.close()
        else:
            old.abandon()
        return old

    async def _bring_up(self, old: Broker, fs) -> None:
        new = Broker(self.config, fs=fs, cluster_id=old.cluster_id)
        new.open()
        if old.producer_ids is not None and old.producer_ids.handed_out > new.producer_ids.handed_out:
            new.producer_ids.skip_past(old.producer_ids.handed_out)
        new.set_bound_listeners(self.server.bound)
        self.broker = self.server.broker = new
        self._maintenance = asyncio.ensure_future(new.run_maintenance())
        await self.ready()


class Snapshot:
    """A snapshot's data: a copy of the memory file system, or the data directories' files
    (path -> bytes)."""

    def __init__(self, name: str, *, memory: MemoryFileSystem | None = None, files: dict[str, bytes] | None = None):
        self.name = name
        self.memory = memory
        self.files = files
        self.created_ms = int(time.time() * 1000)

    @property
    def size(self) -> int:
        if self.memory is not None:
            return sum(file.size() for file in self.memory.files.values())
        return sum(len(data) for data in self.files.values())

    def describe(self) -> dict:
        return {"name": self.name, "bytes": self.size, "created_ms": self.created_ms}


def _empty_directory(path: str) -> None:
    """Remove everything in ``path`` but ``path`` itself (it may be a mount point)."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def _read_directories(paths: list[str]) -> dict[str, bytes]:
    files = {}
    for root in paths:
        for directory, _, names in os.walk(root):
            for name in names:
                if name != LOCK_FILE:
                    path = os.path.join(directory, name)
                    with open(path, "rb") as handle:
                        files[path] = handle.read()
    return files


def _write_directories(files: dict[str, bytes]) -> None:
    for path, data in files.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)


def address(host: str, port: int) -> str:
    """``host:port`` as clients and Kafka's tools write it (``[::1]:9092`` for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bootstrap_servers(bound: dict[str, tuple[str, int]]) -> str:
    """What a client's ``bootstrap.servers`` takes to reach the bound listeners."""
    return ",".join(address(host, port) for host, port in bound.values())
