"""DeleteAcls (key 31), versions 1-3 (Kafka 4 dropped v0), answered as a Kafka broker with no
authorizer configured answers it.

Listed in ApiVersions, as Kafka lists it whatever its authorizer; every filter gets a filter
result with SECURITY_DISABLED (54), the message "No Authorizer is configured." and no matching
ACLs (Kafka's ``getErrorResponse``: one result per filter, in order). A filter whose resource
type, pattern type, operation or permission type is UNKNOWN (0) closes the connection, as
Kafka's request parsing refuses it (see ``_acls``).

Version notes: v1 adds the pattern type filter; v2 is the flexible encoding; v3 adds the USER
resource type. Nothing else differs.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.delete_acls import DeleteAclsFilterResult, DeleteAclsRequest, DeleteAclsResponse

from ..registry import CLOSE_CONNECTION
from . import REGISTRY
from ._acls import ALTER_MESSAGE, has_unknown_element


@REGISTRY.handles(DeleteAclsRequest, DeleteAclsResponse, min_version=1)
def handle_delete_acls(ctx, request: DeleteAclsRequest):
    if any(has_unknown_element(item.resource_type_filter, item.pattern_type_filter, item.operation,
                               item.permission_type) for item in request.filters):
        return CLOSE_CONNECTION
    return DeleteAclsResponse(throttle_time_ms=0, filter_results=[
        DeleteAclsFilterResult(error_code=error_codes.SECURITY_DISABLED, error_message=ALTER_MESSAGE, matching_acls=[])
        for _ in request.filters])
