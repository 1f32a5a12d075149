"""broker/blocking_client.py, the small blocking client the pytest plugin creates topics with:
against embedded brokers, one speaking Kafka 4.4's versions and one advertising Kafka 0.11 (an
older ApiVersions, so the KIP-511 retry, and CreateTopics v0-2); the broker's errors come back
as KafkaRequestError with Kafka's error name."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient

from odradek import Broker
from odradek.broker.blocking_client import BlockingClient, KafkaRequestError
from odradek.protocol import error_codes
from odradek.protocol.kafka_releases import API_VERSIONS
from odradek.protocol.messages.api_versions import ApiVersionsRequest
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.describe_cluster import DescribeClusterRequest
from odradek.protocol.messages.describe_configs import DescribeConfigsRequest
from odradek.protocol.messages.metadata import MetadataRequest

TOPIC_RESOURCE, DYNAMIC_TOPIC_CONFIG = 2, 1


@pytest.fixture(scope="module")
def broker():
    with Broker(memory=True) as running:
        yield running


@pytest.fixture(scope="module")
def broker_0_11():
    with Broker({"odradek.advertise.kafka.version": "0.11"}, memory=True) as running:
        yield running


def partitions_and_configs(client: BlockingClient, topic: str) -> tuple[int, dict[str, str]]:
    """The topic's partition count (Metadata) and its configs set on it (DescribeConfigs), asked
    through the client at the versions it negotiated."""
    metadata = client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)]))
    [described] = client.request(DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
        resource_type=TOPIC_RESOURCE, resource_name=topic, configuration_keys=None)])).results
    configs = {entry.name: entry.value for entry in described.configs if entry.config_source == DYNAMIC_TOPIC_CONFIG
               or (entry.config_source == -1 and not entry.is_default)}
    [listed] = metadata.topics
    assert (listed.name, listed.error_code, described.error_code) == (topic, 0, 0)
    return len(listed.partitions), configs


def test_creates_a_topic_with_its_partitions_and_configs(broker):
    with BlockingClient(broker.host, broker.port) as client:
        assert client.versions[CreateTopicsRequest.API_KEY][1] == CreateTopicsRequest.MAX_VERSION
        client.create_topic("made", 4, {"cleanup.policy": "compact", "retention.ms": "1234"})
        assert partitions_and_configs(client, "made") == (4, {"cleanup.policy": "compact", "retention.ms": "1234"})
    # and a client of its own sees it so
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        [described] = admin.describe_topics(["made"])
    finally:
        admin.close()
    assert len(described["partitions"]) == 4


def test_an_existing_topic_is_topic_already_exists(broker):
    with BlockingClient(broker.host, broker.port) as client:
        client.create_topic("taken")
        with pytest.raises(KafkaRequestError) as raised:
            client.create_topic("taken", 2)
    assert raised.value.error == error_codes.BY_NAME["TOPIC_ALREADY_EXISTS"]
    assert str(raised.value).startswith("creating topic 'taken': TOPIC_ALREADY_EXISTS: ")


@pytest.mark.parametrize("partitions, config, error", [
    (0, None, "INVALID_PARTITIONS"),
    (1, {"retention.ms": "soon"}, "INVALID_CONFIG"),
])
def test_a_refused_topic_raises_the_brokers_error(broker, partitions, config, error):
    name = f"refused-{error.lower()}"
    with BlockingClient(broker.host, broker.port) as client:
        with pytest.raises(KafkaRequestError) as raised:
            client.create_topic(name, partitions, config)
        assert client.request(MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=name)],
                                              allow_auto_topic_creation=False)).topics[0].error_code == 3
    assert raised.value.error == error_codes.BY_NAME[error]
    assert str(raised.value).startswith(f"creating topic {name!r}: {error}: ")


def test_speaks_an_older_kafka_in_its_versions(broker_0_11):
    with BlockingClient(broker_0_11.host, broker_0_11.port) as client:
        # ApiVersions is v0-1 in 0.11: our newest got UNSUPPORTED_VERSION with that range, then v1.
        assert client.versions[ApiVersionsRequest.API_KEY] == API_VERSIONS["0.11"][ApiVersionsRequest.API_KEY]
        assert client.versions[CreateTopicsRequest.API_KEY][1] == API_VERSIONS["0.11"][CreateTopicsRequest.API_KEY][1]
        client.create_topic("old", 2, {"cleanup.policy": "compact"})
        assert partitions_and_configs(client, "old") == (2, {"cleanup.policy": "compact"})
        with pytest.raises(KafkaRequestError, match="serves no version of DescribeClusterRequest"):
            client.request(DescribeClusterRequest())
