"""The fault registry (broker/faults.py) on its own: the spec parser (property-tested: any JSON
document parses or raises FaultSpecError, and a parsed spec lists as a document that parses to
itself), what requests name (topics, partitions, groups, from the generated messages' schema),
matching, counting down, expiry on an injected clock, removal."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odradek.broker.faults import (
    ACTIONS,
    MAX_FAULTS,
    FaultRegistry,
    FaultSpecError,
    parse_fault_spec,
    request_targets,
)
from odradek.protocol import error_codes as E
from odradek.protocol.messages.delete_topics import DeleteTopicsRequest
from odradek.protocol.messages.fetch import FetchPartition, FetchRequest, FetchTopic, ForgottenTopic
from odradek.protocol.messages.find_coordinator import FindCoordinatorRequest
from odradek.protocol.messages.join_group import JoinGroupRequest
from odradek.protocol.messages.metadata import MetadataRequest, MetadataRequestTopic
from odradek.protocol.messages.offset_commit import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from odradek.protocol.messages.produce import PartitionProduceData, ProduceRequest, TopicProduceData

PRODUCE, FETCH, METADATA, OFFSET_COMMIT = 0, 1, 3, 8


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def produce(topic="t", partitions=(0,), topic_id=None):
    return ProduceRequest(acks=-1, topic_data=[TopicProduceData(
        name=topic if topic_id is None else "", topic_id=topic_id or uuid.UUID(int=0),
        partition_data=[PartitionProduceData(index=index, records=b"") for index in partitions])])


# --- the spec ---

def test_a_spec_with_names_parses_to_keys_and_codes():
    spec = parse_fault_spec({"action": "error", "api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER", "count": 3,
                             "topic": "t", "partition": 1, "client_id": "c"})
    assert (spec.api_key, spec.error, spec.count, spec.topic, spec.partition) == (0, 6, 3, "t", 1)
    # Numbers and Kafka's other spellings of an API's name are the same fault.
    assert parse_fault_spec({"action": "error", "api": 0, "error": 6, "count": 3, "topic": "t", "partition": 1,
                             "client_id": "c"}) == spec
    assert parse_fault_spec({"action": "delay", "api": "LIST_OFFSETS", "delay_ms": 5}).api_key == 2
    assert parse_fault_spec({"action": "offline", "topic": "t"}).error == E.NOT_LEADER_OR_FOLLOWER


@pytest.mark.parametrize("document, says", [
    ([], "JSON object"),
    ({"action": "explode"}, "action: one of"),
    ({}, "action: one of"),
    ({"action": "error"}, "needs error"),
    ({"action": "error", "error": "NOT_AN_ERROR"}, "no error named 'NOT_AN_ERROR'"),
    ({"action": "error", "error": 9999}, "no error code 9999"),
    ({"action": "error", "error": "NONE"}, "NONE is no error"),
    ({"action": "error", "error": 6, "api": "Frobnicate"}, "no API named 'Frobnicate'"),
    ({"action": "error", "error": 6, "api": 4}, "no API with key 4"),
    ({"action": "error", "error": 6, "api": True}, "an API name or key"),
    ({"action": "delay"}, "needs delay_ms"),
    ({"action": "delay", "delay_ms": -1}, "delay_ms: an integer"),
    ({"action": "delay", "delay_ms": 1.5}, "delay_ms: an integer"),
    ({"action": "delay", "delay_ms": 5, "error": 6}, "error is for action error or offline"),
    ({"action": "throttle", "throttle_ms": 0}, "throttle_ms: an integer from 1"),
    ({"action": "error", "error": 6, "throttle_ms": 5}, "throttle_ms is for action throttle"),
    ({"action": "no_response", "count": 0}, "count: an integer from 1"),
    ({"action": "no_response", "partition": 0}, "partition needs topic"),
    ({"action": "no_response", "topic": ""}, "topic: a non-empty string"),
    ({"action": "offline"}, "needs topic"),
    ({"action": "offline", "topic": "t", "count": 1}, "count does not apply to offline"),
    ({"action": "offline", "topic": "t", "api": "Produce"}, "api does not apply to offline"),
    ({"action": "offline", "topic": "t", "error": "REQUEST_TIMED_OUT"}, "NOT_LEADER_OR_FOLLOWER or LEADER_NOT"),
    ({"action": "error", "error": 6, "tpoic": "t"}, "unknown field(s) tpoic"),
])
def test_a_bad_spec_says_what_is_wrong(document, says):
    with pytest.raises(FaultSpecError) as raised:
        parse_fault_spec(document)
    assert says in str(raised.value)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda children: st.lists(children, max_size=3)
                     | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=8)
_FIELD_VALUES = {
    "action": st.sampled_from(ACTIONS) | _JSON,
    "api": st.sampled_from(["Produce", "Fetch", "metadata", "ApiVersions", 0, 1, 3, 18, 4, -1]) | _JSON,
    "error": st.sampled_from(["NOT_LEADER_OR_FOLLOWER", "REQUEST_TIMED_OUT", "LEADER_NOT_AVAILABLE", 6, 7, 0, -1,
                              "TOPIC_AUTHORIZATION_FAILED"]) | _JSON,
    "delay_ms": st.integers(-5, 2**32) | _JSON, "throttle_ms": st.integers(-5, 2**32) | _JSON,
    "count": st.integers(-2, 10) | _JSON, "duration_ms": st.integers(-2, 10**6) | _JSON,
    "topic": st.text(max_size=5) | _JSON, "partition": st.integers(-2, 5) | _JSON,
    "group": st.text(max_size=5) | _JSON, "client_id": st.text(max_size=5) | _JSON,
}
_DOCUMENTS = st.fixed_dictionaries({}, optional=_FIELD_VALUES) | _JSON


@given(_DOCUMENTS)
def test_any_document_parses_or_is_refused_and_a_parsed_one_lists_as_itself(document):
    try:
        spec = parse_fault_spec(document)
    except FaultSpecError:
        return
    assert spec.action in ACTIONS
    assert parse_fault_spec(spec.describe()) == spec


# --- what a request names ---

def test_request_targets_reads_topics_partitions_and_groups_from_the_schema():
    assert request_targets(produce("t", (0, 2))).topics == {"t": {0, 2}}
    topic_id = uuid.uuid4()
    assert request_targets(produce(topic_id=topic_id, partitions=(1,))).topics == {topic_id: {1}}
    assert request_targets(MetadataRequest(topics=[MetadataRequestTopic(name="m")])).topics == {"m": set()}
    assert request_targets(MetadataRequest(topics=None)).topics == {}
    assert request_targets(DeleteTopicsRequest(topic_names=["a", "b"])).topics == {"a": set(), "b": set()}
    assert request_targets(JoinGroupRequest(group_id="g")).groups == {"g"}
    assert request_targets(FindCoordinatorRequest(key_type=0, coordinator_keys=["g1", "g2"])).groups == {"g1", "g2"}
    assert request_targets(FindCoordinatorRequest(key_type=1, coordinator_keys=["txn"])).groups == set()


def test_fetch_and_offset_commit_targets():
    fetch = FetchRequest(topics=[FetchTopic(topic="f", partitions=[FetchPartition(partition=3)])],
                         forgotten_topics_data=[ForgottenTopic(topic="gone", partitions=[1])])
    assert request_targets(fetch).topics == {"f": {3}}  # a topic a session forgets is not asked for
    commit = OffsetCommitRequest(group_id="g", topics=[OffsetCommitRequestTopic(name="c", partitions=[
        OffsetCommitRequestPartition(partition_index=4)])])
    targets = request_targets(commit)
    assert (targets.topics, targets.groups) == ({"c": {4}}, {"g"})


# --- the registry ---

def no_ids(_topic_id):
    return None


def test_a_fault_counts_down_then_stays_listed_inactive():
    registry = FaultRegistry(FakeClock())
    fault = registry.add({"action": "error", "api": "Produce", "error": "REQUEST_TIMED_OUT", "count": 2})
    assert registry.active
    assert registry.match(METADATA, "c", MetadataRequest(topics=None), no_ids) is None
    assert registry.match(PRODUCE, "c", produce(), no_ids) is fault
    assert registry.match(PRODUCE, "c", produce(), no_ids) is fault
    assert registry.match(PRODUCE, "c", produce(), no_ids) is None
    assert not registry.active
    [listed] = registry.list()
    assert listed == {"id": fault.id, "action": "error", "api": "Produce", "error": "REQUEST_TIMED_OUT", "count": 2,
                      "hits": 2, "remaining": 0, "expires_in_ms": None, "active": False}


def test_filters_on_topic_partition_group_and_client_id():
    registry = FaultRegistry(FakeClock())
    by_partition = registry.add({"action": "no_response", "topic": "t", "partition": 1})
    by_group = registry.add({"action": "no_response", "group": "g"})
    by_client = registry.add({"action": "no_response", "client_id": "me"})
    assert registry.match(PRODUCE, "x", produce("t", (0,)), no_ids) is None
    assert registry.match(PRODUCE, "x", produce("t", (0, 1)), no_ids) is by_partition
    assert registry.match(PRODUCE, "x", produce("u", (1,)), no_ids) is None
    assert registry.match(11, "x", JoinGroupRequest(group_id="g"), no_ids) is by_group
    assert registry.match(11, "me", JoinGroupRequest(group_id="h"), no_ids) is by_client
    # A topic given by id is matched by its name.
    topic_id = uuid.uuid4()
    assert registry.match(PRODUCE, "x", produce(topic_id=topic_id, partitions=(1,)),
                          {topic_id: "t"}.get) is by_partition
    assert [fault["hits"] for fault in registry.list()] == [2, 1, 1]


def test_the_oldest_matching_fault_applies_and_removal_and_clear():
    registry = FaultRegistry(FakeClock())
    first = registry.add({"action": "delay", "delay_ms": 10})
    second = registry.add({"action": "error", "error": 6})
    assert registry.match(PRODUCE, None, produce(), no_ids) is first
    assert registry.remove(first.id) is first
    assert registry.remove(first.id) is None
    assert registry.match(PRODUCE, None, produce(), no_ids) is second
    assert registry.clear() == 1
    assert registry.list() == [] and not registry.active


def test_a_fault_expires_after_its_duration():
    clock = FakeClock()
    registry = FaultRegistry(clock)
    fault = registry.add({"action": "error", "error": 6, "duration_ms": 500})
    offline = registry.add({"action": "offline", "topic": "t", "partition": 0, "duration_ms": 1000})
    assert registry.list()[0]["expires_in_ms"] == 500
    clock.now += 0.4
    assert registry.match(PRODUCE, None, produce(), no_ids) is fault
    assert registry.offline_error("t", 0) == E.NOT_LEADER_OR_FOLLOWER
    assert registry.offline_error("t", 1) is None and registry.offline_error("u", 0) is None
    clock.now += 0.2
    assert registry.match(PRODUCE, None, produce(), no_ids) is None
    assert not registry.active
    clock.now += 0.5
    assert registry.offline_error("t", 0) is None
    assert [(item["id"], item["active"], item["hits"]) for item in registry.list()] == [
        (fault.id, False, 1), (offline.id, False, 1)]


def test_offline_without_a_partition_holds_every_partition():
    registry = FaultRegistry(FakeClock())
    registry.add({"action": "offline", "topic": "t", "error": "LEADER_NOT_AVAILABLE"})
    assert not registry.active  # no request fault: the server's check stays one attribute read
    assert [registry.offline_error("t", index) for index in range(3)] == [E.LEADER_NOT_AVAILABLE] * 3


def test_request_targets_reads_every_request_the_broker_serves():
    from odradek.broker.handlers import REGISTRY

    for entry in REGISTRY:
        targets = request_targets(entry.request_class())  # a default instance: empty names and lists
        assert targets.groups <= {""} and all(not partitions for partitions in targets.topics.values())


def test_the_number_of_faults_is_bounded():
    registry = FaultRegistry(FakeClock())
    for _ in range(MAX_FAULTS):
        registry.add({"action": "error", "error": 6, "count": 1})
    with pytest.raises(FaultSpecError, match="remove or clear some"):
        registry.add({"action": "error", "error": 6})
    registry.remove(1)
    registry.add({"action": "error", "error": 6})
