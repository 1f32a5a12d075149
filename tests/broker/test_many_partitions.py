"""Many partitions through a real broker process (issue 8): one CreateTopics request of many
topics (the topic table written once), a clean stop right after writing to every partition
keeps the data and each idempotent producer's state, and after ``kill -9`` every acknowledged
record of every partition is there."""

from __future__ import annotations

import os

from odradek.protocol import error_codes
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.produce import ProduceRequest
from odradek.protocol.messages.records.topic_record import TopicRecord
from odradek.protocol.metadata import iter_entries
from odradek.protocol.records.batch import Record, build_batch

from .conftest import RawClient
from .test_server import fetch_request, records_of

TOPICS = 30
PARTITIONS_PER_TOPIC = 4
PRODUCER_ID_BASE = 7000


def topic_names() -> list[str]:
    return [f"many_{index:02d}" for index in range(TOPICS)]


def create_all(client) -> list:
    request = CreateTopicsRequest(timeout_ms=30000, topics=[
        CreateTopicsRequest.CreatableTopic(name=name, num_partitions=PARTITIONS_PER_TOPIC, replication_factor=1)
        for name in topic_names()] + [
        # Collides with the first topic of the same request once '.' and '_' are taken for one.
        CreateTopicsRequest.CreatableTopic(name="many.00", num_partitions=1, replication_factor=1)])
    return client.request(request, 7).topics


def value(topic: str, partition: int, round_: int) -> bytes:
    return f"{topic}/{partition}/{round_}".encode()


def producer_id(topic_index: int, partition: int) -> int:
    return PRODUCER_ID_BASE + topic_index * PARTITIONS_PER_TOPIC + partition


def produce_round(client, round_: int, acks: int, sequence: int | None = None) -> list:
    """One record to every partition in one Produce request; idempotent (a producer id per
    partition) when ``sequence`` is given. Returns the partition responses."""
    topic_data = []
    for topic_index, name in enumerate(topic_names()):
        partitions = []
        for partition in range(PARTITIONS_PER_TOPIC):
            extra = {} if sequence is None else {"producer_id": producer_id(topic_index, partition),
                                                 "producer_epoch": 0, "base_sequence": sequence}
            batch = build_batch([Record(offset_delta=0, timestamp_delta=0, key=None,
                                        value=value(name, partition, round_))],
                                base_timestamp=1_700_000_000_000, **extra)
            partitions.append(ProduceRequest.TopicProduceData.PartitionProduceData(index=partition, records=batch))
        topic_data.append(ProduceRequest.TopicProduceData(name=name, partition_data=partitions))
    answer = client.request(ProduceRequest(acks=acks, timeout_ms=30000, topic_data=topic_data), 9)
    return [partition for topic in answer.responses for partition in topic.partition_responses]


def check_every_partition(client, rounds: int) -> None:
    for name in topic_names():
        for partition in range(PARTITIONS_PER_TOPIC):
            data = client.request(fetch_request(name, partition, 0), 12).responses[0].partitions[0]
            assert data.error_code == 0
            assert [record.value for record in records_of(data.records)] == [
                value(name, partition, round_) for round_ in range(rounds)], f"{name}-{partition}"


def test_many_partitions_survive_a_clean_stop_and_a_kill_9(broker_process, tmp_path):
    data_dir = tmp_path / "many"
    broker = broker_process(data_dir)
    client = RawClient(broker.host, broker.port)
    results = create_all(client)
    assert [result.error_code for result in results[:TOPICS]] == [error_codes.NONE] * TOPICS
    assert results[TOPICS].error_code == error_codes.INVALID_TOPIC_EXCEPTION
    # The creations are in the metadata log (fsynced before the answers), one TopicRecord each.
    metadata = os.path.join(data_dir, "__cluster_metadata-0", "00000000000000000000.log")
    with open(metadata, "rb") as handle:
        created = [entry.message.name for entry in iter_entries(handle.read())
                   if isinstance(entry.message, TopicRecord)]
    assert sorted(created) == topic_names()
    assert all(response.error_code == 0 for response in produce_round(client, 0, acks=-1, sequence=0))
    # Written just before the clean stop: the close flushes and snapshots these.
    assert all(response.error_code == 0 for response in produce_round(client, 1, acks=1, sequence=1))
    client.close()
    assert broker.stop() == 0

    broker = broker_process(data_dir)
    client = RawClient(broker.host, broker.port)
    check_every_partition(client, 2)
    # Each producer's state came back: its retry of the last batch is a duplicate (answered
    # with the original offset, nothing appended), a sequence gap is refused.
    for response in produce_round(client, 1, acks=-1, sequence=1):
        assert (response.error_code, response.base_offset) == (error_codes.NONE, 1)
    assert {response.error_code for response in produce_round(client, 9, acks=-1, sequence=5)} == {
        error_codes.OUT_OF_ORDER_SEQUENCE_NUMBER}
    check_every_partition(client, 2)
    # Acknowledged with acks=1 (not flushed), then the process is killed.
    assert all(response.error_code == 0 for response in produce_round(client, 2, acks=1, sequence=2))
    client.close()
    broker.kill()

    broker = broker_process(data_dir)
    client = RawClient(broker.host, broker.port)
    try:
        check_every_partition(client, 3)
        for response in produce_round(client, 2, acks=-1, sequence=2):  # the state was recovered too
            assert (response.error_code, response.base_offset) == (error_codes.NONE, 2)
        assert all(response.error_code == 0 for response in produce_round(client, 3, acks=-1, sequence=3))
        check_every_partition(client, 4)
    finally:
        client.close()
    assert broker.stop() == 0
