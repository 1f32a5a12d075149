"""The control API (broker/control/) over HTTP against a real broker, with real clients:
status, reset (everything, or some topics), snapshots, and what bad HTTP gets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from kafka.admin import NewTopic

from odradek import Broker
from odradek.broker.control.client import ControlClient, ControlError
from odradek.protocol.messages.init_producer_id import InitProducerIdRequest

from .conftest import RawClient, subprocess_env

FAST_GROUPS = {"group.initial.rebalance.delay.ms": 0}


def create_topics(bootstrap: str, *names: str, partitions: int = 1, configs: dict | None = None) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {}) for name in names])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(topic, value)
    producer.flush()
    producer.close()


def consume_all(bootstrap: str, topic: str, group: str | None = None, commit: bool = False) -> list[bytes]:
    """Every record up to the end offsets as they are now (from the group's committed offsets
    when it has some), without waiting for a timeout to end it."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, index) for index in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        end = consumer.end_offsets(partitions)
        values = []
        deadline = time.monotonic() + 20
        while any(consumer.position(partition) < end[partition] for partition in partitions):
            assert time.monotonic() < deadline, "the records did not arrive"
            for records in consumer.poll(timeout_ms=200).values():
                values.extend(record.value for record in records)
        if commit:
            consumer.commit()
        return values
    finally:
        consumer.close()


def topic_names(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {name for name in admin.list_topics() if not name.startswith("__")}
    finally:
        admin.close()


def groups(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {group["group_id"] for group in admin.list_groups()}
    finally:
        admin.close()


def committed(bootstrap: str, group: str, topic: str) -> int | None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        found = offsets.get(TopicPartition(topic, 0))
        return None if found is None else found.offset
    finally:
        admin.close()


def init_producer_id(broker: Broker) -> int:
    client = RawClient(broker.host, broker.port)
    try:
        response = client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
        assert response.error_code == 0
        return response.producer_id
    finally:
        client.close()


@pytest.fixture(scope="module")
def memory_broker():
    with Broker(FAST_GROUPS, memory=True) as broker:
        yield broker


def test_status_names_the_broker(memory_broker):
    status = memory_broker.status()
    assert status["bootstrap_servers"] == memory_broker.bootstrap_servers
    assert status["control_url"] == memory_broker.control_url
    assert status["memory"] is True and status["log_dirs"] is None and status["node_id"] == 1


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_reset_drops_topics_groups_offsets_and_keeps_the_cluster_id(storage):
    # No auto-creation: the long-lived producer reconnects after the reset, and its metadata
    # request would otherwise create "orders" again while the reset is being checked.
    with Broker({**FAST_GROUPS, "auto.create.topics.enable": False}, memory=storage == "memory") as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, "orders", "payments", partitions=2)
        produce(bootstrap, "orders", [b"a", b"b"])
        assert sorted(consume_all(bootstrap, "orders", group="billing", commit=True)) == [b"a", b"b"]
        cluster_id = broker.status()["cluster_id"]
        first_id = init_producer_id(broker)
        long_lived = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        long_lived.send("orders", b"before").get(timeout=10)

        ms = broker.reset()

        assert ms >= 0
        assert topic_names(bootstrap) == set() and groups(bootstrap) == set()
        status = broker.status()
        assert status["topics"] == 0 and status["cluster_id"] == cluster_id
        assert init_producer_id(broker) > first_id  # producer ids are never handed out twice
        if storage == "disk":
            assert not [name for name in os.listdir(broker.data_dir) if name.startswith(("orders", "payments"))]
        # A client connected before the reset reconnects and carries on once the topic is
        # created again (with the partitions the producer knew), empty.
        create_topics(bootstrap, "orders", partitions=2)
        long_lived.send("orders", b"after").get(timeout=10)
        long_lived.close()
        assert consume_all(bootstrap, "orders") == [b"after"]
        assert committed(bootstrap, "billing", "orders") is None


def test_reset_of_named_topics_empties_them_and_keeps_the_rest(memory_broker):
    bootstrap = memory_broker.bootstrap_servers
    create_topics(bootstrap, "emptied", configs={"retention.ms": "123456"})
    create_topics(bootstrap, "kept")
    produce(bootstrap, "emptied", [b"1", b"2"])
    produce(bootstrap, "kept", [b"3"])
    memory_broker.reset("emptied")
    assert consume_all(bootstrap, "emptied") == []
    assert consume_all(bootstrap, "kept") == [b"3"]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource("topic", "emptied")
    assert admin.describe_configs([resource])[resource].result(10)["retention.ms"].value == "123456"
    with pytest.raises(ControlError) as missing:
        memory_broker.reset("no-such-topic")
    assert missing.value.status == 404


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_a_snapshot_restores_records_topics_and_offsets(storage):
    with Broker(FAST_GROUPS, memory=storage == "memory") as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, "fixture")
        produce(bootstrap, "fixture", [b"seed-1", b"seed-2"])
        consume_all(bootstrap, "fixture", group="reader", commit=True)
        saved = broker.snapshot("seeded")
        assert saved["name"] == "seeded" and saved["bytes"] > 0

        produce(bootstrap, "fixture", [b"later"])
        create_topics(bootstrap, "scratch")
        consume_all(bootstrap, "fixture", group="reader", commit=True)
        assert committed(bootstrap, "reader", "fixture") == 3

        for _ in range(2):  # a snapshot can be restored any number of times
            assert broker.restore("seeded") >= 0
            assert consume_all(bootstrap, "fixture") == [b"seed-1", b"seed-2"]
            assert topic_names(bootstrap) == {"fixture"}
            assert committed(bootstrap, "reader", "fixture") == 2
            produce(bootstrap, "fixture", [b"again"])

        assert [s["name"] for s in broker.control("GET", "/v1/snapshots")["snapshots"]] == ["seeded"]
        assert broker.control("DELETE", "/v1/snapshots/seeded") is None
        with pytest.raises(ControlError) as gone:
            broker.restore("seeded")
        assert gone.value.status == 404


def test_bad_calls_get_http_errors(memory_broker):
    client = ControlClient(memory_broker.control_url)
    try:
        for method, path, status in [("GET", "/v1/nothing", 404), ("DELETE", "/v1/status", 405),
                                     ("POST", "/v1/snapshots/bad*name", 400), ("POST", "/v1/reset", 400)]:
            with pytest.raises(ControlError) as raised:
                client.call(method, path, {"topics": "not a list"} if path == "/v1/reset" else None)
            assert raised.value.status == status, (method, path)
        assert client.call("GET", "/v1/status")["node_id"] == 1  # the same connection still serves
    finally:
        client.close()


def test_malformed_http_is_answered_400_and_closed(memory_broker):
    host, port = memory_broker.control_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /v1/status HTTP/1.1\r\n\r\nBROKEN\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    first, second = received.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200") and second.startswith(b"400")
    assert json.loads(second.split(b"\r\n\r\n")[1])["error"].startswith("malformed request line")


def test_a_reset_while_clients_wait_leaves_the_broker_serving():
    """Fault test: a consumer in a long poll and a group member in its session when the state
    is replaced; both reconnect, and the broker logs no traceback."""
    with Broker(FAST_GROUPS, memory=True, mode="process", log_level="info") as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, "busy")
        stop = threading.Event()
        received = []

        def consume():
            consumer = KafkaConsumer("busy", bootstrap_servers=bootstrap, group_id="waiting",
                                     auto_offset_reset="earliest", fetch_max_wait_ms=2000)
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    received.extend(record.value for record in records)
            consumer.close()

        worker = threading.Thread(target=consume)
        worker.start()
        try:
            time.sleep(2)
            for _ in range(3):
                broker.reset()
                time.sleep(0.3)
            produce(bootstrap, "busy", [b"after resets"])  # created again by auto-creation
            deadline = time.monotonic() + 30
            while b"after resets" not in received and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop.set()
            worker.join(30)
        assert b"after resets" in received
        log = broker._child_log()
    assert "Traceback" not in log, log


def test_serve_prints_the_control_url_unless_it_is_off(tmp_path):
    for port_setting, expect_control in (("0", True), ("-1", False)):
        process = subprocess.Popen(
            [sys.executable, "-m", "odradek.broker.cli", "serve", "--memory", "--port", "0", "--stop-on-stdin-eof",
             "--override", f"odradek.control.port={port_setting}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
        try:
            lines = []
            while not (line := process.stdout.readline().decode()).startswith("odradek ready:"):
                assert line, process.stderr.read().decode()
                lines.append(line)
            control = [line.split(": ", 1)[1].strip() for line in lines if line.startswith("odradek control: ")]
            if expect_control:
                assert ControlClient(control[0]).call("GET", "/v1/status")["memory"] is True
            else:
                assert control == []
        finally:
            process.stdin.close()
            assert process.wait(30) == 0
    with Broker({"odradek.control.port": -1}, memory=True) as broker:
        assert broker.control_url is None
        with pytest.raises(RuntimeError, match="control API is off"):
            broker.reset()


def test_clients_and_activity_show_who_asked_what(memory_broker):
    bootstrap = memory_broker.bootstrap_servers
    since = memory_broker.activity()[-1]["seq"] if memory_broker.activity() else 0
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="activity-probe", acks="all")
    producer.send("watched", b"v").get(timeout=10)
    producer.close()
    events = memory_broker.activity(since, client_id="activity-probe")
    produces = [event for event in events if event["api"] == "Produce"]
    assert produces and produces[0]["topics"] == {"watched": [0]} and produces[0]["errors"] == []
    assert produces[0]["api_version"] >= 3 and produces[0]["ms"] >= 0
    assert {event["api"] for event in memory_broker.activity(since, topic="watched")} >= {"Metadata", "Produce"}
    probe = [client for client in memory_broker.clients() if client["client_id"] == "activity-probe"]
    assert probe and all(client["software_name"] == "kafka-python" for client in probe)
    assert any("Produce" in client["api_versions"] for client in probe)
    # An error code in a response shows by name.
    client = RawClient(memory_broker.host, memory_broker.port)
    try:
        response = client.request(InitProducerIdRequest(transactional_id="", transaction_timeout_ms=-5), 4)
    finally:
        client.close()
    [event] = [event for event in memory_broker.activity(since, api="InitProducerId") if event["errors"]]
    assert event["errors"] == [error_name(response.error_code)] != []


def error_name(code: int) -> str:
    from odradek.protocol import error_codes

    return error_codes.lookup(code).name


def test_a_waiting_activity_reader_gets_the_next_request(memory_broker):
    last = memory_broker.control("GET", "/v1/activity")["last"]
    answer = {}
    reader = threading.Thread(target=lambda: answer.update(memory_broker.control(
        "GET", "/v1/activity", query={"since": last, "wait_ms": 10_000, "client_id": "late"})))
    reader.start()
    time.sleep(0.2)
    producer = KafkaProducer(bootstrap_servers=memory_broker.bootstrap_servers, client_id="late")
    producer.close()
    reader.join(15)
    assert answer["events"] and answer["events"][0]["client_id"] == "late" and answer["last"] > last


def test_records_topics_groups_and_the_assertions():
    from confluent_kafka import Consumer, Producer

    with Broker(FAST_GROUPS, memory=True) as broker:
        bootstrap = broker.bootstrap_servers
        produce(bootstrap, "ledger", [b"plain"])
        transactional = Producer({"bootstrap.servers": bootstrap, "transactional.id": "ledger-writer"})
        transactional.init_transactions()
        transactional.begin_transaction()
        transactional.produce("ledger", b"rolled back")
        transactional.flush()
        transactional.abort_transaction()
        transactional.begin_transaction()
        transactional.produce("ledger", b"kept", key=b"\xff")
        transactional.commit_transaction()

        records = broker.records("ledger")
        assert [(r["value"], r["transaction"]) for r in records] == [
            ("plain", None), ("rolled back", "aborted"), ("kept", "committed")]
        assert records[2]["key"] == {"base64": "/w=="}
        partition = broker.topic("ledger")["partitions"][0]
        assert partition["high_watermark"] == partition["last_stable_offset"] == partition["log_end_offset"] == 5
        assert broker.records("ledger", partition=0, offset=3) == records[2:]  # 2 and 4 are markers
        broker.assert_records("ledger", 2)
        with pytest.raises(AssertionError, match="holds 2 records, not 3"):
            broker.assert_records("ledger", 3, timeout=0.2)

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "team/ledger", "auto.offset.reset": "earliest",
                             "isolation.level": "read_committed", "enable.auto.commit": False})
        consumer.subscribe(["ledger"])
        received = []
        deadline = time.monotonic() + 20
        while len(received) < 2 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                received.append(message.value())
        consumer.commit(asynchronous=False)
        broker.assert_no_aborted("ledger", received)
        with pytest.raises(AssertionError, match="rolled back"):
            broker.assert_no_aborted("ledger", received + [b"rolled back"])
        # librdkafka commits the offset after the last record it returned (4), not past the
        # commit marker (5). A "/" in a group id travels as %2F.
        broker.assert_committed("team/ledger", "ledger", 0, 4)
        group = broker.group("team/ledger")
        assert group["state"] == "Stable" and len(group["members"]) == 1
        assert group["offsets"] == [{"topic": "ledger", "partition": 0, "offset": 4, "metadata": "",
                                     "high_watermark": 5, "lag": 1}]
        consumer.close()
        with pytest.raises(AssertionError, match="committed 4 for ledger-0, not 5"):
            broker.assert_committed("team/ledger", "ledger", 0, 5, timeout=0.2)
        with pytest.raises(ControlError) as missing:
            broker.group("nobody")
        assert missing.value.status == 404
