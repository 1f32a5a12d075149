"""Client telemetry (KIP-714) as a Kafka broker without a metrics plugin answers it.

Kafka's broker always has a ``ClientMetricsManager`` (server/ClientMetricsManager.java); what a
missing ``ClientTelemetry``-capable ``metrics.reporters`` plugin changes is only ApiVersions,
which then leaves GetTelemetrySubscriptions and PushTelemetry out (``DefaultApiVersionManager``:
``clientTelemetryEnabled`` false; ``ApiVersionsResponse.filterApis`` skips both keys). A client
that sends them anyway is answered in full: a client instance id, a subscription (no metrics
requested: odradek has no ``client-metrics`` config resources, so no subscription matches; the
default push interval), and pushes are checked and accepted, their payload going nowhere.

Per client instance, Kafka keeps its subscription id, the times of its last get and push (a
request before the push interval is throttled), whether it said it is terminating, and the last
error it was answered with. So does :class:`ClientMetrics`, in a bounded LRU map like Kafka's
cache (16384 instances), an instance expiring after ``max(60 s, 3 * push interval)`` without a
request. Unlike Kafka, an instance is not forgotten when the connection that created it closes
(it expires instead); a client that reconnects within the push interval is therefore still
throttled where Kafka would answer it at once. compat/test_same_answers_as_kafka.py checks
these answers against a real Kafka broker.

Owner: the Broker, on the event loop.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

import crc32c

from odradek.protocol import error_codes

# ClientMetricsConfigs.DEFAULT_INTERVAL_MS: five minutes.
DEFAULT_PUSH_INTERVAL_MS = 5 * 60 * 1000
# The codecs a client may compress its metrics with, the broker's preference first (Kafka's
# ClientMetricsManager.SUPPORTED_COMPRESSION_TYPES: zstd, lz4, gzip, snappy).
ACCEPTED_COMPRESSION_TYPES = (4, 3, 1, 2)
_KNOWN_COMPRESSION_TYPES = range(0, 5)
CACHE_MAX_SIZE = 16384
_CACHE_EXPIRY_MS = 60 * 1000
# Uuid.RESERVED: ids never handed out and refused in a push.
_RESERVED_IDS = (uuid.UUID(int=0), uuid.UUID(int=1))


def subscription_id(metrics: list[str], push_interval_ms: int, client_instance_id: uuid.UUID) -> int:
    """Kafka's subscription id: CRC32C of the metric set's Java ``toString`` followed by the push
    interval, XORed with the Java hash of the client instance id, as a signed 32-bit int."""
    text = "[" + ", ".join(metrics) + "]" + str(push_interval_ms)
    crc = crc32c.crc32c(text.encode("utf-8"))
    value = client_instance_id.int
    xor = (value >> 64) ^ (value & (2**64 - 1))
    java_hash = ((xor >> 32) ^ xor) & 0xFFFFFFFF
    result = crc ^ java_hash
    return result - 2**32 if result >= 2**31 else result


@dataclass
class ClientInstance:
    client_instance_id: uuid.UUID
    subscription_id: int
    push_interval_ms: int
    metrics: list[str]
    last_get_ms: int = 0
    last_push_ms: int = 0
    terminating: bool = False
    last_error: int = error_codes.NONE
    last_seen_ms: int = 0

    def accept_get(self, now_ms: int) -> bool:
        """ClientMetricsInstance.maybeUpdateGetRequestTimestamp: a get is due one push interval
        after the instance's last get or push."""
        if now_ms - max(self.last_get_ms, self.last_push_ms) >= self.push_interval_ms:
            self.last_get_ms = now_ms
            return True
        return False

    def accept_push(self, now_ms: int) -> bool:
        """ClientMetricsInstance.maybeUpdatePushRequestTimestamp: the first push after a get is
        always accepted (the client jitters its interval), later ones one interval apart."""
        accepted = self.last_get_ms > self.last_push_ms or now_ms - self.last_push_ms >= self.push_interval_ms
        if accepted:
            self.last_push_ms = now_ms
        return accepted


@dataclass(frozen=True)
class Subscription:
    """What GetTelemetrySubscriptions answers; ``error_code`` alone when refused."""

    error_code: int
    client_instance_id: uuid.UUID | None = None
    subscription_id: int = 0
    push_interval_ms: int = 0
    metrics: tuple[str, ...] = ()


class ClientMetrics:
    def __init__(self, telemetry_max_bytes: int, clock_ms):
        self.telemetry_max_bytes = telemetry_max_bytes
        self._clock_ms = clock_ms
        self._instances: OrderedDict[uuid.UUID, ClientInstance] = OrderedDict()

    def __len__(self) -> int:
        return len(self._instances)

    def _instance(self, client_instance_id: uuid.UUID, now_ms: int) -> ClientInstance:
        self._expire(now_ms)
        instance = self._instances.get(client_instance_id)
        if instance is None:
            metrics: list[str] = []  # no client-metrics subscription exists to match
            instance = ClientInstance(client_instance_id,
                                      subscription_id(metrics, DEFAULT_PUSH_INTERVAL_MS, client_instance_id),
                                      DEFAULT_PUSH_INTERVAL_MS, metrics)
            self._instances[client_instance_id] = instance
            if len(self._instances) > CACHE_MAX_SIZE:
                self._instances.popitem(last=False)
        else:
            self._instances.move_to_end(client_instance_id)
        instance.last_seen_ms = now_ms
        return instance

    def _expire(self, now_ms: int) -> None:
        while self._instances:
            oldest = next(iter(self._instances.values()))
            if now_ms - oldest.last_seen_ms < max(_CACHE_EXPIRY_MS, 3 * oldest.push_interval_ms):
                break
            self._instances.popitem(last=False)

    def _new_instance_id(self) -> uuid.UUID:
        # Uuid.randomUuid: never a reserved id, never one whose base64 form starts with '-'.
        while True:
            candidate = uuid.uuid4()
            if candidate not in _RESERVED_IDS and candidate.bytes[0] >> 2 != 62 and candidate not in self._instances:
                return candidate

    def get_subscription(self, client_instance_id: uuid.UUID) -> Subscription:
        """ClientMetricsManager.processGetTelemetrySubscriptionRequest."""
        now_ms = self._clock_ms()
        if client_instance_id == _RESERVED_IDS[0]:
            client_instance_id = self._new_instance_id()
        instance = self._instance(client_instance_id, now_ms)
        # Kafka lets a get through early only after the client was told its subscription id or
        # codec was wrong (it must fetch the subscription again at once).
        if not instance.accept_get(now_ms) and instance.last_error not in (
                error_codes.UNKNOWN_SUBSCRIPTION_ID, error_codes.UNSUPPORTED_COMPRESSION_TYPE):
            return Subscription(error_codes.THROTTLING_QUOTA_EXCEEDED)
        instance.last_error = error_codes.NONE
        return Subscription(error_codes.NONE, client_instance_id, instance.subscription_id,
                            instance.push_interval_ms, tuple(instance.metrics))

    def push(self, client_instance_id: uuid.UUID, subscription_id: int, terminating: bool,
             compression_type: int, metrics: bytes | None) -> int:
        """ClientMetricsManager.processPushTelemetryRequest: the error code to answer with. The
        payload is checked for size only; with no plugin to export to, it is dropped."""
        if client_instance_id in _RESERVED_IDS:
            return error_codes.INVALID_REQUEST
        now_ms = self._clock_ms()
        instance = self._instance(client_instance_id, now_ms)
        error = error_codes.NONE
        if instance.terminating:
            error = error_codes.INVALID_REQUEST  # nothing is accepted after a terminating push
        elif not instance.accept_push(now_ms) and not terminating:
            error = error_codes.THROTTLING_QUOTA_EXCEEDED
        elif subscription_id != instance.subscription_id:
            error = error_codes.UNKNOWN_SUBSCRIPTION_ID
        elif compression_type not in _KNOWN_COMPRESSION_TYPES:
            error = error_codes.UNSUPPORTED_COMPRESSION_TYPE
        elif metrics is not None and len(metrics) > self.telemetry_max_bytes:
            error = error_codes.TELEMETRY_TOO_LARGE
        instance.terminating = terminating
        instance.last_error = error
        return error
