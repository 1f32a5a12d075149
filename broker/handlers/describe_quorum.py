"""DescribeQuorum (key 55), versions 0-2: the KRaft quorum of the metadata log, as its leader
answers it (Kafka's KafkaRaftClient; a Kafka broker forwards the request to it).

odradek's node is the only voter and the leader (storage/metadata_log.py): the leader id is
its node id, the epoch the metadata log's, the high watermark the log's end (every append is
fsynced before it counts). The one voter is the node itself, its log end offset the high
watermark, and its last fetch and catch-up times now, as a leader reports itself; there are no
observers (the node's broker part reads the log in-process). v2 adds the voter's directory id
(the first data directory's) and ``nodes``: the voter's endpoints, here the listeners this node
serves, as it has no separate controller listener.

A request that does not name exactly ``__cluster_metadata`` partition 0 is answered
UNKNOWN_TOPIC_OR_PARTITION at the top level with the code's message, as Kafka's raft client
answers it.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_quorum import DescribeQuorumRequest, DescribeQuorumResponse
from odradek.storage.metadata_log import METADATA_TOPIC

from . import REGISTRY

Response = DescribeQuorumResponse


@REGISTRY.handles(DescribeQuorumRequest, DescribeQuorumResponse)
def handle_describe_quorum(ctx, request: DescribeQuorumRequest) -> DescribeQuorumResponse:
    broker = ctx.broker
    if not (len(request.topics) == 1 and request.topics[0].topic_name == METADATA_TOPIC
            and len(request.topics[0].partitions) == 1 and request.topics[0].partitions[0].partition_index == 0):
        unknown = error_codes.lookup(error_codes.UNKNOWN_TOPIC_OR_PARTITION)
        return Response(error_code=unknown.code, **({"error_message": unknown.message} if ctx.api_version >= 2 else {}))
    metadata_log = broker.topics.metadata_log
    now = broker.clock_ms()
    v2 = ctx.api_version >= 2  # directory ids, messages and nodes are fields of v2 on
    me = Response.ReplicaState(replica_id=broker.node_id, log_end_offset=metadata_log.end_offset,
                               last_fetch_timestamp=now, last_caught_up_timestamp=now)
    partition = Response.PartitionData(
        partition_index=0, error_code=error_codes.NONE, leader_id=broker.node_id, leader_epoch=metadata_log.epoch,
        high_watermark=metadata_log.end_offset, current_voters=[me], observers=[])
    response = Response(error_code=error_codes.NONE,
                        topics=[Response.TopicData(topic_name=METADATA_TOPIC, partitions=[partition])])
    if v2:
        me.replica_directory_id = metadata_log.directory_id
        partition.error_message = response.error_message = None
        listeners = []
        for name in broker.bound_listeners:
            host, port = broker.advertised_endpoint(name)
            listeners.append(Response.Listener(name=name, host=host, port=port))
        response.nodes = [Response.Node(node_id=broker.node_id, listeners=listeners)]
    return response
