"""SyncGroup (key 14), versions 0-5: the leader hands out the assignment, every member
receives its part.

A follower's SyncGroup during CompletingRebalance is parked until the leader's arrives; in a
Stable group it is answered at once with the member's current assignment. Errors:
UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS (a new rebalance began; rejoin),
FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL (v5: protocol type/name differ from the group's).

Version notes: v3 adds ``group.instance.id``; v5 adds the protocol type and name to both
request and response.
"""

from __future__ import annotations

from odradek.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse

from odradek.broker.groups import SyncResult
from odradek.broker.groups.waiting import answer_when_ready

from . import REGISTRY


def build_response(version: int, result: SyncResult) -> SyncGroupResponse:
    return SyncGroupResponse(error_code=result.error_code,
                             protocol_type=result.protocol_type if version >= 5 else None,
                             protocol_name=result.protocol_name if version >= 5 else None,
                             assignment=result.assignment)


@REGISTRY.handles(SyncGroupRequest, SyncGroupResponse)
def handle_sync_group(ctx, request: SyncGroupRequest):
    version = ctx.api_version
    assignments = {}
    for item in request.assignments:
        assignments[item.member_id] = bytes(item.assignment)
    coordinator = ctx.broker.group_coordinator
    instance_id = request.group_instance_id if version >= 3 else None
    protocol_type = request.protocol_type if version >= 5 else None
    protocol_name = request.protocol_name if version >= 5 else None
    return answer_when_ready(
        lambda respond: coordinator.sync_group(request.group_id, request.generation_id, request.member_id, instance_id,
                                               protocol_type, protocol_name, assignments, respond),
        lambda result: build_response(version, result))
