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

from ..config import TOPIC_CONFIGS, ConfigSource
from ..topics import TopicError
from . import REGISTRY

Result = CreateTopicsResponse.CreatableTopicResult


def topic_config_entries(broker, overrides: dict[str, str], entry_class):
    """Every topic config with its effective value and source (CreateTopics v5+ and
    DescribeConfigs share this view)."""
    entries = []
    for name, definition in TOPIC_CONFIGS.items():
        if name in overrides:
            value, source = overrides[name], ConfigSource.DYNAMIC_TOPIC_CONFIG
        else:
            raw, broker_key = broker.config.broker_value_for_topic_config(name)
            value = definition.format(raw)
            source = (ConfigSource.STATIC_BROKER_CONFIG if broker_key and broker.config.is_set(broker_key)
                      else ConfigSource.DEFAULT_CONFIG)
        entries.append((name, value, source, definition.sensitive))
    return entries


@REGISTRY.handles(CreateTopicsRequest, CreateTopicsResponse)
def handle_create_topics(ctx, request: CreateTopicsRequest) -> CreateTopicsResponse:
    broker = ctx.broker
    version = ctx.api_version
    counts = Counter(topic.name for topic in request.topics)
    results = []
    for wanted in request.topics:
        result = Result(name=wanted.name, error_code=error_codes.NONE)
        if counts[wanted.name] > 1:
            _fail(result, version, error_codes.INVALID_REQUEST, "Duplicate topic name.")
            results.append(result)
            continue
        assignments = {item.partition_index: list(item.broker_ids) for item in wanted.assignments}
        configs = {item.name: item.value for item in wanted.configs}
        try:
            if request.validate_only:
                count, overrides = broker.check_new_topic(wanted.name, wanted.num_partitions,
                                                          wanted.replication_factor, assignments, configs)
                topic_id = None
            else:
                topic = broker.create_topic(wanted.name, wanted.num_partitions, wanted.replication_factor,
                                            assignments, configs)
                count, overrides, topic_id = topic.partition_count, topic.configs, topic.topic_id
        except TopicError as error:
            _fail(result, version, error.error_code, error.message)
            results.append(result)
            continue
        if version >= 5:
            result.num_partitions = count
            result.replication_factor = 1
            result.configs = [
                Result.CreatableTopicConfigs(name=name, value=value, read_only=False, config_source=int(source),
                                             is_sensitive=sensitive)
                for name, value, source, sensitive in topic_config_entries(broker, overrides, None)
            ]
        if version >= 7 and topic_id is not None:
            result.topic_id = topic_id
        results.append(result)
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


def _fail(result, version: int, code: int, message: str) -> None:
    result.error_code = code
    if version >= 1:
        result.error_message = message
