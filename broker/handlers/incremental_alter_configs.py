"""IncrementalAlterConfigs (key 44), versions 0-1 (KIP-339).

Per topic or group (resource type 32, ``odradek.broker.groups.group_configs``), a list of
operations on its overrides: SET (0), DELETE (1: back to the default),
APPEND (2) and SUBTRACT (3) for list configs such as ``cleanup.policy`` (items added if absent
/ removed, starting from the current value or the default). A key given twice in one resource,
an unknown key, APPEND/SUBTRACT on a non-list config or a bad resulting value is INVALID_CONFIG
and nothing changes. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION. Broker resources:
INVALID_CONFIG (no dynamic broker configs yet). ``validate_only`` checks without changing.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)

from ..topics import TopicError
from . import REGISTRY
from ._alter_configs import alter_resource, incremental_change

Result = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse


@REGISTRY.handles(IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse)
def handle_incremental_alter_configs(ctx, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse:
    results = []
    for resource in request.resources:
        result = Result(error_code=error_codes.NONE, error_message=None,  # Kafka: null
                        resource_type=resource.resource_type, resource_name=resource.resource_name)
        try:
            change = incremental_change([(c.name, c.config_operation, c.value) for c in resource.configs],
                                        resource.resource_type)
            alter_resource(ctx.broker, resource.resource_type, resource.resource_name, change,
                           request.validate_only)
        except TopicError as error:
            result.error_code, result.error_message = error.error_code, error.message
        results.append(result)
    return IncrementalAlterConfigsResponse(throttle_time_ms=0, responses=results)
