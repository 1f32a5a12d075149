"""The ``odradek`` commands for a developer: a background broker per project folder and the
everyday topic, record and group commands, so that kcat or Kafka's shell scripts are not needed
for them. docs/cli.md is the user's reference; this module's parts:

``up`` / ``status`` / ``down``
    broker/dev_broker.py runs the broker. ``status`` exits 0 when it runs, 3 when it does not
    (systemctl's and LSB's "program is not running"), as ``systemctl status`` does.
``topic create|list|describe|delete``
    output and messages as Kafka's ``kafka-topics.sh`` (TopicCommand): ``Created topic T.``,
    ``Error while executing topic command : Topic 'T' already exists.``, the describe lines.
``produce TOPIC``
    stdin's lines (or ``--value``) as records, acks=all; keys hashed to partitions as Kafka's
    default partitioner does (murmur2), records without key to one partition per batch (its
    sticky partitioner's effect).
``consume TOPIC``
    values, one a line, or ``--format`` with {topic} {partition} {offset} {timestamp} {key}
    {value}; ends after ``--count`` records or ``--timeout-ms`` without one, and prints
    ``Processed a total of N messages`` on stderr as Kafka's console consumer does. With
    ``--group`` it is a member of the group (broker/group_membership.py).
``group list|describe``
    as ``kafka-consumer-groups.sh --list`` / ``--describe`` (the offsets view, its columns, or
    ``--members``).

Every command but ``up/status/down`` takes ``--bootstrap-server`` (Kafka's tools' flag),
defaulting to the running project broker's, else localhost:9092. Exit status: 0 done, 1 a Kafka
error or an unreachable broker (the message names it), 2 a usage error (argparse's, or a
configuration ``up`` passes to serve that serve refuses), 3
``status`` of a broker that is not running, 130 ``consume`` stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import string
import sys
import time

from odradek.protocol import error_codes

from .admin_client import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    ConsumedRecord,
    KafkaClient,
    KafkaError,
    partition_for_key,
    topic_id_text,
)
from .dev_broker import (
    DEFAULT_PORT,
    DevBroker,
    DevBrokerError,
    DevBrokerState,
    StateFileError,
)
from .group_membership import GroupMembership, RebalanceNeeded

DEFAULT_BOOTSTRAP = "localhost:9092"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_RUNNING = 3  # LSB's "program is not running", what `systemctl status` exits with
EXIT_INTERRUPTED = 130
MISSING = "-"  # kafka-consumer-groups.sh's MISSING_COLUMN_VALUE
_STDIN_CHUNK = 1 << 16
_CONSUME_POLL_MS = 500

COMMANDS = ("up", "status", "down", "topic", "produce", "consume", "group")


# --- parsing user input ---------------------------------------------------------------------------

_CONFIG_SPLIT = re.compile(r"\s*=\s*")


def parse_topic_configs(items: list[str]) -> dict[str, str]:
    """``--config key=value`` items as kafka-topics.sh reads them (TopicCommand
    ``parseTopicConfigsToBeAdded``): split on ``=`` with the blanks around it, trailing empty
    parts dropped (Java's ``String.split``); each must give exactly a key and a value, trimmed.
    ValueError with Kafka's message otherwise."""
    configs = {}
    for item in items:
        parts = _CONFIG_SPLIT.split(item)
        while parts and parts[-1] == "":
            parts.pop()
        if len(parts) != 2:
            raise ValueError('requirement failed: Invalid topic config: all configs to be added must be in the '
                             'format "key=val".')
        configs[parts[0].strip()] = parts[1].strip()
    return configs


FORMAT_FIELDS = ("topic", "partition", "offset", "timestamp", "key", "value")


class RecordFormat:
    """A ``--format`` template: ``str.format`` fields among FORMAT_FIELDS, with format specs
    (``{partition:>3}``); nothing else (no attribute or index access, no positional field)."""

    def __init__(self, template: str):
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as error:
            raise ValueError(f"invalid --format {template!r}: {error}") from None
        for _, field_name, format_spec, _ in parsed:
            if field_name is None:
                continue
            if field_name not in FORMAT_FIELDS:
                raise ValueError(f"invalid --format {template!r}: unknown field {{{field_name}}} "
                                 f"(fields: {', '.join('{' + f + '}' for f in FORMAT_FIELDS)})")
            if format_spec and ("{" in format_spec or "}" in format_spec):
                raise ValueError(f"invalid --format {template!r}: nested fields are not supported")
        self.template = template
        try:
            self.render(ConsumedRecord("t", 0, 0, 0, b"", b"", []))
        except (ValueError, TypeError) as error:  # a format spec that does not apply to the field
            raise ValueError(f"invalid --format {template!r}: {error}") from None

    def render(self, record: ConsumedRecord) -> str:
        return self.template.format(topic=record.topic, partition=record.partition, offset=record.offset,
                                    timestamp=record.timestamp, key=_text(record.key), value=_text(record.value))


def _text(data: bytes | None) -> str:
    """Bytes as text for a terminal: UTF-8, other bytes escaped; a null key or value as
    ``null`` (Kafka's console consumer's DefaultMessageFormatter)."""
    return "null" if data is None else bytes(data).decode("utf-8", "backslashreplace")


def _format_arg(text: str) -> RecordFormat:
    try:
        return RecordFormat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _whole_number(minimum: int, refusal: str):
    """An argparse type: a whole number of at least ``minimum`` (``refusal`` says why not)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} {refusal}")
        return value
    return parse


_positive = _whole_number(1, "is not positive")
_non_negative = _whole_number(0, "is negative")


# --- the parser ----------------------------------------------------------------------------------

def add_commands(commands, port_type) -> None:
    """Add the developer commands to ``odradek``'s subparsers (broker/cli.py)."""
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--bootstrap-server", metavar="HOST:PORT",
                        help="the broker(s) to talk to (default: this project's `odradek up` broker, "
                             f"else {DEFAULT_BOOTSTRAP})")

    up = commands.add_parser("up", help="start a broker in the background for this project folder (.odradek/)")
    up.add_argument("--port", type=port_type, metavar="N",
                    help=f"listen on localhost:N (default {DEFAULT_PORT}; 0 picks a free port)")
    up.add_argument("--memory", action="store_true", help="keep the data in memory (gone at `down`)")
    up.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="a broker config for `odradek serve` (repeatable)")
    commands.add_parser("status", help="is this project's broker running? (exit 0 yes, 3 no)")
    commands.add_parser("down", help="stop this project's broker cleanly")

    topic = commands.add_parser("topic", help="create, list, describe, delete topics")
    actions = topic.add_subparsers(dest="topic_command", required=True)
    create = actions.add_parser("create", parents=[client], help="create a topic")
    create.add_argument("name")
    create.add_argument("--partitions", type=_positive, help="default: the broker's num.partitions")
    create.add_argument("--replication-factor", type=_positive, help="default: the broker's default.replication.factor")
    create.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="a topic config (repeatable)")
    create.add_argument("--if-not-exists", action="store_true", help="no error when the topic exists")
    listing = actions.add_parser("list", parents=[client], help="list topic names")
    listing.add_argument("--exclude-internal", action="store_true", help="leave out __consumer_offsets and the like")
    describe = actions.add_parser("describe", parents=[client], help="partitions and configs of a topic")
    describe.add_argument("name", nargs="?", help="default: every topic")
    describe.add_argument("--exclude-internal", action="store_true", help="without NAME: leave out internal topics")
    delete = actions.add_parser("delete", parents=[client], help="delete a topic")
    delete.add_argument("name")
    delete.add_argument("--if-exists", action="store_true", help="no error when the topic does not exist")

    produce = commands.add_parser("produce", parents=[client], help="write stdin's lines (or --value) to a topic")
    produce.add_argument("topic")
    produce.add_argument("--value", help="write this one record instead of reading stdin")
    produce.add_argument("--key", help="the key of every record")
    produce.add_argument("--key-separator", metavar="SEP",
                         help="each line is KEY SEP VALUE (Kafka's parse.key=true key.separator=SEP)")
    produce.add_argument("--partition", type=_non_negative, help="default: by key, else any")

    consume = commands.add_parser("consume", parents=[client], help="print a topic's records")
    consume.add_argument("topic")
    consume.add_argument("--from-beginning", action="store_true",
                         help="start at the earliest offset (default: only new records)")
    consume.add_argument("--partition", type=_non_negative, help="only this partition")
    consume.add_argument("--offset", help="with --partition: earliest, latest or an offset to start at")
    consume.add_argument("--count", "--max-messages", dest="count", type=_positive,
                         help="stop after N records")
    consume.add_argument("--timeout-ms", type=_positive, help="stop after this long without a record")
    consume.add_argument("--group", help="read as a member of this consumer group: the partitions it assigns, "
                                         "from its committed offsets, committing what was read")
    consume.add_argument("--format", type=_format_arg,
                         help="e.g. '{partition}:{offset} {key}={value}'; fields: "
                              + ", ".join("{" + f + "}" for f in FORMAT_FIELDS) + " (default: the value)")

    group = commands.add_parser("group", help="list and describe consumer groups")
    group_actions = group.add_subparsers(dest="group_command", required=True)
    group_actions.add_parser("list", parents=[client], help="list consumer group ids")
    group_describe = group_actions.add_parser("describe", parents=[client],
                                              help="members, committed offsets and lag of a group")
    group_describe.add_argument("group")
    group_describe.add_argument("--members", action="store_true",
                                help="one line per member with its partition count (kafka-consumer-groups.sh --members)")


def run(args) -> int:
    """Run one of COMMANDS; the exit status."""
    try:
        if args.command in ("up", "status", "down"):
            return {"up": _up, "status": _status, "down": _down}[args.command](args)
        bootstrap = args.bootstrap_server or _project_bootstrap() or DEFAULT_BOOTSTRAP
        with KafkaClient(bootstrap) as client:
            if args.command == "topic":
                return _topic(client, args)
            if args.command == "produce":
                return _produce(client, args)
            if args.command == "consume":
                return _consume(client, args)
            return _group(client, args)
    except DevBrokerError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    except (KafkaError, OSError, StateFileError, ValueError) as error:  # OSError: ConnectionError too
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # before consume's loop, or any other command
        return EXIT_INTERRUPTED


def project_broker() -> DevBrokerState | None:
    """The state of the project's running ``odradek up`` broker (bootstrap servers, control
    URL), or None: what commands use when not told where the broker is."""
    try:
        state, _ = DevBroker.nearest().running()
    except StateFileError:
        return None
    return state


def _project_bootstrap() -> str | None:
    state = project_broker()
    return state.bootstrap_servers if state else None


# --- up / status / down --------------------------------------------------------------------------

def _describe_state(state, *, topics: str | None = None) -> None:
    print(f"bootstrap.servers={state.bootstrap_servers}")
    if state.control_url:
        print(f"control={state.control_url}")
    print(f"data.dir={state.data_dir if state.data_dir else '(in memory)'}")
    print(f"log={state.log}")
    if topics is not None:
        print(f"topics={topics}")


def _read_state(dev: DevBroker):
    """``(running, stale)`` states (DevBroker.running); an unreadable state file is reported and
    reads as neither: no broker can be found from it, and ``up`` or ``down`` replace it."""
    try:
        return dev.running()
    except StateFileError as error:
        print(f"odradek: {dev.state_file} is unreadable ({error}); treating it as stale", file=sys.stderr)
        return None, None


def _up(args) -> int:
    dev = DevBroker.nearest()
    with dev.lock():
        running, stale = _read_state(dev)
        if running:
            print(f"odradek is already running (pid {running.pid})")
            _describe_state(running)
            return EXIT_OK
        if stale:
            print(f"odradek: removed the state of a broker that is gone (pid {stale.pid})", file=sys.stderr)
        dev.remove_state()
        state = dev.start(port=args.port, memory=args.memory, overrides=args.override)
    print(f"odradek is up (pid {state.pid})")
    _describe_state(state)
    return EXIT_OK


def _status(args) -> int:
    dev = DevBroker.nearest()
    running, stale = _read_state(dev)
    if not running:
        if stale:
            print(f"odradek is not running (pid {stale.pid} of {dev.state_file} has exited without `odradek down`)")
        else:
            print(f"odradek is not running (no broker started from {dev.project})")
        return EXIT_NOT_RUNNING
    try:
        with KafkaClient(running.bootstrap_servers, timeout=5.0) as client:
            topics = str(sum(not topic.is_internal for topic in client.list_topics()))
    except (OSError, ConnectionError, KafkaError) as error:
        topics = f"unknown ({error})"
    print(f"odradek is running (pid {running.pid})")
    _describe_state(running, topics=topics)
    return EXIT_OK


def _down(args) -> int:
    dev = DevBroker.nearest()
    if not dev.state_dir.is_dir():
        print("odradek is not running")
        return EXIT_OK
    with dev.lock():
        running, _ = _read_state(dev)
        if not running:
            dev.remove_state()
            print("odradek is not running")
            return EXIT_OK
        dev.stop(running)
    print(f"odradek stopped (pid {running.pid})")
    return EXIT_OK


# --- topics --------------------------------------------------------------------------------------

def _topic_error(message: str) -> int:
    # kafka-topics.sh prints its errors on stdout, and exits 1.
    print(f"Error while executing topic command : {message}")
    return EXIT_FAILED


def _topic(client: KafkaClient, args) -> int:
    command = args.topic_command
    try:
        if command == "create":
            try:
                configs = parse_topic_configs(args.config)
            except ValueError as error:
                return _topic_error(str(error))
            if "." in args.name or "_" in args.name:
                print("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') "
                      "could collide. To avoid issues it is best to use either, but not both.")
            try:
                client.create_topic(args.name, partitions=args.partitions or -1,
                                    replication_factor=args.replication_factor or -1, configs=configs)
            except KafkaError as error:
                if error.name == "TOPIC_ALREADY_EXISTS" and args.if_not_exists:
                    return EXIT_OK
                raise
            print(f"Created topic {args.name}.")
            return EXIT_OK
        names = sorted(topic.name for topic in client.list_topics()
                       if not (getattr(args, "exclude_internal", False) and topic.is_internal))
        if command == "list":
            print("\n".join(names))  # an empty line for no topic, as kafka-topics.sh
            return EXIT_OK
        if args.name is not None and args.name not in names:
            if command == "delete" and args.if_exists:
                return EXIT_OK
            return _topic_error(f"Topic '{args.name}' does not exist as expected")
        if command == "delete":
            client.delete_topic(args.name)
            return EXIT_OK
        # Every topic in kafka-topics.sh's order: it asks for the sorted names and prints what
        # its admin client returns in a HashMap by name.
        order = java_hash_map_order(names)
        for name in [args.name] if args.name is not None else sorted(names, key=order.get):
            _describe_topic(client, name)
        return EXIT_OK
    except KafkaError as error:
        return _topic_error(error.message)


def java_hash_map_order(keys: list[str]) -> dict[str, int]:
    """key -> its place when Java's ``HashMap`` iterates the distinct ``keys`` put in this order:
    the order Kafka's tools print what its admin client keeps in a HashMap (a topic's configs,
    the topics described, the consumer groups). Buckets in index order (``(h ^ h >>> 16) & (capacity - 1)`` of ``String.hashCode``,
    the capacity doubled from 16 while above 0.75 full), each bucket in insertion order (a resize
    keeps it)."""
    capacity = 16
    while len(keys) > capacity * 3 // 4:
        capacity *= 2

    def bucket(key: str) -> int:
        h = 0
        units = key.encode("utf-16-be")
        for i in range(0, len(units), 2):
            h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (capacity - 1)
    ordered = sorted(range(len(keys)), key=lambda i: (bucket(keys[i]), i))
    return {keys[i]: place for place, i in enumerate(ordered)}


def _describe_topic(client: KafkaClient, name: str) -> None:
    """kafka-topics.sh --describe's lines for one topic (TopicCommand's TopicDescription and
    PartitionDescription)."""
    topic = client.topic(name)
    entries = client.topic_configs(name)
    order = java_hash_map_order([key for key, _, _ in entries])
    configs = ",".join(f"{key}={value}" for key, value, is_default in sorted(entries, key=lambda e: order[e[0]])
                       if not is_default)
    head = f"Topic: {topic.name}"
    if topic.topic_id.int:
        head += f"\tTopicId: {topic_id_text(topic.topic_id)}"
    first = topic.partitions[0] if topic.partitions else None
    head += f"\tPartitionCount: {len(topic.partitions)}\tReplicationFactor: {len(first.replicas) if first else 0}"
    print(f"{head}\tConfigs: {configs}")

    def nodes(ids):
        return "N/A" if ids is None else ",".join(str(node) for node in ids)
    for partition in topic.partitions:
        leader = partition.leader if partition.leader >= 0 else "none"
        print(f"\tTopic: {topic.name}\tPartition: {partition.partition}\tLeader: {leader}"
              f"\tReplicas: {nodes(partition.replicas)}\tIsr: {nodes(partition.isr)}"
              f"\tElr: {nodes(partition.elr)}\tLastKnownElr: {nodes(partition.last_known_elr)}")


# --- produce -------------------------------------------------------------------------------------

def _produce(client: KafkaClient, args) -> int:
    # A missing topic is created where the broker auto-creates topics, as for Kafka's producers.
    partitions = sorted(client.partition_leaders(args.topic, auto_create=True))
    if args.partition is not None and args.partition not in partitions:
        raise KafkaError(error_codes.UNKNOWN_TOPIC_OR_PARTITION, f"topic {args.topic!r} has no partition {args.partition}")
    key = args.key.encode() if args.key is not None else None
    separator = args.key_separator.encode() if args.key_separator else None

    def send(lines: list[bytes]) -> None:
        by_partition: dict[int, list] = {}
        keyless_partition = random.choice(partitions)  # one partition per batch, as a sticky partitioner
        for line in lines:
            record_key, value = key, line
            if separator is not None:
                found, sep, rest = line.partition(separator)
                if sep:
                    record_key, value = found, rest
                else:  # Kafka's LineMessageReader refuses a line without the separator
                    raise ValueError(f"No key separator found on line: {line.decode(errors='replace')!r}")
            if args.partition is not None:
                partition = args.partition
            elif record_key is not None:
                partition = partition_for_key(record_key, len(partitions))
            else:
                partition = keyless_partition
            by_partition.setdefault(partition, []).append((record_key, value))
        for partition, records in by_partition.items():
            client.produce(args.topic, partition, records)

    if args.value is not None:
        send([args.value.encode()])
        return EXIT_OK
    # Read what stdin has, send its whole lines at once: a pipe is sent in big batches, a line
    # typed at a terminal at once.
    pending = b""
    fd = sys.stdin.fileno()
    while True:
        chunk = os.read(fd, _STDIN_CHUNK)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if lines:
            send([line.removesuffix(b"\r") for line in lines])
    if pending:
        send([pending.removesuffix(b"\r")])
    return EXIT_OK


# --- consume -------------------------------------------------------------------------------------

def _consume(client: KafkaClient, args) -> int:
    available = sorted(client.partition_leaders(args.topic, auto_create=True))  # as Kafka's consumers
    if args.partition is not None:
        if args.partition not in available:
            raise KafkaError(error_codes.UNKNOWN_TOPIC_OR_PARTITION, f"topic {args.topic!r} has no partition {args.partition}")
    elif args.offset is not None:
        raise ValueError("--offset needs --partition")
    reader = _TopicReader(client, args, available)
    out = sys.stdout.buffer
    consumed = 0
    try:
        reader.start()  # joining a group can take the broker's group.initial.rebalance.delay.ms
        last_record = time.monotonic()
        while args.count is None or consumed < args.count:
            wait_ms = _CONSUME_POLL_MS
            if args.timeout_ms is not None:
                remaining_ms = args.timeout_ms - (time.monotonic() - last_record) * 1000
                if remaining_ms <= 0:
                    break
                wait_ms = max(1, min(wait_ms, int(remaining_ms)))
            for record in reader.fetch(wait_ms):
                if args.count is not None and consumed >= args.count:
                    break
                if args.format is None:
                    out.write(b"null" if record.value is None else bytes(record.value))
                    out.write(b"\n")
                else:
                    out.write(args.format.render(record).encode("utf-8", "surrogateescape") + b"\n")
                reader.positions[record.partition] = record.offset + 1
                consumed += 1
                last_record = time.monotonic()
            out.flush()
            reader.commit()
    except KeyboardInterrupt:
        # The interrupt may have cut a request or its response short: commit on new connections.
        client.close()
        reader.stop()
        print(f"Processed a total of {consumed} messages", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException:
        reader.leave()
        raise
    reader.stop()
    print(f"Processed a total of {consumed} messages", file=sys.stderr)
    return EXIT_OK


class _TopicReader:
    """The partitions ``consume`` reads and its position in each. With ``--group`` and no
    ``--partition`` it is a member of the group (broker/group_membership.py): it reads the
    partitions the group assigns it, from the group's committed offsets, and commits as the
    member; with ``--partition`` it commits as a consumer outside the group (Kafka's assign())."""

    def __init__(self, client: KafkaClient, args, available: list[int]):
        self.client = client
        self.args = args
        self.topic = args.topic
        self.partitions = [args.partition] if args.partition is not None else available
        self.membership = (GroupMembership(client, args.group, [args.topic])
                           if args.group and args.partition is None else None)
        self.positions: dict[int, int] = {}
        self.committed: dict[int, int] = {}

    def start(self) -> None:
        if self.membership is not None:
            self.partitions = sorted(p for topic, p in self.membership.join() if topic == self.topic)
        self.positions = _start_positions(self.client, self.args, self.partitions)
        self.committed = dict(self.positions)

    def fetch(self, wait_ms: int) -> list:
        """The records fetched at the positions, partition by partition (waits up to wait_ms)."""
        if self.membership is not None:
            try:
                self.membership.poll()
            except RebalanceNeeded:
                self._rejoin()
        if not self.positions:  # the group gave this member no partition (yet)
            time.sleep(wait_ms / 1000)
            return []
        out_of_range: set[int] = set()
        fetched = self.client.fetch(self.topic, self.positions, max_wait_ms=wait_ms, out_of_range=out_of_range)
        if out_of_range:  # deleted by retention, or past the end: start over where a consumer would
            self.positions.update(self.client.list_offsets(self.topic, sorted(out_of_range),
                                                           _reset_timestamp(self.args)))
        return [record for partition in self.partitions for record in fetched.get(partition, ())]

    def commit(self) -> None:
        """Commit the positions that moved (with --group)."""
        if not self.args.group or self.positions == self.committed:
            return
        offsets = {(self.topic, partition): offset for partition, offset in self.positions.items()}
        if self.membership is None:
            self.client.commit_offsets(self.args.group, offsets)
        else:
            try:
                self.membership.commit(offsets)
            except RebalanceNeeded:
                self._rejoin()
                return
        self.committed = dict(self.positions)

    def _rejoin(self) -> None:
        """Commit what was read (if the group still takes it), join again, start the new
        assignment at its committed offsets, as a consumer does after a rebalance."""
        offsets = {(self.topic, partition): offset for partition, offset in self.positions.items()
                   if offset != self.committed.get(partition)}
        if offsets:
            try:
                self.membership.commit(offsets)
            except RebalanceNeeded:
                pass  # dropped from the group: those records will be read again
        self.start()

    def stop(self) -> None:
        """Commit and leave the group."""
        try:
            self.commit()
        finally:
            self.leave()

    def leave(self) -> None:
        if self.membership is not None:
            self.membership.leave()


def _reset_timestamp(args) -> int:
    """Where a partition without a position starts: auto.offset.reset earliest with
    --from-beginning, latest otherwise (Kafka's console consumer)."""
    return EARLIEST_TIMESTAMP if args.from_beginning else LATEST_TIMESTAMP


def _start_positions(client: KafkaClient, args, partitions: list[int]) -> dict[int, int]:
    if args.offset is not None:
        if args.offset in ("earliest", "latest"):
            timestamp = EARLIEST_TIMESTAMP if args.offset == "earliest" else LATEST_TIMESTAMP
            return client.list_offsets(args.topic, partitions, timestamp)
        if not args.offset.isdigit():
            raise ValueError(f"--offset {args.offset!r}: expected earliest, latest or a non-negative offset")
        return {partitions[0]: int(args.offset)}
    positions = client.list_offsets(args.topic, partitions, _reset_timestamp(args))
    if args.group:
        for (topic, partition), offset in client.committed_offsets(args.group).items():
            if topic == args.topic and partition in positions:
                positions[partition] = offset
    return positions


# --- groups --------------------------------------------------------------------------------------

_REBALANCING = {"PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"}


def _group(client: KafkaClient, args) -> int:
    if args.group_command == "list":
        # kafka-consumer-groups.sh --list: consumer groups (protocol type "consumer", or none
        # for a group that only committed offsets), each once, in its order: Kafka's admin
        # client collects the brokers' listings in a HashMap by group id.
        names = list(dict.fromkeys(group.group_id for group in client.list_groups()
                                   if group.protocol_type in ("consumer", "")))
        order = java_hash_map_order(names)
        for name in sorted(names, key=order.get):
            print(name)
        return EXIT_OK
    group = client.describe_group(args.group)
    if group.state == "Dead":
        print(f"\nError: Consumer group '{args.group}' does not exist.")
        return EXIT_FAILED
    if args.members:
        return _describe_members(group)
    return _describe_offsets(client, group)


def _member_state_notice(group) -> None:
    """What kafka-consumer-groups.sh says on stderr about a group not Stable."""
    if group.state == "Empty":
        print(f"\nConsumer group '{group.group_id}' has no active members.", file=sys.stderr)
    elif group.state in _REBALANCING:
        print(f"\nWarning: Consumer group '{group.group_id}' is rebalancing.", file=sys.stderr)


def _describe_members(group) -> int:
    """kafka-consumer-groups.sh --describe --members --group G: a header (also for a group with
    no members, as the tool prints it), then one line per member; GROUP-INSTANCE-ID only when a
    member has one. Columns padded as the tool pads them, the last one too."""
    _member_state_notice(group)
    rows = [(group.group_id, m.member_id, m.instance_id or "", m.host, m.client_id, str(len(m.assignment)))
            for m in group.members]
    with_instance = any(row[2] for row in rows)
    minimums = (15, 15, 17, 15, 15, 15)
    columns = [i for i in range(6) if with_instance or i != 2]
    widths = {i: max([minimums[i], *(len(row[i]) for row in rows)]) if i != 5 else 15 for i in columns}

    def line(cells) -> str:
        return "".join(f"{cells[i]:<{widths[i]}} " for i in columns)
    print("\n" + line(("GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS")))
    for row in rows:
        print(line(row))
    return EXIT_OK


def _describe_offsets(client: KafkaClient, group) -> int:
    """kafka-consumer-groups.sh --describe --group G (ConsumerGroupCommand's offsets view)."""
    group_id = group.group_id
    committed = client.committed_offsets(group_id)
    rows = []  # (topic, partition, consumer id, host, client id); topic/partition None: a member with none
    assigned = set()
    for member in sorted((m for m in group.members if m.assignment), key=lambda m: -len(m.assignment)):
        for topic, partition in sorted(member.assignment, key=lambda tp: (tp[1], tp[0])):
            rows.append((topic, partition, member.member_id, member.host, member.client_id))
            assigned.add((topic, partition))
    for topic, partition in sorted(set(committed) - assigned, key=lambda tp: (tp[1], tp[0])):
        rows.append((topic, partition, MISSING, MISSING, MISSING))
    _member_state_notice(group)
    if not rows:
        return EXIT_OK
    log_end: dict[tuple[str, int], int] = {}
    for topic in sorted({topic for topic, *_ in rows}):
        try:
            offsets = client.list_offsets(topic, sorted(p for t, p, *_ in rows if t == topic), LATEST_TIMESTAMP)
        except KafkaError:  # a topic deleted since the commit: its end is unknown ("-")
            continue
        log_end.update({(topic, partition): offset for partition, offset in offsets.items()})
    table = []
    for topic, partition, member_id, host, client_id in rows:
        current = committed.get((topic, partition))
        end = log_end.get((topic, partition))
        lag = end - current if current is not None and end is not None else None
        table.append((group_id, topic, str(partition), _cell(current), _cell(end), _cell(lag), member_id, host,
                      client_id))
    widths = [max([15, *(len(row[i]) for row in table)]) for i in (0, 1, 6, 7)]
    row_format = (f"\n{{:<{widths[0]}}} {{:<{widths[1]}}} {{:<10}} {{:<15}} {{:<15}} {{:<15}} "
                  f"{{:<{widths[2]}}} {{:<{widths[3]}}} {{}}")
    out = row_format.format("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                            "CONSUMER-ID", "HOST", "CLIENT-ID")
    for row in table:
        out += row_format.format(*row)
    print(out)
    return EXIT_OK


def _cell(value: int | None) -> str:
    return MISSING if value is None else str(value)
