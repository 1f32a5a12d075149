"""Small helpers shared by handlers (no state of their own)."""

from __future__ import annotations

from odradek.protocol import error_codes

# Authorized-operation bitfields a broker without an authorizer reports (every operation the
# resource type supports is allowed), Kafka's AclOperation codes as bit positions.
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))  # READ..ALTER_CONFIGS
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12, 13, 14))
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


def topic_by_name_or_id(broker, name, topic_id):
    """The topic a request names (by name before the version that switched to ids, by id
    after), or None."""
    if name:
        return broker.topics.get(name)
    if topic_id is not None and topic_id.int != 0:
        return broker.topics.by_id.get(topic_id)
    return None


def fenced_as_known_to(api_version: int, first_fenced_version: int, error_code: int) -> int:
    """A coordinator's PRODUCER_FENCED as a request of ``api_version`` understands it: clients
    of versions before ``first_fenced_version`` (KIP-588) know only INVALID_PRODUCER_EPOCH,
    which Kafka's KafkaApis answers them instead (InitProducerId below v4; EndTxn,
    AddPartitionsToTxn and AddOffsetsToTxn below v2)."""
    if error_code == error_codes.PRODUCER_FENCED and api_version < first_fenced_version:
        return error_codes.INVALID_PRODUCER_EPOCH
    return error_code
