"""A broker in the background for a person at a terminal: ``odradek up``, ``status``, ``down``.

Each project folder has its own broker. Its state lives in ``.odradek/`` of the folder (the
nearest of the current directory and its parents that has one; ``up`` makes it in the current
directory when none does)::

    .odradek/
      data/          the broker's data directory (log.dirs); none with ``up --memory``
      broker.log     the broker's stdout and stderr (log lines at info level), appended to
      state.json     written once the broker is ready, removed by ``down``
      lock           held (flock) while ``up`` or ``down`` runs, so two of them do not race

``state.json`` is one JSON object::

    {"pid": 12345, "bootstrap_servers": "127.0.0.1:9092", "control_url": "http://127.0.0.1:PORT" | null,
     "data_dir": "/abs/.odradek/data" | null, "log": "/abs/.odradek/broker.log", "started_at": "...Z"}

A state file whose process is gone (killed, machine rebooted) is *stale*: ``up`` and ``down``
remove it, ``status`` reports the broker as not running. A process counts as the broker only if
it is alive, not a zombie, and (where /proc exists) an ``odradek ... serve`` command line: a pid
reused by another program is not mistaken for it.

The broker is ``odradek serve`` (with DEV_DEFAULTS unless overridden) started in its own session (no controlling terminal: closing
the terminal does not stop it), its stdin closed and its output going to ``broker.log``; ``up``
reads the log for the ``odradek control:`` and ``odradek ready:`` lines that serve prints
(broker/cli.py) and returns once ready. POSIX only (sessions, signals, flock).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_DIR_NAME = ".odradek"
STATE_FILE_NAME = "state.json"
DATA_DIR_NAME = "data"
LOG_FILE_NAME = "broker.log"
LOCK_FILE_NAME = "lock"
DEFAULT_PORT = 9092  # serve's own default listener port (config.py's listeners default)
# What `up` sets unless overridden, as the server.properties Kafka ships for development does:
# no wait for more members before a new group's first rebalance (Kafka's default is 3 s).
DEV_DEFAULTS = {"group.initial.rebalance.delay.ms": "0"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
_POLL_INTERVAL = 0.05

_READY = re.compile(r"^odradek ready: bootstrap\.servers=(\S+)\s*$", re.MULTILINE)
_CONTROL = re.compile(r"^odradek control: (\S+)\s*$", re.MULTILINE)


class StateFileError(ValueError):
    """A state file that is not the JSON object :class:`DevBrokerState` writes."""


class DevBrokerError(RuntimeError):
    """The broker could not be started or stopped; the message says why, ``exit_code`` is
    serve's own exit status when it exited (2: invalid configuration), else 1."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class DevBrokerState:
    pid: int
    bootstrap_servers: str
    control_url: str | None
    data_dir: str | None  # None: in memory
    log: str
    started_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


_STATE_FIELDS = {"pid": (int,), "bootstrap_servers": (str,), "control_url": (str, type(None)),
                 "data_dir": (str, type(None)), "log": (str,), "started_at": (str,)}


def parse_state(text: str) -> DevBrokerState:
    """The state file's content; StateFileError for anything else (not JSON, not an object,
    a field missing or of the wrong type, a pid that cannot be a process)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise StateFileError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise StateFileError("not a JSON object")
    fields = {}
    for name, types in _STATE_FIELDS.items():
        if name not in value:
            raise StateFileError(f"no {name!r}")
        item = value[name]
        if not isinstance(item, types) or isinstance(item, bool):
            raise StateFileError(f"{name!r} is {type(item).__name__}, expected {' or '.join(t.__name__ for t in types)}")
        fields[name] = item
    if not 0 < fields["pid"] < 2**31:
        raise StateFileError(f"pid {fields['pid']} is not a process id")
    if not fields["bootstrap_servers"]:
        raise StateFileError("empty bootstrap_servers")
    return DevBrokerState(**fields)


def find_project(start: Path | None = None) -> Path:
    """The project folder: the nearest of ``start`` (default: the current directory) and its
    parents that has a ``.odradek`` directory, else ``start`` itself."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / STATE_DIR_NAME).is_dir():
            return folder
    return start


def process_is_broker(pid: int) -> bool:
    """Whether ``pid`` is a live ``odradek serve`` process of ours."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive but another user's: not the broker we started
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():  # no /proc (macOS): the signal check is what there is
        return True
    try:
        stat = (proc / "stat").read_text()
        command = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:  # it exited meanwhile
        return False
    # Field 3 of /proc/PID/stat, after the parenthesised command name: Z is a zombie (exited,
    # waiting for its parent to reap it).
    if stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False
    return any(b"odradek" in part for part in command) and b"serve" in command


class DevBroker:
    """The project's background broker; owns the files of its ``.odradek`` directory."""

    def __init__(self, project: Path):
        self.project = project
        self.state_dir = project / STATE_DIR_NAME
        self.state_file = self.state_dir / STATE_FILE_NAME
        self.data_dir = self.state_dir / DATA_DIR_NAME
        self.log_file = self.state_dir / LOG_FILE_NAME

    @classmethod
    def nearest(cls) -> "DevBroker":
        return cls(find_project())

    def read_state(self) -> DevBrokerState | None:
        """The state file's content (None when there is none); StateFileError when unreadable."""
        try:
            text = self.state_file.read_text()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as error:
            raise StateFileError(f"not UTF-8: {error}") from None
        return parse_state(text)

    def running(self) -> tuple[DevBrokerState | None, DevBrokerState | None]:
        """``(running, stale)``: the state of the live broker, or of one that is gone."""
        state = self.read_state()
        if state is None:
            return None, None
        return (state, None) if process_is_broker(state.pid) else (None, state)

    def remove_state(self) -> None:
        try:
            self.state_file.unlink()
        except FileNotFoundError:
            pass

    def _write_state(self, state: DevBrokerState) -> None:
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(state.to_json())
        os.replace(temporary, self.state_file)

    def lock(self):
        """An exclusive lock on the state directory (made if missing), released on close."""
        import fcntl

        self.state_dir.mkdir(exist_ok=True)
        handle = open(self.state_dir / LOCK_FILE_NAME, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def start(self, *, port: int | None, memory: bool, overrides: list[str],
              timeout: float = START_TIMEOUT) -> DevBrokerState:
        """Start ``odradek serve`` in the background and wait until it is ready. The caller holds
        :meth:`lock` and made sure none runs."""
        keys = {item.partition("=")[0].strip() for item in overrides}
        command = [sys.executable, "-m", "odradek.broker.cli", "serve", "--log-level", "info"]
        if port is not None or "listeners" not in keys:
            command += ["--port", str(DEFAULT_PORT if port is None else port)]
        data_dir = None
        if memory:
            command.append("--memory")
        elif not keys & {"log.dirs", "log.dir"}:
            data_dir = str(self.data_dir)
            command += ["--data-dir", data_dir]
        for key, value in DEV_DEFAULTS.items():
            if key not in keys:
                command += ["--override", f"{key}={value}"]
        for item in overrides:
            command += ["--override", item]
            key, _, value = item.partition("=")
            if not memory and key.strip() in ("log.dirs", "log.dir") and data_dir is None:
                data_dir = str(self.project / value.split(",")[0].strip())  # serve runs in the project folder
        with open(self.log_file, "ab") as log:
            start_offset = log.tell()
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       start_new_session=True, cwd=self.project)
        try:
            return self._wait_ready(process, start_offset, data_dir, timeout)
        except BaseException:
            # Not ready (or the caller was interrupted): no broker without a state file is left behind.
            if process.poll() is None:
                process.terminate()
                process.wait(STOP_TIMEOUT)
            raise

    def _wait_ready(self, process: subprocess.Popen, start_offset: int, data_dir: str | None,
                    timeout: float) -> DevBrokerState:
        deadline = time.monotonic() + timeout
        while True:
            output = self._log_since(start_offset)
            ready = _READY.search(output)
            if ready:
                control = _CONTROL.search(output)
                state = DevBrokerState(
                    pid=process.pid, bootstrap_servers=ready.group(1),
                    control_url=control.group(1) if control else None, data_dir=data_dir,
                    log=str(self.log_file),
                    started_at=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
                self._write_state(state)
                return state
            if process.poll() is not None:
                raise DevBrokerError(f"the broker exited with {process.returncode} before it was ready:\n"
                                     + _tail(output), exit_code=process.returncode or 1)
            if time.monotonic() > deadline:
                raise DevBrokerError(f"the broker was not ready within {timeout:g} s; stopped it:\n" + _tail(output))
            time.sleep(_POLL_INTERVAL)

    def _log_since(self, offset: int) -> str:
        with open(self.log_file, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stop(self, state: DevBrokerState, *, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (serve's clean stop: flush, close the logs), then wait for the process to end."""
        try:
            os.kill(state.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while process_is_broker(state.pid):
            if time.monotonic() > deadline:
                raise DevBrokerError(f"the broker (pid {state.pid}) did not stop within {timeout:g} s "
                                     f"of SIGTERM; its log: {state.log}")
            time.sleep(_POLL_INTERVAL)
        self.remove_state()


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
