"""CreateAcls (key 30), versions 1-3 (Kafka 4 dropped v0), answered as a Kafka broker with no
authorizer configured answers it.

Listed in ApiVersions, as Kafka lists it whatever its authorizer; every creation gets a result
with SECURITY_DISABLED (54) and the message "No Authorizer is configured." (Kafka's
``getErrorResponse``: one result per creation, in order; none for an empty request). Nothing is
stored. A creation whose resource type, pattern type, operation or permission type is UNKNOWN
(0) closes the connection, as Kafka's request parsing refuses it (see ``_acls``).

Version notes: v1 adds the resource pattern type; v2 is the flexible encoding; v3 adds the USER
resource type. Nothing else differs.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.create_acls import AclCreationResult, CreateAclsRequest, CreateAclsResponse

from ..registry import CLOSE_CONNECTION
from . import REGISTRY
from ._acls import ALTER_MESSAGE, has_unknown_element


@REGISTRY.handles(CreateAclsRequest, CreateAclsResponse, min_version=1)
def handle_create_acls(ctx, request: CreateAclsRequest):
    if any(has_unknown_element(creation.resource_type, creation.resource_pattern_type, creation.operation,
                               creation.permission_type) for creation in request.creations):
        return CLOSE_CONNECTION
    return CreateAclsResponse(throttle_time_ms=0, results=[
        AclCreationResult(error_code=error_codes.SECURITY_DISABLED, error_message=ALTER_MESSAGE)
        for _ in request.creations])
