"""The embedded broker, ``from odradek import Broker``, as a test suite uses it: real clients
(kafka-python, confluent-kafka) over TCP against a broker in a thread of this process or in a
child process, on disk or in memory; several at once; ready when start() returns (the
coordinators loaded, not COORDINATOR_LOAD_IN_PROGRESS); a clean, idempotent stop; a child
killed with SIGKILL, or a caller killed with SIGKILL, leaving nobody hanging."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

import odradek
from odradek import Broker
from odradek.broker.config import ConfigError
from odradek.broker.embedded import BrokerStartError
from odradek.protocol import error_codes as E
from odradek.protocol.messages.list_groups import ListGroupsRequest

from .conftest import RawClient, subprocess_env

# Generous: a loaded CI machine with two shared cores. docs/testing.md has the measured numbers.
START_BOUND_SECONDS = 10.0


def produce_and_consume_kafka_python(bootstrap: str, topic: str, count: int = 20) -> list[bytes]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for index in range(count):
        producer.send(topic, key=str(index % 2).encode(), value=f"value-{index}".encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-group",
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    try:
        values = []
        for message in consumer:
            values.append(message.value)
            if len(values) == count:
                break
        consumer.commit()
    finally:
        consumer.close()
    return values


def produce_and_consume_confluent(bootstrap: str, topic: str, count: int = 20) -> list[bytes]:
    from confluent_kafka import Consumer, Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for index in range(count):
        producer.produce(topic, key=b"k", value=f"value-{index}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-group",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def expected_values(count: int = 20) -> list[bytes]:
    return [f"value-{index}".encode() for index in range(count)]


def test_the_public_api_is_broker():
    assert odradek.__all__ == ["Broker"]
    assert odradek.Broker is Broker


def test_thread_mode_on_a_temporary_data_dir_serves_kafka_python():
    with Broker() as broker:
        assert broker.mode == "thread" and broker.running
        host, port = broker.bootstrap_servers.split(":")
        assert (host, int(port)) == (broker.host, broker.port) == ("127.0.0.1", broker.port) and port != "0"
        data_dir = broker.data_dir
        values = produce_and_consume_kafka_python(broker.bootstrap_servers, "thread-disk")
        assert sorted(values) == sorted(expected_values())
        # Real files in Kafka's layout while it runs...
        assert {"thread-disk-0", "thread-disk-1", "meta.properties"} <= set(os.listdir(data_dir))
    # ...and the temporary data directory is gone once it stopped.
    assert not broker.running and broker.bootstrap_servers is None
    assert not os.path.exists(data_dir)


def test_process_mode_in_memory_serves_confluent_kafka():
    with Broker(mode="process", memory=True) as broker:
        assert broker.process is not None and broker.process.poll() is None
        assert broker.data_dir is None
        values = produce_and_consume_confluent(broker.bootstrap_servers, "process-memory")
        assert values == expected_values()
        process = broker.process
    assert process.returncode == 0  # SIGTERM: a clean stop


def test_a_data_dir_given_is_kept_and_read_again(tmp_path):
    data_dir = tmp_path / "kept"
    with Broker(data_dir=data_dir, mode="process") as broker:
        produce_and_consume_kafka_python(broker.bootstrap_servers, "kept")
    assert (data_dir / "kept-0").is_dir() and (data_dir / ".kafka_cleanshutdown").exists()
    with Broker(data_dir=data_dir) as broker:
        consumer = KafkaConsumer("kept", bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest",
                                 consumer_timeout_ms=10000)
        try:
            values = [message.value for _, message in zip(range(20), consumer)]
        finally:
            consumer.close()
        assert sorted(values) == sorted(expected_values())


def test_memory_mode_leaves_no_files(tmp_path, monkeypatch):
    """Neither the current directory (where ./odradek-data would go) nor the temporary directory
    (where a temporary data directory or the process mode's log would go) gets a file."""
    work, temporary = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    temporary.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    for mode in ("thread", "process"):
        with Broker(memory=True, mode=mode) as broker:
            values = produce_and_consume_kafka_python(broker.bootstrap_servers, f"memory-{mode}")
            assert sorted(values) == sorted(expected_values())
            assert os.listdir(work) == [] and os.listdir(temporary) == []
    assert os.listdir(work) == [] and os.listdir(temporary) == []


def test_two_brokers_in_one_process_are_independent():
    import asyncio

    policy = asyncio.get_event_loop_policy()
    with Broker(memory=True) as first, Broker() as second:
        assert first.port != second.port
        # Each runs its own loop in its own thread; the caller's event loop policy is left alone.
        assert asyncio.get_event_loop_policy() is policy
        assert sorted(produce_and_consume_kafka_python(first.bootstrap_servers, "only-first")) == \
            sorted(expected_values())
        admin = KafkaAdminClient(bootstrap_servers=second.bootstrap_servers)
        try:
            assert "only-first" not in admin.list_topics()
        finally:
            admin.close()
        first.stop()
        # The other one still serves after the first stopped (its own loop, state and listeners).
        assert sorted(produce_and_consume_kafka_python(second.bootstrap_servers, "only-second")) == \
            sorted(expected_values())


def test_configs_are_passed_by_kafka_name():
    with Broker({"num.partitions": 3, "auto.create.topics.enable": True}, memory=True) as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        producer.send("auto-created", b"x").get(timeout=30)
        assert producer.partitions_for("auto-created") == {0, 1, 2}
        producer.close()
    with Broker({"auto.create.topics.enable": False}, memory=True) as broker:
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        try:
            assert not consumer.partitions_for_topic("not-created")  # a Metadata request naming it
            assert "not-created" not in admin.list_topics()
        finally:
            consumer.close()
            admin.close()


def test_refused_settings_raise_in_the_caller(tmp_path):
    with pytest.raises(ConfigError, match="num.partitions"):
        Broker({"num.partitions": 0})
    with pytest.raises(ValueError, match="listeners"):
        Broker({"listeners": "PLAINTEXT://127.0.0.1:0"}, port=9092)
    with pytest.raises(ValueError, match="memory"):
        Broker(memory=True, data_dir=tmp_path)
    with pytest.raises(ValueError, match="mode"):
        Broker(mode="fork")


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_start_that_fails_raises_and_leaves_nothing_running(mode, tmp_path):
    with Broker(data_dir=tmp_path / "held") as holder:
        # The same data directory: locked by the running broker.
        with pytest.raises(BrokerStartError, match="lock"):
            Broker(data_dir=tmp_path / "held", mode=mode).start()
        # The same port: in use.
        taken = Broker(port=holder.port, memory=True, mode=mode)
        with pytest.raises(BrokerStartError):
            taken.start()
        assert not taken.running
        assert produce_and_consume_kafka_python(holder.bootstrap_servers, f"still-{mode}")


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_stop_is_idempotent_and_a_stopped_broker_starts_again(mode):
    broker = Broker(memory=True, mode=mode)
    broker.stop()  # never started: nothing to do
    broker.start()
    first_port = broker.port
    broker.stop()
    broker.stop()
    with pytest.raises(RuntimeError, match="not running"):
        assert broker.port is None  # raises before it compares
    with broker:
        assert broker.port != 0 and broker.bootstrap_servers.endswith(f":{broker.port}")
    assert first_port != 0


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_start_returns_ready_with_the_coordinators_loaded(mode, tmp_path):
    """A data directory whose __consumer_offsets takes a while to replay (the data that makes
    ``odradek serve``'s first request after its listening line answer COORDINATOR_LOAD_IN_PROGRESS
    in tests/groups/test_persistence.py): the first request after start() finds every group."""
    from groups.test_persistence import BULK_GROUPS, _commit, _fetch_checked, _write_bulk_commits

    from .test_server import create_topic

    config = {"offsets.topic.num.partitions": 1, "log.cleaner.enable": False}
    data_dir = tmp_path / "data"
    with Broker(config, data_dir=data_dir) as broker:
        client = RawClient(broker.host, broker.port, timeout=60)
        create_topic(client, "bulk", partitions=100)
        _write_bulk_commits(client, "bulk")
        _commit(client, "checked", "bulk", {0: 11, 1: 12})
        client.close()
    with Broker(config, data_dir=data_dir, mode=mode) as broker:
        client = RawClient(broker.host, broker.port, timeout=60)
        try:
            assert _fetch_checked(client, 8) == (8, E.NONE, {0: (11, "m11"), 1: (12, "m12")})
            listed = client.request(ListGroupsRequest(), 4)
            assert listed.error_code == E.NONE and len(listed.groups) == BULK_GROUPS + 1
        finally:
            client.close()


def test_start_to_ready_is_quick_in_memory():
    Broker(memory=True).start().stop()  # the first start in a process imports the handlers
    started = time.monotonic()
    with Broker(memory=True) as broker:
        elapsed = time.monotonic() - started
        assert broker.running
    assert elapsed < START_BOUND_SECONDS, elapsed


def test_a_child_killed_with_sigkill_leaves_the_caller_free():
    broker = Broker(memory=True, mode="process").start()
    process = broker.process
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    started = time.monotonic()
    broker.stop()
    assert time.monotonic() - started < 5
    assert process.returncode == -signal.SIGKILL and not broker.running


def test_a_caller_killed_with_sigkill_takes_its_broker_process_with_it(tmp_path):
    """The child runs with --stop-on-stdin-eof: the caller's death closes its stdin, and it stops
    cleanly (its data directory gets the clean-shutdown marker)."""
    data_dir = tmp_path / "orphan"
    script = textwrap.dedent(f"""
        import sys, time
        from odradek import Broker
        broker = Broker(data_dir={str(data_dir)!r}, mode="process").start()
        print(broker.process.pid, flush=True)
        time.sleep(600)
    """)
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=subprocess_env())
    try:
        child_pid = int(caller.stdout.readline())
        caller.kill()
        caller.wait(10)
        deadline = time.monotonic() + 20
        while _alive(child_pid):
            assert time.monotonic() < deadline, "the broker process outlived its caller"
            time.sleep(0.05)
    finally:
        caller.kill()
        caller.stdout.close()
    assert (data_dir / ".kafka_cleanshutdown").exists()


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (the orphan is reaped by init, or lingers as a
    zombie of ours in a container without one)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_broker_left_running_is_stopped_cleanly_at_interpreter_exit(tmp_path):
    data_dir = tmp_path / "forgotten"
    script = textwrap.dedent(f"""
        from kafka import KafkaProducer
        from odradek import Broker
        broker = Broker(data_dir={str(data_dir)!r}).start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        producer.send("forgotten", b"x").get(timeout=30)
        producer.close()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, env=subprocess_env(),
                            text=True)
    assert result.returncode == 0, result.stderr
    assert (data_dir / ".kafka_cleanshutdown").exists(), result.stderr
    assert (data_dir / "forgotten-0").is_dir()


def test_memory_mode_serves_transactions_and_reports_no_volume():
    """The coordinators' topics, producer id blocks and the topic table on the memory backend: a
    transactional confluent-kafka producer commits, a read_committed consumer reads it; and
    DescribeLogDirs v4 answers Kafka's -1 (unknown) for a volume that does not exist."""
    from confluent_kafka import Consumer, Producer

    from odradek.protocol.messages.describe_log_dirs import DescribeLogDirsRequest

    with Broker(memory=True) as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "transactional.id": "memory-txn"})
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce("memory-txn", value=b"committed")
        producer.commit_transaction(30)
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "memory-txn-reader",
                             "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
        consumer.subscribe(["memory-txn"])
        deadline = time.monotonic() + 30
        message = None
        try:
            while message is None and time.monotonic() < deadline:
                message = consumer.poll(0.5)
        finally:
            consumer.close()
        assert message is not None and message.error() is None and message.value() == b"committed"
        client = RawClient(broker.host, broker.port)
        try:
            results = client.request(DescribeLogDirsRequest(topics=None), 4).results
        finally:
            client.close()
        assert len(results) == 1 and results[0].error_code == E.NONE
        assert (results[0].total_bytes, results[0].usable_bytes) == (-1, -1)
        assert {topic.name for topic in results[0].topics} >= {"memory-txn", "__transaction_state"}


def test_log_lines_follow_the_test_runners_capture(tmp_path):
    """A broker started during one test (capsys active) logs into the capture of the test
    running when it logs, not into the first test's stream, swapped out and closed since."""
    (tmp_path / "test_capture.py").write_text(textwrap.dedent("""
        import socket, time
        from odradek import Broker

        BROKERS = []

        def test_start(capsys):
            BROKERS.append(Broker(memory=True, log_level="info").start())

        def test_a_later_connection_is_logged_here(capsys):
            with socket.create_connection((BROKERS[0].host, BROKERS[0].port)):
                time.sleep(0.3)
            BROKERS[0].stop()
            assert "connection opened" in capsys.readouterr().err
    """))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_capture.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_start_that_times_out_raises_and_stops_at_once(mode, tmp_path):
    # An empty in-memory broker in a thread can be ready before the caller's first wait
    # returns, so the broker to time out has 300 partitions to load: tens of milliseconds.
    data_dir = tmp_path / "slow"
    with Broker(data_dir=data_dir) as loaded:
        admin = KafkaAdminClient(bootstrap_servers=loaded.bootstrap_servers)
        try:
            admin.create_topics([NewTopic("many", num_partitions=300, replication_factor=1)])
        finally:
            admin.close()
    broker = Broker(data_dir=data_dir, mode=mode, start_timeout=1e-6)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        broker.start()
    assert time.monotonic() - began < 10  # the half-started broker was stopped, not waited for
    assert not broker.running and broker.process is None
