"""What DescribeConfigs reports is what the broker applies, and what the configuration
reference (``odradek config-docs`` / docs/configuration.md) says, key by key.

A real ``odradek serve`` answers DescribeConfigs for topics (one with no overrides, one with
many), for its broker resource and for groups (with and without an override); then the same
data directory is opened in this process by the same broker code with the same configuration,
and every reported value is compared with the object that applies it: the partition log's
``LogConfig`` (storage), the ``Partition``'s settings (min ISR, down-conversion, recompression),
the group coordinator's ``GroupConfig`` and per-group timeouts, the fetch session cache and the
telemetry limit. Run once with every default and once with broker overrides. The default that
was defined twice (``message.timestamp.after.max.ms``: one hour, Kafka 4) is also checked by its
effect: a record two hours ahead is refused, one half an hour ahead is taken.
"""

from __future__ import annotations

import asyncio
import pathlib
import re
import time

import pytest

from odradek.broker import recompress
from odradek.broker.broker import Broker
from odradek.broker.config import BROKER_CONFIGS, TOPIC_CONFIGS, BrokerConfig, ConfigType
from odradek.broker.config_docs import render
from odradek.broker.groups.coordinator import GROUP_CONFIG_SOURCES
from odradek.broker.groups.group_configs import GROUP_CONFIGS, default_value
from odradek.broker.topics import GROUP_RESOURCE
from odradek.protocol import error_codes
from odradek.protocol.messages.create_topics import CreateTopicsRequest
from odradek.protocol.messages.describe_configs import DescribeConfigsRequest
from odradek.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest
from odradek.protocol.records.batch import Record, build_batch
from odradek.storage.config import LogConfig

from .conftest import RawClient
from .test_server import create_topic, produce

TOPIC, BROKER = 2, 4
TUNED_TOPIC_CONFIGS = {
    "segment.ms": "3600000", "cleanup.policy": "compact,delete", "compression.type": "zstd",
    "compression.zstd.level": "7", "message.timestamp.after.max.ms": "1000", "retention.bytes": "1048576",
    "min.cleanable.dirty.ratio": "0.25", "message.downconversion.enable": "false", "max.message.bytes": "2000000",
}
BROKER_OVERRIDES = {
    "log.retention.hours": "48", "log.segment.bytes": "2097152", "compression.type": "gzip",
    "compression.gzip.level": "4", "message.max.bytes": "3000000", "log.message.timestamp.after.max.ms": "7200000",
    "log.cleaner.min.cleanable.ratio": "0.75", "min.insync.replicas": "2", "log.roll.ms": "7200000",
    "group.consumer.session.timeout.ms": "50000", "group.consumer.heartbeat.interval.ms": "6000",
    "offsets.retention.minutes": "60", "group.consumer.assignors": "range",
    "max.incremental.fetch.session.cache.slots": "7", "telemetry.max.bytes": "4096",
}
GROUP_OVERRIDES = {"consumer.session.timeout.ms": "55000"}
_LOG_FIELDS = {name.replace("_", "."): name for name in LogConfig.__dataclass_fields__}


def describe(client, resource_type, name) -> dict[str, str | None]:
    request = DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
        resource_type=resource_type, resource_name=name, configuration_keys=None)], include_synonyms=False)
    result = client.request(request, 4).results[0]
    assert result.error_code == error_codes.NONE, result.error_message
    return {entry.name: entry.value for entry in result.configs}


def alter_group(client, group, configs):
    Resource = IncrementalAlterConfigsRequest.AlterConfigsResource
    answer = client.request(IncrementalAlterConfigsRequest(resources=[Resource(
        resource_type=GROUP_RESOURCE, resource_name=group, configs=[
            Resource.AlterableConfig(name=name, config_operation=0, value=value) for name, value in configs.items()])],
        validate_only=False), 1)
    assert answer.responses[0].error_code == error_codes.NONE, answer.responses[0].error_message


def reported_by_a_real_broker(broker_process, data_dir, overrides):
    process = broker_process(data_dir, *(f"{key}={value}" for key, value in overrides.items()))
    client = RawClient(process.host, process.port)
    try:
        assert create_topic(client, "plain").error_code == error_codes.NONE
        tuned = create_topic(client, "tuned", configs=[
            _topic_config(name, value) for name, value in TUNED_TOPIC_CONFIGS.items()])
        assert tuned.error_code == error_codes.NONE, tuned.error_message
        alter_group(client, "g1", GROUP_OVERRIDES)
        reported = {
            ("topic", "plain"): describe(client, TOPIC, "plain"),
            ("topic", "tuned"): describe(client, TOPIC, "tuned"),
            ("broker", ""): describe(client, BROKER, "1"),
            ("group", "g0"): describe(client, GROUP_RESOURCE, "g0"),
            ("group", "g1"): describe(client, GROUP_RESOURCE, "g1"),
        }
    finally:
        client.close()
    assert process.stop() == 0, process.log()
    return reported


def _topic_config(name, value):
    return CreateTopicsRequest.CreatableTopic.CreatableTopicConfig(name=name, value=value)


def applied_by_the_same_broker(data_dir, overrides) -> dict:
    """Open ``data_dir`` with the broker code and ``overrides`` and read what each setting is
    applied as, by config name (None: a key that nothing applies yet)."""
    config = BrokerConfig.from_sources({"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(data_dir)}, overrides)

    async def read():
        broker = Broker(config)
        broker.open()
        try:
            applied = {}
            for topic in ("plain", "tuned"):
                partition = broker.partitions[(topic, 0)]
                values = {}
                for name, definition in TOPIC_CONFIGS.items():
                    if name in _LOG_FIELDS:
                        value = getattr(partition.log.config, _LOG_FIELDS[name])
                        values[name] = value.split(",") if name == "cleanup.policy" else value
                    elif name == "min.insync.replicas":
                        values[name] = partition.min_insync_replicas
                    elif name == "message.downconversion.enable":
                        values[name] = partition.downconversion_enabled
                    elif name == "compression.type":
                        values[name] = partition.target_codec
                    elif name.startswith("compression.") and name.endswith(".level"):
                        values[name] = partition.codec_level
                    else:
                        assert not definition.applied, f"{name} is applied: this test must read where"
                        values[name] = None
                applied[("topic", topic)] = values
            coordinator = broker.group_coordinator
            applied[("broker", "")] = {
                **{key: getattr(coordinator.config, field) for field, (key, _) in GROUP_CONFIG_SOURCES.items()},
                "max.incremental.fetch.session.cache.slots": broker.fetch_sessions.max_sessions,
                "telemetry.max.bytes": broker.client_metrics.telemetry_max_bytes,
            }
            for group in ("g0", "g1"):
                applied[("group", group)] = {
                    "consumer.session.timeout.ms": coordinator.consumer_session_timeout_ms(group),
                    "consumer.heartbeat.interval.ms": coordinator.consumer_heartbeat_interval_ms(group),
                }
            return applied, config
        finally:
            broker.close()

    return asyncio.run(read())


def expected_applied(kind, name, reported_value, reported_values):
    """What the reported string must be applied as (the parse the broker itself does)."""
    if kind == "topic":
        definition = TOPIC_CONFIGS[name]
        if name == "compression.type":
            return recompress.target_codec(reported_value)
        if name.startswith("compression.") and name.endswith(".level"):
            codec = recompress.target_codec(reported_values["compression.type"])
            if codec is None:
                return None
            return recompress.codec_level(codec, *(TOPIC_CONFIGS[f"compression.{codec_name}.level"].parse(
                reported_values[f"compression.{codec_name}.level"]) for codec_name in ("gzip", "lz4", "zstd")))
        return definition.parse(reported_value)
    if kind == "broker":
        definition = BROKER_CONFIGS[name]
        value = definition.parse(reported_value)
        for key, convert in GROUP_CONFIG_SOURCES.values():
            if key == name and convert is not None:
                return convert(value)
        return value
    return GROUP_CONFIGS[name][0].parse(reported_value)


@pytest.mark.parametrize("overrides", [{}, BROKER_OVERRIDES], ids=["defaults", "broker-overrides"])
def test_described_values_are_the_applied_values(broker_process, tmp_path, overrides):
    data_dir = tmp_path / "data"
    reported = reported_by_a_real_broker(broker_process, data_dir, overrides)
    applied, config = applied_by_the_same_broker(data_dir, overrides)

    assert set(reported[("topic", "plain")]) == set(TOPIC_CONFIGS)
    assert set(reported[("broker", "")]) == set(BROKER_CONFIGS)
    assert set(reported[("group", "g0")]) == set(GROUP_CONFIGS)
    compared = 0
    for resource, values in applied.items():
        kind = resource[0]
        for name, applied_value in values.items():
            if kind == "topic" and applied_value is None and not TOPIC_CONFIGS[name].applied:
                continue
            reported_value = reported[resource][name]
            assert applied_value == expected_applied(kind, name, reported_value, reported[resource]), (
                resource, name, reported_value, applied_value)
            compared += 1
    assert compared >= 2 * 25 + len(GROUP_CONFIG_SOURCES) + 2 + 2 * 2
    # Every broker key reported is the broker's configuration (none is reported from elsewhere).
    for name, value in reported[("broker", "")].items():
        assert value == BROKER_CONFIGS[name].format(config[name]), name
    # The overrides took effect where they were set (the comparison above is not vacuous).
    assert reported[("topic", "tuned")]["message.timestamp.after.max.ms"] == "1000"
    assert reported[("group", "g1")]["consumer.session.timeout.ms"] == "55000"
    assert reported[("group", "g0")]["consumer.session.timeout.ms"] == str(default_value(config, "consumer.session.timeout.ms"))
    if overrides:
        assert reported[("topic", "plain")]["retention.ms"] == str(48 * 3_600_000)
        assert reported[("topic", "plain")]["message.timestamp.after.max.ms"] == "7200000"
        assert applied[("broker", "")]["max.incremental.fetch.session.cache.slots"] == 7


def documented_defaults() -> dict[tuple[str, str], str | None]:
    """(``broker`` or ``topic``, key) -> the default the generated reference gives."""
    section, key, found = None, None, {}
    for line in render().splitlines():
        if line.startswith("## "):
            section = {"## Broker configuration": "broker", "## Topic configuration": "topic"}.get(line)
        elif line.startswith("### `"):
            key = line[5:-1]
        elif line.startswith("| Default | ") and section:
            text = line[len("| Default | "):-2]
            found[(section, key)] = None if text == "null" else "" if text == '""' else re.fullmatch(r"`(.*)`", text)[1]
    return found


def test_the_reference_gives_the_defaults_a_default_broker_reports(broker_process, tmp_path):
    process = broker_process()
    client = RawClient(process.host, process.port)
    try:
        assert create_topic(client, "plain").error_code == error_codes.NONE
        reported = {("topic", key): value for key, value in describe(client, TOPIC, "plain").items()}
        reported.update({("broker", key): value for key, value in describe(client, BROKER, "1").items()})
    finally:
        client.close()
    documented = documented_defaults()
    assert set(documented) == set(reported)
    differing = {key: value for key, value in reported.items() if documented[key] != value}
    # The two keys the test broker is started with (a free port, a temporary directory).
    assert set(differing) == {("broker", "listeners"), ("broker", "log.dirs")}, differing


def test_one_hour_ahead_is_the_applied_default_of_message_timestamp_after_max_ms(broker):
    """Kafka 4 (KIP-1030): a CreateTime more than an hour ahead of the broker's clock is
    INVALID_TIMESTAMP by default."""
    client = RawClient(broker.host, broker.port)
    try:
        assert create_topic(client, "ahead").error_code == error_codes.NONE
        now = int(time.time() * 1000)
        refused = produce(client, "ahead", 0, build_batch([Record(0, 0, b"k", b"v")], base_timestamp=now + 7_200_000))
        assert refused.error_code == error_codes.INVALID_TIMESTAMP
        taken = produce(client, "ahead", 0, build_batch([Record(0, 0, b"k", b"v")], base_timestamp=now + 1_800_000))
        assert (taken.error_code, taken.base_offset) == (error_codes.NONE, 0)
    finally:
        client.close()


def test_log_config_defaults_are_the_topic_and_broker_defaults():
    """The one definition: each LogConfig default is its topic config's default and that of the
    topic config's first broker synonym (in hours where the synonym counts hours)."""
    defaults = LogConfig()
    config = BrokerConfig.from_sources()
    for key, field in _LOG_FIELDS.items():
        value = getattr(defaults, field)
        topic_default = TOPIC_CONFIGS[key].default
        assert (",".join(topic_default) if TOPIC_CONFIGS[key].type is ConfigType.LIST else topic_default) == value, key
        assert config.broker_value_for_topic_config(key)[0] == topic_default, key


# Where odradek's default is not Kafka's, on purpose (each also said in its definition's
# odradek_note, so the reference says it), and keys Kafka 4 no longer defines that odradek still
# accepts so that older server.properties files load.
DELIBERATELY_DIFFERENT = {
    ("broker", "listeners"): "localhost, not every interface: a development broker is not reachable from the network",
    ("broker", "log.dir"): "./odradek-data, not /tmp/kafka-logs",
    ("broker", "listener.security.protocol.map"): "CONTROLLER:PLAINTEXT mapped for a stock KRaft file's listener",
    ("broker", "group.coordinator.rebalance.protocols"): "streams groups are not served",
}
KAFKA_HAS_NO_DEFAULT = {("broker", "node.id"), ("broker", "process.roles"), ("broker", "controller.listener.names")}
NOT_IN_KAFKA_4 = {
    ("broker", "cluster.id"), ("broker", "rack"), ("broker", "odradek.flush.on.acks.all"),
    ("broker", "odradek.log.open.files.max"), ("broker", "odradek.transaction.version"),
    ("broker", "odradek.advertise.kafka.version"), ("broker", "odradek.control.port"),
    ("broker", "log.message.downconversion.enable"), ("broker", "log.message.format.version"),
    ("broker", "log.message.timestamp.difference.max.ms"), ("topic", "message.downconversion.enable"),
    ("topic", "message.format.version"), ("topic", "message.timestamp.difference.max.ms"),
}
# Topic configs Kafka defines that odradek does not (yet): a CreateTopics or AlterConfigs naming
# one is refused, and DescribeConfigs leaves it out. Kafka's internal.* keys are not public.
NOT_DEFINED_BY_ODRADEK = {
    "max.decompressed.message.bytes": "new in Kafka 4.4: a per-record cap on the decompressed size, "
                                      "enforced on produce, compaction and offset lookups",
}
KAFKA_CONFIG_DEFAULTS = pathlib.Path(__file__).resolve().parents[2] / "compat" / "KafkaConfigDefaults.java"


@pytest.mark.slow
def test_defaults_are_kafkas(kafka_jars):
    """Every key's default, as DescribeConfigs and the reference give it, is the default in Kafka's
    own ConfigDef (KafkaConfig and LogConfig of the pinned Kafka jars), but for the differences
    listed above."""
    result = kafka_jars.run_java(str(KAFKA_CONFIG_DEFAULTS))
    kafka = {}
    for line in result.stdout.splitlines():
        kind, name, default = line.split("\t")
        kafka[(kind, name)] = None if default == "null" else default
    assert len(kafka) > 300 and kafka[("topic", "segment.bytes")] == "1073741824"
    ours = {("broker", name): d for name, d in BROKER_CONFIGS.items()}
    ours.update({("topic", name): d for name, d in TOPIC_CONFIGS.items()})
    differing = {}
    for key, definition in ours.items():
        if key in NOT_IN_KAFKA_4:
            assert key not in kafka, f"{key} is defined by Kafka again"
            continue
        if kafka[key] == "NO_DEFAULT":
            assert key in KAFKA_HAS_NO_DEFAULT, key
            continue
        value = definition.format(definition.default)
        if definition.type is ConfigType.LIST and value is not None:
            value, kafka_value = sorted(value.split(",")), sorted((kafka[key] or "").split(","))
        else:
            kafka_value = kafka[key]
        if value != kafka_value:
            differing[key] = (value, kafka_value)
    assert set(differing) == set(DELIBERATELY_DIFFERENT), differing
    kafkas_topic_configs = {name for kind, name in kafka if kind == "topic" and not name.startswith("internal.")}
    assert kafkas_topic_configs - set(TOPIC_CONFIGS) == set(NOT_DEFINED_BY_ODRADEK)
