"""Metadata (key 3), versions 0-13.

The single node is the only broker, the controller (controller_id = node id) and the leader
of every partition, with itself as the only replica and in-sync replica. Brokers are reported
at the advertised address of the listener the request arrived on.

Behaviour:

* No topic list (null, v1+; an empty list at v0) asks for every topic; an empty list (v1+)
  for none (brokers and cluster only).
* An unknown topic is created with the broker's defaults when ``auto.create.topics.enable``
  is on and the request allows it (``allow_auto_topic_creation``, v4+; always before v4).
  Creation is synchronous here, so the new topic is reported at once with NONE (Kafka answers
  LEADER_NOT_AVAILABLE first and clients retry). Otherwise UNKNOWN_TOPIC_OR_PARTITION; an
  illegal name INVALID_TOPIC_EXCEPTION.
* v10+: topics carry their id; a topic asked for by id only (v12+ clients) is looked up by
  id, UNKNOWN_TOPIC_ID when absent.
* v8+: authorized operations are every operation (no authorizer), when asked for.
* v13: a top-level error_code (always NONE here).
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.metadata import MetadataRequest, MetadataResponse

from ..topics import TopicError, validate_topic_name
from . import REGISTRY
from ._common import AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_OPERATIONS, TOPIC_OPERATIONS


def topic_metadata(broker, topic, include_operations: bool, version: int) -> MetadataResponse.MetadataResponseTopic:
    # Fields a version cannot carry are left at their defaults (the codec refuses others).
    partitions = []
    for index in range(topic.partition_count):
        partition = broker.partition(topic.name, index)
        # A partition whose log is offline has no leader: Kafka's answer for a partition whose
        # only replica sits in an offline log directory (LEADER_NOT_AVAILABLE, leader -1, the
        # replica listed offline and kept as the last member of the ISR). A partition an
        # offline fault holds is shown the same way.
        offline = broker.leaderless(topic.name, index)
        partitions.append(MetadataResponse.MetadataResponseTopic.MetadataResponsePartition(
            error_code=error_codes.LEADER_NOT_AVAILABLE if offline else error_codes.NONE,
            partition_index=index,
            leader_id=-1 if offline else broker.node_id,
            leader_epoch=(partition.leader_epoch if partition else 0) if version >= 7 else -1,
            replica_nodes=[broker.node_id],
            isr_nodes=[broker.node_id],
            offline_replicas=[broker.node_id] if offline else [],
        ))
    return MetadataResponse.MetadataResponseTopic(
        error_code=error_codes.NONE,
        name=topic.name,
        **({"topic_id": topic.topic_id} if version >= 10 else {}),
        is_internal=topic.is_internal and version >= 1,
        partitions=partitions,
        topic_authorized_operations=TOPIC_OPERATIONS if include_operations else AUTHORIZED_OPERATIONS_OMITTED,
    )


def _error_topic(code: int, name, topic_id=None, version: int = 0) -> MetadataResponse.MetadataResponseTopic:
    fields = {"error_code": code, "name": name, "partitions": []}
    if topic_id is not None and version >= 10:
        fields["topic_id"] = topic_id
    return MetadataResponse.MetadataResponseTopic(**fields)


@REGISTRY.handles(MetadataRequest, MetadataResponse)
def handle_metadata(ctx, request: MetadataRequest) -> MetadataResponse:
    broker = ctx.broker
    version = ctx.api_version
    include_operations = version >= 8 and request.include_topic_authorized_operations
    auto_create = request.allow_auto_topic_creation if version >= 4 else True

    requested = request.topics
    if requested is None or (version == 0 and not requested):
        topics = [topic_metadata(broker, topic, include_operations, version) for topic in broker.topics]
    else:
        topics = []
        for wanted in requested:
            name = wanted.name
            if name is None or (not name and version >= 10 and wanted.topic_id.int != 0):
                topic_id = wanted.topic_id
                topic = broker.topics.by_id.get(topic_id) if topic_id is not None else None
                if topic is None:
                    topics.append(_error_topic(error_codes.UNKNOWN_TOPIC_ID, None, topic_id, version))
                else:
                    topics.append(topic_metadata(broker, topic, include_operations, version))
                continue
            topic = broker.topics.get(name)
            if topic is None and auto_create:
                try:
                    topic = broker.auto_create_topic(name)
                except TopicError as error:
                    topics.append(_error_topic(error.error_code, name))
                    continue
            if topic is None:
                try:  # as Kafka: an illegal name is INVALID_TOPIC_EXCEPTION even without auto-creation
                    validate_topic_name(name)
                    code = error_codes.UNKNOWN_TOPIC_OR_PARTITION
                except TopicError as error:
                    code = error.error_code
                topics.append(_error_topic(code, name))
            else:
                topics.append(topic_metadata(broker, topic, include_operations, version))

    host, port = broker.advertised_endpoint(ctx.listener_name)
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=[MetadataResponse.MetadataResponseBroker(node_id=broker.node_id, host=host, port=port,
                                                         rack=broker.config.rack if version >= 1 else None)],
        cluster_id=broker.cluster_id if version >= 2 else None,
        controller_id=broker.node_id if version >= 1 else -1,
        topics=topics,
        cluster_authorized_operations=(CLUSTER_OPERATIONS if 8 <= version <= 10
                                       and request.include_cluster_authorized_operations
                                       else AUTHORIZED_OPERATIONS_OMITTED),
        error_code=error_codes.NONE,
    )
