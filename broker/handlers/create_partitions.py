"""CreatePartitions (key 37), versions 0-3.

Grows a topic to ``count`` partitions (never shrinks: a smaller or equal count is
INVALID_PARTITIONS, with Kafka's messages). Manual ``assignments`` must give one replica list
per new partition, naming only this node (else INVALID_REPLICA_ASSIGNMENT). Unknown topic:
UNKNOWN_TOPIC_OR_PARTITION; a topic named twice: INVALID_REQUEST for each copy.
``validate_only`` checks without creating. New partitions start empty at offset 0 with leader
epoch 0.
"""

from __future__ import annotations

from collections import Counter

from odradek.protocol import error_codes
from odradek.protocol.messages.create_partitions import CreatePartitionsRequest, CreatePartitionsResponse

from ..topics import TopicError
from . import REGISTRY

Result = CreatePartitionsResponse.CreatePartitionsTopicResult


@REGISTRY.handles(CreatePartitionsRequest, CreatePartitionsResponse)
def handle_create_partitions(ctx, request: CreatePartitionsRequest) -> CreatePartitionsResponse:
    broker = ctx.broker
    counts = Counter(item.name for item in request.topics)
    results = []
    for item in request.topics:
        result = Result(name=item.name, error_code=error_codes.NONE)
        try:
            if counts[item.name] > 1:
                raise TopicError(error_codes.INVALID_REQUEST, "Duplicate topic in request.")
            topic = broker.topics.get(item.name)
            if topic is None:
                raise TopicError(error_codes.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{item.name}' does not exist.")
            assignments = ([list(a.broker_ids) for a in item.assignments]
                           if item.assignments is not None else None)
            if request.validate_only:
                broker.check_new_partitions(topic, item.count, assignments)
            else:
                broker.create_partitions(topic, item.count, assignments)
        except TopicError as error:
            result.error_code = error.error_code
            result.error_message = error.message
        results.append(result)
    return CreatePartitionsResponse(throttle_time_ms=0, results=results)
