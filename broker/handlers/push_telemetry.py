"""PushTelemetry (key 72), version 0 — served, not advertised.

KIP-714 client metrics, answered as a Kafka broker without a ``ClientTelemetry`` metrics
reporter answers (see ``odradek.broker.client_metrics``; ApiVersions leaves the API out). A
push is checked as Kafka's ``ClientMetricsManager`` checks it, in this order: the zero or
another reserved client instance id is INVALID_REQUEST; anything after a terminating push is
INVALID_REQUEST; a push within the push interval (other than the first after a get, or a
terminating one) THROTTLING_QUOTA_EXCEEDED; a subscription id other than the one given out
UNKNOWN_SUBSCRIPTION_ID; an unknown codec UNSUPPORTED_COMPRESSION_TYPE; a payload over
``telemetry.max.bytes`` TELEMETRY_TOO_LARGE. An accepted payload is dropped: there is no plugin
to export it to.
"""

from __future__ import annotations

from odradek.protocol.messages.push_telemetry import PushTelemetryRequest, PushTelemetryResponse

from . import REGISTRY


@REGISTRY.handles(PushTelemetryRequest, PushTelemetryResponse, advertised=False)
def handle_push_telemetry(ctx, request: PushTelemetryRequest) -> PushTelemetryResponse:
    error_code = ctx.broker.client_metrics.push(request.client_instance_id, request.subscription_id,
                                                request.terminating, request.compression_type, request.metrics)
    return PushTelemetryResponse(throttle_time_ms=0, error_code=error_code)
