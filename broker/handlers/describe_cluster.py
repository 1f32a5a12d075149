"""DescribeCluster (key 60), versions 0-2.

The cluster id, this node as the only broker and as the controller, at the advertised address
of the listener the request came in on. ``endpoint_type`` (v1+) 1 asks for brokers (served);
2 for controllers, which a broker refuses with UNSUPPORTED_ENDPOINT_TYPE as Kafka does. v2+
``is_fenced`` is false; authorized operations are all of them (no authorizer) when asked for.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_cluster import DescribeClusterRequest, DescribeClusterResponse

from . import REGISTRY
from ._common import AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_OPERATIONS

BROKER_ENDPOINTS = 1


@REGISTRY.handles(DescribeClusterRequest, DescribeClusterResponse)
def handle_describe_cluster(ctx, request: DescribeClusterRequest) -> DescribeClusterResponse:
    broker = ctx.broker
    version = ctx.api_version
    endpoint_type = request.endpoint_type if version >= 1 else BROKER_ENDPOINTS
    if endpoint_type != BROKER_ENDPOINTS:
        return DescribeClusterResponse(
            error_code=error_codes.UNSUPPORTED_ENDPOINT_TYPE,
            error_message="The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            endpoint_type=endpoint_type, cluster_id=broker.cluster_id)
    host, port = broker.advertised_endpoint(ctx.listener_name)
    return DescribeClusterResponse(
        throttle_time_ms=0,
        error_code=error_codes.NONE,
        endpoint_type=BROKER_ENDPOINTS,
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        brokers=[DescribeClusterResponse.DescribeClusterBroker(
            broker_id=broker.node_id, host=host, port=port, rack=broker.config.rack, is_fenced=False)],
        cluster_authorized_operations=(CLUSTER_OPERATIONS if request.include_cluster_authorized_operations
                                       else AUTHORIZED_OPERATIONS_OMITTED),
    )
