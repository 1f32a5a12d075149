"""The broker keeps its topics in the KRaft metadata log (``__cluster_metadata-0``), against a real
``odradek serve``:

* what a client changes (CreateTopics with configs, AlterConfigs, CreatePartitions, group
  configs, DeleteTopics) is there as Kafka's records, which Kafka's own DumpLogSegments prints,
  and a restart has it all;
* every start is a new raft epoch (``quorum-state``, a LeaderChange in the log);
* a data directory of an older odradek, whose topics are in ``odradek-topics.json``, keeps its
  topics, configs, group configs and records: the file is moved into the metadata log at the
  first start (renamed ``.migrated``), and a start that finds it again (a crash before the
  rename) adds nothing twice;
* a topic named ``__cluster_metadata`` is refused as Kafka refuses it;
* DescribeQuorum: Kafka's ``kafka-metadata-quorum`` describes the one-voter quorum;
* producer id blocks are ProducerIdsRecords in the log; an older ``odradek-producer-ids.json``
  moves there, and one that does not parse sends the ids past every one in use.
"""

from __future__ import annotations

import json
import os
import re
import uuid

from odradek.protocol import error_codes
from odradek.protocol.messages.create_partitions import CreatePartitionsRequest
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.describe_quorum import DescribeQuorumRequest
from odradek.protocol.messages.metadata import MetadataRequest
from odradek.protocol.metadata import iter_entries
from odradek.protocol.records.batch import CONTROL_LEADER_CHANGE
from odradek.storage.checkpoints import read_meta_properties, read_quorum_state, uuid_to_kafka
from odradek.storage.fs import OsFileSystem

from .conftest import RawClient
from .test_file_descriptors import (
    GROUP_RESOURCE,
    TOPIC_RESOURCE,
    alter_configs,
    delete_topics,
    incremental_alter_configs,
    overrides,
    topic_overrides,
)
from .test_idempotence import idempotent_batch, init_producer_id
from .test_server import batch_of, create_topic, fetch_request, produce, records_of

METADATA_DIR = "__cluster_metadata-0"


def metadata_entries(data_dir) -> list:
    directory = os.path.join(data_dir, METADATA_DIR)
    data = b"".join(open(os.path.join(directory, name), "rb").read()
                    for name in sorted(os.listdir(directory)) if name.endswith(".log"))
    return list(iter_entries(data))


def partition_counts(client, names) -> dict:
    request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name) for name in names],
                              allow_auto_topic_creation=False)
    return {topic.name: (topic.error_code, len(topic.partitions)) for topic in client.request(request, 12).topics}


def group_overrides(client, group: str) -> dict:
    return overrides(client, GROUP_RESOURCE, group)


def create_partitions(client, name: str, count: int):
    request = CreatePartitionsRequest(timeout_ms=30000, validate_only=False, topics=[
        CreatePartitionsRequest.CreatePartitionsTopic(name=name, count=count, assignments=None)])
    return client.request(request, 3).results[0]


def test_what_clients_change_is_in_the_metadata_log_as_kafka_writes_it(broker_process, tmp_path, kafka_jars):
    data_dir = tmp_path / "data"
    broker = broker_process(data_dir)
    client = RawClient(broker.host, broker.port)
    configs = [CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(name="cleanup.policy", value="compact")]
    assert create_topic(client, "orders", partitions=2, configs=configs).error_code == 0
    assert create_topic(client, "doomed").error_code == 0
    assert [answer.error_code for answer in alter_configs(client, "orders", {"retention.ms": "60000"})] == [0]
    assert create_partitions(client, "orders", 3).error_code == 0
    assert [answer.error_code for answer in incremental_alter_configs(
        client, GROUP_RESOURCE, "billing", {"consumer.session.timeout.ms": "50000"})] == [0]
    assert [answer.error_code for answer in delete_topics(client, ["doomed"])] == [0]
    assert produce(client, "orders", 2, batch_of(b"kept")).error_code == 0
    client.close()
    assert broker.stop() == 0

    entries = [entry for entry in metadata_entries(data_dir) if entry.control_type is None]
    changes = [(type(entry.message).__name__, getattr(entry.message, "name", None),
                getattr(entry.message, "partition_id", None)) for entry in entries]
    assert changes == [
        ("TopicRecord", "orders", None), ("PartitionRecord", None, 0), ("PartitionRecord", None, 1),
        ("ConfigRecord", "cleanup.policy", None),
        ("TopicRecord", "doomed", None), ("PartitionRecord", None, 0),
        ("ConfigRecord", "retention.ms", None),  # AlterConfigs replaces the set: cleanup.policy goes
        ("ConfigRecord", "cleanup.policy", None),
        ("PartitionRecord", None, 2),
        ("ConfigRecord", "consumer.session.timeout.ms", None),
        ("RemoveTopicRecord", None, None)]
    assert entries[7].message.value is None  # the removed override
    assert entries[9].message.resource_type == GROUP_RESOURCE
    assert all(entry.message.resource_type == TOPIC_RESOURCE for entry in entries[3:9:3])
    orders = entries[0].message.topic_id
    assert [entry.message.topic_id for entry in entries[1:3]] == [orders, orders]
    assert all(entry.message.replicas == [1] and entry.message.isr == [1] and entry.message.leader == 1
               for entry in entries if type(entry.message).__name__ == "PartitionRecord")

    # Kafka's DumpLogSegments decodes the log the broker wrote.
    segment = data_dir / METADATA_DIR / "00000000000000000000.log"
    output = kafka_jars.run_java(kafka_jars.DUMP_LOG_SEGMENTS, ["--cluster-metadata-decoder", "--files", str(segment)],
                                 timeout=120).stdout
    assert "isvalid: false" not in output and "Exception" not in output, output
    printed = [json.loads(found) for found in re.findall(r"payload: (\{.*\})$", output, re.MULTILINE)]
    assert [record["type"] for record in printed] == [
        "TOPIC_RECORD", "PARTITION_RECORD", "PARTITION_RECORD", "CONFIG_RECORD", "TOPIC_RECORD", "PARTITION_RECORD",
        "CONFIG_RECORD", "CONFIG_RECORD", "PARTITION_RECORD", "CONFIG_RECORD", "REMOVE_TOPIC_RECORD"]
    assert printed[0]["data"] == {"name": "orders", "topicId": uuid_to_kafka(orders)}
    assert "LeaderChange" in output

    again = broker_process(data_dir)
    client = RawClient(again.host, again.port)
    assert partition_counts(client, ["orders", "doomed"]) == {
        "orders": (0, 3), "doomed": (error_codes.UNKNOWN_TOPIC_OR_PARTITION, 0)}
    assert topic_overrides(client, "orders") == {"retention.ms": "60000"}
    assert group_overrides(client, "billing") == {"consumer.session.timeout.ms": "50000"}
    answer = client.request(fetch_request("orders", 2, 0), 12).responses[0].partitions[0]
    assert [record.value for record in records_of(answer.records)] == [b"kept"]
    client.close()


def test_every_start_is_a_new_epoch(broker_process, tmp_path):
    data_dir = tmp_path / "data"
    for epoch in (1, 2, 3):
        broker = broker_process(data_dir)
        state = read_quorum_state(OsFileSystem(), str(data_dir / METADATA_DIR / "quorum-state"))
        assert (state.leader_id, state.leader_epoch, state.voted_id) == (1, epoch, 1)
        assert broker.stop() == 0
    changes = [entry for entry in metadata_entries(data_dir) if entry.control_type == CONTROL_LEADER_CHANGE]
    assert [(entry.epoch, entry.message.leader_id) for entry in changes] == [(1, 1), (2, 1), (3, 1)]


def test_a_topic_table_of_an_older_odradek_moves_into_the_metadata_log(broker_process, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    orders_id = uuid.uuid4()
    table = {"version": 1,
             "topics": {"orders": {"topic_id": str(orders_id), "partitions": 3,
                                   "configs": {"retention.ms": "60000", "cleanup.policy": "compact,delete"}},
                        "plain": {"topic_id": str(uuid.uuid4()), "partitions": 1, "configs": {}}},
             "group_configs": {"billing": {"consumer.heartbeat.interval.ms": "4000"}}}
    (data_dir / "odradek-topics.json").write_text(json.dumps(table))
    broker = broker_process(data_dir)
    client = RawClient(broker.host, broker.port)
    assert partition_counts(client, ["orders", "plain"]) == {"orders": (0, 3), "plain": (0, 1)}
    assert topic_overrides(client, "orders") == {"retention.ms": "60000", "cleanup.policy": "compact,delete"}
    assert group_overrides(client, "billing") == {"consumer.heartbeat.interval.ms": "4000"}
    assert produce(client, "orders", 1, batch_of(b"after-migration")).error_code == 0
    client.close()
    assert broker.stop() == 0
    assert not (data_dir / "odradek-topics.json").exists()
    assert json.loads((data_dir / "odradek-topics.json.migrated").read_text()) == table
    migrated = [entry for entry in metadata_entries(data_dir) if entry.control_type is None]
    assert [entry.message.topic_id for entry in migrated if type(entry.message).__name__ == "TopicRecord"][0] == orders_id

    # The file found again (a crash between the log's fsync and the rename): nothing doubles.
    (data_dir / "odradek-topics.json").write_text(json.dumps(table))
    again = broker_process(data_dir)
    client = RawClient(again.host, again.port)
    assert partition_counts(client, ["orders", "plain"]) == {"orders": (0, 3), "plain": (0, 1)}
    answer = client.request(fetch_request("orders", 1, 0), 12).responses[0].partitions[0]
    assert [record.value for record in records_of(answer.records)] == [b"after-migration"]
    client.close()
    assert again.stop() == 0
    assert [entry for entry in metadata_entries(data_dir) if entry.control_type is None] == migrated


def test_a_topic_named_after_the_metadata_log_is_refused(raw_client):
    answer = create_topic(raw_client(), "__cluster_metadata")
    assert answer.error_code == error_codes.INVALID_REQUEST
    assert answer.error_message == "Creation of internal topic __cluster_metadata is prohibited."


def test_kafka_metadata_quorum_describes_the_one_voter_quorum(broker_process, tmp_path, kafka_jars):
    broker = broker_process(tmp_path / "data")
    client = RawClient(broker.host, broker.port)
    assert create_topic(client, "described").error_code == 0
    bootstrap = f"{broker.host}:{broker.port}"
    status = kafka_jars.run_java(kafka_jars.METADATA_QUORUM_COMMAND,
                                 ["--bootstrap-server", bootstrap, "describe", "--status"], timeout=120).stdout
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.MULTILINE))
    entries = metadata_entries(tmp_path / "data")
    meta = read_meta_properties(OsFileSystem(), str(tmp_path / "data" / "meta.properties"))
    assert fields["ClusterId"] == meta["cluster.id"]
    assert (fields["LeaderId"], fields["LeaderEpoch"]) == ("1", "1")
    assert fields["HighWatermark"] == str(entries[-1].offset + 1)  # the log's end: all of it committed
    assert (fields["MaxFollowerLag"], fields["MaxFollowerLagTimeMs"]) == ("0", "0")
    assert json.loads(fields["CurrentVoters"]) == [{
        "id": 1, "directoryId": meta["directory.id"], "endpoints": [f"PLAINTEXT://{bootstrap}"]}]
    assert json.loads(fields["CurrentObservers"]) == []
    replication = kafka_jars.run_java(kafka_jars.METADATA_QUORUM_COMMAND,
                                      ["--bootstrap-server", bootstrap, "describe", "--replication"], timeout=120).stdout
    rows = [line.split() for line in replication.splitlines()[1:] if line.strip()]
    assert [(row[0], row[1], row[2], row[-1]) for row in rows] == [("1", meta["directory.id"], fields["HighWatermark"],
                                                                   "Leader")]
    client.close()


def test_describe_quorum_of_another_partition_is_unknown(raw_client):
    Topic, Partition = DescribeQuorumRequest.TopicData, DescribeQuorumRequest.PartitionData
    client = raw_client()
    for topics in ([Topic(topic_name="__cluster_metadata", partitions=[Partition(partition_index=1)])],
                   [Topic(topic_name="orders", partitions=[Partition(partition_index=0)])], []):
        answer = client.request(DescribeQuorumRequest(topics=topics), 2)
        assert (answer.error_code, answer.topics) == (error_codes.UNKNOWN_TOPIC_OR_PARTITION, [])
    answer = client.request(DescribeQuorumRequest(topics=[
        Topic(topic_name="__cluster_metadata", partitions=[Partition(partition_index=0)])]), 0)
    assert answer.topics, answer
    [partition] = answer.topics[0].partitions
    assert (answer.error_code, partition.leader_id, [voter.replica_id for voter in partition.current_voters]) == (0, 1, [1])
    assert partition.high_watermark == partition.current_voters[0].log_end_offset > 0


def test_producer_id_blocks_are_in_the_metadata_log_and_an_older_file_moves_there(broker_process, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "odradek-producer-ids.json").write_text('{"version": 1, "next_block_start": 5000}')
    broker = broker_process(data_dir)
    client = RawClient(broker.host, broker.port)
    assert [init_producer_id(client).producer_id for _ in range(3)] == [5000, 5001, 5002]
    client.close()
    broker.kill()  # no clean stop: the reserved block is what counts
    assert not (data_dir / "odradek-producer-ids.json").exists()
    assert (data_dir / "odradek-producer-ids.json.migrated").exists()
    blocks = [entry.message.next_producer_id for entry in metadata_entries(data_dir)
              if type(entry.message).__name__ == "ProducerIdsRecord"]
    assert blocks == [5000, 6000]  # the file's block, then the block handed out from
    again = broker_process(data_dir)
    client = RawClient(again.host, again.port)
    assert init_producer_id(client).producer_id == 6000  # the rest of the block is never reused
    client.close()


def test_a_producer_id_file_that_does_not_parse_sends_the_ids_past_every_one_in_use(broker_process, tmp_path):
    data_dir = tmp_path / "data"
    broker = broker_process(data_dir)
    client = RawClient(broker.host, broker.port)
    assert create_topic(client, "idem").error_code == 0
    used = init_producer_id(client).producer_id
    assert produce(client, "idem", 0, idempotent_batch(used, 0, 0, b"a")).error_code == 0
    client.close()
    assert broker.stop() == 0
    (data_dir / "odradek-producer-ids.json").write_bytes(b"{not json")
    again = broker_process(data_dir)
    client = RawClient(again.host, again.port)
    assert init_producer_id(client).producer_id >= (used // 1000 + 2) * 1000
    client.close()
    assert (data_dir / "odradek-producer-ids.json.damaged").exists()
    assert "the producer id block file does not parse" in again.full_log()
