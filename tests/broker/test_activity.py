"""The activity stream's direct reading of produce requests and responses (broker/activity.py,
the hot path) gives what the walk over any message's fields gives (broker/faults.py's
``named_request_targets``, activity's ``_walked_error_codes``): property-tested over produce
requests naming topics by name, by known and unknown ids, by none, repeated, and responses with
any error codes, record errors and leader hints."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from odradek.broker.activity import (
    Activity,
    _error_codes,
    _produce_error_codes,
    _produce_topics,
    _request_topics,
    _walked_error_codes,
)
from odradek.broker.faults import named_request_targets
from odradek.protocol.messages.produce import (
    BatchIndexAndErrorMessage,
    NodeEndpoint,
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
    TopicProduceResponse,
)

KNOWN_IDS = {uuid.UUID(int=1): "orders", uuid.UUID(int=2): "payments", uuid.UUID(int=3): "orders"}
topic_ids = st.sampled_from([None, uuid.UUID(int=0), *KNOWN_IDS, uuid.UUID(int=99)])
topic_names = st.sampled_from(["", "orders", "payments", "other"])
partitions = st.lists(st.integers(-1, 5), max_size=4)
topic_data = st.builds(lambda name, topic_id, indexes: TopicProduceData(
    name=name, topic_id=topic_id, partition_data=[PartitionProduceData(index=i, records=b"") for i in indexes]),
    topic_names, topic_ids, partitions)
requests = st.builds(lambda topics: ProduceRequest(acks=1, timeout_ms=1000, topic_data=topics),
                     st.lists(topic_data, max_size=4))
error_code = st.sampled_from([0, 0, 0, 3, 10, 87])
partition_responses = st.builds(
    lambda code, record_errors, epoch: _answer(code, record_errors, epoch),
    error_code, st.lists(st.integers(0, 9), max_size=2), st.integers(-1, 3))
responses = st.builds(
    lambda topics, endpoints: ProduceResponse(
        responses=[TopicProduceResponse(name="t", partition_responses=answers) for answers in topics],
        node_endpoints=[NodeEndpoint(node_id=n, host="h", port=1) for n in range(endpoints)]),
    st.lists(st.lists(partition_responses, max_size=3), max_size=3), st.integers(0, 2))


def _answer(code, record_errors, epoch):
    answer = PartitionProduceResponse(index=0, error_code=code, record_errors=[
        BatchIndexAndErrorMessage(batch_index=i, batch_index_error_message="m") for i in record_errors])
    answer.current_leader.leader_epoch = epoch
    return answer


@given(requests)
def test_produce_topics_are_what_the_generic_walk_finds(request):
    assert _produce_topics(request, KNOWN_IDS.get) == named_request_targets(request, KNOWN_IDS.get).topics


@given(responses)
def test_produce_error_codes_are_what_the_generic_walk_finds(response):
    assert _produce_error_codes(response) == _walked_error_codes(response) == _error_codes(response)


def test_a_produce_event_names_its_topics_and_errors():
    activity = Activity(KNOWN_IDS.get)
    client = activity.connection_opened("127.0.0.1:1", "PLAINTEXT")

    class Request:
        client_id, api_key, api_version, correlation_id = "c", 0, 13, 7
        body = ProduceRequest(acks=1, timeout_ms=1000, topic_data=[
            TopicProduceData(topic_id=uuid.UUID(int=1), partition_data=[PartitionProduceData(index=2),
                                                                        PartitionProduceData(index=0)]),
            TopicProduceData(topic_id=uuid.UUID(int=99), partition_data=[PartitionProduceData(index=1)])])

    response = ProduceResponse(responses=[TopicProduceResponse(partition_responses=[
        PartitionProduceResponse(index=2, error_code=0), PartitionProduceResponse(index=0, error_code=87)])])
    activity.request_answered(client, Request, "Produce", 0.001, response)
    (event,) = activity.events()
    assert event["topics"] == {"orders": [0, 2], str(uuid.UUID(int=99)): [1]}
    assert event["topics"] == _request_topics(Request.body, KNOWN_IDS.get)
    assert event["errors"] == ["INVALID_RECORD"]
