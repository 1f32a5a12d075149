"""Per-topic log configuration: Kafka's topic config names and defaults.

:class:`LogConfig` is an immutable value; a topic's effective config is built with
:meth:`LogConfig.from_properties` from the topic's overrides on top of the broker defaults
(``{"segment.bytes": "1048576", ...}``, strings or ints as Kafka's admin APIs carry them).
Names not listed here are ignored by the storage layer (the broker keeps them for
DescribeConfigs).

The field defaults are the one definition of these topic configs' defaults (Kafka 4.x's):
``odradek.broker.config`` takes its topic definitions' defaults, and its broker synonyms'
(``log.segment.bytes``, ``log.retention.hours``, ...), from here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache

LONG_MAX = 2**63 - 1

CREATE_TIME = "CreateTime"
LOG_APPEND_TIME = "LogAppendTime"


@dataclass(frozen=True)
class LogConfig:
    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * 24 * 60 * 60 * 1000
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * 24 * 60 * 60 * 1000
    retention_bytes: int = -1
    max_message_bytes: int = 1024 * 1024 + 12  # 1048588, Kafka's default
    message_timestamp_type: str = CREATE_TIME
    message_timestamp_before_max_ms: int = LONG_MAX
    # Kafka 4.0 (KIP-1030) defaults this to one hour; before it was unbounded.
    message_timestamp_after_max_ms: int = 60 * 60 * 1000
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    file_delete_delay_ms: int = 60_000
    cleanup_policy: str = "delete"
    # Compaction (cleanup.policy=compact); see odradek.storage.cleaner.
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX
    min_cleanable_dirty_ratio: float = 0.5
    delete_retention_ms: int = 24 * 60 * 60 * 1000

    @classmethod
    def from_properties(cls, properties: dict | None = None, base: "LogConfig | None" = None) -> "LogConfig":
        """``base`` (default: Kafka's defaults) overridden by Kafka-named ``properties``."""
        base = base or cls()
        changes = {}
        for name, value in (properties or {}).items():
            field_name = _KAFKA_NAMES.get(name)
            if field_name is None:
                continue
            if field_name in ("message_timestamp_type", "cleanup_policy"):
                changes[field_name] = str(value)
            elif field_name == "min_cleanable_dirty_ratio":
                changes[field_name] = float(value)
            else:
                changes[field_name] = int(value)
        config = replace(base, **changes)
        config.check()
        return config

    def check(self) -> None:
        """Refuse values Kafka's ConfigDef would refuse (ValueError)."""
        if self.segment_bytes < 14:
            raise ValueError("segment.bytes must be at least 14")
        if self.segment_index_bytes < 12:
            raise ValueError("segment.index.bytes must be at least 12 (one time index entry)")
        if self.index_interval_bytes < 0 or self.max_message_bytes < 0:
            raise ValueError("index.interval.bytes and max.message.bytes must be >= 0")
        if self.segment_ms < 1:
            raise ValueError("segment.ms must be >= 1")
        if self.message_timestamp_type not in (CREATE_TIME, LOG_APPEND_TIME):
            raise ValueError("message.timestamp.type must be CreateTime or LogAppendTime")
        if not 0 <= self.min_cleanable_dirty_ratio <= 1:
            raise ValueError("min.cleanable.dirty.ratio must be in [0, 1]")
        if self.max_compaction_lag_ms < 1 or self.min_compaction_lag_ms < 0 or self.delete_retention_ms < 0:
            raise ValueError("max.compaction.lag.ms must be >= 1, min.compaction.lag.ms and delete.retention.ms >= 0")

    @property
    def is_log_append_time(self) -> bool:
        return self.message_timestamp_type == LOG_APPEND_TIME

    @property
    def compacts(self) -> bool:
        return "compact" in self._policies

    @property
    def deletes_old_segments(self) -> bool:
        return "delete" in self._policies

    @property
    def _policies(self) -> frozenset[str]:
        return _cleanup_policies(self.cleanup_policy)


@lru_cache(maxsize=64)
def _cleanup_policies(cleanup_policy: str) -> frozenset[str]:
    """The policies of a ``cleanup.policy`` value, parsed once: every produce asks whether its
    topic compacts."""
    return frozenset(policy.strip() for policy in cleanup_policy.split(","))


# Kafka config name -> field name ("segment.bytes" -> "segment_bytes").
_KAFKA_NAMES = {f.name.replace("_", "."): f.name for f in fields(LogConfig)}
