"""ListGroups (key 16), versions 0-5: every group this coordinator knows; COORDINATOR_LOAD_IN_PROGRESS
while any partition of ``__consumer_offsets`` is still being replayed, as Kafka answers; the
groups of a partition whose replay failed are left out (Kafka skips a NOT_COORDINATOR partition).

Version notes: v4 filters by state and answers each group's state (KIP-518; the filter is
case-insensitive as in Kafka); v5 filters by type and answers each group's type (KIP-848:
"classic", or "consumer" for a group of the consumer protocol).
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.list_groups import ListedGroup, ListGroupsRequest, ListGroupsResponse

from . import REGISTRY

CLASSIC_TYPE = "classic"
CONSUMER_TYPE = "consumer"


@REGISTRY.handles(ListGroupsRequest, ListGroupsResponse)
def handle_list_groups(ctx, request: ListGroupsRequest) -> ListGroupsResponse:
    version = ctx.api_version
    coordinator = ctx.broker.group_coordinator
    if (error := coordinator.availability()) != error_codes.NONE:
        return ListGroupsResponse(error_code=error)  # LOAD_IN_PROGRESS while any partition loads
    states = {state.lower() for state in request.states_filter} if version >= 4 else set()
    types = {kind.lower() for kind in request.types_filter} if version >= 5 else set()
    listed = []
    for group in coordinator.list_groups():
        if states and group.state.value.lower() not in states:
            continue
        if types and CLASSIC_TYPE not in types:
            continue
        listed.append(ListedGroup(group_id=group.group_id, protocol_type=group.protocol_type or "",
                                  group_state=group.state.value if version >= 4 else "",
                                  group_type=CLASSIC_TYPE if version >= 5 else ""))
    for group in coordinator.consumer.groups.values():
        if not coordinator.is_loaded(group.group_id):
            continue
        if (states and group.state.value.lower() not in states) or (types and CONSUMER_TYPE not in types):
            continue
        listed.append(ListedGroup(group_id=group.group_id, protocol_type=group.protocol_type,
                                  group_state=group.state.value if version >= 4 else "",
                                  group_type=CONSUMER_TYPE if version >= 5 else ""))
    return ListGroupsResponse(error_code=error_codes.NONE, groups=listed)
