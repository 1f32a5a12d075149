"""The process: start with nothing but a port, refuse bad config naming the key, restart on the
same data directory with records and offsets intact, refuse a data dir another broker holds."""

from __future__ import annotations

import subprocess
import sys

import pytest

from odradek.broker.config_docs import render
from odradek.broker.handlers import REGISTRY
from odradek.broker.registry import DuplicateHandler, HandlerRegistry
from odradek.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from odradek.protocol.messages.fetch import FetchRequest, FetchResponse

from .conftest import subprocess_env


def run_cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "odradek.broker.cli", *args], capture_output=True, timeout=timeout,
                          env=subprocess_env())


def test_invalid_config_refused_naming_the_key(tmp_path):
    result = run_cli("serve", "--override", "num.partitions=zero", "--override", f"log.dirs={tmp_path}")
    assert result.returncode == 2
    assert b"num.partitions" in result.stderr


def test_properties_file_and_unknown_key_warning(tmp_path):
    properties = tmp_path / "server.properties"
    properties.write_text("# a comment\nnum.partitions : 0\nsome.unknown.key=1\n")
    result = run_cli("serve", "--config", str(properties))
    assert result.returncode == 2 and b"num.partitions" in result.stderr


def test_unknown_keys_are_warned_about(broker_process):
    broker = broker_process(None, "made.up.key=1")
    broker.stop()
    assert "made.up.key" in broker.log()


def test_restart_keeps_records_and_continues_offsets(broker_process, tmp_path):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    data_dir = tmp_path / "restart-data"
    first = broker_process(data_dir)
    producer = KafkaProducer(bootstrap_servers=first.bootstrap, acks="all")
    for i in range(20):
        producer.send("kept", value=b"before-%d" % i, partition=0)
    producer.flush()
    producer.close()
    assert first.stop() == 0

    second = broker_process(data_dir)
    producer = KafkaProducer(bootstrap_servers=second.bootstrap, acks="all")
    metadata = producer.send("kept", value=b"after", partition=0).get(timeout=10)
    producer.close()
    assert metadata.offset == 20
    consumer = KafkaConsumer(bootstrap_servers=second.bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=15000)
    consumer.assign([TopicPartition("kept", 0)])
    consumer.seek_to_beginning()
    values = []
    for record in consumer:
        values.append((record.offset, record.value))
        if len(values) == 21:
            break
    consumer.close()
    assert values == [(i, b"before-%d" % i) for i in range(20)] + [(20, b"after")]


def test_a_data_dir_in_use_is_refused(broker_process):
    broker = broker_process()
    result = run_cli("serve", "--override", "listeners=PLAINTEXT://127.0.0.1:0",
                     "--override", f"log.dirs={broker.data_dir}")
    assert result.returncode == 1
    assert b"in use" in result.stderr


def test_registry_refuses_a_key_twice_and_is_the_api_versions_source():
    registry = HandlerRegistry()
    registry.register(ApiVersionsRequest, ApiVersionsResponse, lambda ctx, request: None)
    with pytest.raises(DuplicateHandler):
        registry.register(ApiVersionsRequest, ApiVersionsResponse, lambda ctx, request: None)
    with pytest.raises(ValueError):
        registry.register(FetchRequest, FetchResponse, lambda ctx, request: None, min_version=0, max_version=99)
    assert registry.version_ranges() == {18: (0, ApiVersionsRequest.MAX_VERSION)}
    served = {entry.api_key for entry in REGISTRY}
    assert {0, 1, 2, 3, 18, 19, 20, 22, 60} <= served


def test_committed_configuration_reference_is_current():
    import pathlib

    committed = pathlib.Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert committed.read_text(encoding="utf-8") == render(), "run python tools/gen_config_docs.py"


def test_config_docs_subcommand_prints_the_reference():
    result = run_cli("config-docs")
    assert result.returncode == 0
    assert result.stdout.decode() == render()


STOCK_KRAFT_PROPERTIES = """\
# The shape of Kafka 4's config/server.properties (KRaft, combined broker and controller).
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093
listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs={log_dirs}
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
"""


def test_a_stock_kafka_server_properties_starts_cleanly(tmp_path):
    from .conftest import BrokerProcess

    properties = tmp_path / "server.properties"
    properties.write_text(STOCK_KRAFT_PROPERTIES.format(log_dirs=tmp_path / "data"))
    broker = BrokerProcess(tmp_path / "unused", (), tmp_path / "broker.log", config_file=properties)
    try:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        assert producer.send("stock", b"x").get(timeout=10).offset == 0
        producer.close()
    finally:
        assert broker.stop() == 0
    log = broker.log()
    assert "unknown configuration keys" not in log, log
