"""ConsumerGroupDescribe (key 69), versions 0-1: KIP-848 consumer groups in detail.

Per group: state (Empty, Assigning, Reconciling, Stable), group epoch, assignment epoch, the
assignor in use, and per member its epoch, client, subscription (names and regex), current
assignment and target assignment, topics named by id and name; v1 adds each member's type
(KIP-1099: 0 for a member that joined with the classic protocol, 1 for a consumer-protocol
member, as Kafka's ``ConsumerGroupMember`` sets it). A group id that is not a
consumer group (unknown, or a classic group) is GROUP_ID_NOT_FOUND; an empty id INVALID_GROUP_ID;
every group is UNSUPPORTED_VERSION while ``group.coordinator.rebalance.protocols`` leaves out
``consumer``, as in Kafka.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.consumer_group_describe import (
    Assignment,
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
    DescribedGroup,
    Member,
    TopicPartitions,
)

from . import REGISTRY
from ._common import AUTHORIZED_OPERATIONS_OMITTED
from .consumer_group_heartbeat import consumer_protocol_enabled
from .describe_groups import GROUP_OPERATIONS

# KIP-1099 MemberType values (v1+).
CLASSIC_MEMBER_TYPE = 0
CONSUMER_MEMBER_TYPE = 1


def _assignment(broker, assignment) -> Assignment:
    topics = []
    for topic_id, partitions in sorted(assignment.items(), key=lambda item: str(item[0])):
        topic = broker.topics.by_id.get(topic_id)
        if topic is not None:  # a deleted topic's partitions are on their way out
            topics.append(TopicPartitions(topic_id=topic_id, topic_name=topic.name, partitions=sorted(partitions)))
    return Assignment(topic_partitions=topics)


def _describe(ctx, group_id: str, include_operations: bool) -> DescribedGroup:
    coordinator = ctx.broker.group_coordinator
    if not consumer_protocol_enabled(ctx.broker.config):
        return DescribedGroup(group_id=group_id, error_code=error_codes.UNSUPPORTED_VERSION)
    if (error := coordinator.availability(group_id)) != error_codes.NONE:
        return DescribedGroup(group_id=group_id, error_code=error)
    if not group_id:
        return DescribedGroup(group_id=group_id, error_code=error_codes.INVALID_GROUP_ID,
                              error_message="Group id can't be empty.")
    group = coordinator.consumer.group(group_id)
    if group is None:
        message = (f"Group {group_id} is not a consumer group." if coordinator.group(group_id) is not None
                   else f"Group {group_id} not found.")
        return DescribedGroup(group_id=group_id, error_code=error_codes.GROUP_ID_NOT_FOUND, error_message=message)
    broker = ctx.broker
    members = [Member(
        member_id=member.member_id, instance_id=member.instance_id, rack_id=member.rack_id,
        member_epoch=member.member_epoch, client_id=member.client_id, client_host=member.client_host,
        subscribed_topic_names=list(member.subscribed_topic_names), subscribed_topic_regex=member.subscribed_topic_regex,
        assignment=_assignment(broker, member.assigned),
        target_assignment=_assignment(broker, group.target.get(member.member_id, {})),
        member_type=CLASSIC_MEMBER_TYPE if member.classic is not None else CONSUMER_MEMBER_TYPE)
        for member in group.members.values()]
    return DescribedGroup(
        group_id=group_id, group_state=group.state.value, group_epoch=group.group_epoch,
        assignment_epoch=group.assignment_epoch, assignor_name=group.preferred_assignor(coordinator.config.consumer_assignors[0]),
        members=members,
        authorized_operations=GROUP_OPERATIONS if include_operations else AUTHORIZED_OPERATIONS_OMITTED)


@REGISTRY.handles(ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse)
def handle_consumer_group_describe(ctx, request: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse:
    return ConsumerGroupDescribeResponse(groups=[_describe(ctx, group_id, request.include_authorized_operations)
                                                 for group_id in request.group_ids])
