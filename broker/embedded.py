"""The embedded broker, ``odradek.Broker``: a broker started and stopped from Python code, for
tests (docs/testing.md, "Embedded broker").

Two modes, one behaviour seen from a client:

* ``mode="thread"`` (the default): the broker runs in the calling process, in a thread of its
  own with its own event loop (uvloop where installed). Several can run in one process: each
  has its own state, file system, listeners and loop; what the process shares is read-only
  (the handler registry) or the process's own (structlog's configuration, the open-files limit).
* ``mode="process"``: the broker is ``odradek serve`` in a child process (the same Python),
  started with ``--stop-on-stdin-eof`` so that it stops when the caller dies, even by SIGKILL.

:meth:`Broker.start` returns once the broker is ready (broker/service.py): listening, the
coordinators loaded, topics creatable. Then :attr:`Broker.bootstrap_servers` is what a client
takes. :meth:`Broker.stop` stops it cleanly (Kafka's order: stop accepting, answer what is in
flight, flush and close the logs) and waits for the thread or the process; it is idempotent, and
runs at interpreter exit for a broker still running.

Storage: a data directory given (kept), a temporary one (the default; removed on stop), or
memory (``memory=True``: the storage engine's memory backend, no file written at all).

Ownership: a Broker object belongs to the thread that created it; its broker's state belongs to
the broker's own thread (or process).
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 - its exit hook must be registered before ours (below)
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Any, Mapping

import structlog

from . import logs
from .config import BROKER_CONFIGS, BrokerConfig, Listener, parse_listener

MODES = ("thread", "process")
# Where the embedded broker listens unless ``config`` has ``listeners``: loopback only, by
# address (a name such as localhost may resolve to ::1 first, where nothing listens).
LOOPBACK = "127.0.0.1"
DEFAULT_START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_READY_PREFIX = b"odradek ready: bootstrap.servers="
_CONTROL_PREFIX = b"odradek control: "


class BrokerStartError(RuntimeError):
    """The broker could not start (a port in use, a data directory another broker holds, a
    child process that exited): the message says why."""


def config_text(value: Any) -> str:
    """A config value as ``--override`` and server.properties spell it (Java's true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(config_text(item) for item in value)
    return str(value)


class Broker:
    """A Kafka-compatible broker for tests: ``with Broker() as broker: ...``.

    ``config``: broker configs by Kafka's names (as ``odradek serve --override`` takes them),
    values as strings or Python values (``{"num.partitions": 3, "auto.create.topics.enable":
    False}``); invalid ones raise :class:`odradek.broker.config.ConfigError` from the constructor.
    ``port``: the port on 127.0.0.1; None (default) lets the OS pick a free one, unless
    ``config`` sets ``listeners``. ``data_dir``: keep the data there (kept after stop); None
    (default) uses a temporary directory removed on stop, unless ``config`` sets ``log.dirs``.
    ``memory``: keep the data in memory instead. ``mode``: ``"thread"`` or ``"process"``.
    ``log_level``: of the broker's log lines (stderr); in thread mode they go through structlog,
    configured by the broker only if the process has not configured it. ``start_timeout``:
    seconds :meth:`start` waits for the broker to be ready.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, port: int | None = None,
                 data_dir: str | os.PathLike | None = None, memory: bool = False, mode: str = "thread",
                 log_level: str = "warning", start_timeout: float = DEFAULT_START_TIMEOUT):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if log_level not in logs.LEVELS:
            raise ValueError(f"log_level must be one of {logs.LEVELS}, not {log_level!r}")
        overrides = {str(key): config_text(value) for key, value in (config or {}).items()}
        if port is not None and "listeners" in overrides:
            raise ValueError("port and config['listeners'] both set the listeners: give one of them")
        if memory and data_dir is not None:
            raise ValueError("memory=True keeps no data directory: give memory or data_dir")
        if data_dir is not None and ("log.dirs" in overrides or "log.dir" in overrides):
            raise ValueError("data_dir and config['log.dirs'] both set the data directory: give one of them")
        if "listeners" not in overrides:
            default = parse_listener(BROKER_CONFIGS["listeners"].default[0])
            overrides["listeners"] = str(Listener(default.name, LOOPBACK, port or 0))
        self._temporary_data_dir = data_dir is None and not memory and not (
            "log.dirs" in overrides or "log.dir" in overrides)
        if data_dir is not None:
            overrides["log.dirs"] = os.fspath(data_dir)
        self._overrides = overrides
        # Checked here, so a wrong key or value raises ConfigError in the caller in either mode.
        BrokerConfig.from_sources({}, overrides)
        self.mode = mode
        self.memory = memory
        self.log_level = log_level
        self.start_timeout = start_timeout
        # The data directory (the first, when config lists several); a temporary one once started.
        configured = overrides.get("log.dirs") or overrides.get("log.dir")
        self.data_dir: str | None = None if memory or not configured else configured.split(",")[0]
        self.bootstrap_servers: str | None = None
        # The control API's http://127.0.0.1:PORT once running (None with odradek.control.port -1).
        self.control_url: str | None = None
        self._control = None
        self._control_lock = threading.Lock()  # the control client is shared by the caller's threads
        self.process: subprocess.Popen | None = None  # process mode: the child running the broker
        self._addresses: list[tuple[str, int]] = []  # (host, port) of each listener, once running
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None  # on the broker's loop
        # Set by stop() in the caller's thread: covers a stop that comes before the broker's
        # loop exists (a start that timed out), when _stop_requested cannot be reached yet.
        self._stop_wanted = threading.Event()
        self._thread_error: BaseException | None = None
        self._child_stderr = None
        self._started = False

    # --- what a client needs ---

    @property
    def host(self) -> str:
        return self._first_bound()[0]

    @property
    def port(self) -> int:
        return self._first_bound()[1]

    @property
    def running(self) -> bool:
        return self._started

    def _first_bound(self) -> tuple[str, int]:
        if not self._addresses:
            raise RuntimeError("the broker is not running: call start() first")
        return self._addresses[0]

    # --- lifecycle ---

    def start(self) -> "Broker":
        """Start the broker and return once it is ready; raises :class:`BrokerStartError`
        (or TimeoutError after ``start_timeout``) when it cannot start."""
        if self._started:
            raise RuntimeError("the broker is already running")
        if self._temporary_data_dir:
            self.data_dir = tempfile.mkdtemp(prefix="odradek-")
            self._overrides["log.dirs"] = self.data_dir
        self._started = True
        _stop_at_exit(self)
        try:
            if self.mode == "thread":
                self._start_thread()
            else:
                self._start_process()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the broker cleanly and wait for it; nothing happens when it is not running."""
        if not self._started:
            return
        self._started = False
        _RUNNING.discard(self)
        try:
            if self._thread is not None:
                self._stop_thread()
            if self.process is not None:
                self._stop_process()
        finally:
            self._addresses = []
            self.bootstrap_servers = self.control_url = None
            if self._control is not None:
                self._control.close()
                self._control = None
            if self._temporary_data_dir and self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.data_dir = None

    # --- the control API (broker/control/, docs/testing.md) ---

    def control(self, method: str, path: str, body=None, query: dict | None = None):
        """One call of the control API (``broker.control("GET", "/v1/status")``): the parsed
        JSON answer; :class:`odradek.broker.control.client.ControlError` for an error answer."""
        from .control.client import ControlClient

        if not self._started:
            raise RuntimeError("the broker is not running: call start() first")
        if self.control_url is None:
            raise RuntimeError("the control API is off (odradek.control.port=-1)")
        with self._control_lock:
            if self._control is None:
                self._control = ControlClient(self.control_url)
            return self._control.call(method, path, body, query)

    def reset(self, *topics: str) -> float:
        """Drop every topic, group, committed offset, producer state, transaction and fault
        (client connections are dropped; clients reconnect); with ``topics``, empty just those.
        Returns the milliseconds the broker took."""
        if topics:
            self.control("POST", "/v1/reset", {"topics": list(topics)})
            return 0.0
        return self.control("POST", "/v1/reset")["ms"]

    def snapshot(self, name: str) -> dict:
        """Keep the broker's data now under ``name`` (in the broker's memory, for :meth:`restore`)."""
        return self.control("POST", f"/v1/snapshots/{name}")

    def restore(self, name: str) -> float:
        """Replace the broker's data with the snapshot ``name``; the milliseconds it took."""
        return self.control("POST", f"/v1/snapshots/{name}/restore")["ms"]

    def status(self) -> dict:
        return self.control("GET", "/v1/status")

    def clients(self) -> list[dict]:
        """The connections open and the last ones closed: peer, client id, the software each
        named (KIP-511) and the versions of each API it used."""
        return self.control("GET", "/v1/clients")["clients"]

    def activity(self, since: int = 0, *, wait_ms: int = 0, **filters) -> list[dict]:
        """The requests answered after sequence number ``since`` (client, API and version,
        topics and partitions, error names, milliseconds); ``filters``: ``client_id``, ``api``,
        ``topic``."""
        return self.control("GET", "/v1/activity", query={"since": since, "wait_ms": wait_ms, **filters})["events"]

    def topic(self, name: str) -> dict:
        """A topic's id, configs and each partition's offsets (log start, log end, high
        watermark, last stable offset, leader epoch)."""
        return self.control("GET", f"/v1/topics/{_path_segment(name)}")

    def records(self, topic: str, partition: int | None = None, offset: int | None = None,
                limit: int = 1000) -> list[dict]:
        """The records of ``topic`` up to the high watermark (of one ``partition`` from
        ``offset`` if given), each with its ``transaction``: None, "committed", "aborted" or
        "open"; keys, values and headers as text, or ``{"base64": ...}`` when not UTF-8."""
        query = {"partition": partition, "offset": offset if partition is not None else None, "limit": limit}
        return self.control("GET", f"/v1/topics/{_path_segment(topic)}/records", query=query)["records"]

    def group(self, group_id: str) -> dict:
        """A group's type, state, members and committed offsets with the lag of each."""
        return self.control("GET", f"/v1/groups/{_path_segment(group_id)}")

    # --- assertions for tests: each waits up to ``timeout`` seconds for the state it expects ---

    def assert_records(self, topic: str, count: int, *, timeout: float = 10.0) -> list[dict]:
        """``topic`` holds exactly ``count`` records that were not aborted (committed, open or
        outside transactions), waiting up to ``timeout`` for them; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in self.records(topic, limit=max(count + 1, 1))
                     if record["transaction"] != "aborted"]
            if len(found) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        assert len(found) == count, f"topic {topic} holds {len(found)} records, not {count}: {found[:20]}"
        return found

    def assert_committed(self, group_id: str, topic: str, partition: int, offset: int, *,
                         timeout: float = 10.0) -> None:
        """Group ``group_id`` committed ``offset`` for ``topic``-``partition`` (waiting up to
        ``timeout`` for the commit)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                offsets = self.group(group_id)["offsets"]
            except Exception as error:  # noqa: BLE001 - no such group yet: wait for it
                offsets, last_error = [], error
            else:
                last_error = None
            committed = next((entry["offset"] for entry in offsets
                              if (entry["topic"], entry["partition"]) == (topic, partition)), None)
            if committed == offset or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        assert committed == offset, (f"group {group_id} committed {committed} for {topic}-{partition}, "
                                     f"not {offset}" + (f" ({last_error})" if last_error else ""))

    def assert_no_aborted(self, topic: str, received) -> None:
        """None of ``received`` (what a read_committed consumer got from ``topic``: values as
        bytes or str, or (partition, offset) pairs) is a record of an aborted or still open
        transaction."""
        uncommitted = [record for record in self.records(topic, limit=10_000)
                       if record["transaction"] in ("aborted", "open")]
        positions = {(record["partition"], record["offset"]): record for record in uncommitted}
        values = {record["value"]: record for record in uncommitted if isinstance(record["value"], str)}
        leaked = []
        for item in received:
            if isinstance(item, tuple):
                record = positions.get(item)
            else:
                record = values.get(item.decode("utf-8", "replace") if isinstance(item, (bytes, bytearray)) else item)
            if record is not None:
                leaked.append(record)
        assert not leaked, f"records of aborted or open transactions reached the consumer: {leaked[:20]}"

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.bootstrap_servers if self._started else "stopped"
        storage = "memory" if self.memory else self.data_dir
        return f"<odradek.Broker {state} mode={self.mode} storage={storage}>"

    # --- faults (the control API's /v1/faults; docs/testing.md "Faults") ---

    def add_fault(self, action: str, **spec) -> dict:
        """Make the broker misbehave: ``add_fault("error", api="Produce",
        error="NOT_LEADER_OR_FOLLOWER", count=2, topic="orders")``. Returns the fault as
        :meth:`faults` lists it (with its ``id``); a spec that is not one raises ControlError
        saying why."""
        return self.control("POST", "/v1/faults", {"action": action, **spec})

    def faults(self) -> list[dict]:
        """Every fault, with its ``hits``, ``remaining``, ``expires_in_ms`` and ``active``."""
        return self.control("GET", "/v1/faults")["faults"]

    def remove_fault(self, fault_id: int) -> dict:
        """Remove a fault; returns it as it was last (its hits)."""
        return self.control("DELETE", f"/v1/faults/{int(fault_id)}")

    def clear_faults(self) -> int:
        """Remove every fault; returns how many there were."""
        return self.control("DELETE", "/v1/faults")["removed"]

    # --- thread mode ---

    def _start_thread(self) -> None:
        if not structlog.is_configured():
            logs.configure(self.log_level)
        config = BrokerConfig.from_sources({}, self._overrides)
        ready = threading.Event()
        self._thread_error = None
        self._stop_wanted.clear()
        self._thread = threading.Thread(target=self._run_thread, args=(config, ready), name="odradek-broker",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(self.start_timeout):
            raise TimeoutError(f"the broker was not ready within {self.start_timeout} s")
        if self._thread_error is not None:
            error, self._thread_error = self._thread_error, None
            raise BrokerStartError(f"the broker could not start: {error}") from error

    def _run_thread(self, config: BrokerConfig, ready: threading.Event) -> None:
        try:
            with asyncio.Runner(loop_factory=_new_event_loop) as runner:
                runner.run(self._serve_in_thread(config, ready))
        except BaseException as error:  # noqa: BLE001 - handed to start() or stop() in the caller's thread
            self._thread_error = error
        finally:
            ready.set()

    async def _serve_in_thread(self, config: BrokerConfig, ready: threading.Event) -> None:
        from odradek.storage.fs import MemoryFileSystem

        from .service import BrokerService, bootstrap_servers

        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        service = BrokerService(config, fs=MemoryFileSystem() if self.memory else None)
        try:
            await service.start()
            await service.ready()
            self._addresses = list(service.bound.values())
            self.bootstrap_servers = bootstrap_servers(service.bound)
            self.control_url = service.control_url
            ready.set()
            if not self._stop_wanted.is_set():
                await self._stop_requested.wait()
        finally:
            await service.stop()

    def _stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        self._stop_wanted.set()
        loop, stop_requested = self._loop, self._stop_requested
        if thread.is_alive() and loop is not None and stop_requested is not None:
            try:
                loop.call_soon_threadsafe(stop_requested.set)
            except RuntimeError:  # the loop closed meanwhile: the thread is ending anyway
                pass
        thread.join(STOP_TIMEOUT)
        self._loop = self._stop_requested = None
        if thread.is_alive():
            raise TimeoutError(f"the broker thread did not stop within {STOP_TIMEOUT} s")
        error, self._thread_error = self._thread_error, None
        if error is not None:
            raise RuntimeError(f"the broker did not stop cleanly: {error}") from error

    # --- process mode ---

    def _start_process(self) -> None:
        command = [sys.executable, "-m", "odradek.broker.cli", "serve", "--log-level", self.log_level,
                   "--stop-on-stdin-eof"]
        if self.memory:
            command.append("--memory")
        for key, value in self._overrides.items():
            command += ["--override", f"{key}={value}"]
        # The child's log lines go to an anonymous file (no name, nothing left behind), read
        # back only to say why a start failed.
        self._child_stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._child_stderr)
        self.bootstrap_servers = self._wait_ready_line()
        self._addresses = [_parse_address(item) for item in self.bootstrap_servers.split(",")]

    def _wait_ready_line(self) -> str:
        """The bootstrap servers of the child's ready line (broker/cli.py), once it printed it."""
        process = self.process
        deadline = time.monotonic() + self.start_timeout
        output = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the broker process was not ready within {self.start_timeout} s")
                if not selector.select(timeout=min(remaining, 0.5)):
                    if process.poll() is not None:
                        break
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    break  # the child closed stdout: it is exiting
                output += chunk
                for line in output.splitlines():
                    if line.startswith(_CONTROL_PREFIX):
                        self.control_url = line[len(_CONTROL_PREFIX):].decode().strip()
                    if line.startswith(_READY_PREFIX):
                        return line[len(_READY_PREFIX):].decode().strip()
        process.wait()
        raise BrokerStartError(f"the broker process exited with {process.returncode} before it was ready: "
                               f"{self._child_log().strip()}")

    def _child_log(self) -> str:
        self._child_stderr.seek(0)
        return self._child_stderr.read()[-4000:].decode(errors="replace")

    def _stop_process(self) -> None:
        process, self.process = self.process, None
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.stdin.close()  # --stop-on-stdin-eof: the same request, should the signal be lost
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise TimeoutError(f"the broker process did not stop within {STOP_TIMEOUT} s") from None
        finally:
            process.stdout.close()
            self._child_stderr.close()
            self._child_stderr = None


# The brokers started and not stopped, stopped cleanly when the interpreter exits.
_RUNNING: "weakref.WeakSet[Broker]" = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _stop_at_exit(broker: Broker) -> None:
    """Have ``broker`` stopped at interpreter exit if it still runs then. The hook is one of
    threading's exit hooks, not an atexit one: those run after concurrent.futures has shut its
    executors down (Python's own exit hook), and a clean stop needs the sync threads. threading
    runs its hooks in reverse order of registration, so ours, registered after
    concurrent.futures.thread registered its own (imported at the top of this module), runs first."""
    global _exit_hook_registered
    with _exit_hook_lock:
        _RUNNING.add(broker)
        if not _exit_hook_registered:
            threading._register_atexit(_stop_running_brokers)  # runs before the executors' hook
            _exit_hook_registered = True


def _stop_running_brokers() -> None:
    for broker in list(_RUNNING):
        try:
            broker.stop()
        except Exception as error:  # noqa: BLE001 - the others are still stopped
            print(f"odradek: a broker did not stop cleanly at exit: {error}", file=sys.stderr)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where it is installed (as ``odradek serve`` runs), without touching the
    process's event loop policy."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _path_segment(name: str) -> str:
    """A topic or group name as one segment of a control API path."""
    from urllib.parse import quote

    return quote(name, safe="")
