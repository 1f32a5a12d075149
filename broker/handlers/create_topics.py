"""CreateTopics (key 19), versions 0-7.

Each topic is validated and created on its own, answered with its own error code and message
(v1+): a bad name INVALID_TOPIC_EXCEPTION, an existing one TOPIC_ALREADY_EXISTS, a partition
count below 1 INVALID_PARTITIONS, a replication factor above 1 (one node) INVALID_REPLICATION_
FACTOR, a manual assignment naming another broker INVALID_REPLICA_ASSIGNMENT, an unknown or
invalid config INVALID_CONFIG. ``-1`` partitions / replication factor (v4+) take the broker's
``num.partitions`` / ``default.replication.factor``. A name given twice in one request is
INVALID_REQUEST for every copy, as Kafka does. ``validate_only`` (v1+) checks without creating.

Version notes: v5+ report the created topic's partition count, replication factor and every
config with its value, read-only flag, source and sensitivity (what KafkaAdminClient's
``createTopics().config()`` reads); v7+ the topic id.
"""

from __future__ import annotations

from collections import Counter

from odradek.protocol import error_codes
from odradek.protocol.messages.create_topics import CreateTopicsRequest, CreateTopicsResponse

from ..config_view import topic_config_views
from ..topics import NewTopic, TopicError
from . import REGISTRY

Result = CreateTopicsResponse.CreatableTopicResult


@REGISTRY.handles(CreateTopicsRequest, CreateTopicsResponse)
def handle_create_topics(ctx, request: CreateTopicsRequest) -> CreateTopicsResponse:
    broker = ctx.broker
    version = ctx.api_version
    counts = Counter(topic.name for topic in request.topics)
    # Every topic of the request is created by one call, which writes the topic table once.
    creatable = [wanted for wanted in request.topics if counts[wanted.name] == 1]
    created = {} if request.validate_only else dict(zip(
        (wanted.name for wanted in creatable),
        broker.create_topics([NewTopic(wanted.name, wanted.num_partitions, wanted.replication_factor,
                                       _assignments(wanted), _configs(wanted)) for wanted in creatable])))
    results = []
    for wanted in request.topics:
        result = Result(name=wanted.name, error_code=error_codes.NONE, error_message=None)  # Kafka: null
        if counts[wanted.name] > 1:
            _fail(result, version, error_codes.INVALID_REQUEST, "Duplicate topic name.")
            results.append(result)
            continue
        try:
            if request.validate_only:
                count, overrides = broker.check_new_topic(wanted.name, wanted.num_partitions,
                                                          wanted.replication_factor, _assignments(wanted),
                                                          _configs(wanted))
                topic_id = None
            else:
                topic = created[wanted.name]
                if isinstance(topic, TopicError):
                    raise topic
                count, overrides, topic_id = topic.partition_count, topic.configs, topic.topic_id
        except TopicError as error:
            _fail(result, version, error.error_code, error.message)
            results.append(result)
            continue
        if version >= 5:
            result.num_partitions = count
            result.replication_factor = 1
            result.configs = [
                Result.CreatableTopicConfigs(name=view.name, value=view.value, read_only=view.read_only,
                                             config_source=int(view.source), is_sensitive=view.sensitive)
                for view in topic_config_views(broker.config, overrides)
            ]
        if version >= 7 and topic_id is not None:
            result.topic_id = topic_id
        results.append(result)
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


def _assignments(wanted) -> dict[int, list[int]]:
    return {item.partition_index: list(item.broker_ids) for item in wanted.assignments}


def _configs(wanted) -> dict[str, str | None]:
    return {item.name: item.value for item in wanted.configs}


def _fail(result, version: int, code: int, message: str) -> None:
    result.error_code = code
    if version >= 1:
        result.error_message = message
