"""What the three ACL APIs share while odradek has no authorizer (Kafka's ``AclApis`` with
``authorizer = None``): the SECURITY_DISABLED messages, and the check Kafka's request classes make
when they parse a request.

Kafka's ``CreateAclsRequest``, ``DescribeAclsRequest`` and ``DeleteAclsRequest`` refuse, while
parsing, a binding or filter with any of resource type, pattern type, operation or permission
type equal to the UNKNOWN code (0) ("... contain UNKNOWN elements"); a request that does not parse
closes the connection (``RequestContext.parseRequest`` -> InvalidRequestException), before any
handler, authorizer or not, sees it. The handlers return ``CLOSE_CONNECTION`` for it.
"""

from __future__ import annotations

# Kafka's codes for ResourceType.UNKNOWN, PatternType.UNKNOWN, AclOperation.UNKNOWN and
# AclPermissionType.UNKNOWN: all 0.
UNKNOWN = 0

# AclApis.handleDescribeAcls's message, and the SecurityDisabledException of
# handleCreateAcls / handleDeleteAcls (Kafka 4.4; the controller's ControllerApis says the same).
DESCRIBE_MESSAGE = "No Authorizer is configured on the broker"
ALTER_MESSAGE = "No Authorizer is configured."


def has_unknown_element(*codes: int) -> bool:
    """True when one of a binding's or filter's four enum codes is UNKNOWN."""
    return UNKNOWN in codes
