"""Fixtures that run a real ``odradek serve`` process on a random loopback port.

``broker_process(data_dir=None, *overrides, open_files_limit=None)`` starts one (a fresh tmp
data dir unless given; ``open_files_limit`` sets its soft and hard RLIMIT_NOFILE, as
``ulimit -n`` would), waits for its "listening" line and returns a :class:`BrokerProcess`;
every process still running at teardown is stopped with SIGTERM and must exit 0. ``broker``
is one such process.
"""

from __future__ import annotations

import os
import re
import resource
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from odradek.protocol.connection import ClientConnection

START_TIMEOUT = 15.0
# Broker subprocesses keep compiled bytecode outside the repository (tox sets
# PYTHONDONTWRITEBYTECODE, which would make every start recompile the generated codecs).
_PYCACHE_DIR = os.path.join(tempfile.gettempdir(), f"odradek-test-pycache-{os.getuid()}")
_LISTENING = re.compile(rb"odradek listening on (\S+):(\d+)")
_CONTROL = re.compile(rb"odradek control: (\S+)")


def subprocess_env() -> dict:
    """The environment for odradek subprocesses: bytecode cached in _PYCACHE_DIR."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=_PYCACHE_DIR)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class BrokerProcess:
    def __init__(self, data_dir, overrides, log_path, config_file=None, command=None, log_level="info",
                 open_files_limit=None):
        """``command``: a whole command line to run instead (e.g. the installed ``odradek``
        script with its own options); ``overrides``, ``config_file`` and ``log_level`` are then
        not used. ``open_files_limit``: the process's soft and hard RLIMIT_NOFILE (``ulimit -n``)."""
        self.data_dir = str(data_dir)
        if command is None:
            command = [sys.executable, "-m", "odradek.broker.cli", "serve", "--log-level", log_level]
            if config_file is not None:
                command += ["--config", str(config_file)]
            else:
                command += ["--override", "listeners=PLAINTEXT://127.0.0.1:0", "--override", f"log.dirs={self.data_dir}"]
            for item in overrides:
                command += ["--override", item]
        self.log_path = log_path
        self._log = open(log_path, "ab")
        preexec_fn = None
        if open_files_limit is not None:
            def preexec_fn():
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files_limit, open_files_limit))
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, env=subprocess_env(),
                                        preexec_fn=preexec_fn)
        self.host, self.port = self._wait_listening()
        self.bootstrap = f"{self.host}:{self.port}"

    def _wait_listening(self):
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        buffered = b""
        try:
            while time.monotonic() < deadline:
                if not selector.select(timeout=0.1):
                    if self.process.poll() is not None:
                        break
                    continue
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    break
                buffered += chunk
                match = _LISTENING.search(buffered)
                if match:
                    self._stdout = buffered
                    return match.group(1).decode(), int(match.group(2))
        finally:
            selector.close()
        self.process.kill()
        raise RuntimeError(f"broker did not start: stdout={buffered!r} log={self.log()}")

    @property
    def control_url(self) -> str:
        """The control API's URL, from the ``odradek control:`` line (printed once ready)."""
        deadline = time.monotonic() + START_TIMEOUT
        while (match := _CONTROL.search(self._stdout)) is None:
            assert time.monotonic() < deadline and self.process.poll() is None, f"no control line: {self._stdout!r}"
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                self._stdout += os.read(self.process.stdout.fileno(), 4096)
        return match.group(1).decode()

    def log(self) -> str:
        return self.full_log()[-4000:]

    def full_log(self) -> str:
        with open(self.log_path, "rb") as handle:
            return handle.read().decode(errors="replace")

    def open_files(self) -> int:
        """How many descriptors the broker process holds now (/proc/PID/fd)."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait, return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"broker did not stop on SIGTERM within {timeout}s: {self.log()}") from None
        self.process.stdout.close()
        self._log.close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self._log.close()


@pytest.fixture
def broker_process(tmp_path):
    started: list[BrokerProcess] = []
    counter = [0]

    def start(data_dir=None, *overrides, open_files_limit=None) -> BrokerProcess:
        counter[0] += 1
        directory = data_dir if data_dir is not None else tmp_path / f"data{counter[0]}"
        process = BrokerProcess(directory, overrides, tmp_path / f"broker{counter[0]}.log",
                                open_files_limit=open_files_limit)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.returncode is None:
            code = process.stop()
            assert code == 0, f"broker exited {code}: {process.log()}"


@pytest.fixture
def broker(broker_process) -> BrokerProcess:
    return broker_process()


class RawClient:
    """A blocking client over one socket using the sans-I/O ClientConnection."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.connection = ClientConnection()
        self._correlation_id = 0

    def next_correlation_id(self) -> int:
        self._correlation_id += 1
        return self._correlation_id

    def send(self, message, version: int) -> int:
        correlation_id = self.next_correlation_id()
        self.sock.sendall(self.connection.encode_request(message, version, correlation_id))
        return correlation_id

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self):
        while True:
            response = self.connection.next_response()
            if response is not None:
                return response
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("connection closed by the broker")
            self.connection.receive_data(data)

    def request(self, message, version: int):
        correlation_id = self.send(message, version)
        received_id, response = self.receive()
        assert received_id == correlation_id
        return response

    def is_closed_by_peer(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.sock.close()


def raw_clients(host: str, port: int):
    """The body of a fixture (``yield from raw_clients(...)``) handing out ``connect()``, which
    opens a RawClient to host:port; every one opened is closed at teardown."""
    clients = []

    def connect() -> RawClient:
        client = RawClient(host, port)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def raw_client(shared_broker):
    """Connect RawClients to the module's shared broker (closed at teardown)."""
    yield from raw_clients(shared_broker.host, shared_broker.port)


def assert_no_traceback(broker: BrokerProcess) -> None:
    """The broker logged no unexpected exception (a handler or coordinator bug) so far."""
    with open(broker.log_path, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    assert "Traceback" not in log, log[max(0, log.index("Traceback") - 2000):][:6000]


def module_broker(tmp_path_factory, name: str, overrides=()):
    """The body of a module-scoped broker fixture (``yield from module_broker(...)``): one
    broker with ``overrides`` for the whole module, which at teardown must stop cleanly (exit
    0) and must not have logged a traceback."""
    directory = tmp_path_factory.mktemp(name)
    process = BrokerProcess(directory / "data", tuple(overrides), directory / "broker.log")
    yield process
    code = process.stop()
    assert code == 0, f"broker exited {code}: {process.log()}"
    assert_no_traceback(process)


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    """One broker for a whole test module (tests use distinct topic names)."""
    directory = tmp_path_factory.mktemp("shared-broker")
    process = BrokerProcess(directory / "data", (), directory / "broker.log")
    yield process
    code = process.stop()
    assert code == 0, f"broker exited {code}: {process.log()}"
