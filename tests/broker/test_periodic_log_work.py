"""The broker's periodic log work beyond retention: the offset checkpoints are written while it
runs (so a kill -9 keeps a DeleteRecords and the high watermark), and idle producer ids expire
after ``producer.id.expiration.ms``."""

from __future__ import annotations

import time

from odradek.protocol.messages.delete_records import DeleteRecordsRequest
from odradek.protocol.messages.describe_producers import DescribeProducersRequest
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.storage.checkpoints import read_offset_checkpoint
from odradek.storage.fs import OsFileSystem

from .conftest import RawClient
from odradek.protocol.records.batch import Record, build_batch

from .test_idempotence import init_producer_id
from .test_server import batch_of, create_topic, produce


def wait_for(condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def earliest_offset(client, topic):
    request = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsRequest.ListOffsetsTopic(
        name=topic, partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
            partition_index=0, timestamp=-2)])])
    return client.request(request, 7).topics[0].partitions[0].offset


def test_delete_records_and_high_watermark_survive_kill_9_once_checkpointed(broker_process, tmp_path):
    data_dir = tmp_path / "checkpointed"
    first = broker_process(data_dir, "replica.high.watermark.checkpoint.interval.ms=100")
    client = RawClient(first.host, first.port)
    create_topic(client, "trimmed")
    for i in range(5):
        assert produce(client, "trimmed", 0, batch_of(b"%d" % i)).error_code == 0
    request = DeleteRecordsRequest(topics=[DeleteRecordsRequest.DeleteRecordsTopic(
        name="trimmed", partitions=[DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition(
            partition_index=0, offset=3)])], timeout_ms=5000)
    answer = client.request(request, 2).topics[0].partitions[0]
    assert (answer.error_code, answer.low_watermark) == (0, 3)
    client.close()

    def checkpointed(name):
        path = data_dir / name
        return path.exists() and read_offset_checkpoint(OsFileSystem(), str(path)).get(("trimmed", 0))

    # Written by the running broker, not at a clean stop (it is killed below).
    wait_for(lambda: checkpointed("log-start-offset-checkpoint") == 3, what="the log start checkpoint")
    wait_for(lambda: checkpointed("replication-offset-checkpoint") == 5, what="the high watermark checkpoint")
    # acks=all synced the records, not their indexes: as in Kafka, the recovery point moves at
    # rolls and flushes only, and a restart rescans the segment from there.
    assert checkpointed("recovery-point-offset-checkpoint") == 0
    first.kill()

    second = broker_process(data_dir)
    client = RawClient(second.host, second.port)
    try:
        # Offsets 3 and 4 lie in the same segment as the deleted ones: only the checkpoint
        # remembers where the log starts.
        assert earliest_offset(client, "trimmed") == 3
    finally:
        client.close()


def fresh_idempotent_batch(producer_id, sequence, value):
    # Expiry counts from the batch's timestamp (Kafka's ProducerStateEntry.lastTimestamp).
    return build_batch([Record(0, 0, None, value)], producer_id=producer_id, producer_epoch=0,
                       base_sequence=sequence, base_timestamp=int(time.time() * 1000))


def test_idle_producer_ids_expire(broker_process):
    broker = broker_process(None, "producer.id.expiration.ms=3000", "producer.id.expiration.check.interval.ms=100")
    client = RawClient(broker.host, broker.port)
    try:
        create_topic(client, "expiring")
        pid = init_producer_id(client).producer_id
        assert produce(client, "expiring", 0, fresh_idempotent_batch(pid, 0, b"a")).error_code == 0

        def active_producers():
            request = DescribeProducersRequest(topics=[DescribeProducersRequest.TopicRequest(
                name="expiring", partition_indexes=[0])])
            return [p.producer_id for p in client.request(request, 0).topics[0].partitions[0].active_producers]

        assert active_producers() == [pid]
        wait_for(lambda: active_producers() == [], what="the producer id to expire")
        # An expired producer that writes again starts over, as in Kafka: sequence 0 is a new
        # batch at the next offset, not a duplicate of the first (answered with offset 0).
        again = produce(client, "expiring", 0, fresh_idempotent_batch(pid, 0, b"b"))
        assert (again.error_code, again.base_offset) == (0, 1)
    finally:
        client.close()


def test_deleted_segments_stay_as_deleted_files_for_the_delay(broker_process, tmp_path):
    """log.segment.delete.delay.ms: DeleteRecords renames the condemned segments' files to
    *.deleted at once; the periodic task unlinks them once the delay has passed."""
    data_dir = tmp_path / "delayed"
    broker = broker_process(data_dir, "log.segment.delete.delay.ms=1500", "log.segment.bytes=150")
    client = RawClient(broker.host, broker.port)
    try:
        create_topic(client, "trimmed")
        for i in range(5):
            assert produce(client, "trimmed", 0, batch_of(b"%d" % i * 50)).error_code == 0
        request = DeleteRecordsRequest(topics=[DeleteRecordsRequest.DeleteRecordsTopic(
            name="trimmed", partitions=[DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition(
                partition_index=0, offset=4)])], timeout_ms=5000)
        answer = client.request(request, 2).topics[0].partitions[0]
        assert (answer.error_code, answer.low_watermark) == (0, 4)
        partition_dir = data_dir / "trimmed-0"

        def deleted_logs():
            return sorted(p.name for p in partition_dir.iterdir() if p.name.endswith(".log.deleted"))

        assert deleted_logs() == [f"{offset:020d}.log.deleted" for offset in range(4)]
        assert earliest_offset(client, "trimmed") == 4
        wait_for(lambda: not deleted_logs(), what="the delayed deletion")
        assert sorted(p.name for p in partition_dir.iterdir() if p.name.endswith(".log")) == [f"{4:020d}.log"]
    finally:
        client.close()
