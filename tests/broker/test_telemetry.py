"""KIP-714 client telemetry against a real ``odradek serve``: as a Kafka broker without a metrics
plugin, GetTelemetrySubscriptions and PushTelemetry are left out of ApiVersions but answered
when a client sends them anyway (Kafka's ClientMetricsManager); librdkafka, which asks for a
subscription whenever the broker advertises the API, works and does not ask."""

from __future__ import annotations

import logging
import uuid

import crc32c

from odradek.broker.client_metrics import subscription_id
from odradek.protocol import error_codes
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.get_telemetry_subscriptions import GetTelemetrySubscriptionsRequest
from odradek.protocol.messages.push_telemetry import PushTelemetryRequest

ZERO = uuid.UUID(int=0)


def subscribe(client, instance_id=ZERO):
    return client.request(GetTelemetrySubscriptionsRequest(client_instance_id=instance_id), 0)


def push(client, instance_id, subscription, **fields):
    request = PushTelemetryRequest(client_instance_id=instance_id, subscription_id=subscription,
                                   compression_type=fields.pop("compression_type", 0), **fields)
    return client.request(request, 0).error_code


def test_telemetry_apis_are_not_advertised(raw_client):
    client = raw_client()
    for version in range(0, 5):
        keys = {item.api_key for item in client.request(
            ApiVersionsRequest(client_software_name="t", client_software_version="1"), version).api_keys}
        assert 18 in keys and 0 in keys
        assert not keys & {71, 72}


def test_get_subscription_as_kafka_without_a_plugin(raw_client):
    client = raw_client()
    answer = subscribe(client)
    assert answer.error_code == error_codes.NONE
    instance_id = answer.client_instance_id
    assert instance_id != ZERO
    assert answer.requested_metrics == []
    assert answer.push_interval_ms == 300_000
    assert answer.telemetry_max_bytes == 1_048_576
    assert answer.accepted_compression_types == [4, 3, 1, 2]
    assert answer.delta_temporality is True
    # Kafka's id: CRC32C("[]300000") XOR the Java hash of the instance id.
    high, low = instance_id.int >> 64, instance_id.int & (2**64 - 1)
    java_hash = ((high ^ low) >> 32 ^ (high ^ low)) & 0xFFFFFFFF
    expected = crc32c.crc32c(b"[]300000") ^ java_hash
    assert answer.subscription_id == (expected - 2**32 if expected >= 2**31 else expected)
    assert answer.subscription_id == subscription_id([], 300_000, instance_id)

    # A second get within the push interval is throttled; the instance id a client brings is kept.
    assert subscribe(client, instance_id).error_code == error_codes.THROTTLING_QUOTA_EXCEEDED
    own = uuid.uuid4()
    assert subscribe(client, own).client_instance_id == own


def test_push_checks_as_kafka_does(raw_client):
    client = raw_client()
    first = subscribe(client)
    instance_id, good_id = first.client_instance_id, first.subscription_id
    assert push(client, ZERO, good_id) == error_codes.INVALID_REQUEST
    assert push(client, uuid.UUID(int=1), good_id) == error_codes.INVALID_REQUEST
    assert push(client, instance_id, good_id + 1) == error_codes.UNKNOWN_SUBSCRIPTION_ID
    # After a refusal for the subscription id, the client may fetch the subscription at once.
    again = subscribe(client, instance_id)
    assert again.error_code == error_codes.NONE and again.subscription_id == good_id

    fresh = subscribe(client)
    assert push(client, fresh.client_instance_id, fresh.subscription_id,
                compression_type=9) == error_codes.UNSUPPORTED_COMPRESSION_TYPE
    assert subscribe(client, fresh.client_instance_id).error_code == error_codes.NONE

    fresh = subscribe(client)
    instance_id, good_id = fresh.client_instance_id, fresh.subscription_id
    assert push(client, instance_id, good_id, metrics=b"x" * 1000, compression_type=4) == error_codes.NONE
    # The next push is due one push interval later; a terminating push is let through, and
    # nothing after it.
    assert push(client, instance_id, good_id, metrics=b"x") == error_codes.THROTTLING_QUOTA_EXCEEDED
    assert push(client, instance_id, good_id, terminating=True) == error_codes.NONE
    assert push(client, instance_id, good_id, terminating=True) == error_codes.INVALID_REQUEST

    big = subscribe(client)
    assert push(client, big.client_instance_id, big.subscription_id,
                metrics=b"m" * (1_048_576 + 1)) == error_codes.TELEMETRY_TOO_LARGE
    # The connection is still served.
    assert client.request(ApiVersionsRequest(), 0).error_code == error_codes.NONE


def test_librdkafka_works_and_does_not_ask_for_a_subscription(shared_broker):
    from confluent_kafka import Consumer, Producer, TopicPartition

    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger = logging.getLogger(f"librdkafka-{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Collect())

    topic = f"telemetry-{uuid.uuid4().hex[:8]}"
    # librdkafka >= 2.5 fetches a subscription as soon as a broker advertises key 71, and logs
    # its telemetry state machine under the "telemetry" debug context.
    config = {"bootstrap.servers": shared_broker.bootstrap, "enable.metrics.push": True,
              "debug": "telemetry,protocol", "logger": logger}
    producer = Producer(config)
    for index in range(5):
        producer.produce(topic, value=b"v%d" % index, partition=0)
    assert producer.flush(15) == 0
    consumer = Consumer(dict(config, **{"group.id": "telemetry", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    while len(values) < 5:
        message = consumer.poll(10)
        assert message is not None and message.error() is None, message and message.error()
        values.append(message.value())
    consumer.close()
    assert values == [b"v%d" % index for index in range(5)]
    text = "\n".join(lines)
    assert "ApiVersion" in text  # the protocol debug log is there to look at
    assert "GetTelemetrySubscriptions" not in text and "PushTelemetry" not in text
