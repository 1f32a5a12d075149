"""DescribeGroups (key 15), versions 0-6: state, protocol and members of groups.

A Stable group reports its selected protocol and each member's metadata for it and its
assignment; a group in another state reports its members without metadata or assignment (as
Kafka does: they are in flux). A group that does not exist is reported in state "Dead" with no
error before v6 and GROUP_ID_NOT_FOUND from v6 (KIP-1043); so is a KIP-848 consumer group
(ConsumerGroupDescribe describes those), as in Kafka.

Version notes: v3 can ask for the authorized operations (every group operation is allowed: no
authorizer); v4 adds members' ``group.instance.id``; v6 an error message.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_groups import (
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
)

from odradek.broker.groups import GroupState

from . import REGISTRY
from ._common import AUTHORIZED_OPERATIONS_OMITTED

# READ, DELETE, DESCRIBE (Kafka's AclOperation codes 3, 6, 8): what a group supports.
GROUP_OPERATIONS = sum(1 << op for op in (3, 6, 8))


def _describe(ctx, group_id: str, include_operations: bool) -> DescribedGroup:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    operations = GROUP_OPERATIONS if include_operations and version >= 3 else AUTHORIZED_OPERATIONS_OMITTED
    if (error := coordinator.availability(group_id)) != error_codes.NONE:
        return DescribedGroup(group_id=group_id, error_code=error)
    group = coordinator.group(group_id)
    if group is None:
        if version >= 6:
            message = (f"Group {group_id} is not a classic group." if coordinator.consumer.group(group_id) is not None
                       else f"Group {group_id} not found.")
            return DescribedGroup(group_id=group_id, error_code=error_codes.GROUP_ID_NOT_FOUND,
                                  error_message=message, group_state=GroupState.DEAD.value)
        return DescribedGroup(group_id=group_id, group_state=GroupState.DEAD.value, authorized_operations=operations)
    stable = group.is_in(GroupState.STABLE)
    members = []
    for member in group.members.values():
        members.append(DescribedGroupMember(
            member_id=member.member_id,
            group_instance_id=member.group_instance_id if version >= 4 else None,
            client_id=member.client_id, client_host=member.client_host,
            member_metadata=member.metadata_for(group.protocol_name) if stable else b"",
            member_assignment=member.assignment if stable else b""))
    return DescribedGroup(group_id=group_id, group_state=group.state.value,
                          protocol_type=group.protocol_type or "",
                          protocol_data=(group.protocol_name or "") if stable else "",
                          members=members, authorized_operations=operations)


@REGISTRY.handles(DescribeGroupsRequest, DescribeGroupsResponse)
def handle_describe_groups(ctx, request: DescribeGroupsRequest) -> DescribeGroupsResponse:
    include = request.include_authorized_operations if ctx.api_version >= 3 else False
    return DescribeGroupsResponse(groups=[_describe(ctx, group_id, include) for group_id in request.groups])
