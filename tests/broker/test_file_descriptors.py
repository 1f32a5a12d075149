"""File descriptors in proportion to what is used (issue 8), against a real ``odradek serve``
started under a small open-files limit (soft and hard, as ``ulimit -n``):

* many partitions: every one takes a produce and serves a fetch, the broker's open files
  (``/proc/PID/fd``, sampled throughout) stay below the limit, and after a restart every
  partition's data is served again and takes more writes. 20,000 partitions under 4,096 is
  slow; 2,000 under 256 runs by default.
* out of descriptors anyway (client sockets took every one): CreateTopics is answered with
  KAFKA_STORAGE_ERROR for the topic, the connection stays, and once descriptors are free the
  same request succeeds; with idle segment files open, the broker closes some of them to make
  room instead of failing.
* out of descriptors while a request changes the topic table (AlterConfigs and
  IncrementalAlterConfigs on a topic and on a group, DeleteTopics): the metadata log they are
  appended to keeps its file open, so each succeeds, and the next start has them.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from odradek.protocol import error_codes
from odradek.protocol.messages.alter_configs import AlterConfigsRequest
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.delete_topics import DeleteTopicsRequest
from odradek.protocol.messages.describe_configs import DescribeConfigsRequest
from odradek.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest
from odradek.protocol.messages.fetch import FetchRequest
from odradek.protocol.messages.produce import ProduceRequest

from .conftest import RawClient
from .test_server import batch_of, records_of

PARTITIONS_PER_TOPIC = 10
TOPICS_PER_REQUEST = 100
# A clean stop flushes and closes every partition (fsyncs of each log and its indexes).
STOP_TIMEOUT_S = 180.0


class OpenFilesSampler:
    """Samples the broker's open descriptors in a thread until stopped; keeps the maximum."""

    def __init__(self, broker, interval: float = 0.01):
        self.broker = broker
        self.maximum = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                count = self.broker.open_files()
            except FileNotFoundError:  # the process exited
                return
            self.maximum = max(self.maximum, count)
            self.samples += 1
            self._stop.wait(interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.maximum


def topic_names(count: int) -> list[str]:
    return [f"fd-{index:05d}" for index in range(count)]


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def create_topics(client, names, partitions=PARTITIONS_PER_TOPIC):
    request = CreateTopicsRequest(timeout_ms=60000, topics=[CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=1) for name in names])
    return {topic.name: topic for topic in client.request(request, 5).topics}


def value_of(topic: str, partition: int, round_: int) -> bytes:
    return f"{topic}/{partition}/{round_}".encode()


def produce_all(client, names, round_: int) -> dict:
    """One record per partition of ``names`` in one acks=1 Produce; {(topic, partition): base offset}."""
    request = ProduceRequest(acks=1, timeout_ms=60000, topic_data=[ProduceRequest.TopicProduceData(
        name=name, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
            index=partition, records=batch_of(value_of(name, partition, round_)))
            for partition in range(PARTITIONS_PER_TOPIC)]) for name in names])
    answer = {}
    for topic in client.request(request, 9).responses:
        for partition in topic.partition_responses:
            assert partition.error_code == error_codes.NONE, (topic.name, partition.index, partition.error_code)
            answer[(topic.name, partition.index)] = partition.base_offset
    return answer


def fetch_all(client, names, offset: int) -> dict:
    """{(topic, partition): [values]} from ``offset``, one Fetch for every partition of ``names``."""
    request = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=256 << 20, isolation_level=0,
                           session_id=0, session_epoch=-1, topics=[FetchRequest.FetchTopic(topic=name, partitions=[
                               FetchRequest.FetchTopic.FetchPartition(partition=partition, fetch_offset=offset,
                                                                      partition_max_bytes=1 << 20)
                               for partition in range(PARTITIONS_PER_TOPIC)]) for name in names])
    response = client.request(request, 11)
    assert response.error_code == error_codes.NONE
    answer = {}
    for topic in response.responses:
        for partition in topic.partitions:
            assert partition.error_code == error_codes.NONE, (topic.topic, partition.partition_index, partition.error_code)
            answer[(topic.topic, partition.partition_index)] = [record.value for record in records_of(partition.records)]
    return answer


def assert_no_traceback(broker) -> None:
    log = broker.full_log()
    assert "Traceback" not in log, log[max(0, log.index("Traceback") - 2000):][:6000]


def many_partitions_on_one_broker(broker_process, topic_count: int, limit: int) -> None:
    names = topic_names(topic_count)
    broker = broker_process(None, open_files_limit=limit)
    sampler = OpenFilesSampler(broker)
    client = RawClient(broker.host, broker.port, timeout=120)
    for chunk in chunks(names, TOPICS_PER_REQUEST):
        created = create_topics(client, chunk)
        assert [created[name].error_code for name in chunk] == [error_codes.NONE] * len(chunk)
    for chunk in chunks(names, TOPICS_PER_REQUEST):
        assert set(produce_all(client, chunk, 0).values()) == {0}
    for chunk in chunks(names, TOPICS_PER_REQUEST):
        fetched = fetch_all(client, chunk, 0)
        assert fetched == {(name, p): [value_of(name, p, 0)] for name in chunk for p in range(PARTITIONS_PER_TOPIC)}
    client.close()
    assert broker.stop(STOP_TIMEOUT_S) == 0
    first_maximum = sampler.stop()
    assert_no_traceback(broker)
    assert "file descriptor budget" in broker.full_log()

    # A restart opens every partition again (every file is reopened on its first use).
    broker = broker_process(broker.data_dir, open_files_limit=limit)
    sampler = OpenFilesSampler(broker)
    client = RawClient(broker.host, broker.port, timeout=120)
    for chunk in chunks(names, TOPICS_PER_REQUEST):
        fetched = fetch_all(client, chunk, 0)
        assert fetched == {(name, p): [value_of(name, p, 0)] for name in chunk for p in range(PARTITIONS_PER_TOPIC)}
        assert set(produce_all(client, chunk, 1).values()) == {1}
    for chunk in chunks(names, TOPICS_PER_REQUEST):
        fetched = fetch_all(client, chunk, 1)
        assert fetched == {(name, p): [value_of(name, p, 1)] for name in chunk for p in range(PARTITIONS_PER_TOPIC)}
    client.close()
    assert broker.stop(STOP_TIMEOUT_S) == 0
    second_maximum = sampler.stop()
    assert_no_traceback(broker)
    assert sampler.samples > 10
    assert first_maximum < limit and second_maximum < limit, (first_maximum, second_maximum, limit)


def test_2000_partitions_under_an_open_files_limit_of_256(broker_process):
    many_partitions_on_one_broker(broker_process, topic_count=200, limit=256)


@pytest.mark.slow
def test_20000_partitions_under_an_open_files_limit_of_4096(broker_process):
    many_partitions_on_one_broker(broker_process, topic_count=2000, limit=4096)


def fill_descriptors(broker, limit: int, deadline_s: float = 20.0) -> list[socket.socket]:
    """Connect to the broker until its descriptor table is full (it then closes what it
    cannot accept); returns the sockets it kept."""
    sockets = []
    deadline = time.monotonic() + deadline_s
    while broker.open_files() < limit and time.monotonic() < deadline:
        sockets.append(socket.create_connection((broker.host, broker.port), timeout=5))
        if len(sockets) % 16 == 0:
            time.sleep(0.05)  # let the broker accept them
    time.sleep(0.2)
    assert broker.open_files() >= limit, (broker.open_files(), limit)
    return sockets


def cpu_seconds(broker) -> float:
    with open(f"/proc/{broker.process.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def close_all(sockets) -> None:
    for item in sockets:
        item.close()


def wait_for_free_descriptors(broker, count: int, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if broker.open_files() <= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the broker still holds {broker.open_files()} descriptors")


def test_out_of_descriptors_is_answered_with_an_error_code_and_the_broker_recovers(broker_process):
    limit = 128
    broker = broker_process(None, open_files_limit=limit)
    client = RawClient(broker.host, broker.port)
    idle = broker.open_files()

    # Nothing of the storage engine is open that could make room: the creation fails.
    sockets = fill_descriptors(broker, limit)
    # More connections while full are closed by the broker, not retried in a busy loop.
    cpu_before = cpu_seconds(broker)
    refused = [socket.create_connection((broker.host, broker.port), timeout=5) for _ in range(20)]
    time.sleep(1.0)
    assert cpu_seconds(broker) - cpu_before < 0.5
    close_all(refused)
    failed = create_topics(client, ["fd-full"], partitions=3)["fd-full"]
    assert failed.error_code == error_codes.KAFKA_STORAGE_ERROR
    assert "Too many open files" in failed.error_message
    # The connection stays, the broker answers.
    assert client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3).error_code == 0

    close_all(sockets)
    wait_for_free_descriptors(broker, idle + 8)
    assert create_topics(client, ["fd-full"], partitions=3)["fd-full"].error_code == error_codes.NONE
    for partition in range(3):
        request = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
            name="fd-full", partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                index=partition, records=batch_of(b"v%d" % partition))])])
        assert client.request(request, 9).responses[0].partition_responses[0].error_code == error_codes.NONE

    # Full again, but now idle segment files hold descriptors: the broker closes some of them
    # to create the next topic, and reopens them when they are read.
    sockets = fill_descriptors(broker, limit)
    assert create_topics(client, ["fd-more"], partitions=2)["fd-more"].error_code == error_codes.NONE
    request = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                           session_id=0, session_epoch=-1, topics=[FetchRequest.FetchTopic(topic="fd-full", partitions=[
                               FetchRequest.FetchTopic.FetchPartition(partition=p, fetch_offset=0,
                                                                      partition_max_bytes=1 << 20) for p in range(3)])])
    partitions = client.request(request, 11).responses[0].partitions
    assert [p.error_code for p in partitions] == [error_codes.NONE] * 3
    assert [[r.value for r in records_of(p.records)] for p in partitions] == [[b"v0"], [b"v1"], [b"v2"]]
    close_all(sockets)
    client.close()
    assert broker.stop() == 0
    assert_no_traceback(broker)


TOPIC_RESOURCE, GROUP_RESOURCE = 2, 32


def alter_configs(client, topic: str, configs: dict):
    request = AlterConfigsRequest(validate_only=False, resources=[AlterConfigsRequest.AlterConfigsResource(
        resource_type=TOPIC_RESOURCE, resource_name=topic, configs=[
            AlterConfigsRequest.AlterConfigsResource.AlterableConfig(name=name, value=value)
            for name, value in configs.items()])])
    return client.request(request, 2).responses


def incremental_alter_configs(client, resource_type: int, name: str, configs: dict):
    Resource = IncrementalAlterConfigsRequest.AlterConfigsResource
    request = IncrementalAlterConfigsRequest(validate_only=False, resources=[Resource(
        resource_type=resource_type, resource_name=name, configs=[
            Resource.AlterableConfig(name=key, config_operation=0, value=value) for key, value in configs.items()])])
    return client.request(request, 1).responses


# DescribeConfigs' config_source of an override, by resource type: TOPIC_CONFIG, GROUP_CONFIG.
_OVERRIDE_SOURCE = {TOPIC_RESOURCE: 1, GROUP_RESOURCE: 8}


def overrides(client, resource_type: int, name: str) -> dict:
    request = DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
        resource_type=resource_type, resource_name=name, configuration_keys=None)])
    result = client.request(request, 4).results[0]
    assert result.error_code == error_codes.NONE
    return {config.name: config.value for config in result.configs
            if config.config_source == _OVERRIDE_SOURCE[resource_type]}


def topic_overrides(client, topic: str) -> dict:
    return overrides(client, TOPIC_RESOURCE, topic)


def delete_topics(client, names):
    return client.request(DeleteTopicsRequest(topic_names=list(names), timeout_ms=30000), 5).responses


def test_out_of_descriptors_the_changes_of_the_metadata_log_need_no_new_file(broker_process):
    """The metadata log keeps its segment open: with every descriptor taken by client sockets,
    AlterConfigs and IncrementalAlterConfigs on a topic and on a group, and DeleteTopics, are
    appended to it and succeed (with odradek's old topic table file each rewrite needed a
    descriptor and was answered KAFKA_STORAGE_ERROR here)."""
    limit = 128
    broker = broker_process(None, open_files_limit=limit)
    client = RawClient(broker.host, broker.port)
    assert create_topics(client, ["fd-configs", "fd-doomed"], partitions=1)["fd-configs"].error_code == 0
    sockets = fill_descriptors(broker, limit)
    assert [a.error_code for a in alter_configs(client, "fd-configs", {"retention.ms": "1000"})] == [0]
    assert [a.error_code for a in incremental_alter_configs(client, TOPIC_RESOURCE, "fd-configs",
                                                            {"segment.ms": "60000"})] == [0]
    assert [a.error_code for a in incremental_alter_configs(client, GROUP_RESOURCE, "fd-group",
                                                            {"consumer.session.timeout.ms": "50000"})] == [0]
    assert broker.open_files() >= limit  # every descriptor was taken all along
    assert [a.error_code for a in delete_topics(client, ["fd-doomed"])] == [0]  # closes its files
    assert topic_overrides(client, "fd-configs") == {"retention.ms": "1000", "segment.ms": "60000"}
    close_all(sockets)
    client.close()
    assert broker.stop() == 0
    assert "Traceback" not in broker.full_log()
    # The changes are in the metadata log: the next start has them.
    again = broker_process(broker.data_dir)
    client = RawClient(again.host, again.port)
    assert topic_overrides(client, "fd-configs") == {"retention.ms": "1000", "segment.ms": "60000"}
    assert [a.error_code for a in delete_topics(client, ["fd-doomed"])] == [error_codes.UNKNOWN_TOPIC_OR_PARTITION]
    client.close()
