"""The same raw requests to a real Apache Kafka broker (from the Maven jars, KRaft combined
mode, started as compat/make_kafka_fixture.py starts it) and to ``odradek serve``: the answers
must agree field by field, where Kafka's own answer is the specification.

Covered: the ACL APIs without an authorizer (DescribeAcls, CreateAcls, DeleteAcls: advertised
ranges, SECURITY_DISABLED answers at v1-3, connections closed for UNKNOWN elements and v0, what
confluent-kafka's admin client and Kafka's ``kafka-acls`` report), KIP-714 telemetry without a
metrics plugin (GetTelemetrySubscriptions and PushTelemetry left out of ApiVersions, yet
answered: subscription fields, throttling, the checks of a push in order), Produce per-record
errors (a keyless record on a compacted topic, timestamps out of bounds: error code,
record_errors, error_message, offsets), the transaction APIs of Kafka's admin client and
``kafka-transactions`` (Describe/ListTransactions, DescribeProducers, WriteTxnMarkers, EndTxn),
a transaction fenced by a second producer (the epoch left, the fenced epoch's error code at each
version of EndTxn, AddPartitionsToTxn, AddOffsetsToTxn and InitProducerId), a transaction
aborted by the broker for its timeout (its state and epoch, then the producer's EndTxn) and
fetch sessions (KIP-227,
tests/broker/fetch_session_scenarios.py: every session id / epoch combination, a full session
cache, a session's topic deleted and recreated, and eviction two minutes on).

Slow: one Kafka JVM for the module (about 20 s to start on a loaded machine), two more for
the session cache tests, and the eviction test waits two minutes. Java and Maven
are required: without them the fixture raises (a failure, not a skip).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "compat"))
sys.path.insert(0, str(REPO / "tests"))
import kafka_jars  # noqa: E402  (a sibling script)
import make_kafka_fixture as kafka_broker_setup  # noqa: E402
from broker import fetch_session_scenarios  # noqa: E402
from broker.conftest import BrokerProcess, RawClient  # noqa: E402

from odradek.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest  # noqa: E402
from odradek.protocol.messages.api_versions import ApiVersionsRequest  # noqa: E402
from odradek.protocol.messages.create_acls import AclCreation, CreateAclsRequest  # noqa: E402
from odradek.protocol.messages.delete_acls import DeleteAclsFilter, DeleteAclsRequest  # noqa: E402
from odradek.protocol.messages.describe_acls import DescribeAclsRequest  # noqa: E402
from odradek.protocol.messages.create_topics import CreateTopicsRequest  # noqa: E402
from odradek.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest  # noqa: E402
from odradek.protocol.messages.get_telemetry_subscriptions import GetTelemetrySubscriptionsRequest  # noqa: E402
from odradek.protocol.messages.produce import ProduceRequest  # noqa: E402
from odradek.protocol import error_codes  # noqa: E402
from odradek.protocol.messages.add_partitions_to_txn import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic  # noqa: E402
from odradek.protocol.messages.describe_producers import DescribeProducersRequest  # noqa: E402
from odradek.protocol.messages.describe_transactions import DescribeTransactionsRequest  # noqa: E402
from odradek.protocol.messages.end_txn import EndTxnRequest  # noqa: E402
from odradek.protocol.messages.find_coordinator import FindCoordinatorRequest  # noqa: E402
from odradek.protocol.messages.init_producer_id import InitProducerIdRequest  # noqa: E402
from odradek.protocol.messages.list_transactions import ListTransactionsRequest  # noqa: E402
from odradek.protocol.messages.write_txn_markers import (  # noqa: E402
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
)
from odradek.protocol.messages.push_telemetry import PushTelemetryRequest  # noqa: E402
from odradek.protocol.records.batch import Record, build_batch  # noqa: E402

pytestmark = pytest.mark.slow

ZERO = uuid.UUID(int=0)
Topic = CreateTopicsRequest.CreatableTopic
TopicConfig = Topic.CreatableTopicConfig


@contextlib.contextmanager
def running_kafka(work: Path, extra_properties: tuple[str, ...] = ()):
    """(host, port) of a Kafka broker started in ``work`` with ``extra_properties`` lines."""
    kafka_jars.ensure()
    broker_port, controller_port = kafka_broker_setup.free_port(), kafka_broker_setup.free_port()
    properties = work / "server.properties"
    properties.write_text(kafka_broker_setup.server_properties(work, broker_port, controller_port)
                          + "".join(f"{line}\n" for line in extra_properties))
    kafka_jars.run_java(kafka_jars.STORAGE_TOOL, ["format", "-t", kafka_broker_setup.new_cluster_id(), "-c",
                                                  str(properties)], timeout=120)
    log_path = work / "kafka.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(kafka_jars.java_command(kafka_jars.KAFKA_SERVER, [str(properties)], heap="512m"),
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        kafka_broker_setup.wait_for_port(broker_port, process, kafka_broker_setup.BROKER_START_TIMEOUT, log_path)
        yield "127.0.0.1", broker_port
    finally:
        kafka_broker_setup.stop(process)


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    """(host, port) of a running Kafka broker."""
    with running_kafka(tmp_path_factory.mktemp("kafka")) as address:
        yield address


@pytest.fixture(scope="module")
def odradek(tmp_path_factory):
    directory = tmp_path_factory.mktemp("odradek")
    process = BrokerProcess(directory / "data", (), directory / "broker.log")
    yield process.host, process.port
    assert process.stop() == 0, process.log()


def telemetry_answers(host, port) -> list:
    client = RawClient(host, port, timeout=30)
    try:
        def get(instance_id=ZERO):
            return client.request(GetTelemetrySubscriptionsRequest(client_instance_id=instance_id), 0)

        def push(instance_id, subscription_id, **fields):
            return client.request(PushTelemetryRequest(client_instance_id=instance_id,
                                                       subscription_id=subscription_id, **fields), 0).error_code

        advertised = {item.api_key for item in client.request(
            ApiVersionsRequest(client_software_name="compat", client_software_version="1"), 3).api_keys}
        first = get()
        answers = [
            ("advertised", sorted(advertised & {71, 72})),
            ("subscription", first.error_code, first.client_instance_id != ZERO, first.accepted_compression_types,
             first.push_interval_ms, first.telemetry_max_bytes, first.delta_temporality, first.requested_metrics),
        ]
        again = get(first.client_instance_id)
        answers.append(("get again", again.error_code, again.client_instance_id))
        answers.append(("push zero id", push(ZERO, first.subscription_id)))
        answers.append(("push wrong subscription", push(first.client_instance_id, first.subscription_id + 1)))
        answers.append(("get after refusal", get(first.client_instance_id).error_code))
        fresh = get()
        answers.append(("push", push(fresh.client_instance_id, fresh.subscription_id, metrics=b"x" * 10)))
        answers.append(("push early", push(fresh.client_instance_id, fresh.subscription_id, metrics=b"x")))
        answers.append(("push terminating", push(fresh.client_instance_id, fresh.subscription_id, terminating=True)))
        answers.append(("after terminating", push(fresh.client_instance_id, fresh.subscription_id, terminating=True)))
        fresh = get()
        answers.append(("unknown codec", push(fresh.client_instance_id, fresh.subscription_id, compression_type=9)))
        fresh = get()
        answers.append(("too large", push(fresh.client_instance_id, fresh.subscription_id, metrics=b"m" * (1 << 20 | 1))))
        return answers
    finally:
        client.close()


def acl_answers(host, port) -> list:
    """Raw ACL requests at every version, then the same through confluent-kafka and kafka-acls."""
    def describe(**fields):
        values = dict(resource_type_filter=1, pattern_type_filter=3, operation=1, permission_type=1)
        return DescribeAclsRequest(**{**values, **fields})

    def create(**fields):
        values = dict(resource_type=2, resource_name="t", resource_pattern_type=3, principal="User:a", host="*",
                      operation=3, permission_type=3)
        return CreateAclsRequest(creations=[AclCreation(**values), AclCreation(**{**values, **fields})])

    def delete(**fields):
        values = dict(resource_type_filter=1, pattern_type_filter=3, operation=1, permission_type=1)
        return DeleteAclsRequest(filters=[DeleteAclsFilter(**values), DeleteAclsFilter(**{**values, **fields})])

    def closes(message, version) -> bool:
        client = RawClient(host, port, timeout=30)
        try:
            client.send(message, version)
            return client.is_closed_by_peer(10)
        finally:
            client.close()

    answers = []
    client = RawClient(host, port, timeout=30)
    try:
        ranges = {item.api_key: (item.min_version, item.max_version) for item in client.request(
            ApiVersionsRequest(client_software_name="compat", client_software_version="1"), 3).api_keys}
        answers.append(("advertised", [ranges.get(key) for key in (29, 30, 31)]))
        for version in range(1, 4):
            described = client.request(describe(resource_type_filter=7 if version == 3 else 2,
                                                pattern_type_filter=1), version)
            answers.append(("describe", version, described.throttle_time_ms, described.error_code,
                            described.error_message, described.resources))
            created = client.request(create(resource_type=3, resource_pattern_type=4), version)
            answers.append(("create", version, [(r.error_code, r.error_message) for r in created.results]))
            answers.append(("create none", version, client.request(CreateAclsRequest(creations=[]), version).results))
            deleted = client.request(delete(resource_type_filter=2, resource_name_filter="t"), version)
            answers.append(("delete", version, [(r.error_code, r.error_message, r.matching_acls)
                                                for r in deleted.filter_results]))
    finally:
        client.close()
    for build, fields in ((describe, ("resource_type_filter", "pattern_type_filter", "operation", "permission_type")),
                          (create, ("resource_type", "resource_pattern_type", "operation", "permission_type")),
                          (delete, ("resource_type_filter", "pattern_type_filter", "operation", "permission_type"))):
        answers.append(("unknown closes", build.__name__, [closes(build(**{field: 0}), 3) for field in fields]))
        answers.append(("v0 closes", build.__name__, closes(build(), 0)))

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType)

    def outcome(future):
        try:
            return ("result", future.result(timeout=30))
        except KafkaException as error:
            return ("error", error.args[0].code(), error.args[0].str())

    admin = AdminClient({"bootstrap.servers": f"{host}:{port}"})
    any_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                  AclPermissionType.ANY)
    binding = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.READ,
                         AclPermissionType.ALLOW)
    answers.append(("confluent describe", outcome(admin.describe_acls(any_filter, request_timeout=20))))
    answers.append(("confluent create", [outcome(f) for f in admin.create_acls([binding], request_timeout=20).values()]))
    answers.append(("confluent delete", [outcome(f) for f in admin.delete_acls([any_filter], request_timeout=20).values()]))

    server = ["--bootstrap-server", f"{host}:{port}"]
    for args in (["--list"], ["--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"],
                 ["--remove", "--force", "--topic", "t"]):
        result = kafka_jars.run_java("org.apache.kafka.tools.AclCommand", server + args, check=False, timeout=120)
        answers.append(("kafka-acls", args[0], result.returncode, (result.stdout + result.stderr).splitlines()[:1]))
    return answers


def record_error_answers(host, port) -> list:
    client = RawClient(host, port, timeout=30)
    suffix = uuid.uuid4().hex[:8]
    compacted, bounded = f"compacted-{suffix}", f"bounded-{suffix}"
    try:
        created = client.request(CreateTopicsRequest(timeout_ms=10000, topics=[
            Topic(name=compacted, num_partitions=1, replication_factor=1,
                  configs=[TopicConfig(name="cleanup.policy", value="compact")]),
            Topic(name=bounded, num_partitions=1, replication_factor=1,
                  configs=[TopicConfig(name="message.timestamp.before.max.ms", value="60000"),
                           TopicConfig(name="message.timestamp.after.max.ms", value="60000")])]), 5)
        assert [topic.error_code for topic in created.topics] == [0, 0]

        def produce(topic, records, version=9):
            batch = build_batch(records, base_timestamp=int(time.time() * 1000))
            request = ProduceRequest(acks=1, timeout_ms=10000, topic_data=[ProduceRequest.TopicProduceData(
                name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=batch)])])
            for _ in range(50):  # Kafka's leader for a new topic may take a moment
                answer = client.request(request, version).responses[0].partition_responses[0]
                if answer.error_code not in (3, 6):  # UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
                    break
                time.sleep(0.2)
            # Timestamps differ between the runs: compare the messages with numbers masked.
            return (answer.error_code, answer.base_offset, answer.log_start_offset,
                    [(item.batch_index, re.sub(r"\d{6,}", "N", item.batch_index_error_message.replace(suffix, "*")))
                     for item in answer.record_errors],
                    None if answer.error_message is None else answer.error_message.replace(suffix, "*"))

        keys = [b"a", None, b"c", None]
        return [
            produce(compacted, [Record(i, 0, key, b"v") for i, key in enumerate(keys)]),
            produce(compacted, [Record(i, 0, key, b"v") for i, key in enumerate(keys)], version=7),
            produce(compacted, [Record(0, 0, b"k", b"kept")]),
            produce(bounded, [Record(0, 0, b"k", b"now"), Record(1, -3_600_000, b"k", b"old"),
                              Record(2, 3_600_000, b"k", b"future")]),
            produce(bounded, [Record(0, 0, b"k", b"now")]),
        ]
    finally:
        client.close()


# Topic configs for CreateTopics (validate_only) and IncrementalAlterConfigs: accepted ones, an
# unknown name, values that do not parse or are out of range, and Kafka 4.4's new topic configs.
CONFIG_CASES = [
    ("retention.ms", "60000"), ("cleanup.policy", "compact,delete"), ("no.such.config", "1"),
    ("retention.ms", "-2"), ("segment.bytes", "x"), ("cleanup.policy", "sometimes"),
    ("cleanup.policy", "compact,sometimes"),
    ("min.cleanable.dirty.ratio", "2"), ("remote.copy.lag.ms", "5"), ("remote.copy.lag.bytes", "-2"),
    ("errors.deadletterqueue.group.enable", "true"),
]


# Answers that mean "not yet": Kafka creates __transaction_state and elects leaders after the
# first request for a transactional id or a new topic, and a transaction being ended holds the
# next InitProducerId.
TRANSIENT_ERRORS = (error_codes.COORDINATOR_NOT_AVAILABLE, error_codes.NOT_COORDINATOR,
                    error_codes.COORDINATOR_LOAD_IN_PROGRESS, error_codes.CONCURRENT_TRANSACTIONS,
                    error_codes.UNKNOWN_TOPIC_OR_PARTITION, error_codes.NOT_LEADER_OR_FOLLOWER)


def retried(send, retriable=TRANSIENT_ERRORS):
    """send() -> (answer, error code), again while the code is a transient one (30 s at most)."""
    for _ in range(150):
        answer, code = send()
        if code not in retriable:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"still {code}")


def sending(client, request, version, error_of=lambda answer: answer.error_code):
    """What ``retried`` takes: send ``request`` at ``version``; (answer, its error code)."""
    return lambda: (answer := client.request(request, version), error_of(answer))


def transaction_admin_answers(host, port) -> list:
    """The transaction APIs that Kafka's kafka-transactions tool and admin client use, around a
    transaction opened, committed and looked at: DescribeTransactions (known, unknown and empty
    ids, each state), ListTransactions (state, producer id, duration and pattern filters, an
    unknown state name, an invalid pattern), DescribeProducers (an open transaction, a partition
    without producers, an unknown partition), WriteTxnMarkers (a partition with no transaction,
    an unknown topic) and EndTxn of an unknown id. Producer ids are given relative to the first
    one each broker hands out; times as whether they are set."""
    client = RawClient(host, port, timeout=30)
    suffix = uuid.uuid4().hex[:8]
    topic, tid, other = f"txn-admin-{suffix}", f"admin-{suffix}", f"admin-none-{suffix}"
    try:
        created = client.request(CreateTopicsRequest(timeout_ms=10000, topics=[
            Topic(name=topic, num_partitions=2, replication_factor=1)]), 5)
        assert created.topics[0].error_code == 0

        retried(lambda: (None, client.request(FindCoordinatorRequest(key_type=1, coordinator_keys=[tid]), 4)
                         .coordinators[0].error_code))
        init = retried(lambda: (answer := client.request(InitProducerIdRequest(
            transactional_id=tid, transaction_timeout_ms=60000, producer_id=-1, producer_epoch=-1), 4),
            answer.error_code))
        base, epoch = init.producer_id, init.producer_epoch
        ranges = {item.api_key: item.max_version for item in client.request(
            ApiVersionsRequest(client_software_name="compat", client_software_version="1"), 3).api_keys}
        answers: list = [("max versions", [ranges.get(key) for key in (27, 61, 65, 66)]), ("init", init.error_code, epoch)]

        def described(*ids):
            states = client.request(DescribeTransactionsRequest(transactional_ids=list(ids)), 0).transaction_states
            return [(state.error_code, state.transactional_id.replace(suffix, "*"), state.transaction_state,
                     state.transaction_timeout_ms, state.transaction_start_time_ms > 0,
                     state.producer_id - base if state.error_code == 0 else state.producer_id,
                     state.producer_epoch, [(t.topic.replace(suffix, "*"), t.partitions) for t in state.topics])
                    for state in states]

        def listed(version, **filters):
            answer = client.request(ListTransactionsRequest(**{"state_filters": [], "producer_id_filters": [],
                                                                **filters}), version)
            return (answer.error_code, answer.unknown_state_filters,
                    sorted((t.transactional_id.replace(suffix, "*"), t.producer_id - base, t.transaction_state)
                           for t in answer.transaction_states if t.transactional_id.endswith(suffix)))

        def producers():
            answer = client.request(DescribeProducersRequest(topics=[DescribeProducersRequest.TopicRequest(
                name=topic, partition_indexes=[0, 1, 7])]), 0)
            return [(p.partition_index, p.error_code, p.error_message is not None,
                     [(s.producer_id - base, s.producer_epoch, s.last_sequence, s.coordinator_epoch,
                       s.current_txn_start_offset, s.last_timestamp > 0) for s in p.active_producers])
                    for p in answer.topics[0].partitions]

        answers.append(("describe empty", described(tid, other, "")))
        added = client.request(AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=tid, v3_and_below_producer_id=base, v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=[AddPartitionsToTxnTopic(name=topic, partitions=[0])]), 3)
        answers.append(("add", [(r.partition_index, r.partition_error_code)
                                for t in added.results_by_topic_v3_and_below for r in t.results_by_partition]))
        batch = build_batch([Record(0, 0, b"k", b"v")], producer_id=base, producer_epoch=epoch, base_sequence=0,
                            transactional=True, base_timestamp=int(time.time() * 1000))
        produced = retried(lambda: (answer := client.request(ProduceRequest(
            transactional_id=tid, acks=-1, timeout_ms=10000, topic_data=[ProduceRequest.TopicProduceData(
                name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                    index=0, records=batch)])]), 9).responses[0].partition_responses[0], answer.error_code))
        answers.append(("produce", produced.error_code, produced.base_offset))
        answers.append(("describe ongoing", described(tid)))
        answers.append(("list", listed(0)))
        answers.append(("list states", listed(1, state_filters=["Ongoing", "Bogus"])))
        answers.append(("list producer", listed(1, producer_id_filters=[base])))
        answers.append(("list other producer", listed(1, producer_id_filters=[base + 1000])))
        answers.append(("list duration", listed(1, duration_filter=3_600_000)))
        if ranges.get(66, 0) >= 2:
            answers.append(("list pattern", listed(2, transactional_id_pattern=f"admin-{suffix[:4]}.*")))
            answers.append(("list bad pattern", listed(2, transactional_id_pattern="(")))
        answers.append(("producers ongoing", producers()))

        markers = client.request(WriteTxnMarkersRequest(markers=[WritableTxnMarker(
            producer_id=base, producer_epoch=epoch, transaction_result=True, coordinator_epoch=0,
            topics=[WritableTxnMarkerTopic(name=topic, partition_indexes=[1]),
                    WritableTxnMarkerTopic(name=f"no-such-{suffix}", partition_indexes=[0])])]), 1)
        # Kafka gathers the answer in hash maps: the topics' order is not part of it.
        answers.append(("markers", sorted((t.name.replace(suffix, "*"), sorted((p.partition_index, p.error_code)
                                                                               for p in t.partitions))
                                          for m in markers.markers for t in m.topics)))
        ended = client.request(EndTxnRequest(transactional_id=tid, producer_id=base, producer_epoch=epoch,
                                             committed=True), 3)
        answers.append(("end", ended.error_code))
        for _ in range(100):
            if described(tid)[0][2] == "CompleteCommit":
                break
            time.sleep(0.1)
        answers.append(("describe committed", described(tid)))
        answers.append(("producers committed", producers()))
        unknown = client.request(EndTxnRequest(transactional_id=other, producer_id=base, producer_epoch=0,
                                               committed=False), 3)
        answers.append(("end unknown", unknown.error_code))
        return answers
    finally:
        client.close()


def topic_config_answers(host, port) -> list:
    client = RawClient(host, port, timeout=30)
    topic = f"configs-{uuid.uuid4().hex[:8]}"
    try:
        answers = []
        for name, value in CONFIG_CASES:
            checked = client.request(CreateTopicsRequest(timeout_ms=10000, validate_only=True, topics=[
                Topic(name=topic, num_partitions=1, replication_factor=1,
                      configs=[TopicConfig(name=name, value=value)])]), 7).topics[0]
            answers.append(("create", name, value, checked.error_code, checked.error_message))
        created = client.request(CreateTopicsRequest(timeout_ms=10000, topics=[
            Topic(name=topic, num_partitions=1, replication_factor=1)]), 7).topics[0]
        answers.append(("created", created.error_code, created.error_message))
        Resource = IncrementalAlterConfigsRequest.AlterConfigsResource
        for name, value in CONFIG_CASES:
            altered = client.request(IncrementalAlterConfigsRequest(validate_only=True, resources=[Resource(
                resource_type=2, resource_name=topic, configs=[Resource.AlterableConfig(
                    name=name, config_operation=0, value=value)])]), 1).responses[0]
            answers.append(("alter", name, value, altered.error_code,
                            None if altered.error_message is None else altered.error_message.replace(topic, "*")))
        return answers
    finally:
        client.close()


def transaction_fencing_answers(host, port) -> list:
    """A transactional id whose open transaction (transaction version 1: the old request
    versions) is fenced by a second InitProducerId: the epoch the fencing leaves, and what the
    fenced epoch is answered by EndTxn, AddPartitionsToTxn, AddOffsetsToTxn and InitProducerId
    (KIP-360 recovery) at each version (PRODUCER_FENCED only where a version knows it)."""
    client = RawClient(host, port, timeout=30)
    topic, transactional_id = f"fence-{uuid.uuid4().hex[:8]}", f"fence-{uuid.uuid4().hex[:8]}"
    try:
        created = client.request(CreateTopicsRequest(timeout_ms=10000, topics=[
            Topic(name=topic, num_partitions=1, replication_factor=1)]), 7).topics[0]
        assert created.error_code == 0, created

        found = retried(sending(client, FindCoordinatorRequest(key=transactional_id, key_type=1), 1))
        assert found.error_code == 0, found

        def init(version=0, producer_id=-1, epoch=-1):
            return InitProducerIdRequest(transactional_id=transactional_id, transaction_timeout_ms=60000,
                                         producer_id=producer_id, producer_epoch=epoch)

        def add_partition(producer_id, epoch):
            return AddPartitionsToTxnRequest(
                v3_and_below_transactional_id=transactional_id, v3_and_below_producer_id=producer_id,
                v3_and_below_producer_epoch=epoch,
                v3_and_below_topics=[AddPartitionsToTxnTopic(name=topic, partitions=[0])])

        def partition_error(answer):
            return answer.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code

        first = retried(sending(client, init(), 0))
        producer_id, epoch = first.producer_id, first.producer_epoch
        answers = [("init", first.error_code, first.producer_epoch)]
        added = retried(sending(client, add_partition(producer_id, epoch), 0, partition_error))
        answers.append(("add", partition_error(added)))
        # The second producer: the coordinator aborts the open transaction first.
        fencing = client.request(init(), 0)
        answers.append(("fencing init, first answer", fencing.error_code))
        if fencing.error_code in TRANSIENT_ERRORS:
            fencing = retried(sending(client, init(), 0))
        answers.append(("fencing init", fencing.error_code, fencing.producer_id == producer_id,
                        fencing.producer_epoch - epoch))
        for version in range(5):
            answers.append(("end, fenced epoch", version, client.request(EndTxnRequest(
                transactional_id=transactional_id, producer_id=producer_id, producer_epoch=epoch,
                committed=True), version).error_code))
        for version in range(4):
            answers.append(("add, fenced epoch", version,
                            partition_error(client.request(add_partition(producer_id, epoch), version))))
            answers.append(("add offsets, fenced epoch", version, client.request(AddOffsetsToTxnRequest(
                transactional_id=transactional_id, producer_id=producer_id, producer_epoch=epoch,
                group_id="fence-group"), version).error_code))
        for version in (3, 4):  # KIP-360: a producer that knows its id and epoch asks again
            recovery = client.request(init(producer_id=producer_id, epoch=epoch), version)
            answers.append(("init with the fenced epoch", version, recovery.error_code))
        return answers
    finally:
        client.close()


def test_transaction_fencing_answers_agree(kafka, odradek):
    expected = transaction_fencing_answers(*kafka)
    assert expected[0] == ("init", 0, 0) and expected[1] == ("add", 0)  # the premise: a fresh id
    assert transaction_fencing_answers(*odradek) == expected


# The sweep for timed-out transactions (Kafka's default runs it every 10 s), and the timeout of
# the transaction that is left open.
ABORT_SWEEP = "transaction.abort.timed.out.transaction.cleanup.interval.ms=500"
SHORT_TRANSACTION_TIMEOUT_MS = 1000


def transaction_timeout_answers(host, port) -> list:
    """A transaction version 2 transaction (InitProducerId v5, the partition added implicitly by
    Produce v12) left open past its timeout: the broker aborts it; the state and epoch it
    leaves, then what the producer's EndTxn v5 with its own epoch is answered (commit, then
    abort), and the epoch a new InitProducerId gets."""
    client = RawClient(host, port, timeout=30)
    topic, transactional_id = f"timeout-{uuid.uuid4().hex[:8]}", f"timeout-{uuid.uuid4().hex[:8]}"
    try:
        created = client.request(CreateTopicsRequest(timeout_ms=10000, topics=[
            Topic(name=topic, num_partitions=1, replication_factor=1)]), 7).topics[0]
        assert created.error_code == 0, created

        assert retried(sending(client, FindCoordinatorRequest(key=transactional_id, key_type=1), 1)).error_code == 0
        init = InitProducerIdRequest(transactional_id=transactional_id,
                                     transaction_timeout_ms=SHORT_TRANSACTION_TIMEOUT_MS)
        first = retried(sending(client, init, 5))
        producer_id, epoch = first.producer_id, first.producer_epoch
        answers = [("init", first.error_code, first.producer_epoch)]
        batch = build_batch([Record(0, 0, b"k", b"too-late")], producer_id=producer_id, producer_epoch=epoch,
                            base_sequence=0, transactional=True, base_timestamp=1_700_000_000_000)
        produce = ProduceRequest(transactional_id=transactional_id, acks=-1, timeout_ms=5000, topic_data=[
            ProduceRequest.TopicProduceData(name=topic, partition_data=[
                ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=batch)])])
        produced = retried(sending(client, produce, 12,
                                   lambda answer: answer.responses[0].partition_responses[0].error_code),
                           (*TRANSIENT_ERRORS, error_codes.NOT_ENOUGH_REPLICAS))
        answers.append(("produce", produced.responses[0].partition_responses[0].error_code))
        deadline = time.monotonic() + 30
        while True:
            state = client.request(DescribeTransactionsRequest(transactional_ids=[transactional_id]),
                                   0).transaction_states[0]
            if state.transaction_state == "CompleteAbort" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        answers.append(("aborted by the broker", state.error_code, state.transaction_state,
                        state.producer_epoch - epoch, [(t.topic, list(t.partitions)) for t in state.topics]))
        for committed in (True, False):
            ended = client.request(EndTxnRequest(transactional_id=transactional_id, producer_id=producer_id,
                                                 producer_epoch=epoch, committed=committed), 5)
            answers.append(("end", committed, ended.error_code, ended.producer_id == producer_id,
                            ended.producer_epoch - epoch if ended.producer_epoch >= 0 else ended.producer_epoch))
        again = retried(sending(client, init, 5))
        answers.append(("init again", again.error_code, again.producer_id == producer_id,
                        again.producer_epoch - epoch))
        return answers
    finally:
        client.close()


def test_transaction_timeout_answers_agree(tmp_path):
    """On brokers of their own (the abort sweep every 500 ms)."""
    (tmp_path / "kafka").mkdir()
    with running_kafka(tmp_path / "kafka", (ABORT_SWEEP,)) as kafka:
        expected = transaction_timeout_answers(*kafka)
    assert expected[2][2] == "CompleteAbort"  # the premise: Kafka aborted it
    process = BrokerProcess(tmp_path / "odradek", (ABORT_SWEEP,), tmp_path / "broker.log")
    try:
        assert transaction_timeout_answers(process.host, process.port) == expected
    finally:
        assert process.stop() == 0, process.log()


def test_topic_config_errors_agree(kafka, odradek):
    expected = topic_config_answers(*kafka)
    assert expected[2][3] == 40  # the premise: Kafka refuses an unknown name (INVALID_CONFIG)
    assert topic_config_answers(*odradek) == expected


def test_transaction_admin_answers_agree(kafka, odradek):
    expected = transaction_admin_answers(*kafka)
    assert expected[2][0] == "describe empty" and expected[2][1][1][0] == 105  # TRANSACTIONAL_ID_NOT_FOUND
    assert transaction_admin_answers(*odradek) == expected


def test_acl_answers_agree(kafka, odradek):
    expected = acl_answers(*kafka)
    assert expected[0] == ("advertised", [(1, 3)] * 3)
    assert expected[1][3] == 54  # the premise: Kafka runs without an authorizer
    assert acl_answers(*odradek) == expected


def test_telemetry_answers_agree(kafka, odradek):
    expected = telemetry_answers(*kafka)
    assert expected[0] == ("advertised", [])  # the premise: Kafka runs without a metrics plugin
    assert telemetry_answers(*odradek) == expected


def test_produce_record_errors_agree(kafka, odradek):
    expected = record_error_answers(*kafka)
    assert expected[0][0] == 87 and len(expected[0][3]) == 2  # the premise: Kafka refused them
    assert record_error_answers(*odradek) == expected


def test_fetch_session_answers_agree(kafka, odradek):
    """Every session id / epoch combination (tests/broker/fetch_session_scenarios.py), on the
    module's brokers before any other test fetched: Kafka's answers are the expected table that
    the default run checks odradek against, and odradek's are the same."""
    expected = fetch_session_scenarios.every_combination(*kafka)
    assert expected == fetch_session_scenarios.EVERY_COMBINATION
    assert fetch_session_scenarios.every_combination(*odradek) == expected


def test_fetch_session_cache_full_answers_agree(tmp_path):
    """A full session cache (eight slots: one per shard), on fresh brokers."""
    slots = "max.incremental.fetch.session.cache.slots=8"
    (tmp_path / "kafka").mkdir()
    with running_kafka(tmp_path / "kafka", (slots,)) as kafka:
        expected = fetch_session_scenarios.cache_full(*kafka)
    assert expected == fetch_session_scenarios.CACHE_FULL
    process = BrokerProcess(tmp_path / "odradek", (slots,), tmp_path / "broker.log")
    try:
        assert fetch_session_scenarios.cache_full(process.host, process.port) == expected
    finally:
        assert process.stop() == 0, process.log()


def test_fetch_session_topic_deleted_and_recreated_answers_agree(tmp_path):
    """A session's topic deleted and created again (a new topic id), on fresh brokers."""
    (tmp_path / "kafka").mkdir()
    with running_kafka(tmp_path / "kafka") as kafka:
        expected = fetch_session_scenarios.topic_deleted_and_recreated(*kafka)
    assert expected == fetch_session_scenarios.RECREATED
    process = BrokerProcess(tmp_path / "odradek", (), tmp_path / "broker.log")
    try:
        assert fetch_session_scenarios.topic_deleted_and_recreated(process.host, process.port) == expected
    finally:
        assert process.stop() == 0, process.log()


def test_fetch_session_eviction_answers_agree(tmp_path):
    """Eviction from a full cache (eight slots) two minutes on: sessions unused that long make
    room for any new one, used ones only for a bigger one. Both brokers wait together."""
    slots = "max.incremental.fetch.session.cache.slots=8"
    (tmp_path / "kafka").mkdir()
    process = BrokerProcess(tmp_path / "odradek", (slots,), tmp_path / "broker.log")
    try:
        with running_kafka(tmp_path / "kafka", (slots,)) as kafka:
            probes = [fetch_session_scenarios.eviction_start(*kafka),
                      fetch_session_scenarios.eviction_start(process.host, process.port)]
            time.sleep(fetch_session_scenarios.EVICTION_WAIT_S)
            expected, answered = (fetch_session_scenarios.eviction_finish(probe) for probe in probes)
        assert expected == fetch_session_scenarios.EVICTION
        assert answered == expected
    finally:
        assert process.stop() == 0, process.log()
