"""DeleteTopics (key 20), versions 0-6.

Deletes each named topic (v6+: by name or by id): its partitions stop being served at once
(waiting fetches and produces are woken) and their directories are renamed and removed by the
storage engine. Errors per topic: UNKNOWN_TOPIC_OR_PARTITION (by id: UNKNOWN_TOPIC_ID),
TOPIC_DELETION_DISABLED when ``delete.topic.enable`` is false, INVALID_REQUEST for both a
name and an id, INVALID_TOPIC_EXCEPTION for an internal topic. v5+ carry an error message.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse

from ..topics import TopicError
from . import REGISTRY

Result = DeleteTopicsResponse.DeletableTopicResult


@REGISTRY.handles(DeleteTopicsRequest, DeleteTopicsResponse)
def handle_delete_topics(ctx, request: DeleteTopicsRequest) -> DeleteTopicsResponse:
    broker = ctx.broker
    version = ctx.api_version
    if version >= 6:
        wanted = [(item.name, item.topic_id) for item in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    results = []
    for name, topic_id in wanted:
        by_id = topic_id is not None and topic_id.int != 0
        result = Result(name=name, error_code=error_codes.NONE)
        if version >= 6:
            result.topic_id = topic_id if by_id else result.topic_id
        try:
            if name and by_id:
                raise TopicError(error_codes.INVALID_REQUEST, "A topic may be named by name or by id, not both")
            topic = broker.topics.by_id.get(topic_id) if by_id else broker.topics.get(name)
            if topic is None:
                raise TopicError(error_codes.UNKNOWN_TOPIC_ID if by_id else error_codes.UNKNOWN_TOPIC_OR_PARTITION,
                                 "This server does not host this topic ID." if by_id
                                 else "This server does not host this topic-partition.")
            if topic.is_internal:
                raise TopicError(error_codes.INVALID_TOPIC_EXCEPTION, f"Topic {topic.name} is internal and cannot be deleted")
            broker.delete_topic(topic)
            result.name = topic.name
            if version >= 6:
                result.topic_id = topic.topic_id
        except TopicError as error:
            result.error_code = error.error_code
            if version >= 5:
                result.error_message = error.message
        results.append(result)
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)
