"""FindCoordinator (key 10), versions 0-6.

Every group and every transactional id is coordinated by this broker (one node), so the answer
is this broker's advertised address on the listener the request came in on. Key types: 0 group,
1 transaction; 2 (share group, v6) and anything else is INVALID_REQUEST, as Kafka answers when
it has no share coordinator. While the broker shuts down the answer is COORDINATOR_NOT_AVAILABLE.

Version notes: v0 has only a key (a group); v1-3 add the key type and an error message; from v4
a request names several keys (KIP-699) and the answer has one coordinator entry per key.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.find_coordinator import Coordinator, FindCoordinatorRequest, FindCoordinatorResponse

from . import REGISTRY

GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1


def _lookup(ctx, key_type: int) -> tuple[int, str | None, int, str, int]:
    """(error code, error message, node id, host, port) for one key."""
    if key_type not in (GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE):
        return error_codes.INVALID_REQUEST, f"Unknown coordinator type {key_type}", -1, "", -1
    coordinator = ctx.broker.group_coordinator.runtime if key_type == GROUP_KEY_TYPE \
        else ctx.broker.transaction_coordinator.runtime
    if not coordinator.active:
        return error_codes.COORDINATOR_NOT_AVAILABLE, "The coordinator is not available.", -1, "", -1
    host, port = ctx.broker.advertised_endpoint(ctx.listener_name)
    return error_codes.NONE, None, ctx.broker.node_id, host, port


@REGISTRY.handles(FindCoordinatorRequest, FindCoordinatorResponse)
def handle_find_coordinator(ctx, request: FindCoordinatorRequest) -> FindCoordinatorResponse:
    version = ctx.api_version
    key_type = request.key_type if version >= 1 else GROUP_KEY_TYPE
    if version < 4:
        error, message, node_id, host, port = _lookup(ctx, key_type)
        return FindCoordinatorResponse(error_code=error, error_message=message if version >= 1 else None,
                                       node_id=node_id, host=host, port=port)
    entries = []
    for key in request.coordinator_keys:
        error, message, node_id, host, port = _lookup(ctx, key_type)
        entries.append(Coordinator(key=key, node_id=node_id, host=host, port=port, error_code=error,
                                        error_message=message))
    return FindCoordinatorResponse(coordinators=entries)
