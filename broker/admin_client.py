"""A small blocking Kafka client for the ``odradek`` developer commands (broker/cli_dev.py).

It speaks the wire protocol through the project's own sans-I/O codecs
(``odradek.protocol.connection.ClientConnection`` for framing, the generated messages, the record
batch writer and reader), one socket per broker, one request at a time. It is meant for a person
at a terminal and for scripts, not for throughput: no pipelining, no background threads.

What it does, per API (versions: the highest of the preferred one below and the broker's own
range, learnt from ApiVersions on each connection; every shape the code reads or writes is
valid at any version it may pick):

=====================  =========  ==================================================================
API                    preferred  use
=====================  =========  ==================================================================
ApiVersions            3          first request on each connection (v0 when the broker refuses v3)
Metadata               12         brokers, topics, partition leaders
CreateTopics           7          ``topic create``
DeleteTopics           6          ``topic delete`` (names, v0-5's ``topic_names`` below v6)
DescribeTopicPartitions 0         ``topic describe`` (Metadata when the broker lacks it)
DescribeConfigs        4          a topic's configs
Produce                9          acks=all, one batch per partition, to the partition's leader
ListOffsets            7          earliest / latest offsets
Fetch                  12         read_uncommitted, from each partition's leader
FindCoordinator        4          a group's coordinator (v0-3's single ``key`` below v4)
ListGroups             5          ``group list``
DescribeGroups         5          classic groups
ConsumerGroupDescribe  0          KIP-848 consumer groups (DescribeGroups answers them Dead)
OffsetFetch            7          a group's committed offsets
OffsetCommit           8          ``consume --group`` commits
JoinGroup, SyncGroup,  5, 3,      ``consume --group``'s membership (broker/group_membership.py)
Heartbeat, LeaveGroup  3, 3
=====================  =========  ==================================================================

Errors: a Kafka error code in a response raises :class:`KafkaError` carrying the code, Kafka's
name for it and the broker's message (or Kafka's default message); a broker that cannot be
reached or closes the connection raises ``ConnectionError``. Retriable errors a just-started or
just-changed broker gives (coordinator loading, leader not yet known) are retried until the
client's timeout.
"""

from __future__ import annotations

import base64
import importlib.metadata
import re
import socket
import time
import uuid
from dataclasses import dataclass, field

from odradek.protocol import error_codes
from odradek.protocol.connection import ClientConnection
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.consumer_group_describe import (
    ConsumerGroupDescribeRequest,
)
from odradek.protocol.messages.create_topics import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from odradek.protocol.messages.delete_topics import (
    DeleteTopicsRequest,
    DeleteTopicState,
)
from odradek.protocol.messages.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from odradek.protocol.messages.describe_groups import DescribeGroupsRequest
from odradek.protocol.messages.describe_topic_partitions import (
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsRequestCursor,
    TopicRequest,
)
from odradek.protocol.messages.fetch import FetchPartition, FetchRequest, FetchTopic
from odradek.protocol.messages.find_coordinator import FindCoordinatorRequest
from odradek.protocol.messages.heartbeat import HeartbeatRequest
from odradek.protocol.messages.join_group import JoinGroupRequest
from odradek.protocol.messages.leave_group import LeaveGroupRequest
from odradek.protocol.messages.list_groups import ListGroupsRequest
from odradek.protocol.messages.list_offsets import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from odradek.protocol.messages.metadata import MetadataRequest, MetadataRequestTopic
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from odradek.protocol.messages.offset_fetch import OffsetFetchRequest
from odradek.protocol.messages.produce import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from odradek.protocol.messages.sync_group import SyncGroupRequest
from odradek.protocol.records.batch import Record, build_batch, iter_batches

from .consumer_protocol import PROTOCOL_TYPE, decode_assignment
from .topics import TOPIC_RESOURCE

DEFAULT_CLIENT_ID = "odradek-cli"
DEFAULT_TIMEOUT = 30.0
EARLIEST_TIMESTAMP = -2  # ListOffsets' special timestamps
LATEST_TIMESTAMP = -1
CONFIG_SOURCE_DEFAULT = 5  # DescribeConfigs' config_source DEFAULT_CONFIG
FETCH_MAX_BYTES = 8 * 1024 * 1024
PARTITION_PAGE_SIZE = 2000  # DescribeTopicPartitions' response_partition_limit, as Kafka's admin client asks
_RETRY_BACKOFF = 0.1

# The version each API is sent at when the broker serves it (module docstring).
PREFERRED_VERSIONS = {
    ApiVersionsRequest: 3, MetadataRequest: 12, CreateTopicsRequest: 7, DeleteTopicsRequest: 6,
    DescribeTopicPartitionsRequest: 0, DescribeConfigsRequest: 4, ProduceRequest: 9, ListOffsetsRequest: 7,
    FetchRequest: 12, FindCoordinatorRequest: 4, ListGroupsRequest: 5, DescribeGroupsRequest: 5,
    ConsumerGroupDescribeRequest: 0, OffsetFetchRequest: 7, OffsetCommitRequest: 8,
    JoinGroupRequest: 5, SyncGroupRequest: 3, HeartbeatRequest: 3, LeaveGroupRequest: 3,  # broker/group_membership.py
}

# Errors retried until the timeout: a broker still loading or a leader not yet elected.
_RETRIED = frozenset({
    error_codes.COORDINATOR_LOAD_IN_PROGRESS, error_codes.COORDINATOR_NOT_AVAILABLE, error_codes.NOT_COORDINATOR,
    error_codes.LEADER_NOT_AVAILABLE, error_codes.NOT_LEADER_OR_FOLLOWER,
})


class KafkaError(Exception):
    """A Kafka error code answered by the broker."""

    def __init__(self, code: int, message: str | None = None):
        self.code = code
        info = error_codes.lookup(code)
        self.name = info.name if info is not None else f"UNKNOWN_ERROR_CODE_{code}"
        self.message = message or (info.message if info is not None else None) or self.name
        super().__init__(f"{self.name}: {self.message}")

    @property
    def retriable(self) -> bool:
        return self.code in _RETRIED


def check(code: int, message: str | None = None) -> None:
    if code != error_codes.NONE:
        raise KafkaError(code, message)


def _software_version() -> str:
    """The installed odradek's version as ApiVersions v3 takes it (letters, digits, '-' and '.')."""
    try:
        version = importlib.metadata.version("odradek")
    except importlib.metadata.PackageNotFoundError:
        return "0"
    return re.sub(r"[^A-Za-z0-9.-]", "-", version).strip(".-") or "0"


def parse_bootstrap(text: str) -> list[tuple[str, int]]:
    """``host:port[,host:port...]`` as Kafka's ``bootstrap.servers`` (IPv6 hosts in brackets)."""
    addresses = []
    for item in text.split(","):
        item = item.strip()
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ValueError(f"invalid bootstrap server {item!r}: expected host:port")
        addresses.append((host[1:-1] if host.startswith("[") and host.endswith("]") else host, int(port)))
    return addresses


def topic_id_text(topic_id: uuid.UUID) -> str:
    """A topic id as Kafka prints it (``Uuid.toString``: URL-safe base64, unpadded)."""
    return base64.urlsafe_b64encode(topic_id.bytes).decode("ascii").rstrip("=")


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (a signed 32-bit result), which its default partitioner hashes
    keys with: a keyed record goes to the partition a Java or librdkafka (murmur2_random)
    producer would pick."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    index = length & ~3
    if tail == 3:
        h ^= data[index + 2] << 16
    if tail >= 2:
        h ^= data[index + 1] << 8
    if tail >= 1:
        h ^= data[index]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partition_count: int) -> int:
    """Kafka's ``BuiltInPartitioner.partitionForKey``: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partition_count


class BrokerConnection:
    """One blocking socket to one broker, owned by the :class:`KafkaClient` that opened it.
    ``broken`` once a request failed half way (a timeout, a closed socket, an interrupt): the
    byte stream may then be out of step, and the client opens a new connection instead."""

    def __init__(self, host: str, port: int, *, timeout: float, client_id: str):
        self.address = (host, port)
        self.client_id = client_id
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.codec = ClientConnection()
        self._correlation_id = 0
        self.broken = False
        self.api_versions: dict[int, tuple[int, int]] = {}
        self._negotiate()

    def _negotiate(self) -> None:
        request = ApiVersionsRequest(client_software_name=DEFAULT_CLIENT_ID, client_software_version=_software_version())
        response = self._send(request, PREFERRED_VERSIONS[ApiVersionsRequest])
        if response.error_code == error_codes.UNSUPPORTED_VERSION:  # an older broker answered v0 (KIP-511)
            response = self._send(ApiVersionsRequest(), 0)
        check(response.error_code)
        self.api_versions = {item.api_key: (item.min_version, item.max_version) for item in response.api_keys}

    def supports(self, request_class) -> bool:
        return request_class.API_KEY in self.api_versions

    def version_for(self, request_class) -> int:
        preferred = PREFERRED_VERSIONS[request_class]
        low, high = self.api_versions.get(request_class.API_KEY, (None, None))
        if low is None or max(low, request_class.MIN_VERSION) > min(high, preferred):
            raise KafkaError(error_codes.UNSUPPORTED_VERSION,
                             f"the broker at {self.address[0]}:{self.address[1]} does not serve "
                             f"{request_class.__name__.removesuffix('Request')} at a version this client speaks")
        return min(high, preferred)

    def request(self, message, *, timeout: float | None = None):
        """The response to ``message``; ``timeout``: how long the broker may take to answer, when
        more than the connection's (a JoinGroup waits for the group's other members)."""
        return self._send(message, self.version_for(type(message)), timeout)

    def _send(self, message, version: int, timeout: float | None = None):
        self._correlation_id += 1
        frame = self.codec.encode_request(message, version, self._correlation_id, self.client_id)
        try:
            self.sock.settimeout(timeout or self.timeout)
            self.sock.sendall(frame)
            while True:
                response = self.codec.next_response()
                if response is not None:
                    return response[1]
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError(f"the broker at {self.address[0]}:{self.address[1]} closed the connection")
                self.codec.receive_data(data)
        except BaseException:
            self.broken = True
            raise

    def close(self) -> None:
        self.sock.close()


@dataclass
class PartitionInfo:
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]
    elr: list[int] | None = None  # None: the broker did not say (Metadata has no ELR)
    last_known_elr: list[int] | None = None


@dataclass
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    is_internal: bool
    partitions: list[PartitionInfo] = field(default_factory=list)


@dataclass
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass
class GroupMember:
    member_id: str
    client_id: str
    host: str
    assignment: list[tuple[str, int]]
    instance_id: str | None = None  # group.instance.id of a static member


@dataclass
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    members: list[GroupMember]


class KafkaClient:
    """Blocking client over the bootstrap servers; learns the brokers from Metadata and keeps one
    connection per broker. Not thread-safe (one owner, the command that made it)."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = DEFAULT_CLIENT_ID,
                 timeout: float = DEFAULT_TIMEOUT, partition_page_size: int = PARTITION_PAGE_SIZE):
        self.bootstrap = parse_bootstrap(bootstrap_servers)
        self.client_id = client_id
        self.timeout = timeout
        self.partition_page_size = partition_page_size
        self.brokers: dict[int, tuple[str, int]] = {}
        self._connections: dict[tuple[str, int], BrokerConnection] = {}

    def __enter__(self) -> "KafkaClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    # --- connections ---

    def _connect(self, address: tuple[str, int]) -> BrokerConnection:
        connection = self._connections.get(address)
        if connection is None or connection.broken:
            if connection is not None:
                connection.close()
            connection = BrokerConnection(*address, timeout=self.timeout, client_id=self.client_id)
            self._connections[address] = connection
        return connection

    def any_broker(self) -> BrokerConnection:
        if self._connections:
            return next(iter(self._connections.values()))
        errors = []
        for address in self.bootstrap:
            try:
                return self._connect(address)
            except OSError as error:
                errors.append(f"{address[0]}:{address[1]}: {error.strerror or error}")
        raise ConnectionError("cannot connect to any bootstrap server (" + "; ".join(errors) + ")")

    def node(self, node_id: int) -> BrokerConnection:
        if node_id not in self.brokers:
            self.metadata([])
        if node_id not in self.brokers:
            raise KafkaError(error_codes.BROKER_NOT_AVAILABLE, f"broker {node_id} is not in the cluster's metadata")
        return self._connect(self.brokers[node_id])

    def _retrying(self, attempt):
        """``attempt()`` until it returns without a retriable KafkaError or the timeout passes."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return attempt()
            except KafkaError as error:
                if not error.retriable or time.monotonic() + _RETRY_BACKOFF > deadline:
                    raise
            time.sleep(_RETRY_BACKOFF)

    # --- topics ---

    def metadata(self, topics: list[str] | None = None, *, auto_create: bool = False):
        """The Metadata response for ``topics`` (None: every topic; []: none, brokers only).
        ``auto_create``: let the broker create a missing topic (where its
        auto.create.topics.enable says so), as a producer or consumer asks by default."""
        request = MetadataRequest(topics=None if topics is None else [MetadataRequestTopic(name=t) for t in topics],
                                  allow_auto_topic_creation=auto_create)
        response = self.any_broker().request(request)
        self.brokers = {broker.node_id: (broker.host, broker.port) for broker in response.brokers}
        return response

    def list_topics(self) -> list[TopicInfo]:
        return [self._topic_info(topic) for topic in self.metadata(None).topics if topic.error_code == 0]

    def topic(self, name: str) -> TopicInfo:
        """The topic's partitions (DescribeTopicPartitions where served, as Kafka's admin client
        does; Metadata otherwise); KafkaError UNKNOWN_TOPIC_OR_PARTITION when it does not exist."""
        connection = self.any_broker()
        if connection.supports(DescribeTopicPartitionsRequest):
            info = None
            request = DescribeTopicPartitionsRequest(topics=[TopicRequest(name=name)],
                                                     response_partition_limit=self.partition_page_size)
            while True:  # a page of partitions at a time (response_partition_limit), as the cursor says
                response = connection.request(request)
                (topic,) = response.topics
                check(topic.error_code)
                if info is None:
                    info = TopicInfo(topic.name, topic.topic_id, topic.is_internal)
                info.partitions.extend(PartitionInfo(p.partition_index, p.leader_id, list(p.replica_nodes),
                                                     list(p.isr_nodes), p.eligible_leader_replicas, p.last_known_elr)
                                       for p in topic.partitions)
                cursor = response.next_cursor
                if cursor is None or cursor.topic_name != name or not topic.partitions:
                    break
                request.cursor = DescribeTopicPartitionsRequestCursor(topic_name=name,
                                                                      partition_index=cursor.partition_index)
            info.partitions.sort(key=lambda p: p.partition)
            return info
        (topic,) = self.metadata([name]).topics
        check(topic.error_code)
        return self._topic_info(topic)

    @staticmethod
    def _topic_info(topic) -> TopicInfo:
        partitions = [PartitionInfo(p.partition_index, p.leader_id, list(p.replica_nodes), list(p.isr_nodes))
                      for p in topic.partitions]
        return TopicInfo(topic.name, topic.topic_id, topic.is_internal, sorted(partitions, key=lambda p: p.partition))

    def partition_leaders(self, topic: str, *, auto_create: bool = False) -> dict[int, int]:
        """partition -> leader node id, retried while a leader is not known yet (as just after
        the topic was created)."""
        def attempt():
            (info,) = self.metadata([topic], auto_create=auto_create).topics
            check(info.error_code)
            leaders = {}
            for partition in info.partitions:
                check(partition.error_code)
                leaders[partition.partition_index] = partition.leader_id
            return leaders
        return self._retrying(attempt)

    def create_topic(self, name: str, *, partitions: int = -1, replication_factor: int = -1,
                     configs: dict[str, str] | None = None):
        """Create one topic (-1: the broker's num.partitions / default.replication.factor); the
        result (topic id, partitions) or KafkaError (TOPIC_ALREADY_EXISTS, INVALID_CONFIG, ...)."""
        topic = CreatableTopic(name=name, num_partitions=partitions, replication_factor=replication_factor,
                               configs=[CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()])
        connection = self._controller()
        response = connection.request(CreateTopicsRequest(topics=[topic], timeout_ms=int(self.timeout * 1000)))
        (result,) = response.topics
        check(result.error_code, result.error_message)
        return result

    def delete_topic(self, name: str) -> None:
        connection = self._controller()
        version = connection.version_for(DeleteTopicsRequest)
        request = DeleteTopicsRequest(timeout_ms=int(self.timeout * 1000))
        if version >= 6:
            request.topics = [DeleteTopicState(name=name)]
        else:
            request.topic_names = [name]
        (result,) = connection.request(request).responses
        check(result.error_code, result.error_message)

    def _controller(self) -> BrokerConnection:
        """Where admin requests go: the controller Metadata names (any broker forwards them in
        KRaft, but the controller is where Kafka's admin client sends them)."""
        response = self.metadata([])
        return self.node(response.controller_id) if response.controller_id in self.brokers else self.any_broker()

    def topic_configs(self, name: str) -> list[tuple[str, str | None, bool]]:
        """``(name, value, is_default)`` of each config of the topic, in the broker's order."""
        request = DescribeConfigsRequest(resources=[DescribeConfigsResource(
            resource_type=TOPIC_RESOURCE, resource_name=name, configuration_keys=None)])
        connection = self.any_broker()
        version = connection.version_for(DescribeConfigsRequest)
        (result,) = connection.request(request).results
        check(result.error_code, result.error_message)
        # v0 says is_default; v1 replaced it by config_source (Kafka's ConfigEntry.isDefault()).
        return [(entry.name, entry.value,
                 entry.is_default if version == 0 else entry.config_source == CONFIG_SOURCE_DEFAULT)
                for entry in result.configs]

    # --- records ---

    def produce(self, topic: str, partition: int, records: list[tuple[bytes | None, bytes | None]]) -> int:
        """Append ``(key, value)`` records as one batch with acks=all; the base offset."""
        now = int(time.time() * 1000)
        batch = build_batch([Record(offset_delta=i, timestamp_delta=0, key=key, value=value)
                             for i, (key, value) in enumerate(records)], base_timestamp=now)

        def attempt():
            leader = self.partition_leaders(topic).get(partition)
            if leader is None:
                raise KafkaError(error_codes.UNKNOWN_TOPIC_OR_PARTITION,
                                 f"topic {topic!r} has no partition {partition}")
            request = ProduceRequest(acks=-1, timeout_ms=int(self.timeout * 1000), topic_data=[TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=partition, records=batch)])])
            (topic_response,) = self.node(leader).request(request).responses
            (result,) = topic_response.partition_responses
            check(result.error_code, result.error_message)
            return result.base_offset
        return self._retrying(attempt)

    def list_offsets(self, topic: str, partitions: list[int], timestamp: int) -> dict[int, int]:
        """partition -> the offset for ``timestamp`` (EARLIEST_TIMESTAMP / LATEST_TIMESTAMP)."""
        by_leader: dict[int, list[int]] = {}
        for partition, leader in self.partition_leaders(topic).items():
            if partition in partitions:
                by_leader.setdefault(leader, []).append(partition)
        offsets = {}
        for leader, owned in by_leader.items():
            request = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(
                name=topic, partitions=[ListOffsetsPartition(partition_index=p, timestamp=timestamp) for p in owned])])
            for topic_response in self.node(leader).request(request).topics:
                for result in topic_response.partitions:
                    check(result.error_code)
                    offsets[result.partition_index] = result.offset
        missing = set(partitions) - offsets.keys()
        if missing:
            raise KafkaError(error_codes.UNKNOWN_TOPIC_OR_PARTITION,
                             f"topic {topic!r} has no partition {min(missing)}")
        return offsets

    def fetch(self, topic: str, positions: dict[int, int], *, max_wait_ms: int,
              out_of_range: set[int] | None = None) -> dict[int, list[ConsumedRecord]]:
        """Records from each partition at its position (read_uncommitted; control records left
        out); partition -> records at or after the position, in offset order. A partition whose
        position is out of range is added to ``out_of_range`` when given (the caller resets it,
        as a consumer's auto.offset.reset does), else raises like any other error."""
        leaders = self.partition_leaders(topic)
        by_leader: dict[int, list[int]] = {}
        for partition in positions:
            by_leader.setdefault(leaders[partition], []).append(partition)
        fetched: dict[int, list[ConsumedRecord]] = {}
        # One leader waits max_wait_ms for data; the others are asked without waiting, so a
        # topic spread over brokers is not read one wait at a time.
        for index, (leader, owned) in enumerate(by_leader.items()):
            request = FetchRequest(replica_id=-1, max_wait_ms=max_wait_ms if index == 0 else 0, min_bytes=1,
                                   max_bytes=FETCH_MAX_BYTES, topics=[FetchTopic(topic=topic, partitions=[
                                       FetchPartition(partition=p, fetch_offset=positions[p],
                                                      partition_max_bytes=FETCH_MAX_BYTES) for p in owned])])
            response = self.node(leader).request(request)
            check(response.error_code)
            for topic_response in response.responses:
                for data in topic_response.partitions:
                    if data.error_code == error_codes.OFFSET_OUT_OF_RANGE and out_of_range is not None:
                        out_of_range.add(data.partition_index)
                        continue
                    check(data.error_code)
                    fetched[data.partition_index] = self._records(
                        topic, data.partition_index, data.records, positions[data.partition_index])
        return fetched

    @staticmethod
    def _records(topic: str, partition: int, records, position: int) -> list[ConsumedRecord]:
        result = []
        if not records:
            return result
        for batch in iter_batches(records):
            if not hasattr(batch, "records"):  # IncompleteBatch: the fetch size cut it, read it next time
                break
            if batch.is_control:
                continue
            for record in batch.records:
                offset = batch.offset_of(record)
                if offset >= position:
                    result.append(ConsumedRecord(topic, partition, offset, batch.timestamp_of(record),
                                                 record.key, record.value, record.headers))
        return result

    # --- groups ---

    def coordinator(self, group: str) -> BrokerConnection:
        def attempt():
            connection = self.any_broker()
            version = connection.version_for(FindCoordinatorRequest)
            if version >= 4:
                response = connection.request(FindCoordinatorRequest(key_type=0, coordinator_keys=[group]))
                (found,) = response.coordinators
                check(found.error_code, found.error_message)
                return found.node_id, found.host, found.port
            response = connection.request(FindCoordinatorRequest(key=group, key_type=0))
            check(response.error_code, response.error_message)
            return response.node_id, response.host, response.port
        node_id, host, port = self._retrying(attempt)
        return self._connect((host, port))

    def list_groups(self) -> list:
        """Every group of every broker (ListGroups answers for the groups a broker coordinates)."""
        self.metadata([])
        groups = []
        for node_id in sorted(self.brokers):
            response = self.node(node_id).request(ListGroupsRequest())
            check(response.error_code)
            groups.extend(response.groups)
        return groups

    def describe_group(self, group: str) -> GroupDescription:
        """The group's state and members with their assignments: DescribeGroups for a classic
        group, ConsumerGroupDescribe for a KIP-848 consumer group (DescribeGroups answers it as
        Dead, with GROUP_ID_NOT_FOUND from v6)."""
        def attempt():
            connection = self.coordinator(group)
            (described,) = connection.request(DescribeGroupsRequest(groups=[group])).groups
            if described.error_code not in (error_codes.NONE, error_codes.GROUP_ID_NOT_FOUND):
                check(described.error_code, described.error_message)
            if described.error_code == error_codes.NONE and described.group_state != "Dead":
                members = [GroupMember(m.member_id, m.client_id, m.client_host,
                                       decode_assignment(m.member_assignment) if described.protocol_type == PROTOCOL_TYPE
                                       else [], m.group_instance_id) for m in described.members]
                return GroupDescription(group, described.group_state, described.protocol_type, members)
            if connection.supports(ConsumerGroupDescribeRequest):
                (found,) = connection.request(ConsumerGroupDescribeRequest(group_ids=[group])).groups
                if found.error_code == error_codes.NONE:
                    members = [GroupMember(m.member_id, m.client_id, m.client_host,
                                           [(tp.topic_name, p) for tp in m.assignment.topic_partitions
                                            for p in tp.partitions], m.instance_id) for m in found.members]
                    return GroupDescription(group, found.group_state, "consumer", members)
                if found.error_code != error_codes.GROUP_ID_NOT_FOUND:
                    check(found.error_code, found.error_message)
            return GroupDescription(group, "Dead", "", [])
        return self._retrying(attempt)

    def committed_offsets(self, group: str) -> dict[tuple[str, int], int]:
        """(topic, partition) -> committed offset, every partition the group committed."""
        def attempt():
            response = self.coordinator(group).request(OffsetFetchRequest(group_id=group, topics=None))
            check(response.error_code)
            offsets = {}
            for topic in response.topics:
                for partition in topic.partitions:
                    check(partition.error_code)
                    if partition.committed_offset >= 0:
                        offsets[(topic.name, partition.partition_index)] = partition.committed_offset
            return offsets
        return self._retrying(attempt)

    def commit_offsets(self, group: str, offsets: dict[tuple[str, int], int], *, generation: int = -1,
                       member_id: str = "") -> None:
        """Commit as the group's member ``member_id`` of ``generation``, or by default as a
        consumer outside the group (generation -1, no member id): what Kafka accepts for a group
        with no members, as for a consumer using assign()."""
        topics: dict[str, list] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            topics.setdefault(topic, []).append(OffsetCommitRequestPartition(partition_index=partition,
                                                                              committed_offset=offset))

        def attempt():
            request = OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
                                          topics=[OffsetCommitRequestTopic(name=t, partitions=p)
                                                  for t, p in topics.items()])
            for topic in self.coordinator(group).request(request).topics:
                for partition in topic.partitions:
                    check(partition.error_code)
        self._retrying(attempt)

