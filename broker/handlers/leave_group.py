"""LeaveGroup (key 13), versions 0-5: members leave a group, which rebalances at once.

Version notes: v0-2 name one member and answer with one error code; from v3 a request names
several members (KIP-345), each by member id and/or ``group.instance.id`` (an empty member id
removes a static member by instance id only, as the admin client does), and each gets its own
error code; v5 carries a reason per member.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.leave_group import LeaveGroupRequest, LeaveGroupResponse, MemberResponse

from . import REGISTRY


@REGISTRY.handles(LeaveGroupRequest, LeaveGroupResponse)
def handle_leave_group(ctx, request: LeaveGroupRequest) -> LeaveGroupResponse:
    version = ctx.api_version
    if version < 3:
        leaving = [(request.member_id, None)]
    else:
        leaving = [(member.member_id, member.group_instance_id) for member in request.members]
    error, member_errors = ctx.broker.group_coordinator.leave_group(request.group_id, leaving)
    if version < 3:
        if error == error_codes.NONE and member_errors:
            error = member_errors[0]
        return LeaveGroupResponse(error_code=error)
    members = [MemberResponse(member_id=member_id, group_instance_id=instance_id, error_code=code)
               for (member_id, instance_id), code in zip(leaving, member_errors)]
    return LeaveGroupResponse(error_code=error, members=members)
