"""AlterConfigs (key 33), versions 0-2: replace a topic's (or a group's, resource type 32) whole
set of config overrides.

Every key not given goes back to its default (that is the legacy API's meaning; clients now
prefer IncrementalAlterConfigs). The new set is validated as a whole first: an unknown key or
a bad value is INVALID_CONFIG and nothing changes. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
Broker resources: INVALID_CONFIG (no dynamic broker configs yet). ``validate_only`` checks
without changing. Changes apply to the topic's partitions at once.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.alter_configs import AlterConfigsRequest, AlterConfigsResponse

from ..topics import TopicError
from . import REGISTRY
from ._alter_configs import alter_resource

Result = AlterConfigsResponse.AlterConfigsResourceResponse


@REGISTRY.handles(AlterConfigsRequest, AlterConfigsResponse)
def handle_alter_configs(ctx, request: AlterConfigsRequest) -> AlterConfigsResponse:
    results = []
    for resource in request.resources:
        result = Result(error_code=error_codes.NONE, error_message=None,  # Kafka: null
                        resource_type=resource.resource_type, resource_name=resource.resource_name)
        given = {config.name: config.value for config in resource.configs}
        try:
            alter_resource(ctx.broker, resource.resource_type, resource.resource_name,
                           lambda _current, given=given: dict(given), request.validate_only)
        except TopicError as error:
            result.error_code, result.error_message = error.error_code, error.message
        results.append(result)
    return AlterConfigsResponse(throttle_time_ms=0, responses=results)
