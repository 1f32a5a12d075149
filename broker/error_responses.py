"""The response a request gets when its handler fails: Kafka's ``AbstractRequest.getErrorResponse``.

Kafka answers a request whose handling threw (``KafkaApis.handle`` -> ``RequestHandlerHelper.
handleError`` -> ``sendErrorOrCloseConnection``) with the error response its request class builds
from the exception, and keeps the connection; only a request that has no error response (an
acks=0 produce: the client expects no answer) closes it. This module is that for every API
odradek serves, one builder per API key in :data:`BUILDERS` (the registry refuses to register an
API without one).

Each builder gets the decoded request, its version and an :class:`ErrorAnswer` and returns what
Kafka 4.3/4.4's ``getErrorResponse`` returns for that request class: the error code in the
top-level error field and/or in one result per element of the request (topic, partition,
resource, group, key, filter), in the request's order, with the "unknown" values Kafka puts
beside it (offsets, leaders, epochs -1, empty names, the authorized operations left out).
Fields a version does not carry are left at their defaults. Where Kafka writes a message, it is
``ApiError.fromThrowable``'s (none for UNKNOWN_SERVER_ERROR, so that nothing of a bug leaks;
none when it is the code's default message), except DescribeConfigs, FindCoordinator and
DescribeQuorum, which write the code's default message. compat/ErrorResponses.java prints Kafka's own answers for the
comparison in tests/broker/test_error_responses.py.

:func:`error_answer` is Kafka's ``Errors.forException`` for our exceptions: an exception that
carries a Kafka error code (``error_code``: the protocol and storage errors, TopicError, ...)
answers that code; an OSError (the disk failed, the process ran out of file descriptors) is
KAFKA_STORAGE_ERROR, as Kafka answers the ``KafkaStorageException`` it wraps I/O errors in
(a TimeoutError, an OSError in Python, is REQUEST_TIMED_OUT, Kafka's TimeoutException; a
ConnectionError is not the disk's); anything else is UNKNOWN_SERVER_ERROR.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from odradek.protocol import error_codes
from odradek.protocol.messages import (
    add_offsets_to_txn,
    add_partitions_to_txn,
    alter_configs,
    api_versions,
    consumer_group_describe,
    consumer_group_heartbeat,
    create_acls,
    create_partitions,
    create_topics,
    delete_acls,
    delete_groups,
    delete_records,
    delete_topics,
    describe_acls,
    describe_cluster,
    describe_configs,
    describe_groups,
    describe_log_dirs,
    describe_producers,
    describe_quorum,
    describe_topic_partitions,
    describe_transactions,
    end_txn,
    fetch,
    find_coordinator,
    get_telemetry_subscriptions,
    heartbeat,
    incremental_alter_configs,
    init_producer_id,
    join_group,
    leave_group,
    list_groups,
    list_offsets,
    list_transactions,
    metadata,
    offset_commit,
    offset_delete,
    offset_fetch,
    offset_for_leader_epoch,
    produce,
    push_telemetry,
    sync_group,
    txn_offset_commit,
    write_txn_markers,
)
from odradek.protocol.messages._runtime import ZERO_UUID

# What Kafka puts beside the error code for what it does not know.
UNKNOWN_OFFSET = -1          # offsets, low watermarks, high watermarks, end offsets
UNKNOWN_EPOCH = -1           # leader epochs, producer epochs
UNKNOWN_NODE_ID = -1         # Node.noNode(): id -1, host "", port -1
NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


class ErrorAnswer(NamedTuple):
    """The error a failed request is answered with: Kafka's ``ApiError`` (code and the message
    ``ApiError.fromThrowable`` keeps, None when it keeps none)."""

    code: int
    message: str | None

    @property
    def default_message(self) -> str | None:
        """The code's own message (``Errors.message()``), which some responses carry instead."""
        return error_codes.lookup(self.code).message


def error_answer(error: BaseException) -> ErrorAnswer:
    """Kafka's ``Errors.forException`` and ``ApiError.fromThrowable`` for an exception a handler
    raised."""
    code = getattr(error, "error_code", None)
    if not isinstance(code, int) or isinstance(code, bool) or code == error_codes.NONE \
            or code not in error_codes.ERRORS:
        if isinstance(error, TimeoutError):  # an OSError in Python; Kafka's TimeoutException
            code = error_codes.REQUEST_TIMED_OUT
        elif isinstance(error, OSError) and not isinstance(error, ConnectionError):
            code = error_codes.KAFKA_STORAGE_ERROR
        else:
            code = error_codes.UNKNOWN_SERVER_ERROR
    if code == error_codes.UNKNOWN_SERVER_ERROR:
        return ErrorAnswer(code, None)
    message = getattr(error, "message", None)
    if not isinstance(message, str):
        message = str(error) or None
    if message == error_codes.lookup(code).message:
        message = None
    return ErrorAnswer(code, message)


def error_response(request, version: int, answer: ErrorAnswer, served: tuple[int, int]):
    """The response to ``request`` (decoded, at ``version``) whose handling failed with
    ``answer``, or None where Kafka has none and closes the connection. ``served`` is the
    version range odradek serves for the API (ApiVersions' answer to UNSUPPORTED_VERSION
    lists it)."""
    if request.API_KEY == api_versions.ApiVersionsRequest.API_KEY:
        return _api_versions(request, version, answer, served)
    return BUILDERS[request.API_KEY](request, version, answer)


_present_cache: dict[type, dict[str, int]] = {}


def _make(cls, version: int, **values):
    """An instance of generated class ``cls`` with ``values`` set where ``version`` carries the
    field (Kafka sets them regardless; its serializer leaves out what a version has not)."""
    present = _present_cache.get(cls)
    if present is None:
        present = _present_cache[cls] = {info.attr: info.present for info in cls.FIELDS}
    bit = 1 << version
    obj = cls()
    for name, value in values.items():
        if present[name] & bit:
            setattr(obj, name, value)
    return obj


# --- one builder per API key, in key order ---

def _produce(request, version, answer):
    if request.acks == 0:
        return None  # the producer reads no response: Kafka closes the connection
    Response = produce.ProduceResponse
    topics: dict = {}
    seen = set()
    # Kafka collects the partitions in a map keyed by (topic id, name, partition): a partition
    # named twice is answered once, a topic named twice gathers its partitions under one entry.
    for topic in request.topic_data:
        for partition in topic.partition_data:
            key = (topic.name, topic.topic_id, partition.index)
            if key in seen:
                continue
            seen.add(key)
            result = topics.get(key[:2])
            if result is None:
                result = topics[key[:2]] = _make(Response.TopicProduceResponse, version, name=topic.name,
                                                 topic_id=topic.topic_id)
            result.partition_responses.append(_make(
                Response.TopicProduceResponse.PartitionProduceResponse, version, index=partition.index,
                error_code=answer.code, base_offset=UNKNOWN_OFFSET, log_append_time_ms=NO_TIMESTAMP,
                log_start_offset=UNKNOWN_OFFSET, record_errors=[], error_message=answer.message))
    return _make(Response, version, throttle_time_ms=0, responses=list(topics.values()))


def _fetch(request, version, answer):
    Response = fetch.FetchResponse
    topics = []
    # v13+ clients read the top-level code; older ones need it per partition. Records: empty
    # (Kafka 4), null before v4 (Kafka 3.9, the last to speak v0-3).
    if version < 13:
        for topic in request.topics:
            partitions = [_make(Response.FetchableTopicResponse.PartitionData, version,
                                partition_index=partition.partition, error_code=answer.code,
                                high_watermark=UNKNOWN_OFFSET, records=b"" if version >= 4 else None)
                          for partition in topic.partitions]
            topics.append(_make(Response.FetchableTopicResponse, version, topic=topic.topic,
                                topic_id=topic.topic_id, partitions=partitions))
    return _make(Response, version, throttle_time_ms=0, error_code=answer.code, session_id=request.session_id,
                 responses=topics)


def _list_offsets(request, version, answer):
    Response = list_offsets.ListOffsetsResponse
    Partition = Response.ListOffsetsTopicResponse.ListOffsetsPartitionResponse
    topics = []
    for topic in request.topics:
        partitions = [_make(Partition, version, partition_index=partition.partition_index, error_code=answer.code,
                            offset=UNKNOWN_OFFSET, timestamp=NO_TIMESTAMP, old_style_offsets=[])
                      for partition in topic.partitions]
        topics.append(_make(Response.ListOffsetsTopicResponse, version, name=topic.name, partitions=partitions))
    return _make(Response, version, throttle_time_ms=0, topics=topics)


def _metadata(request, version, answer):
    Response = metadata.MetadataResponse
    topics = [_make(Response.MetadataResponseTopic, version, name=topic.name or "", topic_id=topic.topic_id,
                    error_code=answer.code, is_internal=False, partitions=[])
              for topic in request.topics or ()]
    return _make(Response, version, throttle_time_ms=0, topics=topics, error_code=answer.code)


def _offset_commit(request, version, answer):
    Response = offset_commit.OffsetCommitResponse
    Topic = Response.OffsetCommitResponseTopic
    topics = [_make(Topic, version, name=topic.name, topic_id=topic.topic_id, partitions=[
        _make(Topic.OffsetCommitResponsePartition, version, partition_index=partition.partition_index,
              error_code=answer.code) for partition in topic.partitions])
        for topic in request.topics]
    return _make(Response, version, throttle_time_ms=0, topics=topics)


def _offset_fetch(request, version, answer):
    Response = offset_fetch.OffsetFetchResponse
    if version < 2:  # no top-level code yet: every partition asked for carries it
        Topic = Response.OffsetFetchResponseTopic
        topics = [_make(Topic, version, name=topic.name, partitions=[
            _make(Topic.OffsetFetchResponsePartition, version, partition_index=index, error_code=answer.code,
                  committed_offset=UNKNOWN_OFFSET, metadata="", committed_leader_epoch=UNKNOWN_EPOCH)
            for index in topic.partition_indexes]) for topic in request.topics or ()]
        if version == 0:
            # Kafka 3.9, the last to speak v0, gathers the partitions by topic: a topic named
            # twice is answered once, one with no partitions not at all.
            merged: dict = {}
            for topic in topics:
                if topic.partitions:
                    into = merged.setdefault(topic.name, _make(Topic, version, name=topic.name))
                    known = {partition.partition_index for partition in into.partitions}
                    into.partitions += [p for p in topic.partitions if p.partition_index not in known]
            topics = list(merged.values())
        return _make(Response, version, throttle_time_ms=0, topics=topics)
    if version < 8:  # one group, a top-level code
        return _make(Response, version, throttle_time_ms=0, error_code=answer.code)
    groups = [_make(Response.OffsetFetchResponseGroup, version, group_id=group.group_id, error_code=answer.code)
              for group in request.groups]
    return _make(Response, version, throttle_time_ms=0, groups=groups)


def _find_coordinator(request, version, answer):
    Response = find_coordinator.FindCoordinatorResponse
    if version < 4:
        return _make(Response, version, throttle_time_ms=0, error_code=answer.code,
                     error_message=answer.default_message, node_id=UNKNOWN_NODE_ID, host="", port=-1)
    coordinators = [_make(Response.Coordinator, version, key=key, error_code=answer.code,
                          error_message=answer.default_message, node_id=UNKNOWN_NODE_ID, host="", port=-1)
                    for key in request.coordinator_keys]
    return _make(Response, version, throttle_time_ms=0, coordinators=coordinators)


def _join_group(request, version, answer):
    return _make(join_group.JoinGroupResponse, version, throttle_time_ms=0, error_code=answer.code,
                 generation_id=-1, protocol_name=None if version >= 7 else "", leader="", member_id="",
                 members=[])


def _heartbeat(request, version, answer):
    return _make(heartbeat.HeartbeatResponse, version, throttle_time_ms=0, error_code=answer.code)


def _leave_group(request, version, answer):
    return _make(leave_group.LeaveGroupResponse, version, throttle_time_ms=0, error_code=answer.code)


def _sync_group(request, version, answer):
    return _make(sync_group.SyncGroupResponse, version, throttle_time_ms=0, error_code=answer.code, assignment=b"")


def _describe_groups(request, version, answer):
    Response = describe_groups.DescribeGroupsResponse
    groups = [_make(Response.DescribedGroup, version, group_id=group_id, error_code=answer.code, group_state="",
                    protocol_type="", protocol_data="", members=[],
                    authorized_operations=AUTHORIZED_OPERATIONS_OMITTED)
              for group_id in request.groups]
    return _make(Response, version, throttle_time_ms=0, groups=groups)


def _list_groups(request, version, answer):
    return _make(list_groups.ListGroupsResponse, version, throttle_time_ms=0, error_code=answer.code, groups=[])


def _api_versions(request, version, answer, served):
    Response = api_versions.ApiVersionsResponse
    api_keys = []
    if answer.code == error_codes.UNSUPPORTED_VERSION:  # KIP-511: the client retries in our range
        api_keys = [Response.ApiVersion(api_key=request.API_KEY, min_version=served[0], max_version=served[1])]
    return _make(Response, version, throttle_time_ms=0, error_code=answer.code, api_keys=api_keys)


def _create_topics(request, version, answer):
    Response = create_topics.CreateTopicsResponse
    topics = [_make(Response.CreatableTopicResult, version, name=topic.name, error_code=answer.code,
                    error_message=answer.message) for topic in request.topics]
    return _make(Response, version, throttle_time_ms=0, topics=topics)


def _delete_topics(request, version, answer):
    Response = delete_topics.DeleteTopicsResponse
    named = ([(topic.name, topic.topic_id) for topic in request.topics] if version >= 6
             else [(name, ZERO_UUID) for name in request.topic_names])
    results = [_make(Response.DeletableTopicResult, version, name=name, topic_id=topic_id, error_code=answer.code)
               for name, topic_id in named]
    return _make(Response, version, throttle_time_ms=0, responses=results)


def _delete_records(request, version, answer):
    Response = delete_records.DeleteRecordsResponse
    Topic = Response.DeleteRecordsTopicResult
    topics = [_make(Topic, version, name=topic.name, partitions=[
        _make(Topic.DeleteRecordsPartitionResult, version, partition_index=partition.partition_index,
              error_code=answer.code, low_watermark=UNKNOWN_OFFSET) for partition in topic.partitions])
        for topic in request.topics]
    return _make(Response, version, throttle_time_ms=0, topics=topics)


def _init_producer_id(request, version, answer):
    return _make(init_producer_id.InitProducerIdResponse, version, throttle_time_ms=0, error_code=answer.code,
                 producer_id=NO_PRODUCER_ID, producer_epoch=UNKNOWN_EPOCH)


def _offset_for_leader_epoch(request, version, answer):
    Response = offset_for_leader_epoch.OffsetForLeaderEpochResponse
    Topic = Response.OffsetForLeaderTopicResult
    topics = [_make(Topic, version, topic=topic.topic, partitions=[
        _make(Topic.EpochEndOffset, version, partition=partition.partition, error_code=answer.code,
              leader_epoch=UNKNOWN_EPOCH, end_offset=UNKNOWN_OFFSET) for partition in topic.partitions])
        for topic in request.topics]
    return _make(Response, version, throttle_time_ms=0, topics=topics)


def _describe_acls(request, version, answer):
    return _make(describe_acls.DescribeAclsResponse, version, throttle_time_ms=0, error_code=answer.code,
                 error_message=answer.message, resources=[])


def _create_acls(request, version, answer):
    Response = create_acls.CreateAclsResponse
    results = [_make(Response.AclCreationResult, version, error_code=answer.code, error_message=answer.message)
               for _ in request.creations]
    return _make(Response, version, throttle_time_ms=0, results=results)


def _delete_acls(request, version, answer):
    Response = delete_acls.DeleteAclsResponse
    results = [_make(Response.DeleteAclsFilterResult, version, error_code=answer.code, error_message=answer.message,
                     matching_acls=[]) for _ in request.filters]
    return _make(Response, version, throttle_time_ms=0, filter_results=results)


def _describe_configs(request, version, answer):
    Response = describe_configs.DescribeConfigsResponse
    results = [_make(Response.DescribeConfigsResult, version, error_code=answer.code,
                     error_message=answer.default_message, resource_type=resource.resource_type,
                     resource_name=resource.resource_name, configs=[])
               for resource in request.resources]
    return _make(Response, version, throttle_time_ms=0, results=results)


def _alter_configs_like(module, response_name):
    Response = getattr(module, response_name)

    def build(request, version, answer):
        results = [_make(Response.AlterConfigsResourceResponse, version, error_code=answer.code,
                         error_message=answer.message, resource_type=resource.resource_type,
                         resource_name=resource.resource_name)
                   for resource in request.resources]
        return _make(Response, version, throttle_time_ms=0, responses=results)
    return build


def _describe_log_dirs(request, version, answer):
    return _make(describe_log_dirs.DescribeLogDirsResponse, version, throttle_time_ms=0, error_code=answer.code,
                 results=[])


def _create_partitions(request, version, answer):
    Response = create_partitions.CreatePartitionsResponse
    results = [_make(Response.CreatePartitionsTopicResult, version, name=topic.name, error_code=answer.code,
                     error_message=answer.message) for topic in request.topics]
    return _make(Response, version, throttle_time_ms=0, results=results)


def _delete_groups(request, version, answer):
    Response = delete_groups.DeleteGroupsResponse
    results = [_make(Response.DeletableGroupResult, version, group_id=group_id, error_code=answer.code)
               for group_id in request.groups_names]
    return _make(Response, version, throttle_time_ms=0, results=results)


def _offset_delete(request, version, answer):
    return _make(offset_delete.OffsetDeleteResponse, version, throttle_time_ms=0, error_code=answer.code, topics=[])


def _txn_offset_commit(request, version, answer):
    topics = [_make(txn_offset_commit.TxnOffsetCommitResponseTopic, version, name=topic.name, partitions=[
        _make(txn_offset_commit.TxnOffsetCommitResponsePartition, version, partition_index=partition.partition_index,
              error_code=answer.code) for partition in topic.partitions])
        for topic in request.topics]
    return _make(txn_offset_commit.TxnOffsetCommitResponse, version, throttle_time_ms=0, topics=topics)


def _describe_cluster(request, version, answer):
    return _make(describe_cluster.DescribeClusterResponse, version, throttle_time_ms=0, error_code=answer.code,
                 error_message=answer.message)


def _describe_quorum(request, version, answer):
    return _make(describe_quorum.DescribeQuorumResponse, version, error_code=answer.code,
                 error_message=answer.default_message)


def _describe_producers(request, version, answer):
    Response = describe_producers.DescribeProducersResponse
    Topic = Response.TopicResponse
    topics = [_make(Topic, version, name=topic.name, partitions=[
        _make(Topic.PartitionResponse, version, partition_index=index, error_code=answer.code)
        for index in topic.partition_indexes]) for topic in request.topics]
    return _make(Response, version, throttle_time_ms=0, topics=topics)


def _consumer_group_heartbeat(request, version, answer):
    return _make(consumer_group_heartbeat.ConsumerGroupHeartbeatResponse, version, throttle_time_ms=0,
                 error_code=answer.code)


def _consumer_group_describe(request, version, answer):
    Response = consumer_group_describe.ConsumerGroupDescribeResponse
    groups = [_make(Response.DescribedGroup, version, group_id=group_id, error_code=answer.code)
              for group_id in request.group_ids]
    return _make(Response, version, throttle_time_ms=0, groups=groups)


def _get_telemetry_subscriptions(request, version, answer):
    return _make(get_telemetry_subscriptions.GetTelemetrySubscriptionsResponse, version, throttle_time_ms=0,
                 error_code=answer.code)


def _push_telemetry(request, version, answer):
    return _make(push_telemetry.PushTelemetryResponse, version, throttle_time_ms=0, error_code=answer.code)


def _add_partitions_to_txn(request, version, answer):
    Response = add_partitions_to_txn.AddPartitionsToTxnResponse
    if version >= 4:
        return _make(Response, version, throttle_time_ms=0, error_code=answer.code)
    topics = [_make(add_partitions_to_txn.AddPartitionsToTxnTopicResult, version, name=topic.name, results_by_partition=[
        _make(add_partitions_to_txn.AddPartitionsToTxnPartitionResult, version, partition_index=index,
              partition_error_code=answer.code) for index in topic.partitions])
        for topic in request.v3_and_below_topics]
    return _make(Response, version, throttle_time_ms=0, results_by_topic_v3_and_below=topics)


def _add_offsets_to_txn(request, version, answer):
    return _make(add_offsets_to_txn.AddOffsetsToTxnResponse, version, throttle_time_ms=0, error_code=answer.code)


def _end_txn(request, version, answer):
    return _make(end_txn.EndTxnResponse, version, throttle_time_ms=0, error_code=answer.code)


def _write_txn_markers(request, version, answer):
    # Kafka builds the answer from a map producer id -> partition -> error: a producer id named
    # twice is answered once, a partition once, a topic naming no partition not at all.
    by_producer: dict[int, dict[str, dict[int, None]]] = {}
    for marker in request.markers:
        topics = by_producer.setdefault(marker.producer_id, {})
        for topic in marker.topics:
            for index in topic.partition_indexes:
                topics.setdefault(topic.name, {})[index] = None
    Response = write_txn_markers.WriteTxnMarkersResponse
    markers = [_make(write_txn_markers.WritableTxnMarkerResult, version, producer_id=producer_id, topics=[
        _make(write_txn_markers.WritableTxnMarkerTopicResult, version, name=name, partitions=[
            _make(write_txn_markers.WritableTxnMarkerPartitionResult, version, partition_index=index,
                  error_code=answer.code) for index in indexes]) for name, indexes in topics.items()])
        for producer_id, topics in by_producer.items()]
    return _make(Response, version, markers=markers)


def _describe_transactions(request, version, answer):
    Response = describe_transactions.DescribeTransactionsResponse
    states = [_make(describe_transactions.TransactionState, version, transactional_id=transactional_id,
                    error_code=answer.code) for transactional_id in request.transactional_ids]
    return _make(Response, version, throttle_time_ms=0, transaction_states=states)


def _list_transactions(request, version, answer):
    return _make(list_transactions.ListTransactionsResponse, version, throttle_time_ms=0, error_code=answer.code)


def _describe_topic_partitions(request, version, answer):
    Response = describe_topic_partitions.DescribeTopicPartitionsResponse
    topics = [_make(Response.DescribeTopicPartitionsResponseTopic, version, name=topic.name, error_code=answer.code,
                    is_internal=False, partitions=[]) for topic in request.topics]
    return _make(Response, version, throttle_time_ms=0, topics=topics)


# API key -> builder(request, version, answer). ApiVersions (18) is built by error_response
# itself (it needs the served range); it is listed so that the registry finds it.
BUILDERS: dict[int, Callable] = {
    produce.ProduceRequest.API_KEY: _produce,
    fetch.FetchRequest.API_KEY: _fetch,
    list_offsets.ListOffsetsRequest.API_KEY: _list_offsets,
    metadata.MetadataRequest.API_KEY: _metadata,
    offset_commit.OffsetCommitRequest.API_KEY: _offset_commit,
    offset_fetch.OffsetFetchRequest.API_KEY: _offset_fetch,
    find_coordinator.FindCoordinatorRequest.API_KEY: _find_coordinator,
    join_group.JoinGroupRequest.API_KEY: _join_group,
    heartbeat.HeartbeatRequest.API_KEY: _heartbeat,
    leave_group.LeaveGroupRequest.API_KEY: _leave_group,
    sync_group.SyncGroupRequest.API_KEY: _sync_group,
    describe_groups.DescribeGroupsRequest.API_KEY: _describe_groups,
    list_groups.ListGroupsRequest.API_KEY: _list_groups,
    api_versions.ApiVersionsRequest.API_KEY: _api_versions,
    create_topics.CreateTopicsRequest.API_KEY: _create_topics,
    delete_topics.DeleteTopicsRequest.API_KEY: _delete_topics,
    delete_records.DeleteRecordsRequest.API_KEY: _delete_records,
    init_producer_id.InitProducerIdRequest.API_KEY: _init_producer_id,
    offset_for_leader_epoch.OffsetForLeaderEpochRequest.API_KEY: _offset_for_leader_epoch,
    add_partitions_to_txn.AddPartitionsToTxnRequest.API_KEY: _add_partitions_to_txn,
    add_offsets_to_txn.AddOffsetsToTxnRequest.API_KEY: _add_offsets_to_txn,
    end_txn.EndTxnRequest.API_KEY: _end_txn,
    write_txn_markers.WriteTxnMarkersRequest.API_KEY: _write_txn_markers,
    describe_acls.DescribeAclsRequest.API_KEY: _describe_acls,
    create_acls.CreateAclsRequest.API_KEY: _create_acls,
    delete_acls.DeleteAclsRequest.API_KEY: _delete_acls,
    describe_configs.DescribeConfigsRequest.API_KEY: _describe_configs,
    alter_configs.AlterConfigsRequest.API_KEY: _alter_configs_like(alter_configs, "AlterConfigsResponse"),
    describe_log_dirs.DescribeLogDirsRequest.API_KEY: _describe_log_dirs,
    create_partitions.CreatePartitionsRequest.API_KEY: _create_partitions,
    delete_groups.DeleteGroupsRequest.API_KEY: _delete_groups,
    incremental_alter_configs.IncrementalAlterConfigsRequest.API_KEY:
        _alter_configs_like(incremental_alter_configs, "IncrementalAlterConfigsResponse"),
    offset_delete.OffsetDeleteRequest.API_KEY: _offset_delete,
    txn_offset_commit.TxnOffsetCommitRequest.API_KEY: _txn_offset_commit,
    describe_cluster.DescribeClusterRequest.API_KEY: _describe_cluster,
    describe_producers.DescribeProducersRequest.API_KEY: _describe_producers,
    describe_quorum.DescribeQuorumRequest.API_KEY: _describe_quorum,
    consumer_group_heartbeat.ConsumerGroupHeartbeatRequest.API_KEY: _consumer_group_heartbeat,
    consumer_group_describe.ConsumerGroupDescribeRequest.API_KEY: _consumer_group_describe,
    get_telemetry_subscriptions.GetTelemetrySubscriptionsRequest.API_KEY: _get_telemetry_subscriptions,
    push_telemetry.PushTelemetryRequest.API_KEY: _push_telemetry,
    describe_transactions.DescribeTransactionsRequest.API_KEY: _describe_transactions,
    list_transactions.ListTransactionsRequest.API_KEY: _list_transactions,
    describe_topic_partitions.DescribeTopicPartitionsRequest.API_KEY: _describe_topic_partitions,
}
