"""Kafka's error codes, as data: code, name, retriable, default message.

Kafka answers most failures with an error code inside the response (the first of the two error
tiers; the second, input the protocol layer refuses, is ``odradek.protocol.errors``). This table
is the complete list from -1 to 136, as Kafka 4.4.0's ``org.apache.kafka.common.protocol.Errors``
enum defines it (the release the message schemas come from, tools/generate_messages.py): the
names are the enum's, the messages its default messages, and ``retriable`` is whether the
enum's exception class derives from Kafka's ``RetriableException`` (what clients use to decide
to retry). The newest codes: 129 KIP-1102 rebootstrap, 130..132 and 135 KIP-1071 Streams
groups, 133 KIP-932 share sessions, 134 DeleteGroups v3, 136 controller unregistration.

Where kafka-python's ``kafka.errors`` differs, Kafka is right and this table follows Kafka (the
test against kafka-python lists the differences): CORRUPT_MESSAGE is retriable
(``CorruptRecordException extends RetriableException``), and kafka-python names six codes
differently (UNKNOWN, NO_ERROR, NOT_LEADER_FOR_PARTITION, MESSAGE_SIZE_TOO_LARGE, INVALID_TOPIC,
INVALID_REPLICATION_ASSIGNMENT).

Use: ``error_codes.UNSUPPORTED_VERSION == 35``; ``error_codes.ERRORS[35].retriable``;
``error_codes.BY_NAME["UNSUPPORTED_VERSION"].message``; ``error_codes.lookup(code)``.
"""

from __future__ import annotations

from typing import NamedTuple


class ErrorCode(NamedTuple):
    code: int
    name: str
    retriable: bool
    message: str | None  # Kafka's default message; None only for NONE


UNKNOWN_SERVER_ERROR = -1
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_FETCH_SIZE = 4
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
BROKER_NOT_AVAILABLE = 8
REPLICA_NOT_AVAILABLE = 9
MESSAGE_TOO_LARGE = 10
STALE_CONTROLLER_EPOCH = 11
OFFSET_METADATA_TOO_LARGE = 12
NETWORK_EXCEPTION = 13
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
INVALID_TOPIC_EXCEPTION = 17
RECORD_LIST_TOO_LARGE = 18
NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
INVALID_REQUIRED_ACKS = 21
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
INVALID_COMMIT_OFFSET_SIZE = 28
TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31
INVALID_TIMESTAMP = 32
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_CONFIG = 40
NOT_CONTROLLER = 41
INVALID_REQUEST = 42
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
POLICY_VIOLATION = 44
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
DUPLICATE_SEQUENCE_NUMBER = 46
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
TRANSACTION_COORDINATOR_FENCED = 52
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
SECURITY_DISABLED = 54
OPERATION_NOT_ATTEMPTED = 55
KAFKA_STORAGE_ERROR = 56
LOG_DIR_NOT_FOUND = 57
SASL_AUTHENTICATION_FAILED = 58
UNKNOWN_PRODUCER_ID = 59
REASSIGNMENT_IN_PROGRESS = 60
DELEGATION_TOKEN_AUTH_DISABLED = 61
DELEGATION_TOKEN_NOT_FOUND = 62
DELEGATION_TOKEN_OWNER_MISMATCH = 63
DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64
DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65
DELEGATION_TOKEN_EXPIRED = 66
INVALID_PRINCIPAL_TYPE = 67
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
LISTENER_NOT_FOUND = 72
TOPIC_DELETION_DISABLED = 73
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
UNSUPPORTED_COMPRESSION_TYPE = 76
STALE_BROKER_EPOCH = 77
OFFSET_NOT_AVAILABLE = 78
MEMBER_ID_REQUIRED = 79
PREFERRED_LEADER_NOT_AVAILABLE = 80
GROUP_MAX_SIZE_REACHED = 81
FENCED_INSTANCE_ID = 82
ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
ELECTION_NOT_NEEDED = 84
NO_REASSIGNMENT_IN_PROGRESS = 85
GROUP_SUBSCRIBED_TO_TOPIC = 86
INVALID_RECORD = 87
UNSTABLE_OFFSET_COMMIT = 88
THROTTLING_QUOTA_EXCEEDED = 89
PRODUCER_FENCED = 90
RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92
UNACCEPTABLE_CREDENTIAL = 93
INCONSISTENT_VOTER_SET = 94
INVALID_UPDATE_VERSION = 95
FEATURE_UPDATE_FAILED = 96
PRINCIPAL_DESERIALIZATION_FAILURE = 97
SNAPSHOT_NOT_FOUND = 98
POSITION_OUT_OF_RANGE = 99
UNKNOWN_TOPIC_ID = 100
DUPLICATE_BROKER_REGISTRATION = 101
BROKER_ID_NOT_REGISTERED = 102
INCONSISTENT_TOPIC_ID = 103
INCONSISTENT_CLUSTER_ID = 104
TRANSACTIONAL_ID_NOT_FOUND = 105
FETCH_SESSION_TOPIC_ID_ERROR = 106
INELIGIBLE_REPLICA = 107
NEW_LEADER_ELECTED = 108
OFFSET_MOVED_TO_TIERED_STORAGE = 109
FENCED_MEMBER_EPOCH = 110
UNRELEASED_INSTANCE_ID = 111
UNSUPPORTED_ASSIGNOR = 112
STALE_MEMBER_EPOCH = 113
MISMATCHED_ENDPOINT_TYPE = 114
UNSUPPORTED_ENDPOINT_TYPE = 115
UNKNOWN_CONTROLLER_ID = 116
UNKNOWN_SUBSCRIPTION_ID = 117
TELEMETRY_TOO_LARGE = 118
INVALID_REGISTRATION = 119
TRANSACTION_ABORTABLE = 120
INVALID_RECORD_STATE = 121
SHARE_SESSION_NOT_FOUND = 122
INVALID_SHARE_SESSION_EPOCH = 123
FENCED_STATE_EPOCH = 124
INVALID_VOTER_KEY = 125
DUPLICATE_VOTER = 126
VOTER_NOT_FOUND = 127
INVALID_REGULAR_EXPRESSION = 128
REBOOTSTRAP_REQUIRED = 129
STREAMS_INVALID_TOPOLOGY = 130
STREAMS_INVALID_TOPOLOGY_EPOCH = 131
STREAMS_TOPOLOGY_FENCED = 132
SHARE_SESSION_LIMIT_REACHED = 133
GROUP_DELETION_FAILED = 134
STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED = 135
CONTROLLER_ID_NOT_REGISTERED = 136


# (code, name, retriable, default message), in code order.
_TABLE = (
    (UNKNOWN_SERVER_ERROR, "UNKNOWN_SERVER_ERROR", False,
     "The server experienced an unexpected error when processing the request."),
    (NONE, "NONE", False, None),
    (OFFSET_OUT_OF_RANGE, "OFFSET_OUT_OF_RANGE", False,
     "The requested offset is not within the range of offsets maintained by the server."),
    (CORRUPT_MESSAGE, "CORRUPT_MESSAGE", True,
     "This message has failed its CRC checksum, exceeds the valid size, has a null key for a "
     "compacted topic, or is otherwise corrupt."),
    (UNKNOWN_TOPIC_OR_PARTITION, "UNKNOWN_TOPIC_OR_PARTITION", True,
     "This server does not host this topic-partition."),
    (INVALID_FETCH_SIZE, "INVALID_FETCH_SIZE", False, "The requested fetch size is invalid."),
    (LEADER_NOT_AVAILABLE, "LEADER_NOT_AVAILABLE", True,
     "There is no leader for this topic-partition as we are in the middle of a leadership "
     "election."),
    (NOT_LEADER_OR_FOLLOWER, "NOT_LEADER_OR_FOLLOWER", True,
     "For requests intended only for the leader, this error indicates that the broker is not "
     "the current leader. For requests intended for any replica, this error indicates that the"
     " broker is not a replica of the topic partition."),
    (REQUEST_TIMED_OUT, "REQUEST_TIMED_OUT", True, "The request timed out."),
    (BROKER_NOT_AVAILABLE, "BROKER_NOT_AVAILABLE", False, "The broker is not available."),
    (REPLICA_NOT_AVAILABLE, "REPLICA_NOT_AVAILABLE", True,
     "The replica is not available for the requested topic-partition. Produce/Fetch requests "
     "and other requests intended only for the leader or follower return "
     "NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition."),
    (MESSAGE_TOO_LARGE, "MESSAGE_TOO_LARGE", False,
     "The request included a message larger than the max message size the server will accept."),
    (STALE_CONTROLLER_EPOCH, "STALE_CONTROLLER_EPOCH", False, "The controller moved to another broker."),
    (OFFSET_METADATA_TOO_LARGE, "OFFSET_METADATA_TOO_LARGE", False,
     "The metadata field of the offset request was too large."),
    (NETWORK_EXCEPTION, "NETWORK_EXCEPTION", True, "The server disconnected before a response was received."),
    (COORDINATOR_LOAD_IN_PROGRESS, "COORDINATOR_LOAD_IN_PROGRESS", True,
     "The coordinator is loading and hence can't process requests."),
    (COORDINATOR_NOT_AVAILABLE, "COORDINATOR_NOT_AVAILABLE", True, "The coordinator is not available."),
    (NOT_COORDINATOR, "NOT_COORDINATOR", True, "This is not the correct coordinator."),
    (INVALID_TOPIC_EXCEPTION, "INVALID_TOPIC_EXCEPTION", False,
     "The request attempted to perform an operation on an invalid topic."),
    (RECORD_LIST_TOO_LARGE, "RECORD_LIST_TOO_LARGE", False,
     "The request included message batch larger than the configured segment size on the "
     "server."),
    (NOT_ENOUGH_REPLICAS, "NOT_ENOUGH_REPLICAS", True,
     "Messages are rejected since there are fewer in-sync replicas than required."),
    (NOT_ENOUGH_REPLICAS_AFTER_APPEND, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", True,
     "Messages are written to the log, but to fewer in-sync replicas than required."),
    (INVALID_REQUIRED_ACKS, "INVALID_REQUIRED_ACKS", False,
     "Produce request specified an invalid value for required acks."),
    (ILLEGAL_GENERATION, "ILLEGAL_GENERATION", False, "Specified group generation id is not valid."),
    (INCONSISTENT_GROUP_PROTOCOL, "INCONSISTENT_GROUP_PROTOCOL", False,
     "The group member's supported protocols are incompatible with those of existing members "
     "or first group member tried to join with empty protocol type or empty protocol list."),
    (INVALID_GROUP_ID, "INVALID_GROUP_ID", False, "The group id is invalid."),
    (UNKNOWN_MEMBER_ID, "UNKNOWN_MEMBER_ID", False, "The coordinator is not aware of this member."),
    (INVALID_SESSION_TIMEOUT, "INVALID_SESSION_TIMEOUT", False,
     "The session timeout is not within the range allowed by the broker (as configured by "
     "group.min.session.timeout.ms and group.max.session.timeout.ms)."),
    (REBALANCE_IN_PROGRESS, "REBALANCE_IN_PROGRESS", False,
     "The group is rebalancing, so a rejoin is needed."),
    (INVALID_COMMIT_OFFSET_SIZE, "INVALID_COMMIT_OFFSET_SIZE", False,
     "The committing offset data size is not valid."),
    (TOPIC_AUTHORIZATION_FAILED, "TOPIC_AUTHORIZATION_FAILED", False, "Topic authorization failed."),
    (GROUP_AUTHORIZATION_FAILED, "GROUP_AUTHORIZATION_FAILED", False, "Group authorization failed."),
    (CLUSTER_AUTHORIZATION_FAILED, "CLUSTER_AUTHORIZATION_FAILED", False, "Cluster authorization failed."),
    (INVALID_TIMESTAMP, "INVALID_TIMESTAMP", False,
     "The timestamp of the message is out of acceptable range."),
    (UNSUPPORTED_SASL_MECHANISM, "UNSUPPORTED_SASL_MECHANISM", False,
     "The broker does not support the requested SASL mechanism."),
    (ILLEGAL_SASL_STATE, "ILLEGAL_SASL_STATE", False, "Request is not valid given the current SASL state."),
    (UNSUPPORTED_VERSION, "UNSUPPORTED_VERSION", False, "The version of API is not supported."),
    (TOPIC_ALREADY_EXISTS, "TOPIC_ALREADY_EXISTS", False, "Topic with this name already exists."),
    (INVALID_PARTITIONS, "INVALID_PARTITIONS", False, "Number of partitions is below 1."),
    (INVALID_REPLICATION_FACTOR, "INVALID_REPLICATION_FACTOR", False,
     "Replication factor is below 1 or larger than the number of available brokers."),
    (INVALID_REPLICA_ASSIGNMENT, "INVALID_REPLICA_ASSIGNMENT", False, "Replica assignment is invalid."),
    (INVALID_CONFIG, "INVALID_CONFIG", False, "Configuration is invalid."),
    (NOT_CONTROLLER, "NOT_CONTROLLER", True, "This is not the correct controller for this cluster."),
    (INVALID_REQUEST, "INVALID_REQUEST", False,
     "This most likely occurs because of a request being malformed by the client library or "
     "the message was sent to an incompatible broker. See the broker logs for more details."),
    (UNSUPPORTED_FOR_MESSAGE_FORMAT, "UNSUPPORTED_FOR_MESSAGE_FORMAT", False,
     "The message format version on the broker does not support the request."),
    (POLICY_VIOLATION, "POLICY_VIOLATION", False, "Request parameters do not satisfy the configured policy."),
    (OUT_OF_ORDER_SEQUENCE_NUMBER, "OUT_OF_ORDER_SEQUENCE_NUMBER", False,
     "The broker received an out of order sequence number."),
    (DUPLICATE_SEQUENCE_NUMBER, "DUPLICATE_SEQUENCE_NUMBER", False,
     "The broker received a duplicate sequence number."),
    (INVALID_PRODUCER_EPOCH, "INVALID_PRODUCER_EPOCH", False,
     "Producer attempted to produce with an old epoch."),
    (INVALID_TXN_STATE, "INVALID_TXN_STATE", False,
     "The producer attempted a transactional operation in an invalid state."),
    (INVALID_PRODUCER_ID_MAPPING, "INVALID_PRODUCER_ID_MAPPING", False,
     "The producer attempted to use a producer id which is not currently assigned to its "
     "transactional id."),
    (INVALID_TRANSACTION_TIMEOUT, "INVALID_TRANSACTION_TIMEOUT", False,
     "The transaction timeout is larger than the maximum value allowed by the broker (as "
     "configured by transaction.max.timeout.ms)."),
    (CONCURRENT_TRANSACTIONS, "CONCURRENT_TRANSACTIONS", True,
     "The producer attempted to update a transaction while another concurrent operation on the"
     " same transaction was ongoing."),
    (TRANSACTION_COORDINATOR_FENCED, "TRANSACTION_COORDINATOR_FENCED", False,
     "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the "
     "current coordinator for a given producer."),
    (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", False,
     "Transactional Id authorization failed."),
    (SECURITY_DISABLED, "SECURITY_DISABLED", False, "Security features are disabled."),
    (OPERATION_NOT_ATTEMPTED, "OPERATION_NOT_ATTEMPTED", False,
     "The broker did not attempt to execute this operation. This may happen for batched RPCs "
     "where some operations in the batch failed, causing the broker to respond without trying "
     "the rest."),
    (KAFKA_STORAGE_ERROR, "KAFKA_STORAGE_ERROR", True,
     "Disk error when trying to access log file on the disk."),
    (LOG_DIR_NOT_FOUND, "LOG_DIR_NOT_FOUND", False,
     "The user-specified log directory is not found in the broker config."),
    (SASL_AUTHENTICATION_FAILED, "SASL_AUTHENTICATION_FAILED", False, "SASL Authentication failed."),
    (UNKNOWN_PRODUCER_ID, "UNKNOWN_PRODUCER_ID", False,
     "This exception is raised by the broker if it could not locate the producer metadata "
     "associated with the producerId in question. This could happen if, for instance, the "
     "producer's records were deleted because their retention time had elapsed. Once the last "
     "records of the producerId are removed, the producer's metadata is removed from the "
     "broker, and future appends by the producer will return this exception."),
    (REASSIGNMENT_IN_PROGRESS, "REASSIGNMENT_IN_PROGRESS", False, "A partition reassignment is in progress."),
    (DELEGATION_TOKEN_AUTH_DISABLED, "DELEGATION_TOKEN_AUTH_DISABLED", False,
     "Delegation Token feature is not enabled."),
    (DELEGATION_TOKEN_NOT_FOUND, "DELEGATION_TOKEN_NOT_FOUND", False,
     "Delegation Token is not found on server."),
    (DELEGATION_TOKEN_OWNER_MISMATCH, "DELEGATION_TOKEN_OWNER_MISMATCH", False,
     "Specified Principal is not valid Owner/Renewer."),
    (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", False,
     "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on "
     "delegation token authenticated channels."),
    (DELEGATION_TOKEN_AUTHORIZATION_FAILED, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", False,
     "Delegation Token authorization failed."),
    (DELEGATION_TOKEN_EXPIRED, "DELEGATION_TOKEN_EXPIRED", False, "Delegation Token is expired."),
    (INVALID_PRINCIPAL_TYPE, "INVALID_PRINCIPAL_TYPE", False, "Supplied principalType is not supported."),
    (NON_EMPTY_GROUP, "NON_EMPTY_GROUP", False, "The group is not empty."),
    (GROUP_ID_NOT_FOUND, "GROUP_ID_NOT_FOUND", False, "The group id does not exist."),
    (FETCH_SESSION_ID_NOT_FOUND, "FETCH_SESSION_ID_NOT_FOUND", True, "The fetch session ID was not found."),
    (INVALID_FETCH_SESSION_EPOCH, "INVALID_FETCH_SESSION_EPOCH", True, "The fetch session epoch is invalid."),
    (LISTENER_NOT_FOUND, "LISTENER_NOT_FOUND", True,
     "There is no listener on the leader broker that matches the listener on which metadata "
     "request was processed."),
    (TOPIC_DELETION_DISABLED, "TOPIC_DELETION_DISABLED", False, "Topic deletion is disabled."),
    (FENCED_LEADER_EPOCH, "FENCED_LEADER_EPOCH", True,
     "The leader epoch in the request is older than the epoch on the broker."),
    (UNKNOWN_LEADER_EPOCH, "UNKNOWN_LEADER_EPOCH", True,
     "The leader epoch in the request is newer than the epoch on the broker."),
    (UNSUPPORTED_COMPRESSION_TYPE, "UNSUPPORTED_COMPRESSION_TYPE", False,
     "The requesting client does not support the compression type of given partition."),
    (STALE_BROKER_EPOCH, "STALE_BROKER_EPOCH", False, "Broker epoch has changed."),
    (OFFSET_NOT_AVAILABLE, "OFFSET_NOT_AVAILABLE", True,
     "The leader high watermark has not caught up from a recent leader election so the offsets"
     " cannot be guaranteed to be monotonically increasing."),
    (MEMBER_ID_REQUIRED, "MEMBER_ID_REQUIRED", False,
     "The group member needs to have a valid member id before actually entering a consumer "
     "group."),
    (PREFERRED_LEADER_NOT_AVAILABLE, "PREFERRED_LEADER_NOT_AVAILABLE", True,
     "The preferred leader was not available."),
    (GROUP_MAX_SIZE_REACHED, "GROUP_MAX_SIZE_REACHED", False, "The group has reached its maximum size."),
    (FENCED_INSTANCE_ID, "FENCED_INSTANCE_ID", False,
     "The broker rejected this static consumer since another consumer with the same "
     "group.instance.id has registered with a different member.id."),
    (ELIGIBLE_LEADERS_NOT_AVAILABLE, "ELIGIBLE_LEADERS_NOT_AVAILABLE", True,
     "Eligible topic partition leaders are not available."),
    (ELECTION_NOT_NEEDED, "ELECTION_NOT_NEEDED", True, "Leader election not needed for topic partition."),
    (NO_REASSIGNMENT_IN_PROGRESS, "NO_REASSIGNMENT_IN_PROGRESS", False,
     "No partition reassignment is in progress."),
    (GROUP_SUBSCRIBED_TO_TOPIC, "GROUP_SUBSCRIBED_TO_TOPIC", False,
     "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed"
     " to it."),
    (INVALID_RECORD, "INVALID_RECORD", False,
     "This record has failed the validation on broker and hence will be rejected."),
    (UNSTABLE_OFFSET_COMMIT, "UNSTABLE_OFFSET_COMMIT", True,
     "There are unstable offsets that need to be cleared."),
    (THROTTLING_QUOTA_EXCEEDED, "THROTTLING_QUOTA_EXCEEDED", True, "The throttling quota has been exceeded."),
    (PRODUCER_FENCED, "PRODUCER_FENCED", False,
     "There is a newer producer with the same transactionalId which fences the current one."),
    (RESOURCE_NOT_FOUND, "RESOURCE_NOT_FOUND", False,
     "A request illegally referred to a resource that does not exist."),
    (DUPLICATE_RESOURCE, "DUPLICATE_RESOURCE", False,
     "A request illegally referred to the same resource twice."),
    (UNACCEPTABLE_CREDENTIAL, "UNACCEPTABLE_CREDENTIAL", False,
     "Requested credential would not meet criteria for acceptability."),
    (INCONSISTENT_VOTER_SET, "INCONSISTENT_VOTER_SET", False,
     "Indicates that the either the sender or recipient of a voter-only request is not one of "
     "the expected voters."),
    (INVALID_UPDATE_VERSION, "INVALID_UPDATE_VERSION", False, "The given update version was invalid."),
    (FEATURE_UPDATE_FAILED, "FEATURE_UPDATE_FAILED", False,
     "Unable to update finalized features due to an unexpected server error."),
    (PRINCIPAL_DESERIALIZATION_FAILURE, "PRINCIPAL_DESERIALIZATION_FAILURE", False,
     "Request principal deserialization failed during forwarding. This indicates an internal "
     "error on the broker cluster security setup."),
    (SNAPSHOT_NOT_FOUND, "SNAPSHOT_NOT_FOUND", False, "Requested snapshot was not found."),
    (POSITION_OUT_OF_RANGE, "POSITION_OUT_OF_RANGE", False,
     "Requested position is not greater than or equal to zero, and less than the size of the "
     "snapshot."),
    (UNKNOWN_TOPIC_ID, "UNKNOWN_TOPIC_ID", True, "This server does not host this topic ID."),
    (DUPLICATE_BROKER_REGISTRATION, "DUPLICATE_BROKER_REGISTRATION", False,
     "This broker ID is already in use."),
    (BROKER_ID_NOT_REGISTERED, "BROKER_ID_NOT_REGISTERED", False, "The given broker ID was not registered."),
    (INCONSISTENT_TOPIC_ID, "INCONSISTENT_TOPIC_ID", True,
     "The log's topic ID did not match the topic ID in the request."),
    (INCONSISTENT_CLUSTER_ID, "INCONSISTENT_CLUSTER_ID", False,
     "The clusterId in the request does not match that found on the server."),
    (TRANSACTIONAL_ID_NOT_FOUND, "TRANSACTIONAL_ID_NOT_FOUND", False,
     "The transactionalId could not be found."),
    (FETCH_SESSION_TOPIC_ID_ERROR, "FETCH_SESSION_TOPIC_ID_ERROR", True,
     "The fetch session encountered inconsistent topic ID usage."),
    (INELIGIBLE_REPLICA, "INELIGIBLE_REPLICA", False,
     "The new ISR contains at least one ineligible replica."),
    (NEW_LEADER_ELECTED, "NEW_LEADER_ELECTED", False,
     "The AlterPartition request successfully updated the partition state but the leader has "
     "changed."),
    (OFFSET_MOVED_TO_TIERED_STORAGE, "OFFSET_MOVED_TO_TIERED_STORAGE", False,
     "The requested offset is moved to tiered storage."),
    (FENCED_MEMBER_EPOCH, "FENCED_MEMBER_EPOCH", False,
     "The member epoch is fenced by the group coordinator. The member must abandon all its "
     "partitions and rejoin."),
    (UNRELEASED_INSTANCE_ID, "UNRELEASED_INSTANCE_ID", False,
     "The instance ID is still used by another member in the consumer group. That member must "
     "leave first."),
    (UNSUPPORTED_ASSIGNOR, "UNSUPPORTED_ASSIGNOR", False,
     "The assignor or its version range is not supported by the consumer group."),
    (STALE_MEMBER_EPOCH, "STALE_MEMBER_EPOCH", False,
     "The member epoch is stale. The member must retry after receiving its updated member "
     "epoch via the ConsumerGroupHeartbeat API."),
    (MISMATCHED_ENDPOINT_TYPE, "MISMATCHED_ENDPOINT_TYPE", False,
     "The request was sent to an endpoint of the wrong type."),
    (UNSUPPORTED_ENDPOINT_TYPE, "UNSUPPORTED_ENDPOINT_TYPE", False,
     "This endpoint type is not supported yet."),
    (UNKNOWN_CONTROLLER_ID, "UNKNOWN_CONTROLLER_ID", False, "This controller ID is not known."),
    (UNKNOWN_SUBSCRIPTION_ID, "UNKNOWN_SUBSCRIPTION_ID", False,
     "Client sent a push telemetry request with an invalid or outdated subscription ID."),
    (TELEMETRY_TOO_LARGE, "TELEMETRY_TOO_LARGE", False,
     "Client sent a push telemetry request larger than the maximum size the broker will "
     "accept."),
    (INVALID_REGISTRATION, "INVALID_REGISTRATION", False,
     "The controller has considered the broker registration to be invalid."),
    (TRANSACTION_ABORTABLE, "TRANSACTION_ABORTABLE", False,
     "The server encountered an error with the transaction. The client can abort the "
     "transaction to continue using this transactional ID."),
    (INVALID_RECORD_STATE, "INVALID_RECORD_STATE", False,
     "The record state is invalid. The acknowledgement of delivery could not be completed."),
    (SHARE_SESSION_NOT_FOUND, "SHARE_SESSION_NOT_FOUND", True, "The share session was not found."),
    (INVALID_SHARE_SESSION_EPOCH, "INVALID_SHARE_SESSION_EPOCH", True, "The share session epoch is invalid."),
    (FENCED_STATE_EPOCH, "FENCED_STATE_EPOCH", False,
     "The coordinator rejected the request because the state epoch did not match."),
    (INVALID_VOTER_KEY, "INVALID_VOTER_KEY", False,
     "The voter key doesn't match the receiving replica's key."),
    (DUPLICATE_VOTER, "DUPLICATE_VOTER", False, "The voter is already part of the set of voters."),
    (VOTER_NOT_FOUND, "VOTER_NOT_FOUND", False, "The voter is not part of the set of voters."),
    (INVALID_REGULAR_EXPRESSION, "INVALID_REGULAR_EXPRESSION", False, "The regular expression is not valid."),
    (REBOOTSTRAP_REQUIRED, "REBOOTSTRAP_REQUIRED", False,
     "Client metadata is stale. The client should rebootstrap to obtain new metadata."),
    (STREAMS_INVALID_TOPOLOGY, "STREAMS_INVALID_TOPOLOGY", False, "The supplied topology is invalid."),
    (STREAMS_INVALID_TOPOLOGY_EPOCH, "STREAMS_INVALID_TOPOLOGY_EPOCH", False,
     "The supplied topology epoch is invalid."),
    (STREAMS_TOPOLOGY_FENCED, "STREAMS_TOPOLOGY_FENCED", False, "The supplied topology epoch is outdated."),
    (SHARE_SESSION_LIMIT_REACHED, "SHARE_SESSION_LIMIT_REACHED", True,
     "The limit of share sessions has been reached."),
    (GROUP_DELETION_FAILED, "GROUP_DELETION_FAILED", False,
     "DeleteGroups could not complete; see the error message on the per-group result for details."),
    (STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED, "STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED", False,
     "The broker could not process the topology description update; see the error message for "
     "details."),
    (CONTROLLER_ID_NOT_REGISTERED, "CONTROLLER_ID_NOT_REGISTERED", False,
     "The given controller ID was not registered."),
)

ERRORS: dict[int, ErrorCode] = {row[0]: ErrorCode(*row) for row in _TABLE}
BY_NAME: dict[str, ErrorCode] = {error.name: error for error in ERRORS.values()}


def lookup(code: int) -> ErrorCode:
    """The entry for ``code``; an unknown code reads as UNKNOWN_SERVER_ERROR, as in Kafka's
    ``Errors.forCode``."""
    return ERRORS.get(code) or ERRORS[UNKNOWN_SERVER_ERROR]
