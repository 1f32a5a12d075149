"""Broker and topic configuration: Kafka's names, types, defaults, validators and documentation.

``BROKER_CONFIGS`` and ``TOPIC_CONFIGS`` are the single source for parsing and validating
configuration, for DescribeConfigs (defaults, sources, synonyms) and for the generated
``docs/configuration.md`` (``tools/gen_config_docs.py``). Names, types and defaults are Apache
Kafka 4's (tests/broker/test_config_agreement.py holds every default to the ConfigDefs of the
pinned Kafka jars); keys Kafka 4 removed (``message.format.version``,
``message.downconversion.enable``, ``message.timestamp.difference.max.ms`` and their broker
synonyms) are still accepted so that older files load. Where odradek deliberately differs the
definition says so in ``odradek_note``:

* ``log.dirs`` defaults to ``./odradek-data`` (Kafka: ``/tmp/kafka-logs``): a dev broker keeps
  its data beside where it was started rather than in a directory the OS may wipe.
* ``node.id`` defaults to 1 so that ``odradek serve`` needs no configuration at all (Kafka in
  KRaft mode requires it).

A definition with ``applied=False`` is accepted and validated so that a stock Kafka
``server.properties`` loads without warnings, but odradek does not act on it yet (the docs
list these). Keys that no definition names are warned about at start and otherwise ignored,
as Kafka does; a value that fails its definition refuses the start, naming the key.

Parsing follows Kafka's ``ConfigDef.parseType``: surrounding whitespace is trimmed; booleans
are ``true``/``false`` in any case; ints are 32-bit and longs 64-bit; lists are
comma-separated with each item trimmed, and an empty string is the empty list.
"""

from __future__ import annotations

import decimal
import enum
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from odradek.protocol.connection import DEFAULT_MAX_FRAME_SIZE
from odradek.storage.config import LogConfig

from .advertised_versions import API_VERSIONS as RELEASE_API_VERSIONS, release_line

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


class ConfigType(enum.Enum):
    """Kafka's ``ConfigDef.Type``; the value is the name DescribeConfigs (v3+) reports."""

    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(enum.IntEnum):
    """Kafka's ``DescribeConfigsResponse.ConfigSource`` codes."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


class ConfigError(ValueError):
    """A configuration value that its definition refuses; the message names the key."""

    def __init__(self, key: str, value: Any, reason: str):
        # Kafka's ConfigException(name, value, message) text, the value unquoted.
        super().__init__(f"Invalid value {value} for configuration {key}: {reason}")
        self.key = key
        self.value = value
        self.reason = reason


class UnknownTopicConfig(ConfigError):
    """A topic config name no definition has; Kafka's message (LogConfig.validateNames) names it."""

    def __init__(self, key: str, value: Any):
        ValueError.__init__(self, f"Unknown topic config name: {key}")
        self.key, self.value, self.reason = key, value, "Unknown topic config name"


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT = _NoDefault()


# --- validators: each takes the parsed value and returns None or raises ValueError(reason) ---


def at_least(minimum: float) -> Callable[[Any], None]:
    def check(value):
        if value is not None and value < minimum:
            raise ValueError(f"Value must be at least {minimum}")

    check.description = f"[{minimum},...]"
    return check


def between(low: float, high: float) -> Callable[[Any], None]:
    def check(value):
        if value is not None and value < low:
            raise ValueError(f"Value must be at least {low}")
        if value is not None and value > high:
            raise ValueError(f"Value must be no more than {high}")

    check.description = f"[{low},...,{high}]"
    return check


def one_of(*allowed: str, case_sensitive: bool = True) -> Callable[[Any], None]:
    def check(value):
        if value is None:
            return
        candidate = value if case_sensitive else value.lower()
        options = allowed if case_sensitive else tuple(a.lower() for a in allowed)
        if candidate not in options:
            raise ValueError(f"String must be one of: {', '.join(allowed)}")

    check.description = "[" + ", ".join(allowed) + "]"
    return check


class InvalidListItem(ValueError):
    """One item of a list value refused; Kafka's message names the item, not the whole list."""

    def __init__(self, item: str, reason: str):
        super().__init__(reason)
        self.item = item


def list_of(*allowed: str, allow_empty: bool = True) -> Callable[[Any], None]:
    def check(value):
        if value is None:
            return
        if not value and not allow_empty:
            raise ValueError("Empty list is not allowed")
        for item in value:
            if item not in allowed:
                raise InvalidListItem(item, f"String must be one of: {', '.join(allowed)}")

    check.description = "[" + ", ".join(allowed) + "]"
    return check


_LISTENER_RE = re.compile(r"^([A-Za-z0-9_]+)://(\[[0-9A-Fa-f:.]+\]|[^:\[\]]*):(-?\d+)$")


@dataclass(frozen=True)
class Listener:
    """One entry of ``listeners``: ``NAME://host:port`` (an empty host binds every interface)."""

    name: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}://{host}:{self.port}"


def parse_listener(text: str) -> Listener:
    match = _LISTENER_RE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a listener of the form NAME://host:port")
    name, host, port = match.group(1), match.group(2), int(match.group(3))
    if host.startswith("["):
        host = host[1:-1]
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    return Listener(name.upper(), host, port)


def _listeners_check(value):
    if value is None:
        return
    names = set()
    for item in value:
        listener = parse_listener(item)
        if listener.name in names:
            raise ValueError(f"Each listener must have a different name, {listener.name} is repeated")
        names.add(listener.name)


_listeners_check.description = "list of NAME://host:port"


def _log_dirs_check(value):
    if value is None:
        return
    if not value or any(not item for item in value):
        raise ValueError("Empty log directory name")
    resolved = [os.path.abspath(item) for item in value]
    duplicates = sorted({path for path in resolved if resolved.count(path) > 1})
    if duplicates:
        raise ValueError(f"Duplicate log directory found: {', '.join(duplicates)}")


_log_dirs_check.description = "list of distinct directories"

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _protocol_map_check(value):
    if value is None:
        return
    for item in value:
        name, sep, protocol = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not of the form LISTENER_NAME:SECURITY_PROTOCOL")
        if protocol.strip().upper() not in SECURITY_PROTOCOLS:
            raise ValueError(f"unknown security protocol {protocol!r} (one of {', '.join(SECURITY_PROTOCOLS)})")


_protocol_map_check.description = "list of LISTENER_NAME:SECURITY_PROTOCOL"


def _cluster_id_check(value):
    if value is None:
        return
    import base64

    try:
        raw = base64.urlsafe_b64decode(value + "==")
    except Exception as exc:  # binascii.Error and friends
        raise ValueError("must be a base64 (URL-safe, unpadded) encoded 16-byte UUID") from exc
    if len(raw) != 16 or len(value) != 22:
        raise ValueError("must be a base64 (URL-safe, unpadded) encoded 16-byte UUID")


_cluster_id_check.description = "22-character base64 UUID"


def _advertised_release_check(value):
    if value is not None:
        release_line(value)


_advertised_release_check.description = "[" + ", ".join(RELEASE_API_VERSIONS) + "]"


@dataclass(frozen=True)
class ConfigDef:
    """One configuration key: what Kafka calls a ``ConfigKey``."""

    name: str
    type: ConfigType
    default: Any
    doc: str
    validator: Callable[[Any], None] | None = None
    importance: str = "medium"
    # Broker keys a topic config falls back to, most specific first (topic definitions only).
    synonyms: tuple[str, ...] = ()
    # False: accepted for compatibility with Kafka's files, not acted on by odradek yet.
    applied: bool = True
    # Where odradek's default or behaviour deliberately differs from Kafka's.
    odradek_note: str = ""
    # Secret values (PASSWORD) are never reported.
    sensitive: bool = False

    @property
    def valid_values(self) -> str:
        return getattr(self.validator, "description", "") if self.validator else ""

    def parse(self, raw: Any) -> Any:
        """Parse ``raw`` (a string from a file or an already typed value) and validate it."""
        try:
            value = _parse_typed(self.type, raw)
        except ValueError as exc:
            raise ConfigError(self.name, raw, str(exc)) from None
        if self.validator is not None:
            # As Kafka's validators: the message shows the parsed value (a DOUBLE's 2 as 2.0) and,
            # for a list, the item refused.
            try:
                self.validator(value)
            except InvalidListItem as exc:
                raise ConfigError(self.name, exc.item, str(exc)) from None
            except ValueError as exc:
                raise ConfigError(self.name, value, str(exc)) from None
        return value

    def format(self, value: Any) -> str | None:
        """The string form Kafka reports (DescribeConfigs, docs)."""
        return format_value(self.type, value)


def _parse_typed(kind: ConfigType, raw: Any) -> Any:
    if raw is None:
        return None
    if kind is ConfigType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text == "true":
            return True
        if text == "false":
            return False
        raise ValueError("Expected value to be either true or false")
    if kind in (ConfigType.INT, ConfigType.SHORT, ConfigType.LONG):
        if isinstance(raw, bool):
            raise ValueError("Expected an integer")
        if isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip()
            if not re.fullmatch(r"[+-]?\d+", text):
                raise ValueError(f"Not a number of type {kind.name}")
            value = int(text)
        bounds = {
            ConfigType.SHORT: (-(2**15), 2**15 - 1),
            ConfigType.INT: (INT32_MIN, INT32_MAX),
            ConfigType.LONG: (INT64_MIN, INT64_MAX),
        }[kind]
        if not bounds[0] <= value <= bounds[1]:
            raise ValueError(f"Not a number of type {kind.name}")
        return value
    if kind is ConfigType.DOUBLE:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        try:
            return float(str(raw).strip())
        except ValueError:
            raise ValueError("Not a number of type DOUBLE") from None
    if kind is ConfigType.LIST:
        if isinstance(raw, (list, tuple)):
            return [str(item).strip() for item in raw]
        text = str(raw).strip()
        if not text:
            return []
        return [item.strip() for item in text.split(",")]
    # STRING, CLASS, PASSWORD
    return str(raw).strip()


def format_value(kind: ConfigType, value: Any) -> str | None:
    if value is None:
        return None
    if kind is ConfigType.BOOLEAN:
        return "true" if value else "false"
    if kind is ConfigType.LIST:
        return ",".join(value)
    if kind is ConfigType.DOUBLE:
        return java_double_string(float(value))
    return str(value)


def java_double_string(value: float) -> str:
    """``value`` as Java's ``Double.toString`` writes it (what Kafka reports for a DOUBLE config):
    plain between 10^-3 and 10^7, else ``1.7976931348623157E308`` rather than Python's
    ``1.7976931348623157e+308``."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)  # Python writes these plainly too
    # Python's repr has the same shortest round-tripping digits; only the notation differs.
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{exponent + len(text) - 1}"


B, S, I, SH, L, D, LS = (  # noqa: E741 - one-letter type tags keep the definition table readable
    ConfigType.BOOLEAN,
    ConfigType.STRING,
    ConfigType.INT,
    ConfigType.SHORT,
    ConfigType.LONG,
    ConfigType.DOUBLE,
    ConfigType.LIST,
)

COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")


def _gzip_level(value):
    # Kafka's GzipCompression.LEVEL_VALIDATOR: 1..9, or -1 for zlib's default.
    if value is not None and value != -1 and not 1 <= value <= 9:
        raise ValueError("Value must be -1 or in [1,...,9]")


_gzip_level.description = "[1,...,9] or -1"
_GZIP_LEVEL = _gzip_level


def _d(*args, **kwargs) -> ConfigDef:
    return ConfigDef(*args, **kwargs)


# Each default is defined once (docs/configuration.md, DescribeConfigs and what is applied all
# read it from there):
# * a topic config the storage engine applies: LogConfig's field (odradek.storage.config, the
#   lower layer, which also uses it when it runs without a broker);
# * any other topic config: its TOPIC_CONFIGS entry;
# * a broker key that is a topic config's synonym (log.segment.bytes, compression.type, ...):
#   that topic config's default, in hours where the broker key counts hours (log.retention.hours,
#   log.roll.hours) as Kafka's ServerLogConfigs does;
# * every other broker key: its BROKER_CONFIGS entry.
_LOG_CONFIG_DEFAULTS = LogConfig()


def _log_default(topic_key: str) -> Any:
    value = getattr(_LOG_CONFIG_DEFAULTS, topic_key.replace(".", "_"))
    if topic_key == "cleanup.policy":  # a comma-separated string in LogConfig, a LIST config here
        return _parse_typed(ConfigType.LIST, value)
    return value


def _topic_default(topic_key: str) -> Any:
    return TOPIC_CONFIGS[topic_key].default


def _topic_default_hours(topic_key: str) -> int:
    hours, rest = divmod(_topic_default(topic_key), 3_600_000)
    assert rest == 0, f"{topic_key}'s default is not a whole number of hours"
    return hours


# --------------------------------------------------------------------------------------------
# Topic-level configuration (Kafka's TopicConfig / LogConfig), with the broker synonyms Kafka
# reports for each (ServerTopicConfigSynonyms), most specific first.
# --------------------------------------------------------------------------------------------

TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        _d("cleanup.policy", LS, _log_default("cleanup.policy"), "The retention policy for old log segments: `delete` discards segments past their retention time or size; `compact` keeps the latest value of each key. Both may be given.", list_of("compact", "delete"), synonyms=("log.cleanup.policy",), odradek_note="Both are applied: see docs/storage.md (compacted topics) for what the log cleaner keeps and when it runs."),
        _d("compression.type", S, "producer", "The final compression of the topic's data: a codec (`uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`) recompresses to it; `producer` keeps what the producer sent.", one_of(*COMPRESSION_TYPES), synonyms=("compression.type",)),
        _d("compression.gzip.level", I, -1, "Compression level when compression.type is gzip.", _GZIP_LEVEL, synonyms=("compression.gzip.level",)),
        _d("compression.lz4.level", I, 9, "Compression level when compression.type is lz4.", between(1, 17), synonyms=("compression.lz4.level",)),
        _d("compression.zstd.level", I, 3, "Compression level when compression.type is zstd.", between(-131072, 22), synonyms=("compression.zstd.level",)),
        _d("delete.retention.ms", L, _log_default("delete.retention.ms"), "How long delete tombstones are retained in compacted topics.", at_least(0), synonyms=("log.cleaner.delete.retention.ms",)),
        _d("errors.deadletterqueue.group.enable", B, False, "Whether share groups may write undeliverable records to this topic as a dead-letter queue (KIP-1191, Kafka 4.4).", applied=False, odradek_note="Share groups are not served."),
        _d("file.delete.delay.ms", L, _log_default("file.delete.delay.ms"), "The time to wait before deleting a file from the filesystem.", at_least(0), synonyms=("log.segment.delete.delay.ms",), odradek_note="As in Kafka, a deleted segment's files are renamed to `*.deleted` at once (no read sees them again) and removed this long after (checked once a second); files still waiting at a stop are removed by the next start."),
        _d("flush.messages", L, _log_default("flush.messages"), "Force an fsync of the log after this many messages (Kafka relies on replication instead; the default never forces).", at_least(1), synonyms=("log.flush.interval.messages",)),
        _d("flush.ms", L, _log_default("flush.ms"), "Force an fsync of the log after this much time.", at_least(0), synonyms=("log.flush.interval.ms",)),
        _d("follower.replication.throttled.replicas", LS, [], "Replicas whose log replication is throttled on the follower side.", applied=False),
        _d("index.interval.bytes", I, _log_default("index.interval.bytes"), "How often (in bytes) an offset index entry is added.", at_least(0), synonyms=("log.index.interval.bytes",)),
        _d("leader.replication.throttled.replicas", LS, [], "Replicas whose log replication is throttled on the leader side.", applied=False),
        _d("local.retention.bytes", L, -2, "Bytes kept locally with tiered storage (-2: use retention.bytes).", at_least(-2), synonyms=("log.local.retention.bytes",), applied=False),
        _d("local.retention.ms", L, -2, "Time kept locally with tiered storage (-2: use retention.ms).", at_least(-2), synonyms=("log.local.retention.ms",), applied=False),
        _d("max.compaction.lag.ms", L, _log_default("max.compaction.lag.ms"), "The maximum time a message stays ineligible for compaction.", at_least(1), synonyms=("log.cleaner.max.compaction.lag.ms",)),
        _d("max.message.bytes", I, _log_default("max.message.bytes"), "The largest record batch size allowed for the topic (after compression).", at_least(0), synonyms=("message.max.bytes",)),
        _d("message.downconversion.enable", B, True, "Whether the broker down-converts record batches for consumers fetching with an older message format.", synonyms=("log.message.downconversion.enable",)),
        _d("message.format.version", S, "3.0-IV1", "Deprecated: ignored from inter.broker.protocol.version 3.0 on; kept for compatibility.", synonyms=("log.message.format.version",), applied=False),
        _d("message.timestamp.after.max.ms", L, _log_default("message.timestamp.after.max.ms"), "How far a record's timestamp may be ahead of the broker's time (CreateTime only).", at_least(0), synonyms=("log.message.timestamp.after.max.ms",)),
        _d("message.timestamp.before.max.ms", L, _log_default("message.timestamp.before.max.ms"), "How far a record's timestamp may be behind the broker's time (CreateTime only).", at_least(0), synonyms=("log.message.timestamp.before.max.ms",)),
        _d("message.timestamp.difference.max.ms", L, INT64_MAX, "Deprecated: the maximum difference between a record's timestamp and the broker's time.", at_least(0), synonyms=("log.message.timestamp.difference.max.ms",), applied=False, odradek_note='Use message.timestamp.before.max.ms / message.timestamp.after.max.ms, which are applied.'),
        _d("message.timestamp.type", S, _log_default("message.timestamp.type"), "Whether record timestamps are the producer's (`CreateTime`) or the broker's append time (`LogAppendTime`).", one_of("CreateTime", "LogAppendTime"), synonyms=("log.message.timestamp.type",)),
        _d("min.cleanable.dirty.ratio", D, _log_default("min.cleanable.dirty.ratio"), "The dirty ratio above which the log cleaner compacts the log.", between(0, 1), synonyms=("log.cleaner.min.cleanable.ratio",)),
        _d("min.compaction.lag.ms", L, _log_default("min.compaction.lag.ms"), "The minimum time a message stays uncompacted.", at_least(0), synonyms=("log.cleaner.min.compaction.lag.ms",)),
        _d("min.insync.replicas", I, 1, "The minimum number of in-sync replicas that must acknowledge a write with acks=all.", at_least(1), synonyms=("min.insync.replicas",), odradek_note="Capped at the replication factor, as Kafka's effective min ISR: with one node (replication factor 1) acks=all produces are never refused for it."),
        _d("preallocate", B, False, "Preallocate the file on disk when creating a new log segment.", synonyms=("log.preallocate",), applied=False),
        _d("remote.log.copy.disable", B, False, "Stop copying segments to tiered storage.", applied=False),
        _d("remote.log.delete.on.disable", B, False, "Delete remote data when tiered storage is disabled.", applied=False),
        _d("remote.storage.enable", B, False, "Enable tiered storage for the topic.", applied=False),
        _d("remote.copy.lag.bytes", L, -1, "Newer local data (bytes) after which a segment may be copied to tiered storage (-1: derived from local.retention.bytes; Kafka 4.4).", at_least(-1), synonyms=("log.remote.copy.lag.bytes",), applied=False),
        _d("remote.copy.lag.ms", L, 0, "Age of a segment's newest record after which it may be copied to tiered storage (0: at once; -1: derived from local.retention.ms; Kafka 4.4).", at_least(-1), synonyms=("log.remote.copy.lag.ms",), applied=False),
        _d("retention.bytes", L, _log_default("retention.bytes"), "The maximum size a partition's log may grow to before old segments are discarded (-1: no limit).", synonyms=("log.retention.bytes",)),
        _d("retention.ms", L, _log_default("retention.ms"), "The maximum time a log segment is kept before it is discarded (-1: no limit).", at_least(-1), synonyms=("log.retention.ms", "log.retention.minutes", "log.retention.hours")),
        _d("segment.bytes", I, _log_default("segment.bytes"), "The segment file size of the log.", at_least(14), synonyms=("log.segment.bytes",)),
        _d("segment.index.bytes", I, _log_default("segment.index.bytes"), "The size of the offset index file.", at_least(4), synonyms=("log.index.size.max.bytes",)),
        _d("segment.jitter.ms", L, _log_default("segment.jitter.ms"), "The maximum random jitter subtracted from segment.ms.", at_least(0), synonyms=("log.roll.jitter.ms", "log.roll.jitter.hours"), applied=False, odradek_note='Segments roll at segment.ms exactly.'),
        _d("segment.ms", L, _log_default("segment.ms"), "Roll a new segment after this time even if the current one is not full.", at_least(1), synonyms=("log.roll.ms", "log.roll.hours")),
        _d("unclean.leader.election.enable", B, False, "Whether a replica outside the ISR may become leader (losing data).", synonyms=("unclean.leader.election.enable",), applied=False),
    ]
}


# --------------------------------------------------------------------------------------------
# Broker configuration.
# --------------------------------------------------------------------------------------------

_DEFAULT_PROTOCOL_MAP = [
    "CONTROLLER:PLAINTEXT",
    "PLAINTEXT:PLAINTEXT",
    "SSL:SSL",
    "SASL_PLAINTEXT:SASL_PLAINTEXT",
    "SASL_SSL:SASL_SSL",
]

BROKER_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        # identity and listeners
        _d("node.id", I, 1, "The node id of this server (odradek runs one node, which is also the controller it reports).", at_least(0), "high", odradek_note="Default 1 so that `odradek serve` needs no configuration; Kafka requires it in KRaft mode."),
        _d("broker.id", I, -1, "Older name of node.id; when set (not -1) and node.id is not, it is used as the node id.", at_least(-1), "high"),
        _d("cluster.id", S, None, "The cluster id reported in Metadata and DescribeCluster. When unset, one is generated at first start and kept in the data directory's meta.properties.", _cluster_id_check, "medium", odradek_note="Kafka takes it from `kafka-storage format`; odradek generates it on first start."),
        _d("listeners", LS, ["PLAINTEXT://localhost:9092"], "Comma-separated list of URIs the broker listens on, NAME://host:port. Port 0 picks a free port (the real port is printed at start). An empty host binds every interface.", _listeners_check, "high", odradek_note="Only PLAINTEXT listeners are served so far. Default `localhost:9092` (Kafka: `PLAINTEXT://:9092`, every interface): a development broker is not reachable from the network until asked."),
        _d("advertised.listeners", LS, None, "Listeners published to clients in Metadata, if different from `listeners`. When unset, the listeners are advertised (with the real port when the port is 0, and the host `localhost` when it is empty).", _listeners_check, "high"),
        _d("listener.security.protocol.map", LS, _DEFAULT_PROTOCOL_MAP, "Map between listener names and security protocols.", _protocol_map_check, "low", odradek_note="The default also maps CONTROLLER to PLAINTEXT (Kafka does so implicitly for the controller listener of a KRaft file that sets no map)."),
        _d("inter.broker.listener.name", S, None, "Name of the listener used between brokers.", importance="medium", applied=False),
        _d("controller.listener.names", LS, [], "Listener names used by the KRaft controller quorum. odradek does not bind these listeners: its one node is its own controller.", importance="high"),
        _d("process.roles", LS, [], "The roles of this process in KRaft mode (broker, controller); odradek is always both.", list_of("broker", "controller"), "high", applied=False),
        _d("controller.quorum.voters", LS, [], "The KRaft controller quorum voters.", importance="high", applied=False),
        _d("controller.quorum.bootstrap.servers", LS, [], "Bootstrap addresses of the KRaft controller quorum.", importance="high", applied=False),
        _d("rack", S, None, "Rack of this broker, reported in Metadata.", importance="medium"),
        _d("broker.rack", S, None, "Rack of this broker, reported in Metadata (Kafka's name; `rack` is accepted as an alias).", importance="medium"),
        # sockets and requests
        _d("socket.request.max.bytes", I, DEFAULT_MAX_FRAME_SIZE, "The maximum size of a request frame; a larger size prefix closes the connection before anything is allocated.", at_least(1), "high"),
        _d("socket.send.buffer.bytes", I, 102400, "SO_SNDBUF of the server sockets (-1: OS default).", importance="high"),
        _d("socket.receive.buffer.bytes", I, 102400, "SO_RCVBUF of the server sockets (-1: OS default).", importance="high"),
        _d("socket.listen.backlog.size", I, 50, "The listen backlog of the server sockets.", at_least(1), "medium"),
        _d("connections.max.idle.ms", L, 600000, "Close connections idle for longer than this.", importance="medium"),
        _d("queued.max.requests", I, 500, "Requests read ahead per connection before the broker stops reading from it (back-pressure); Kafka applies this across the network threads.", at_least(1), "high", odradek_note="Applied per connection, together with queued.max.request.bytes."),
        _d("queued.max.request.bytes", L, -1, "Bytes of requests read ahead per connection before the broker stops reading from it (-1: socket.request.max.bytes, the frame limit).", importance="medium"),
        _d("num.network.threads", I, 3, "Threads handling network requests (odradek uses one event loop).", at_least(1), "high", applied=False),
        _d("num.io.threads", I, 8, "Threads processing requests (odradek uses one event loop).", at_least(1), "high", applied=False),
        _d("num.recovery.threads.per.data.dir", I, 2, "Threads per data directory for log recovery at start and flushing at shutdown.", at_least(1), "high", odradek_note="A clean stop fsyncs the partitions written since their last flush and writes their producer snapshots, and a start after a crash does the same for the partitions it recovered, on this many threads per data directory (the file system serves several fsyncs at once); the rest of the shutdown and of the start (reading and rescanning the logs) runs on one thread."),
        _d("background.threads", I, 10, "Threads for background tasks.", at_least(1), "high", applied=False),
        _d("max.incremental.fetch.session.cache.slots", I, 1000, "The maximum number of incremental fetch sessions (KIP-227) kept. As in Kafka, the cache has 8 shards that share the limit equally (fewer than 8 slots keep no session), new sessions go to the shards in turn, and a full shard evicts one of its own sessions only if it was unused for 2 minutes, or is older than that and holds fewer partitions than the new one; otherwise the new fetch gets no session.", at_least(0), "medium"),
        _d("request.timeout.ms", I, 30000, "Inter-broker request timeout.", at_least(0), "medium", applied=False),
        _d("telemetry.max.bytes", I, 1048576, "The maximum size (after compression) of a client's metrics push (KIP-714 PushTelemetry); a larger push gets TELEMETRY_TOO_LARGE.", at_least(1), "low"),
        # topics and logs
        _d("log.dirs", LS, None, "Directories where the log data is kept. Each new partition goes to the directory holding the fewest partitions; the first one also holds the KRaft metadata log (__cluster_metadata-0) and producer id blocks (Kafka's metadata.log.dir default).", _log_dirs_check, "high", odradek_note="When neither log.dirs nor log.dir is set, odradek uses ./odradek-data (Kafka: /tmp/kafka-logs)."),
        _d("log.dir", S, "./odradek-data", "The data directory, used when log.dirs is not set.", importance="high", odradek_note="Default ./odradek-data (Kafka: /tmp/kafka-logs)."),
        _d("num.partitions", I, 1, "Default number of partitions of auto-created topics and CreateTopics requests that leave it to the broker.", at_least(1), "medium"),
        _d("default.replication.factor", I, 1, "Default replication factor of auto-created topics (a single node can only serve 1).", at_least(1), "medium"),
        _d("auto.create.topics.enable", B, True, "Create a topic with the broker defaults when a client asks Metadata for it (and allows auto-creation) and it does not exist.", importance="high"),
        _d("delete.topic.enable", B, True, "Allow DeleteTopics.", importance="high"),
        _d("log.retention.hours", I, _topic_default_hours("retention.ms"), "Hours to keep a log segment before deleting it; overridden by log.retention.minutes and log.retention.ms.", importance="high"),
        _d("log.retention.minutes", I, None, "Minutes to keep a log segment; when unset, log.retention.hours applies.", importance="high"),
        _d("log.retention.ms", L, None, "Milliseconds to keep a log segment (-1: forever); when unset, log.retention.minutes applies.", importance="high"),
        _d("log.retention.bytes", L, _topic_default("retention.bytes"), "The maximum size of a partition's log before old segments are deleted (-1: no limit).", importance="high"),
        _d("log.retention.check.interval.ms", L, 300000, "How often the retention cleaner checks for segments to delete.", at_least(1), "medium"),
        _d("log.segment.bytes", I, _topic_default("segment.bytes"), "The maximum size of a single log segment file.", at_least(14), "high"),
        _d("log.segment.delete.delay.ms", L, _topic_default("file.delete.delay.ms"), "Time to wait before deleting a segment file.", at_least(0), "high", odradek_note="The default of file.delete.delay.ms; as in Kafka, also how long a deleted topic's partition directories (renamed to `<topic>-<partition>.<id>-delete`) wait before they are removed."),
        _d("log.roll.hours", I, _topic_default_hours("segment.ms"), "The maximum time before a new segment is rolled; overridden by log.roll.ms.", at_least(1), "high"),
        _d("log.roll.ms", L, None, "The maximum time before a new segment is rolled; when unset, log.roll.hours applies.", importance="high"),
        _d("log.roll.jitter.hours", I, _topic_default_hours("segment.jitter.ms"), "Maximum jitter subtracted from the roll time; overridden by log.roll.jitter.ms.", at_least(0), "high", applied=False, odradek_note='Segments roll at segment.ms exactly.'),
        _d("log.roll.jitter.ms", L, None, "Maximum jitter subtracted from the roll time.", importance="high", applied=False, odradek_note='Segments roll at segment.ms exactly.'),
        _d("log.index.size.max.bytes", I, _topic_default("segment.index.bytes"), "The maximum size of an offset index file.", at_least(4), "medium"),
        _d("log.index.interval.bytes", I, _topic_default("index.interval.bytes"), "Bytes between offset index entries.", at_least(0), "medium"),
        _d("log.cleanup.policy", LS, _topic_default("cleanup.policy"), "The default cleanup policy of topics: delete and/or compact.", list_of("compact", "delete"), "medium"),
        _d("log.cleaner.enable", B, True, "Run the log cleaner for compacted topics.", importance="medium"),
        _d("log.cleaner.backoff.ms", L, 15000, "The time the log cleaner sleeps when no log needs cleaning.", at_least(0), "medium"),
        _d("log.cleaner.dedupe.buffer.size", L, 134217728, "The memory of the log cleaner's key map (keys of the part of a log being cleaned).", importance="medium", odradek_note="Each key counts as its length plus about 100 bytes of Python objects; a log with more keys is cleaned in several rounds."),
        _d("log.cleaner.io.buffer.load.factor", D, 0.9, "How full the log cleaner's key map may get (a fraction of log.cleaner.dedupe.buffer.size).", between(0, 1), "medium"),
        _d("log.cleaner.io.buffer.size", I, 524288, "The log cleaner's I/O buffers.", at_least(0), "medium", applied=False, odradek_note="The cleaner reads 1 MiB at a time."),
        _d("log.cleaner.io.max.bytes.per.second", D, 1.7976931348623157e308, "A throttle on the log cleaner's I/O.", importance="medium", applied=False, odradek_note="Not throttled: the cleaner works in slices of about 1 MiB between requests."),
        _d("log.cleaner.delete.retention.ms", L, _topic_default("delete.retention.ms"), "How long delete tombstones are kept in compacted topics.", at_least(0), "medium"),
        _d("log.cleaner.min.compaction.lag.ms", L, _topic_default("min.compaction.lag.ms"), "The minimum time a message stays uncompacted.", at_least(0), "medium"),
        _d("log.cleaner.max.compaction.lag.ms", L, _topic_default("max.compaction.lag.ms"), "The maximum time a message stays ineligible for compaction.", at_least(1), "medium"),
        _d("log.cleaner.min.cleanable.ratio", D, _topic_default("min.cleanable.dirty.ratio"), "Dirty ratio above which the cleaner compacts a log.", between(0, 1), "medium"),
        _d("log.cleaner.threads", I, 1, "Threads of the log cleaner.", at_least(0), "medium", applied=False, odradek_note='One cleaner runs on the event loop, in slices of a few MiB.'),
        _d("log.flush.interval.messages", L, _topic_default("flush.messages"), "Messages accumulated on a partition before they are fsynced.", at_least(1), "high"),
        _d("log.flush.interval.ms", L, None, "Maximum time data stays in memory before it is fsynced; when unset, log.flush.scheduler.interval.ms applies.", importance="high"),
        _d("log.flush.scheduler.interval.ms", L, _topic_default("flush.ms"), "How often the flusher checks whether a log needs flushing.", importance="high"),
        _d("log.flush.offset.checkpoint.interval.ms", I, 60000, "How often the recovery point checkpoint is written.", at_least(0), "high", odradek_note='The offset checkpoints are written together, at the shortest of the three intervals.'),
        _d("log.flush.start.offset.checkpoint.interval.ms", I, 60000, "How often the log start offset checkpoint is written.", at_least(0), "high", odradek_note='The offset checkpoints are written together, at the shortest of the three intervals.'),
        _d("replica.high.watermark.checkpoint.interval.ms", L, 5000, "How often the high watermark checkpoint is written.", at_least(1), "high", odradek_note='The offset checkpoints are written together, at the shortest of the three intervals.'),
        _d("log.preallocate", B, _topic_default("preallocate"), "Preallocate segment files.", importance="medium", applied=False),
        _d("log.message.timestamp.type", S, _topic_default("message.timestamp.type"), "Default timestamp type of topics: CreateTime or LogAppendTime.", one_of("CreateTime", "LogAppendTime"), "medium"),
        _d("log.message.timestamp.difference.max.ms", L, _topic_default("message.timestamp.difference.max.ms"), "Deprecated maximum difference between record and broker timestamps.", at_least(0), "medium", applied=False, odradek_note='Use log.message.timestamp.before.max.ms / after.max.ms, which are applied.'),
        _d("log.message.timestamp.before.max.ms", L, _topic_default("message.timestamp.before.max.ms"), "How far a record timestamp may be behind the broker's time.", at_least(0), "medium"),
        _d("log.message.timestamp.after.max.ms", L, _topic_default("message.timestamp.after.max.ms"), "How far a record timestamp may be ahead of the broker's time.", at_least(0), "medium"),
        _d("log.message.downconversion.enable", B, _topic_default("message.downconversion.enable"), "Down-convert record batches for old fetch versions.", importance="low"),
        _d("log.message.format.version", S, _topic_default("message.format.version"), "Deprecated; ignored.", importance="medium", applied=False),
        _d("log.local.retention.ms", L, _topic_default("local.retention.ms"), "Local retention time with tiered storage.", at_least(-2), "medium", applied=False),
        _d("log.local.retention.bytes", L, _topic_default("local.retention.bytes"), "Local retention size with tiered storage.", at_least(-2), "medium", applied=False),
        _d("log.remote.copy.lag.bytes", L, _topic_default("remote.copy.lag.bytes"), "Tiered storage copy lag in bytes.", at_least(-1), "medium", applied=False),
        _d("log.remote.copy.lag.ms", L, _topic_default("remote.copy.lag.ms"), "Tiered storage copy lag in time.", at_least(-1), "medium", applied=False),
        _d("message.max.bytes", I, _topic_default("max.message.bytes"), "The largest record batch size the broker accepts (topic override: max.message.bytes).", at_least(0), "high"),
        _d("compression.type", S, _topic_default("compression.type"), "Default final compression of topics.", one_of(*COMPRESSION_TYPES), "high"),
        _d("compression.gzip.level", I, _topic_default("compression.gzip.level"), "Default gzip level.", _GZIP_LEVEL, "medium"),
        _d("compression.lz4.level", I, _topic_default("compression.lz4.level"), "Default lz4 level.", between(1, 17), "medium"),
        _d("compression.zstd.level", I, _topic_default("compression.zstd.level"), "Default zstd level.", between(-131072, 22), "medium"),
        _d("min.insync.replicas", I, _topic_default("min.insync.replicas"), "Minimum in-sync replicas for acks=all.", at_least(1), "high"),
        _d("unclean.leader.election.enable", B, _topic_default("unclean.leader.election.enable"), "Allow out-of-sync replicas to become leader.", importance="high", applied=False),
        _d("odradek.flush.on.acks.all", B, True, "odradek only: fsync the partition log before acknowledging a produce with acks=all. Kafka relies on replication for durability and does not; a single node has no replicas, so odradek syncs unless this is false.", importance="high", odradek_note="odradek's own key."),
        _d("odradek.log.open.files.max", I, 0, "odradek only: how many segment and index files (.log, .index, .timeindex, .txnindex) the broker keeps open at once; past it the least recently used are closed and reopened on their next use. 0 sizes it from the open-files limit (raised to the hard limit at start): the limit less a quarter of it, at least 64 less; a value above that is capped to it.", at_least(0), "medium", odradek_note="odradek's own key. Kafka keeps every segment's log file open and opens index files on first use; its docs ask for an open-files limit of 100,000 or more instead."),
        # internal topics and coordinators
        _d("offsets.topic.num.partitions", I, 50, "Partitions of the __consumer_offsets topic.", at_least(1), "high"),
        _d("offsets.topic.replication.factor", SH, 3, "Replication factor of __consumer_offsets (capped at the number of live brokers).", at_least(1), "high"),
        _d("offsets.topic.segment.bytes", I, 104857600, "Segment size of __consumer_offsets.", at_least(1), "high"),
        _d("offsets.retention.minutes", I, 10080, "Committed offsets of an empty group are kept this long.", at_least(1), "high"),
        _d("offsets.retention.check.interval.ms", L, 600000, "How often stale offsets are checked.", at_least(1), "high"),
        _d("offsets.commit.timeout.ms", I, 5000, "Timeout of an offset commit waiting for the offsets topic.", at_least(1), "high"),
        _d("offsets.load.buffer.size", I, 5242880, "Batch size for reading from the offsets segments when loading offsets into the cache (soft-limit, overridden if records are too large).", at_least(1), "high"),
        _d("offset.metadata.max.bytes", I, 4096, "Maximum size of the metadata of an offset commit.", importance="high"),
        _d("group.initial.rebalance.delay.ms", I, 3000, "Time the coordinator waits for more members before the first rebalance of a new group.", importance="medium"),
        _d("group.min.session.timeout.ms", I, 6000, "Minimum session timeout a member may ask for.", importance="medium"),
        _d("group.max.session.timeout.ms", I, 1800000, "Maximum session timeout a member may ask for.", importance="medium"),
        _d("group.max.size", I, INT32_MAX, "Maximum number of members of a group.", at_least(1), "medium"),
        _d("group.consumer.session.timeout.ms", I, 45000, "Session timeout of consumer-protocol (KIP-848) members.", at_least(1), "medium"),
        _d("group.consumer.heartbeat.interval.ms", I, 5000, "Heartbeat interval of consumer-protocol (KIP-848) members.", at_least(1), "medium"),
        _d("group.consumer.min.session.timeout.ms", I, 45000, "Minimum session timeout of consumer-protocol members.", at_least(1), "medium"),
        _d("group.consumer.max.session.timeout.ms", I, 60000, "Maximum session timeout of consumer-protocol members.", at_least(1), "medium"),
        _d("group.consumer.min.heartbeat.interval.ms", I, 5000, "Minimum heartbeat interval of consumer-protocol members.", at_least(1), "medium"),
        _d("group.consumer.max.heartbeat.interval.ms", I, 15000, "Maximum heartbeat interval of consumer-protocol members.", at_least(1), "medium"),
        _d("group.consumer.max.size", I, INT32_MAX, "Maximum members of a consumer-protocol group.", at_least(1), "medium"),
        _d("group.consumer.assignors", LS, ["uniform", "range"], "The server-side assignors consumer-protocol groups may name; the first is the default.", list_of("uniform", "range", "org.apache.kafka.coordinator.group.assignor.UniformAssignor", "org.apache.kafka.coordinator.group.assignor.RangeAssignor", allow_empty=False), "medium"),
        _d("group.consumer.migration.policy", S, "bidirectional", "Whether a group may move between the classic and the consumer protocol while it has members: `upgrade` (classic to consumer), `downgrade` (back), `bidirectional` or `disabled`.", one_of("disabled", "upgrade", "downgrade", "bidirectional", case_sensitive=False), "medium"),
        _d("group.coordinator.rebalance.protocols", LS, ["classic", "consumer"], "Rebalance protocols the group coordinator serves.", list_of("classic", "consumer", "share", "streams"), "medium", odradek_note="Default `classic,consumer` (Kafka 4.4: also `streams`): streams groups (KIP-1071) are not served yet."),
        _d("transaction.state.log.num.partitions", I, 50, "Partitions of the __transaction_state topic.", at_least(1), "high"),
        _d("transaction.state.log.replication.factor", SH, 3, "Replication factor of __transaction_state (capped at the number of live brokers).", at_least(1), "high", odradek_note="One node: the topic is created with replication factor 1."),
        _d("transaction.state.log.min.isr", I, 2, "min.insync.replicas of __transaction_state.", at_least(1), "high"),
        _d("transaction.state.log.segment.bytes", I, 104857600, "Segment size of __transaction_state.", at_least(1), "high"),
        _d("transaction.max.timeout.ms", I, 900000, "The maximum transaction timeout a producer may ask for.", at_least(1), "high"),
        _d("transaction.abort.timed.out.transaction.cleanup.interval.ms", I, 10000, "How often timed-out transactions are rolled back.", at_least(1), "low"),
        _d("transaction.remove.expired.transaction.cleanup.interval.ms", I, 3600000, "How often expired transactional ids are removed.", at_least(1), "low"),
        _d("transaction.state.log.load.buffer.size", I, 5242880, "Batch size for reading from the transaction log segments when loading transaction state into the cache (soft-limit, overridden if records are too large).", at_least(1), "low"),
        _d("add.partitions.to.txn.retry.backoff.ms", I, 20, "How long the broker waits before it tries again to add a partition to a transaction for a produce (transaction version 2) when the coordinator answers CONCURRENT_TRANSACTIONS (the previous transaction is still being completed).", at_least(1), "low", odradek_note="The broker tries again as soon as the previous transaction is completed, or after this wait."),
        _d("add.partitions.to.txn.retry.backoff.max.ms", I, 100, "How long the broker keeps trying to add a partition to a transaction for a produce before it answers the client (NOT_ENOUGH_REPLICAS, which the client retries).", at_least(0), "low"),
        _d("transaction.partition.verification.enable", B, True, "Verify, before appending a transactional batch to a partition, that the partition was added to the producer's transaction (KIP-890): a batch of a partition not in the transaction is refused. Produce v12+ (transaction version 2) adds the partition to the transaction whatever this says.", importance="low"),
        _d("odradek.transaction.version", I, 2, "odradek only: the finalized level of the transaction.version feature ApiVersions advertises (Kafka sets it when the storage is formatted). 2 (KIP-890 part 2): clients that support it bump the producer epoch at the end of every transaction and add partitions implicitly with Produce v12+; 1: flexible __transaction_state records only; 0: the original protocol.", between(0, 2), "medium", odradek_note="odradek's own key, for Kafka's `kafka-storage format --feature transaction.version=N`."),
        _d("odradek.advertise.kafka.version", S, None, "odradek only: a Kafka release line (`2.8`, `0.11`, ...; a patch release such as `2.8.2` stands for its line) whose protocol the broker then speaks: ApiVersions lists only the APIs that release had, with its version ranges (cut to what odradek serves), every other API and version is refused as Kafka refuses them, and `transaction.version` is advertised only up to the level the release supported (not before 4.0). For testing a client's fallback paths; unset: Kafka 4.4's ranges. The ranges are read from each release's kafka-clients jar (protocol/kafka_releases.py).", _advertised_release_check, "low", odradek_note="odradek's own key, for testing clients against an older broker."),
        _d("odradek.control.port", I, 0, "odradek only: the port of the control API (HTTP/JSON on 127.0.0.1 only, docs/testing.md): reset, snapshots, faults, clients and activity. 0 picks a free port (printed by `odradek serve` as `odradek control: URL`); -1 turns the control API off.", between(-1, 65535), "low", odradek_note="odradek's own key: the test kit's control API."),
        _d("transactional.id.expiration.ms", I, 604800000, "Time after which an idle transactional id expires.", at_least(1), "high"),
        _d("producer.id.expiration.ms", I, 86400000, "Time after which an idle producer id's state expires.", at_least(1), "low"),
        _d("producer.id.expiration.check.interval.ms", I, 600000, "How often producer ids idle for producer.id.expiration.ms are removed.", at_least(1), "low"),
        _d("share.coordinator.state.topic.replication.factor", SH, 3, "Replication factor of the share-group state topic.", at_least(1), "high", applied=False),
        _d("share.coordinator.state.topic.min.isr", SH, 2, "min.insync.replicas of the share-group state topic.", at_least(1), "high", applied=False),
        _d("auto.leader.rebalance.enable", B, True, "Automatic leader balancing.", importance="high", applied=False),
    ]
}

# Topic keys whose broker default comes from a differently named broker key: used by
# DescribeConfigs and by TopicConfig resolution.
TOPIC_TO_BROKER_SYNONYMS: dict[str, tuple[str, ...]] = {name: d.synonyms for name, d in TOPIC_CONFIGS.items()}


@dataclass
class ConfigEntry:
    value: Any
    source: ConfigSource


class BrokerConfig:
    """The broker's configuration after parsing: typed values plus where each came from.

    Built once at start (``BrokerConfig.from_sources``); immutable afterwards until dynamic
    broker configs exist (then the event loop will own it, like all broker state).
    """

    def __init__(self, entries: Mapping[str, ConfigEntry], unknown: Mapping[str, str]):
        self._entries = dict(entries)
        self.unknown = dict(unknown)

    @classmethod
    def from_sources(cls, *sources: Mapping[str, Any], logger=None) -> "BrokerConfig":
        """Merge ``sources`` (later ones win: the file, then ``--override``s), parse and validate
        every key, and warn about unknown keys. Raises ConfigError naming the first bad key."""
        merged: dict[str, Any] = {}
        for source in sources:
            merged.update(source)
        entries: dict[str, ConfigEntry] = {}
        unknown: dict[str, str] = {}
        for name, raw in merged.items():
            definition = BROKER_CONFIGS.get(name)
            if definition is None:
                unknown[name] = raw
                continue
            entries[name] = ConfigEntry(definition.parse(raw), ConfigSource.STATIC_BROKER_CONFIG)
        for name, definition in BROKER_CONFIGS.items():
            if name not in entries:
                entries[name] = ConfigEntry(definition.default, ConfigSource.DEFAULT_CONFIG)
        config = cls(entries, unknown)
        config._check_consistency()
        if unknown and logger is not None:
            logger.warning("unknown configuration keys ignored", keys=sorted(unknown))
        return config

    def _check_consistency(self) -> None:
        listener_names = {listener.name for listener in self.listeners}
        mapped = self.security_protocol_map
        for name in listener_names:
            if name not in mapped:
                raise ConfigError("listener.security.protocol.map", ",".join(self["listener.security.protocol.map"]), f"no security protocol for listener {name}")
            if mapped[name] != "PLAINTEXT" and name in {listener.name for listener in self.client_listeners}:
                raise ConfigError("listeners", ",".join(self["listeners"]), f"listener {name} uses {mapped[name]}; odradek serves PLAINTEXT only so far")
        if not self.client_listeners:
            raise ConfigError("listeners", ",".join(self["listeners"]),
                              "at least one listener that is not a controller listener is required")
        advertised = self["advertised.listeners"]
        if advertised is not None:
            for listener in (parse_listener(item) for item in advertised):
                if listener.name not in listener_names:
                    raise ConfigError("advertised.listeners", ",".join(advertised), f"listener {listener.name} is not in listeners")
        served = {listener.name for listener in self.client_listeners}
        for listener in self.advertised_listeners:
            if listener.name in served and listener.host in ("0.0.0.0", "::"):
                # As Kafka: clients cannot connect to the wildcard address they would be told.
                key = "advertised.listeners" if self["advertised.listeners"] is not None else "listeners"
                raise ConfigError(key, ",".join(self[key]),
                                  f"advertised.listeners cannot use the nonroutable meta-address {listener.host}. "
                                  "Use a routable IP address (set advertised.listeners).")
        if self["group.min.session.timeout.ms"] > self["group.max.session.timeout.ms"]:
            raise ConfigError("group.min.session.timeout.ms", self["group.min.session.timeout.ms"], "must not exceed group.max.session.timeout.ms")
        # Kafka's GroupCoordinatorConfig: the consumer protocol's interval and session within bounds.
        for low, value, high in (("group.consumer.min.heartbeat.interval.ms", "group.consumer.heartbeat.interval.ms",
                                  "group.consumer.max.heartbeat.interval.ms"),
                                 ("group.consumer.min.session.timeout.ms", "group.consumer.session.timeout.ms",
                                  "group.consumer.max.session.timeout.ms")):
            if self[value] < self[low]:
                raise ConfigError(value, self[value], f"must be greater than or equal to {low}")
            if self[value] > self[high]:
                raise ConfigError(value, self[value], f"must be less than or equal to {high}")
        if self["group.consumer.heartbeat.interval.ms"] >= self["group.consumer.session.timeout.ms"]:
            raise ConfigError("group.consumer.heartbeat.interval.ms", self["group.consumer.heartbeat.interval.ms"],
                              "must be less than group.consumer.session.timeout.ms")

    # --- access ---

    def __getitem__(self, name: str) -> Any:
        return self._entries[name].value

    def source(self, name: str) -> ConfigSource:
        return self._entries[name].source

    def is_set(self, name: str) -> bool:
        return self._entries[name].source is not ConfigSource.DEFAULT_CONFIG

    def items(self) -> Iterable[tuple[str, Any]]:
        return ((name, entry.value) for name, entry in self._entries.items())

    # --- derived values (Kafka's KafkaConfig getters) ---

    @property
    def node_id(self) -> int:
        if not self.is_set("node.id") and self["broker.id"] >= 0:
            return self["broker.id"]
        return self["node.id"]

    @property
    def rack(self) -> str | None:
        return self["broker.rack"] if self["broker.rack"] is not None else self["rack"]

    @property
    def listeners(self) -> list[Listener]:
        return [parse_listener(item) for item in self["listeners"]]

    @property
    def client_listeners(self) -> list[Listener]:
        """The listeners odradek serves: all but those named in ``controller.listener.names``
        (a stock KRaft ``server.properties`` declares a CONTROLLER listener for the quorum;
        odradek's one node is its own controller and needs no quorum port)."""
        controller_names = {name.strip().upper() for name in self["controller.listener.names"]}
        return [listener for listener in self.listeners if listener.name not in controller_names]

    @property
    def advertised_listeners(self) -> list[Listener]:
        """The configured advertised listeners (the server substitutes bound ports for 0)."""
        items = self["advertised.listeners"]
        return [parse_listener(item) for item in items] if items is not None else self.listeners

    @property
    def security_protocol_map(self) -> dict[str, str]:
        result = {}
        for item in self["listener.security.protocol.map"]:
            name, _, protocol = item.partition(":")
            result[name.strip().upper()] = protocol.strip().upper()
        return result

    @property
    def log_dirs(self) -> list[str]:
        """The data directories: ``log.dirs``, else ``log.dir``."""
        return list(self["log.dirs"] or [self["log.dir"]])

    @property
    def log_dir(self) -> str:
        """The first data directory (the metadata log, producer ids)."""
        return self.log_dirs[0]

    @property
    def log_retention_ms(self) -> int:
        if self["log.retention.ms"] is not None:
            return self["log.retention.ms"]
        if self["log.retention.minutes"] is not None:
            return self["log.retention.minutes"] * 60_000
        return self["log.retention.hours"] * 3_600_000

    @property
    def log_roll_ms(self) -> int:
        if self["log.roll.ms"] is not None:
            return self["log.roll.ms"]
        return self["log.roll.hours"] * 3_600_000

    @property
    def log_roll_jitter_ms(self) -> int:
        if self["log.roll.jitter.ms"] is not None:
            return self["log.roll.jitter.ms"]
        return self["log.roll.jitter.hours"] * 3_600_000

    @property
    def log_flush_interval_ms(self) -> int:
        if self["log.flush.interval.ms"] is not None:
            return self["log.flush.interval.ms"]
        return self["log.flush.scheduler.interval.ms"]

    @property
    def queued_max_request_bytes(self) -> int:
        value = self["queued.max.request.bytes"]
        return value if value > 0 else self["socket.request.max.bytes"]

    def broker_value_for_topic_config(self, topic_key: str) -> tuple[Any, str | None]:
        """The broker-level default of topic config ``topic_key`` and the broker key it came
        from (None: Kafka's built-in topic default). The first synonym that is set wins, as in
        Kafka; the derived ones (retention, roll, flush) go through the same getters."""
        definition = TOPIC_CONFIGS[topic_key]
        for synonym in definition.synonyms:
            if synonym in self._entries and self.is_set(synonym):
                return self._topic_value_from_broker(topic_key, synonym), synonym
        if definition.synonyms and definition.synonyms[0] in self._entries:
            first = definition.synonyms[0]
            return self._topic_value_from_broker(topic_key, first), first
        return definition.default, None

    def _topic_value_from_broker(self, topic_key: str, broker_key: str) -> Any:
        derived = {
            "retention.ms": lambda: self.log_retention_ms,
            "segment.ms": lambda: self.log_roll_ms,
            "segment.jitter.ms": lambda: self.log_roll_jitter_ms,
            "flush.ms": lambda: self.log_flush_interval_ms,
        }
        if topic_key in derived:
            return derived[topic_key]()
        return self[broker_key]


def topic_config_defaults(broker: BrokerConfig) -> dict[str, Any]:
    """Every topic config's effective default on this broker."""
    return {name: broker.broker_value_for_topic_config(name)[0] for name in TOPIC_CONFIGS}


def validate_topic_configs(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Parse and validate topic-level overrides (CreateTopics, AlterConfigs). Raises ConfigError
    for an unknown key (Kafka: INVALID_CONFIG "Unknown topic config name") or a bad value."""
    result = {}
    for name, raw in overrides.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise UnknownTopicConfig(name, raw)
        result[name] = definition.parse(raw)
    return result


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``--override key=value`` items, as kafka-server-start accepts them."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(item, item, "an override must be of the form key=value")
        result[key.strip()] = value
    return result


def generate_cluster_id() -> str:
    """A new cluster id as Kafka makes them: a random UUID, base64 URL-safe, unpadded."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
