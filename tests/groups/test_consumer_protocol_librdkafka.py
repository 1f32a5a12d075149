"""librdkafka (confluent-kafka) with ``group.protocol=consumer`` (KIP-848, librdkafka 2.4+)
against a real broker: two members split four partitions, read every record once and commit;
when one closes, the other takes its partitions over."""

from __future__ import annotations

import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from broker.test_server import create_topic  # noqa: E402
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchRequestTopic  # noqa: E402

from .conftest import BrokerProcess, RawClient, assert_no_traceback  # noqa: E402

FAST_HEARTBEATS = ("group.consumer.heartbeat.interval.ms=500", "group.consumer.min.heartbeat.interval.ms=500")


@pytest.fixture
def broker(tmp_path):
    process = BrokerProcess(tmp_path / "data", FAST_HEARTBEATS, tmp_path / "broker.log")
    yield process
    assert_no_traceback(process)
    assert process.stop() == 0


def _member(bootstrap, group, topic):
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    return consumer


def _poll_until(members, records, condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        for index, member in enumerate(members):
            message = member.poll(0.05)
            if message is not None and not message.error():
                records[index].append((message.partition(), message.offset(), message.value()))
                member.commit(message, asynchronous=False)
    assert condition(), (records, [member.assignment() for member in members])


def test_librdkafka_members_split_consume_once_and_take_over(broker):
    client = RawClient(broker.host, broker.port)
    assert create_topic(client, "rdk", partitions=4).error_code == 0
    members = [_member(broker.bootstrap, "rdk-group", "rdk"), _member(broker.bootstrap, "rdk-group", "rdk")]
    records = [[], []]

    def split():
        owned = [{tp.partition for tp in member.assignment()} for member in members]
        return sorted(map(len, owned)) == [2, 2] and owned[0] | owned[1] == {0, 1, 2, 3}

    _poll_until(members, records, split)  # settled before anything is there to read
    producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap})
    for index in range(40):
        producer.produce("rdk", value=f"v{index}".encode(), partition=index % 4)
    producer.flush()
    _poll_until(members, records, lambda: sum(map(len, records)) == 40)
    values = sorted(value for member_records in records for _, _, value in member_records)
    assert values == sorted(f"v{index}".encode() for index in range(40))  # each record once
    for member, member_records in zip(members, records):  # each read its own two partitions
        assert {partition for partition, _, _ in member_records} == {tp.partition for tp in member.assignment()}
    fetched = client.request(OffsetFetchRequest(group_id="rdk-group", topics=[
        OffsetFetchRequestTopic(name="rdk", partition_indexes=[0, 1, 2, 3])]), 7)
    assert [p.committed_offset for p in fetched.topics[0].partitions] == [10, 10, 10, 10]

    members[1].close()
    for index in range(40, 48):
        producer.produce("rdk", value=f"v{index}".encode(), partition=index % 4)
    producer.flush()
    survivor = members[:1]
    _poll_until(survivor, records, lambda: len({tp.partition for tp in survivor[0].assignment()}) == 4
                and sum(map(len, records)) == 48)
    members[0].close()
    client.close()
