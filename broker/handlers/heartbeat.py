"""Heartbeat (key 12), versions 0-4: a member says it is alive.

Pushes back the member's session expiry. Answers REBALANCE_IN_PROGRESS while the group prepares
a rebalance (the member must rejoin), ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID /
FENCED_INSTANCE_ID when the member is not (or no longer) part of the current generation.
Version notes: v3 adds ``group.instance.id``.
"""

from __future__ import annotations

from odradek.protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse

from . import REGISTRY


@REGISTRY.handles(HeartbeatRequest, HeartbeatResponse)
def handle_heartbeat(ctx, request: HeartbeatRequest) -> HeartbeatResponse:
    instance_id = request.group_instance_id if ctx.api_version >= 3 else None
    error = ctx.broker.group_coordinator.heartbeat(request.group_id, request.generation_id, request.member_id,
                                                  instance_id)
    return HeartbeatResponse(error_code=error)
