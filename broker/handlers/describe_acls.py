"""DescribeAcls (key 29), versions 1-3 (Kafka 4 dropped v0), answered as a Kafka broker with no
authorizer configured (``authorizer.class.name`` unset) answers it.

Listed in ApiVersions, as Kafka lists it whatever its authorizer; every request is answered
SECURITY_DISABLED (54) in the top-level error code with the message "No Authorizer is configured
on the broker" and no resources. A filter whose resource type, pattern type, operation or
permission type is UNKNOWN (0) closes the connection, as Kafka's request parsing refuses it (see
``_acls``). Tools that sync ACLs (MirrorMaker 2, ``kafka-acls --list``) get the error they get
from such a Kafka broker.

Version notes: v1 adds the pattern type filter; v2 is the flexible encoding; v3 adds the USER
resource type. Nothing else differs.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_acls import DescribeAclsRequest, DescribeAclsResponse

from ..registry import CLOSE_CONNECTION
from . import REGISTRY
from ._acls import DESCRIBE_MESSAGE, has_unknown_element


@REGISTRY.handles(DescribeAclsRequest, DescribeAclsResponse, min_version=1)
def handle_describe_acls(ctx, request: DescribeAclsRequest):
    if has_unknown_element(request.resource_type_filter, request.pattern_type_filter, request.operation,
                           request.permission_type):
        return CLOSE_CONNECTION
    return DescribeAclsResponse(throttle_time_ms=0, error_code=error_codes.SECURITY_DISABLED,
                                error_message=DESCRIBE_MESSAGE, resources=[])
