"""DeleteGroups (key 42), versions 0-2: delete empty groups and their committed offsets.

Per group: GROUP_ID_NOT_FOUND when it does not exist, NON_EMPTY_GROUP while it has members.
Version notes: v2 is the flexible encoding; nothing else changes.
"""

from __future__ import annotations

from odradek.protocol.messages.delete_groups import DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse

from . import REGISTRY


# v3 (Kafka 4.4) adds a per-group ErrorMessage whose texts (coordinator and streams-topology
# failures) we do not reproduce yet, so v3 is not served.
@REGISTRY.handles(DeleteGroupsRequest, DeleteGroupsResponse, max_version=2)
def handle_delete_groups(ctx, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    coordinator = ctx.broker.group_coordinator
    results = [DeletableGroupResult(group_id=group_id, error_code=coordinator.delete_group(group_id))
               for group_id in request.groups_names]
    return DeleteGroupsResponse(results=results)
