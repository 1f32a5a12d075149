"""The installed ``odradek`` command as a user runs it: ``--version``, the ``--port`` and
``--data-dir`` shorthands (a real client produces and consumes through them), their conflicts
with ``--override``, and uvloop as a regular dependency of the package."""

from __future__ import annotations

import importlib.metadata
import pathlib
import socket
import subprocess
import sys
import tomllib

import pytest

from .conftest import BrokerProcess, subprocess_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The console script pip installed next to this interpreter (.venv/bin, .tox/py/bin).
ODRADEK = str(pathlib.Path(sys.executable).parent / "odradek")


def run_odradek(*args, timeout=30, cwd=None):
    return subprocess.run([ODRADEK, *args], capture_output=True, timeout=timeout, env=subprocess_env(), text=True,
                          cwd=cwd)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_version_is_pyproject_version():
    result = run_odradek("--version")
    assert result.returncode == 0, result.stderr
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert result.stdout == f"odradek {declared}\n"
    assert importlib.metadata.version("odradek") == declared


def test_uvloop_is_a_dependency_except_on_windows():
    requirements = importlib.metadata.requires("odradek")
    uvloop = [item for item in requirements if item.startswith("uvloop")]
    assert uvloop, requirements
    assert "extra ==" not in uvloop[0] and "sys_platform != \"win32\"" in uvloop[0]
    import uvloop as installed  # installed with the package on this platform

    assert installed.EventLoopPolicy


def test_port_and_data_dir_shorthands_serve_a_real_client(tmp_path):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    port = free_port()
    data_dir = tmp_path / "my data"
    broker = BrokerProcess(data_dir, (), tmp_path / "broker.log",
                           command=[ODRADEK, "serve", "--port", str(port), "--data-dir", str(data_dir),
                                    "--log-level", "info"])
    try:
        assert broker.port == port
        assert broker.host == "127.0.0.1"  # localhost, the default listener's host
        bootstrap = f"localhost:{port}"
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        producer.send("shorthand", value=b"hello").get(timeout=10)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=5000)
        consumer.assign([TopicPartition("shorthand", 0)])
        assert [record.value for record in consumer] == [b"hello"]
        # Metadata advertises the listener --port made (the client bootstrapped and then
        # fetched through the advertised address).
        assert {(b.host, b.port) for b in consumer._client.cluster.brokers()} == {("localhost", port)}
        consumer.close()
        assert (data_dir / "meta.properties").is_file()
        assert sorted(p.name for p in (data_dir / "shorthand-0").glob("*.log")) == ["00000000000000000000.log"]
    finally:
        assert broker.stop() == 0, broker.log()
    # The installed command runs on uvloop, the loop docs/performance.md measures.
    started = [line for line in broker.log().splitlines() if "event='broker started'" in line]
    assert len(started) == 1 and "event_loop='uvloop'" in started[0], broker.log()


def test_port_zero_picks_a_free_port(tmp_path):
    broker = BrokerProcess(tmp_path, (), tmp_path / "broker.log",
                           command=[ODRADEK, "serve", "--port", "0", "--data-dir", str(tmp_path / "d")])
    try:
        assert broker.port != 0
        with socket.create_connection(("localhost", broker.port), timeout=5):
            pass
    finally:
        assert broker.stop() == 0, broker.log()


def test_shorthands_win_over_the_file(tmp_path):
    properties = tmp_path / "server.properties"
    properties.write_text(f"listeners=PLAINTEXT://127.0.0.1:1\nlog.dirs={tmp_path / 'from-file'}\n")
    data_dir = tmp_path / "from-option"
    broker = BrokerProcess(data_dir, (), tmp_path / "broker.log",
                           command=[ODRADEK, "serve", "--config", str(properties), "--port", "0",
                                    "--data-dir", str(data_dir)])
    try:
        assert broker.port != 1
        assert (data_dir / "meta.properties").is_file() and not (tmp_path / "from-file").exists()
    finally:
        assert broker.stop() == 0, broker.log()


@pytest.mark.parametrize("args, message", [
    (["--port", "9", "--override", "listeners=PLAINTEXT://localhost:0"],
     "--port and --override listeners=PLAINTEXT://localhost:0 both set listeners: give one of them"),
    (["--data-dir", "a", "--override", "log.dirs=b"],
     "--data-dir and --override log.dirs=b both set log.dirs: give one of them"),
    (["--data-dir", "a", "--override", "log.dir=b"],
     "--data-dir and --override log.dir=b both set log.dir: give one of them"),
])
def test_a_shorthand_and_an_override_of_its_key_conflict(tmp_path, args, message):
    result = run_odradek("serve", *args, "--override", "log.segment.bytes=1048576", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"odradek: {message}\n"
    assert list(tmp_path.iterdir()) == []  # refused before any directory was made


@pytest.mark.parametrize("port", ["65536", "-1", "http"])
def test_a_bad_port_is_refused(port):
    result = run_odradek("serve", "--port", port, "--data-dir", "unused")
    assert result.returncode == 2
    assert "argument --port" in result.stderr


def test_memory_serves_a_real_client_writes_no_file_and_stops_when_stdin_closes(tmp_path):
    """``--memory``: the listening line, then the ready line with the bootstrap servers; a real
    client produces and consumes; nothing is written in the working directory (where
    ./odradek-data would be). ``--stop-on-stdin-eof``: closing its stdin stops it cleanly."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    process = subprocess.Popen([ODRADEK, "serve", "--memory", "--port", "0", "--stop-on-stdin-eof",
                                "--log-level", "info"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=tmp_path, env=subprocess_env(), text=True)
    try:
        listening = process.stdout.readline()
        control = process.stdout.readline()
        ready = process.stdout.readline()
        assert listening.startswith("odradek listening on 127.0.0.1:") and listening.endswith(" (PLAINTEXT)\n")
        port = int(listening.split()[3].rsplit(":", 1)[1])
        assert control.startswith("odradek control: http://127.0.0.1:")
        assert ready == f"odradek ready: bootstrap.servers=127.0.0.1:{port}\n"
        producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", acks="all")
        producer.send("in-memory", value=b"hello").get(timeout=10)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", auto_offset_reset="earliest",
                                 consumer_timeout_ms=5000)
        consumer.assign([TopicPartition("in-memory", 0)])
        assert [record.value for record in consumer] == [b"hello"]
        consumer.close()
        assert list(tmp_path.iterdir()) == []
        process.stdin.close()
        assert process.wait(15) == 0
        log = process.stderr.read()
        assert "in_memory=True" in log and "event='shut down cleanly'" in log, log
    finally:
        process.kill()
        process.wait()
    assert list(tmp_path.iterdir()) == []


def test_memory_and_data_dir_conflict(tmp_path):
    result = run_odradek("serve", "--memory", "--data-dir", str(tmp_path / "d"), "--port", "0")
    assert result.returncode == 2
    assert "--memory" in result.stderr and "--data-dir" in result.stderr
    assert not (tmp_path / "d").exists()
