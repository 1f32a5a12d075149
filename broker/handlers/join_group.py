"""JoinGroup (key 11), versions 0-9: a member joins a classic group (see
``odradek.broker.groups.coordinator`` for the rebalance protocol).

The request is parked until the join phase of the rebalance ends (every member rejoined, the
rebalance timeout, or the delayed initial rebalance); the leader's answer lists every member's
metadata for the selected protocol, the followers' answers list none.

Version notes: v0 has no rebalance timeout (the session timeout serves as one, as in Kafka);
from v4 a member without an id gets MEMBER_ID_REQUIRED and a fresh id (KIP-394); v5 adds
``group.instance.id`` (static membership, KIP-345); v7 answers the protocol type and may
answer a null protocol name (before v7 it is ""); v8 carries a reason; v9 may tell a rejoining
static leader to skip the assignment (KIP-814).
"""

from __future__ import annotations

from odradek.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse, JoinGroupResponseMember

from odradek.broker.groups import JoinRequest, JoinResult
from odradek.broker.groups.waiting import answer_when_ready, client_host

from . import REGISTRY


def build_response(version: int, result: JoinResult) -> JoinGroupResponse:
    protocol_name = result.protocol_name
    if protocol_name is None and version < 7:
        protocol_name = ""
    return JoinGroupResponse(
        error_code=result.error_code, generation_id=result.generation_id,
        protocol_type=result.protocol_type if version >= 7 else None,
        protocol_name=protocol_name, leader=result.leader,
        skip_assignment=result.skip_assignment if version >= 9 else False,
        member_id=result.member_id,
        members=[JoinGroupResponseMember(member_id=member_id, group_instance_id=instance_id if version >= 5 else None,
                                         metadata=metadata)
                 for member_id, instance_id, metadata in result.members])


@REGISTRY.handles(JoinGroupRequest, JoinGroupResponse)
def handle_join_group(ctx, request: JoinGroupRequest):
    version = ctx.api_version
    join = JoinRequest(
        group_id=request.group_id, member_id=request.member_id,
        group_instance_id=request.group_instance_id if version >= 5 else None,
        protocol_type=request.protocol_type,
        protocols=[(protocol.name, bytes(protocol.metadata)) for protocol in request.protocols],
        session_timeout_ms=request.session_timeout_ms,
        rebalance_timeout_ms=request.rebalance_timeout_ms if version >= 1 else request.session_timeout_ms,
        client_id=ctx.client_id or "", client_host=client_host(ctx.peer), api_version=version,
        reason=request.reason if version >= 8 else None)
    coordinator = ctx.broker.group_coordinator
    return answer_when_ready(lambda respond: coordinator.join_group(join, respond),
                             lambda result: build_response(version, result))
