"""GetTelemetrySubscriptions (key 71), version 0 — served, not advertised.

KIP-714 client metrics, answered as a Kafka broker without a ``ClientTelemetry`` metrics
reporter answers (see ``odradek.broker.client_metrics``): ApiVersions leaves the API out, so
clients (librdkafka, the Java client) do not ask; a client that asks anyway gets what Kafka's
``ClientMetricsManager`` gives: its client instance id (a new one when it sent the zero id), a
subscription id, no requested metrics (no ``client-metrics`` resources exist), the default
push interval of 5 minutes, ``telemetry.max.bytes``, zstd/lz4/gzip/snappy as accepted codecs,
delta temporality. A second request within the push interval is THROTTLING_QUOTA_EXCEEDED
(unless the last push was refused for its subscription id or codec); an error response
carries the error code only, as Kafka's ``getErrorResponse``.
"""

from __future__ import annotations

from odradek.protocol import error_codes
from odradek.protocol.messages.get_telemetry_subscriptions import (
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse,
)

from . import REGISTRY
from ..client_metrics import ACCEPTED_COMPRESSION_TYPES


@REGISTRY.handles(GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, advertised=False)
def handle_get_telemetry_subscriptions(ctx, request: GetTelemetrySubscriptionsRequest) -> GetTelemetrySubscriptionsResponse:
    client_metrics = ctx.broker.client_metrics
    subscription = client_metrics.get_subscription(request.client_instance_id)
    if subscription.error_code != error_codes.NONE:
        return GetTelemetrySubscriptionsResponse(throttle_time_ms=0, error_code=subscription.error_code)
    return GetTelemetrySubscriptionsResponse(
        throttle_time_ms=0,
        error_code=error_codes.NONE,
        client_instance_id=subscription.client_instance_id,
        subscription_id=subscription.subscription_id,
        accepted_compression_types=list(ACCEPTED_COMPRESSION_TYPES),
        push_interval_ms=subscription.push_interval_ms,
        telemetry_max_bytes=client_metrics.telemetry_max_bytes,
        delta_temporality=True,
        requested_metrics=list(subscription.metrics))
