"""Per-group configs (KIP-848, KIP-932): the ConfigResource type GROUP (32) of DescribeConfigs,
IncrementalAlterConfigs and AlterConfigs, as Kafka's ``GroupConfig`` defines them.

* ``consumer.session.timeout.ms`` / ``consumer.heartbeat.interval.ms``: a consumer-protocol
  group's session timeout and heartbeat interval, overriding ``group.consumer.session.timeout.ms``
  / ``group.consumer.heartbeat.interval.ms``; ConsumerGroupHeartbeat applies them (the interval
  to the next answer, the session from the next heartbeat on).
* ``share.session.timeout.ms``, ``share.heartbeat.interval.ms``, ``share.record.lock.duration.ms``:
  share groups' (KIP-932), stored and reported; odradek serves no share groups yet, so nothing
  applies them. Their broker defaults and bounds are Kafka's (``group.share.*`` are not broker
  settings of odradek).

Validation is Kafka's ``GroupConfig.validate``: known names only ("Unknown group config name"),
each value within the broker's min/max for it, and each session timeout above its heartbeat
interval, checked on the group's whole resulting set; INVALID_CONFIG otherwise. A group's configs
do not need the group to exist, and stay when it is deleted, as in Kafka.

Persistence: as Kafka, ConfigRecords (resource type GROUP) in the metadata log, written by the
topic table's save (``TopicTable.group_configs``). Ownership: the dict of overrides belongs to the broker's topic table; the
coordinator reads it (``GroupCoordinator.group_configs``), handlers change it through
:func:`set_group_configs`, all on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from odradek.protocol import error_codes

from ..config import ConfigDef, ConfigError, ConfigType, at_least
from ..topics import TopicError  # the refused-config error the config handlers answer with


@dataclass(frozen=True, slots=True)
class Bounds:
    """Where a group config's default and allowed range come from: a broker key, or Kafka's
    constant when odradek has no such broker setting."""

    default: str | int
    minimum: str | int
    maximum: str | int | None

    @staticmethod
    def resolve(broker_config, item):
        return broker_config[item] if isinstance(item, str) else item


def _int(name: str, doc: str, minimum: int = 1) -> ConfigDef:
    return ConfigDef(name, ConfigType.INT, None, doc, at_least(minimum))


CONSUMER_SESSION_TIMEOUT = "consumer.session.timeout.ms"
CONSUMER_HEARTBEAT_INTERVAL = "consumer.heartbeat.interval.ms"
SHARE_SESSION_TIMEOUT = "share.session.timeout.ms"
SHARE_HEARTBEAT_INTERVAL = "share.heartbeat.interval.ms"
SHARE_RECORD_LOCK_DURATION = "share.record.lock.duration.ms"

# name -> (definition, bounds, the broker key named in the bound's error message)
GROUP_CONFIGS: dict[str, tuple[ConfigDef, Bounds, tuple[str, str]]] = {
    CONSUMER_SESSION_TIMEOUT: (
        _int(CONSUMER_SESSION_TIMEOUT, "The timeout to detect client failures when using the consumer group protocol."),
        Bounds("group.consumer.session.timeout.ms", "group.consumer.min.session.timeout.ms",
               "group.consumer.max.session.timeout.ms"),
        ("group.consumer.min.session.timeout.ms", "group.consumer.max.session.timeout.ms")),
    CONSUMER_HEARTBEAT_INTERVAL: (
        _int(CONSUMER_HEARTBEAT_INTERVAL, "The heartbeat interval given to the members of a consumer group."),
        Bounds("group.consumer.heartbeat.interval.ms", "group.consumer.min.heartbeat.interval.ms",
               "group.consumer.max.heartbeat.interval.ms"),
        ("group.consumer.min.heartbeat.interval.ms", "group.consumer.max.heartbeat.interval.ms")),
    SHARE_SESSION_TIMEOUT: (
        _int(SHARE_SESSION_TIMEOUT, "The timeout to detect client failures when using the share group protocol."),
        Bounds(45000, 45000, 60000),
        ("group.share.min.session.timeout.ms", "group.share.max.session.timeout.ms")),
    SHARE_HEARTBEAT_INTERVAL: (
        _int(SHARE_HEARTBEAT_INTERVAL, "The heartbeat interval given to the members of a share group."),
        Bounds(5000, 5000, 15000),
        ("group.share.min.heartbeat.interval.ms", "group.share.max.heartbeat.interval.ms")),
    SHARE_RECORD_LOCK_DURATION: (
        _int(SHARE_RECORD_LOCK_DURATION, "The record acquisition lock duration in milliseconds for share groups.",
             minimum=1000),
        Bounds(30000, 15000, 60000),
        ("group.share.min.record.lock.duration.ms", "group.share.max.record.lock.duration.ms")),
}
# A session timeout must exceed its heartbeat interval.
_SESSION_OVER_INTERVAL = ((CONSUMER_SESSION_TIMEOUT, CONSUMER_HEARTBEAT_INTERVAL),
                          (SHARE_SESSION_TIMEOUT, SHARE_HEARTBEAT_INTERVAL))


def default_value(broker_config, name: str) -> int:
    return Bounds.resolve(broker_config, GROUP_CONFIGS[name][1].default)


def effective_values(broker_config, overrides: dict[str, str]) -> dict[str, int]:
    """Every group config's value for a group with ``overrides`` (the broker's default else)."""
    return {name: (definition.parse(overrides[name]) if name in overrides else default_value(broker_config, name))
            for name, (definition, _, _) in GROUP_CONFIGS.items()}


def validate_group_configs(broker_config, overrides: dict[str, str | None]) -> dict[str, str]:
    """Kafka's GroupConfig.validate of a group's whole new set of overrides; returns them as
    the strings stored and reported. Raises TopicError(INVALID_CONFIG)."""
    given = {name: value for name, value in overrides.items() if value is not None}
    for name in given:
        if name not in GROUP_CONFIGS:
            raise TopicError(error_codes.INVALID_CONFIG, f"Unknown group config name: {name}")
    try:
        values = effective_values(broker_config, given)
    except ConfigError as error:  # a value that does not parse, or below the definition's minimum
        raise TopicError(error_codes.INVALID_CONFIG, str(error)) from None
    for name, (_, bounds, (minimum_key, maximum_key)) in GROUP_CONFIGS.items():
        if values[name] < Bounds.resolve(broker_config, bounds.minimum):
            raise TopicError(error_codes.INVALID_CONFIG, f"{name} must be greater than or equal to {minimum_key}")
        if bounds.maximum is not None and values[name] > Bounds.resolve(broker_config, bounds.maximum):
            raise TopicError(error_codes.INVALID_CONFIG, f"{name} must be less than or equal to {maximum_key}")
    for session, interval in _SESSION_OVER_INTERVAL:
        if values[session] <= values[interval]:
            raise TopicError(error_codes.INVALID_CONFIG, f"{session} must be greater than {interval}")
    return {name: str(value).strip() for name, value in given.items()}


def set_group_configs(broker, group_id: str, overrides: dict[str, str | None], validate_only: bool) -> None:
    """Replace ``group_id``'s overrides (validated as a whole first), persist them with the
    topic table and let the coordinator see them at once."""
    if not group_id:
        raise TopicError(error_codes.INVALID_REQUEST, "Group name must not be empty")
    checked = validate_group_configs(broker.config, overrides)
    if validate_only:
        return
    table = broker.topics
    previous = table.group_configs.get(group_id)
    if checked:
        table.group_configs[group_id] = checked
    else:
        table.group_configs.pop(group_id, None)
    try:
        table.save()
    except OSError:  # not saved, not applied: the request is answered KAFKA_STORAGE_ERROR
        if previous is None:
            table.group_configs.pop(group_id, None)
        else:
            table.group_configs[group_id] = previous
        raise
