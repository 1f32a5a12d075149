"""One membership of a classic consumer group, for ``odradek consume --group`` (blocking, one
thread: the consume loop calls :meth:`GroupMembership.poll` between fetches).

It does what Kafka's console consumer does with ``--group``, through the classic protocol every
Kafka since 0.9 serves: JoinGroup (again with the member id the broker hands out when it answers
MEMBER_ID_REQUIRED, KIP-394), SyncGroup (as the leader it assigns the partitions of every
member's subscription with the range assignor, broker/consumer_protocol.py), Heartbeat every
``heartbeat_interval`` seconds, OffsetCommit as the member of its generation, LeaveGroup when it
ends. A heartbeat or commit answered REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or
UNKNOWN_MEMBER_ID means the group moved on: the caller commits what it can and joins again (the
records read since the last commit may then be read again: at least once, as a consumer).
"""

from __future__ import annotations

import time

from odradek.protocol import error_codes
from odradek.protocol.messages.heartbeat import HeartbeatRequest
from odradek.protocol.messages.join_group import (
    JoinGroupRequest,
    JoinGroupRequestProtocol,
)
from odradek.protocol.messages.leave_group import LeaveGroupRequest, MemberIdentity
from odradek.protocol.messages.sync_group import (
    SyncGroupRequest,
    SyncGroupRequestAssignment,
)

from .admin_client import KafkaClient, KafkaError, check
from .consumer_protocol import (
    PROTOCOL_TYPE,
    RANGE,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
    range_assign,
)

# Kafka's consumer defaults.
SESSION_TIMEOUT_MS = 45000
REBALANCE_TIMEOUT_MS = 300000  # max.poll.interval.ms
HEARTBEAT_INTERVAL = 3.0

# What says the membership is over and a new join is needed.
_REJOIN = frozenset({error_codes.REBALANCE_IN_PROGRESS, error_codes.ILLEGAL_GENERATION, error_codes.UNKNOWN_MEMBER_ID,
                     error_codes.FENCED_INSTANCE_ID})


class RebalanceNeeded(Exception):
    """The group rebalanced or dropped this member: join again."""


class GroupMembership:
    """This process's member of ``group``, subscribed to ``topics``. Owned by the consume loop."""

    def __init__(self, client: KafkaClient, group: str, topics: list[str], *,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL):
        self.client = client
        self.group = group
        self.topics = topics
        self.heartbeat_interval = heartbeat_interval
        self.member_id = ""
        self.generation = -1
        self.assignment: list[tuple[str, int]] = []
        self._next_heartbeat = 0.0

    def join(self) -> list[tuple[str, int]]:
        """Join (or rejoin) the group; the (topic, partition) pairs assigned to this member."""
        deadline = time.monotonic() + self.client.timeout + REBALANCE_TIMEOUT_MS / 1000
        while True:
            try:
                return self._join_once()
            except KafkaError as error:
                if error.code == error_codes.UNKNOWN_MEMBER_ID:
                    self.member_id = ""  # forgotten by the coordinator: join as a new member
                elif error.code not in _REJOIN and not error.retriable:
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _join_once(self) -> list[tuple[str, int]]:
        connection = self.client.coordinator(self.group)
        request = JoinGroupRequest(group_id=self.group, session_timeout_ms=SESSION_TIMEOUT_MS,
                                   rebalance_timeout_ms=REBALANCE_TIMEOUT_MS, member_id=self.member_id,
                                   protocol_type=PROTOCOL_TYPE,
                                   protocols=[JoinGroupRequestProtocol(name=RANGE,
                                                                       metadata=encode_subscription(self.topics))])
        # The broker answers a JoinGroup once every member joined, or the rebalance timed out.
        wait = REBALANCE_TIMEOUT_MS / 1000 + self.client.timeout
        joined = connection.request(request, timeout=wait)
        if joined.error_code == error_codes.MEMBER_ID_REQUIRED:  # KIP-394: join again with this id
            self.member_id = joined.member_id
            request.member_id = joined.member_id
            joined = connection.request(request, timeout=wait)
        check(joined.error_code)
        self.member_id = joined.member_id
        self.generation = joined.generation_id
        assignments = []
        if joined.leader == joined.member_id:
            assignments = [SyncGroupRequestAssignment(member_id=member, assignment=encode_assignment(pairs))
                           for member, pairs in self._assign(joined.members).items()]
        sync = SyncGroupRequest(group_id=self.group, generation_id=self.generation, member_id=self.member_id,
                                assignments=assignments)
        if connection.version_for(SyncGroupRequest) >= 5:  # KIP-559: the broker checks them
            sync.protocol_type, sync.protocol_name = PROTOCOL_TYPE, joined.protocol_name
        synced = connection.request(sync, timeout=wait)  # answered once the leader synced
        check(synced.error_code)
        self.assignment = decode_assignment(synced.assignment)
        self._next_heartbeat = time.monotonic() + self.heartbeat_interval
        return self.assignment

    def _assign(self, members) -> dict[str, list[tuple[str, int]]]:
        """The leader's work: every member's subscribed topics split with the range assignor."""
        subscriptions = {member.member_id: decode_subscription(member.metadata) for member in members}
        topics = sorted({topic for subscribed in subscriptions.values() for topic in subscribed})
        counts = {topic.name: len(topic.partitions) for topic in self.client.metadata(topics).topics
                  if topic.error_code == error_codes.NONE}
        return range_assign(subscriptions, counts)

    def poll(self) -> None:
        """Heartbeat when one is due; RebalanceNeeded when the group wants this member to join again."""
        if time.monotonic() < self._next_heartbeat:
            return
        response = self.client.coordinator(self.group).request(HeartbeatRequest(
            group_id=self.group, generation_id=self.generation, member_id=self.member_id))
        self._next_heartbeat = time.monotonic() + self.heartbeat_interval
        if response.error_code in _REJOIN:
            raise RebalanceNeeded(error_codes.lookup(response.error_code).name)
        check(response.error_code)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit as this generation's member; RebalanceNeeded when the group has moved on."""
        try:
            self.client.commit_offsets(self.group, offsets, generation=self.generation, member_id=self.member_id)
        except KafkaError as error:
            if error.code in _REJOIN:
                raise RebalanceNeeded(error.name) from None
            raise

    def leave(self) -> None:
        """Leave the group, so that the others get this member's partitions at once."""
        if not self.member_id:
            return
        connection = self.client.coordinator(self.group)
        request = LeaveGroupRequest(group_id=self.group)
        if connection.version_for(LeaveGroupRequest) >= 3:
            request.members = [MemberIdentity(member_id=self.member_id)]
        else:
            request.member_id = self.member_id
        try:
            connection.request(request)
        except (KafkaError, OSError):  # leaving is a courtesy: the session timeout ends it too
            pass
        self.member_id = ""
