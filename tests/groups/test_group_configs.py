"""Per-group configs (ConfigResource GROUP = 32): DescribeConfigs, IncrementalAlterConfigs and
AlterConfigs over a socket, Kafka's validation, persistence across a restart, the consumer
protocol's heartbeat applying a group's session timeout and interval (manual clock), and Kafka's
own ``kafka-configs --entity-type groups`` (slow: a JVM)."""

from __future__ import annotations

import pytest

from broker.test_java_tools import KAFKA_JARS, tool
from broker.test_server import create_topic
from odradek.broker.config import ConfigSource
from odradek.protocol import error_codes as E
from odradek.protocol.messages.alter_configs import AlterConfigsRequest
from odradek.protocol.messages.describe_configs import DescribeConfigsRequest
from odradek.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest

from .conftest import FAST_GROUPS, RawClient, assert_no_traceback
from .test_consumer_protocol import Cluster
from .test_consumer_protocol_wire import _join

GROUP = 32
SET, DELETE = 0, 1
Resource = IncrementalAlterConfigsRequest.AlterConfigsResource
Op = Resource.AlterableConfig


def _describe(client, group, version=4, keys=None):
    answer = client.request(DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
        resource_type=GROUP, resource_name=group, configuration_keys=keys)], include_synonyms=True), version)
    return answer.results[0]


def _values(result):
    return {entry.name: (entry.value, entry.config_source) for entry in result.configs}


def _alter(client, group, *ops, validate_only=False):
    answer = client.request(IncrementalAlterConfigsRequest(resources=[Resource(
        resource_type=GROUP, resource_name=group, configs=[Op(name=n, config_operation=o, value=v) for n, o, v in ops])],
        validate_only=validate_only), 1)
    return answer.responses[0]


def test_group_configs_described_altered_validated_and_kept_across_a_restart(broker_process, tmp_path):
    data = tmp_path / "data"
    first = broker_process(data, *FAST_GROUPS, "group.consumer.session.timeout.ms=50000")
    client = RawClient(first.host, first.port)
    defaults = _values(_describe(client, "cfg"))  # the group need not exist
    assert defaults == {
        "consumer.session.timeout.ms": ("50000", ConfigSource.DEFAULT_CONFIG),  # the broker's value
        "consumer.heartbeat.interval.ms": ("5000", ConfigSource.DEFAULT_CONFIG),
        "share.session.timeout.ms": ("45000", ConfigSource.DEFAULT_CONFIG),
        "share.heartbeat.interval.ms": ("5000", ConfigSource.DEFAULT_CONFIG),
        "share.record.lock.duration.ms": ("30000", ConfigSource.DEFAULT_CONFIG)}
    assert _alter(client, "cfg", ("consumer.heartbeat.interval.ms", SET, "6000"),
                  validate_only=True).error_code == E.NONE
    assert _values(_describe(client, "cfg")) == defaults  # validate_only changes nothing

    assert _alter(client, "cfg", ("consumer.heartbeat.interval.ms", SET, "6000"),
                  ("consumer.session.timeout.ms", SET, "55000")).error_code == E.NONE
    described = _describe(client, "cfg", keys=["consumer.heartbeat.interval.ms"])
    assert _values(described) == {"consumer.heartbeat.interval.ms": ("6000", ConfigSource.GROUP_CONFIG)}
    assert [(s.name, s.value, s.source) for s in described.configs[0].synonyms] == [
        ("consumer.heartbeat.interval.ms", "6000", ConfigSource.GROUP_CONFIG)]
    assert not described.configs[0].read_only
    assert _values(_describe(client, "other"))["consumer.heartbeat.interval.ms"] == ("5000", ConfigSource.DEFAULT_CONFIG)

    # Kafka's GroupConfig.validate: nothing changes on a refusal.
    refusals = [
        (("consumer.heartbeat.interval.ms", SET, "4000"),
         "consumer.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms"),
        (("consumer.session.timeout.ms", SET, "70000"),
         "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"),
        (("no.such.config", SET, "1"), "Unknown group config name: no.such.config"),
        (("consumer.session.timeout.ms", SET, "soon"), None),
        (("share.record.lock.duration.ms", SET, "500"), None),
    ]
    for op, message in refusals:
        result = _alter(client, "cfg", op)
        assert result.error_code == E.INVALID_CONFIG, (op, result)
        assert message is None or result.error_message == message
    client_broker = broker_process(None, *FAST_GROUPS, "group.consumer.max.heartbeat.interval.ms=60000",
                                   "group.consumer.max.session.timeout.ms=60000")
    other = RawClient(client_broker.host, client_broker.port)
    result = _alter(other, "cfg", ("consumer.heartbeat.interval.ms", SET, "50000"))
    assert (result.error_code, result.error_message) == (
        E.INVALID_CONFIG, "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms")
    other.close()
    assert _alter(client, "", ("consumer.heartbeat.interval.ms", SET, "6000")).error_code == E.INVALID_REQUEST
    assert _describe(client, "").error_code == E.INVALID_REQUEST
    assert _values(_describe(client, "cfg"))["consumer.session.timeout.ms"] == ("55000", ConfigSource.GROUP_CONFIG)

    # The legacy AlterConfigs replaces the whole set: the interval goes back to the default.
    legacy = client.request(AlterConfigsRequest(resources=[AlterConfigsRequest.AlterConfigsResource(
        resource_type=GROUP, resource_name="cfg", configs=[AlterConfigsRequest.AlterConfigsResource.AlterableConfig(
            name="consumer.session.timeout.ms", value="52000")])]), 1)
    assert legacy.responses[0].error_code == E.NONE
    assert _alter(client, "kept", ("share.heartbeat.interval.ms", SET, "7000")).error_code == E.NONE
    assert _alter(client, "kept", ("share.heartbeat.interval.ms", DELETE, None)).error_code == E.NONE
    client.close()
    assert first.stop() == 0
    assert_no_traceback(first)

    second = broker_process(data, *FAST_GROUPS, "group.consumer.session.timeout.ms=50000")
    client = RawClient(second.host, second.port)
    try:
        values = _values(_describe(client, "cfg"))
        assert values["consumer.session.timeout.ms"] == ("52000", ConfigSource.GROUP_CONFIG)
        assert values["consumer.heartbeat.interval.ms"] == ("5000", ConfigSource.DEFAULT_CONFIG)
        assert _values(_describe(client, "kept")) == defaults
        # The heartbeat applies the group's interval (and the default to another group).
        created = create_topic(client, "cfg-t", partitions=2)
        assert created.error_code == E.NONE
        assert _alter(client, "cfg", ("consumer.heartbeat.interval.ms", SET, "7000")).error_code == E.NONE
        joined = _join(client, "cfg", "member-a", topics=("cfg-t",))
        assert joined.error_code == E.NONE and joined.heartbeat_interval_ms == 7000
        assert _join(client, "plain", "member-b", topics=("cfg-t",)).heartbeat_interval_ms == 5000
    finally:
        client.close()


def test_the_heartbeat_applies_the_groups_session_timeout():
    cluster = Cluster(t=2)
    coordinator = cluster.coordinator
    coordinator.group_configs["long"] = {"consumer.session.timeout.ms": "90000",
                                         "consumer.heartbeat.interval.ms": "8000"}
    assert cluster.join("a", group="long").heartbeat_interval_ms == 8000
    assert cluster.join("b", group="short").heartbeat_interval_ms == coordinator.config.consumer_heartbeat_interval_ms
    coordinator.timer.advance(coordinator.config.consumer_session_timeout_ms + 1)
    assert "b" not in cluster.groups.group("short").members  # the broker's 45 s
    assert "a" in cluster.groups.group("long").members
    coordinator.timer.advance(90000 - coordinator.config.consumer_session_timeout_ms)
    assert "a" not in cluster.groups.group("long").members


@pytest.mark.slow
def test_kafka_configs_tool_on_groups(group_broker):
    server = ["--bootstrap-server", f"{group_broker.host}:{group_broker.port}"]
    tool(KAFKA_JARS.CONFIG_COMMAND, *server, "--alter", "--entity-type", "groups", "--entity-name", "tool-group",
         "--add-config", "consumer.session.timeout.ms=50000,consumer.heartbeat.interval.ms=6000")
    described = tool(KAFKA_JARS.CONFIG_COMMAND, *server, "--describe", "--entity-type", "groups",
                     "--entity-name", "tool-group")
    assert "consumer.session.timeout.ms=50000" in described and "consumer.heartbeat.interval.ms=6000" in described
    tool(KAFKA_JARS.CONFIG_COMMAND, *server, "--alter", "--entity-type", "groups", "--entity-name", "tool-group",
         "--delete-config", "consumer.heartbeat.interval.ms")
    described = tool(KAFKA_JARS.CONFIG_COMMAND, *server, "--describe", "--all", "--entity-type", "groups",
                     "--entity-name", "tool-group")
    assert "consumer.session.timeout.ms=50000" in described and "consumer.heartbeat.interval.ms=5000" in described
