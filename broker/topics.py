"""Topics: names, ids, partition counts and config overrides, and their validation.

:class:`TopicTable` is the broker's topic metadata, kept as Kafka keeps it: in the KRaft
metadata log (``__cluster_metadata-0`` in the first data directory, storage/metadata_log.py).
Each save appends what changed, as the records Kafka's controller writes: TopicRecord and a
PartitionRecord per partition (this node the replica, the ISR and the leader) for a new topic,
PartitionRecords for added partitions, RemoveTopicRecord for a deletion, ConfigRecords (resource
type 2, topic; 32, group) for config overrides set or removed (a null value). The producer id
blocks of broker/producer_ids.py are ProducerIdsRecords in the same log. A start replays them. Each partition's data lives in the storage engine's ``<topic>-<partition>`` directory; the
table says which topics exist, so a partition directory left behind by a crash in the middle of
a deletion is not resurrected.

Before the metadata log, odradek kept the table in ``odradek-topics.json`` (version 1:
``{"version": 1, "topics": {"<name>": {"topic_id", "partitions", "configs"}}, "group_configs":
{...}}``). A start that finds one moves it into the metadata log (appending what the log lacks,
so a crash in the middle repeats nothing) and renames it ``odradek-topics.json.migrated``.

Owner: the :class:`~odradek.broker.broker.Broker`, on the event loop.
"""

from __future__ import annotations

import errno
import json
import os
import re
import uuid
from dataclasses import dataclass, field

import structlog

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.messages.records.config_record import ConfigRecord
from odradek.protocol.messages.records.partition_record import PartitionRecord
from odradek.protocol.messages.records.producer_ids_record import ProducerIdsRecord
from odradek.protocol.messages.records.remove_topic_record import RemoveTopicRecord
from odradek.protocol.messages.records.topic_record import TopicRecord
from odradek.protocol.metadata import MetadataRecord
from odradek.storage.errors import StorageError
from odradek.storage.fs import OsFileSystem
from odradek.storage.metadata_log import METADATA_PARTITION_DIR, DamagedMetadataLog, MetadataLog

from .config import ConfigError, validate_topic_configs

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
TOPICS_FILE = "odradek-topics.json"

log = structlog.get_logger("odradek.topics")


class TopicError(Exception):
    """A refused topic operation, with the Kafka error code and message to answer with."""

    def __init__(self, error_code: int, message: str):
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def validate_topic_name(name: str) -> None:
    """Kafka's ``Topic.validate``: 1..249 of [a-zA-Z0-9._-], not "." or ".."."""
    if not name:
        raise TopicError(error_codes.INVALID_TOPIC_EXCEPTION, "Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise TopicError(error_codes.INVALID_TOPIC_EXCEPTION, "Topic name cannot be \".\" or \"..\"")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise TopicError(error_codes.INVALID_TOPIC_EXCEPTION,
                         f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, "
                         f"topic name: {name}")
    if not _LEGAL_TOPIC_NAME.match(name):
        raise TopicError(error_codes.INVALID_TOPIC_EXCEPTION,
                         f"Topic name \"{name}\" is illegal, it contains a character other than ASCII "
                         "alphanumerics, '.', '_' and '-'")


def collision_key(name: str) -> str:
    """Kafka's ``Topic.hasCollisionChars`` rule: '.' and '_' may collide in metric names."""
    return name.replace(".", "_")


def validate_topic_config_overrides(configs: dict[str, str | None]) -> dict[str, str]:
    """Check overrides against the topic config definitions; returns them as strings (the form
    they are stored and reported in). Raises TopicError(INVALID_CONFIG)."""
    given = {name: value for name, value in configs.items() if value is not None}
    try:
        validate_topic_configs(given)
    except ConfigError as error:
        raise TopicError(error_codes.INVALID_CONFIG, str(error)) from None
    return {name: str(value) for name, value in given.items()}


@dataclass
class Topic:
    name: str
    topic_id: uuid.UUID
    partition_count: int
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def is_internal(self) -> bool:
        return self.name in INTERNAL_TOPICS


@dataclass
class NewTopic:
    """A topic a client asks to create (a CreateTopics entry): -1 partitions or replication
    factor take the broker's defaults; ``assignments`` maps partition -> broker ids."""
    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    assignments: dict[int, list[int]] | None = None
    configs: dict[str, str | None] | None = None


class DamagedTopicTable(Exception):
    """The metadata log (or the topic table file it migrates) does not read."""


# Kafka's ConfigResource.Type ids: DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and
# the metadata log's ConfigRecord name the resource by them.
TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4
GROUP_RESOURCE = 32
# Kafka's DirectoryId.UNASSIGNED: a replica whose log directory the metadata does not say.
UNASSIGNED_DIRECTORY = uuid.UUID(int=1)


class TopicTable:
    """Name -> Topic and id -> Topic, and the per-group config overrides, kept in the metadata
    log: every :meth:`save` appends what changed since the last one (fsynced)."""

    def __init__(self, directory: str, fs: OsFileSystem | None = None, node_id: int = 1):
        self.directory = directory
        # The broker's file system once it is open (its descriptor budget makes room for a
        # save when the process runs out of descriptors).
        self.fs = fs or OsFileSystem()
        self.node_id = node_id
        self.path = os.path.join(directory, TOPICS_FILE)  # odradek's table before the metadata log
        self.metadata_log: MetadataLog | None = None
        self._directory_id, self._clock = uuid.UUID(int=0), None  # given to load()
        self._damaged_path: str | None = None  # what load() found damaged: the log's directory or the file
        self.by_name: dict[str, Topic] = {}
        self.by_id: dict[uuid.UUID, Topic] = {}
        # collision_key(name) -> name: Kafka refuses a topic whose name equals another's once
        # '.' and '_' are taken for the same; a dict keeps that check O(1) per creation.
        self.by_collision_key: dict[str, str] = {}
        # Per-group config overrides (group id -> name -> value); changed in place, then saved.
        self.group_configs: dict[str, dict[str, str]] = {}
        # What the metadata log holds: topic id -> (name, partitions, configs), group -> configs.
        self._saved_topics: dict[uuid.UUID, tuple[str, int, dict[str, str]]] = {}
        self._saved_groups: dict[str, dict[str, str]] = {}
        # The metadata log's recovery cut bytes at the last load: changes may be lost.
        self.lost_changes = False
        # The first producer id of the next block (the latest ProducerIdsRecord): every id
        # below it may have been handed out (broker/producer_ids.py).
        self.next_producer_id_block = 0

    def load(self, *, directory_id: uuid.UUID, clock) -> bool:
        """Open the metadata log (in ``directory``, created if needed) and read the topics and
        group configs it holds; a topic table file of an older odradek found there is moved
        into it first (and renamed ``<name>.migrated``). False when neither had anything (a new
        data directory). Raises :class:`DamagedTopicTable` when the log or the file do not read
        (the table is then left empty; :meth:`set_aside` keeps them for the operator)."""
        existed = MetadataLog.exists(self.fs, self.directory)
        self._directory_id, self._clock = directory_id, clock
        try:
            self.metadata_log = MetadataLog.open(self.fs, self.directory, node_id=self.node_id,
                                                 directory_id=directory_id, clock=clock)
        except (OSError, ProtocolError) as error:  # its files cannot be read or written
            self._damaged_path = os.path.join(self.directory, METADATA_PARTITION_DIR)
            raise DamagedTopicTable(f"{self._damaged_path}: {error!r}") from None
        self.lost_changes = self.metadata_log.log.recovered_bytes_truncated > 0
        try:
            self._replay(self.metadata_log.replay())
        except DamagedMetadataLog as error:
            self._forget_all()
            self._damaged_path = self.metadata_log.directory
            raise DamagedTopicTable(f"{self._damaged_path}: {error}") from None
        self._saved_topics = {topic.topic_id: (topic.name, topic.partition_count, dict(topic.configs))
                              for topic in self.by_name.values()}
        self._saved_groups = {group: dict(configs) for group, configs in self.group_configs.items()}
        if not self.fs.exists(self.path):
            return existed and bool(self.by_name or self.group_configs)
        try:
            self._load_file()
        except DamagedTopicTable:
            self._forget_all()
            self._damaged_path = self.path
            raise
        # Whatever of the file the log lacks is appended (all of it the first time; nothing when
        # a crash came between the append and the rename), then the file is kept aside.
        self.save()
        self.fs.rename(self.path, self.path + ".migrated")
        self.fs.fsync_dir(self.directory)
        log.info("topic table moved into the metadata log", file=self.path, topics=len(self.by_name),
                 metadata_log=self.metadata_log.directory)
        return True

    def _load_file(self) -> None:
        try:
            document = json.loads(self.fs.read_file(self.path).decode("utf-8"))
            if document.get("version") != 1:
                raise ValueError(f"unknown version {document.get('version')!r}")
            topics = [Topic(name, uuid.UUID(entry["topic_id"]), int(entry["partitions"]), dict(entry["configs"]))
                      for name, entry in document["topics"].items()]
            group_configs = {group: dict(configs) for group, configs in document.get("group_configs", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:  # JSON and UTF-8 errors are ValueErrors
            raise DamagedTopicTable(f"{self.path}: {error!r}") from None
        for topic in topics:
            existing = self.by_name.get(topic.name)
            if existing is not None and existing.topic_id != topic.topic_id:
                self.remove(existing, save=False)
            self._index(topic)
        self.group_configs.update(group_configs)

    def _replay(self, records) -> None:
        configs: dict[str, dict[str, str]] = {}  # topic name -> overrides, as Kafka keys them
        for message, _ in records:
            if isinstance(message, TopicRecord):
                replaced = self.by_name.get(message.name)
                if replaced is not None:  # a name is one topic: the later record wins
                    self.remove(replaced, save=False)
                self._index(Topic(message.name, message.topic_id, 0))
            elif isinstance(message, PartitionRecord):
                topic = self.by_id.get(message.topic_id)
                if topic is not None:
                    topic.partition_count = max(topic.partition_count, message.partition_id + 1)
            elif isinstance(message, RemoveTopicRecord):
                topic = self.by_id.get(message.topic_id)
                if topic is not None:
                    self.remove(topic, save=False)
                    configs.pop(topic.name, None)
            elif isinstance(message, ProducerIdsRecord):
                self.next_producer_id_block = max(self.next_producer_id_block, message.next_producer_id)
            elif isinstance(message, ConfigRecord) and message.resource_type in (TOPIC_RESOURCE, GROUP_RESOURCE):
                held = configs if message.resource_type == TOPIC_RESOURCE else self.group_configs
                entry = held.setdefault(message.resource_name, {})
                if message.value is None:
                    entry.pop(message.name, None)
                else:
                    entry[message.name] = message.value
                if not entry:
                    del held[message.resource_name]
        for name, overrides in configs.items():
            topic = self.by_name.get(name)
            if topic is not None:
                topic.configs = overrides

    def _forget_all(self) -> None:
        """Empty the table in memory (what the log holds stays known: the next save turns the
        log into whatever the table is then)."""
        self.by_name.clear()
        self.by_id.clear()
        self.by_collision_key.clear()
        self.group_configs.clear()

    def set_aside(self) -> str:
        """Keep a metadata log (or topic table file) that does not read for the operator,
        renamed with a ``.<ms>.damaged`` suffix, and start a new, empty metadata log; returns
        the kept path. The caller rebuilds the table from the partition directories."""
        damaged, self._damaged_path = self._damaged_path, None
        if damaged == self.path:  # the file: the log read, and stays
            kept = self.path + ".damaged"
            self.fs.rename(self.path, kept)
            return kept
        if self.metadata_log is not None:
            self.metadata_log.close()
        kept = f"{damaged}.{self._clock()}.damaged"  # a name no data directory takes for a partition's
        self.fs.rename(damaged, kept)
        self.fs.fsync_dir(self.directory)
        self.metadata_log = MetadataLog.open(self.fs, self.directory, node_id=self.node_id,
                                             directory_id=self._directory_id, clock=self._clock)
        self._forget_all()
        self._saved_topics.clear()  # the new log holds nothing
        self._saved_groups.clear()
        return kept

    def _index(self, topic: Topic) -> None:
        self.by_name[topic.name] = topic
        self.by_id[topic.topic_id] = topic
        self.by_collision_key[collision_key(topic.name)] = topic.name

    def colliding_name(self, name: str) -> str | None:
        """The existing topic ``name`` collides with (the same once '.' and '_' are one), if any."""
        return self.by_collision_key.get(collision_key(name))

    def save(self) -> None:
        """Append to the metadata log what changed since the last save, as the records Kafka's
        controller writes for it, in one change; raises OSError when it is not written (the
        caller undoes its change in memory)."""
        records, saved_topics, saved_groups = self._changes(self._saved_topics, self._saved_groups)
        if not records:
            return
        try:
            self.metadata_log.append(records)
        except StorageError as error:
            raise OSError(errno.EIO, str(error)) from error
        self._saved_topics, self._saved_groups = saved_topics, saved_groups
        if self.metadata_log.snapshot_due:
            try:
                self.metadata_log.write_snapshot(self.records())
            except (OSError, StorageError) as error:  # the log has it all: a later save tries again
                log.warning("could not write a metadata snapshot", error=str(error))

    def _changes(self, saved_topics: dict, saved_groups: dict) -> tuple[list[MetadataRecord], dict, dict]:
        """The records that turn the state ``saved_topics`` / ``saved_groups`` into the table,
        and that state once they are written (only what changed is copied: a save costs one
        comparison per topic)."""
        records: list[MetadataRecord] = []
        topics_after, groups_after = dict(saved_topics), dict(saved_groups)
        for topic_id, (name, _, _) in saved_topics.items():
            current = self.by_id.get(topic_id)
            if current is None or current.name != name:
                records.append(MetadataRecord(RemoveTopicRecord(topic_id=topic_id), 0))
                del topics_after[topic_id]
        for topic in self.by_name.values():
            saved = saved_topics.get(topic.topic_id)
            if saved is not None and saved[0] == topic.name and saved[1] == topic.partition_count \
                    and saved[2] == topic.configs:
                continue
            if saved is None or saved[0] != topic.name:
                records.append(MetadataRecord(TopicRecord(name=topic.name, topic_id=topic.topic_id), 0))
                saved = (topic.name, 0, {})
            records.extend(self._partition_record(topic.topic_id, index)
                           for index in range(saved[1], topic.partition_count))
            records.extend(_config_changes(TOPIC_RESOURCE, topic.name, saved[2], topic.configs))
            topics_after[topic.topic_id] = (topic.name, topic.partition_count, dict(topic.configs))
        for group in saved_groups.keys() | self.group_configs.keys():
            before, after = saved_groups.get(group, {}), self.group_configs.get(group, {})
            if before != after:
                records.extend(_config_changes(GROUP_RESOURCE, group, before, after))
                if after:
                    groups_after[group] = dict(after)
                else:
                    del groups_after[group]
        return records, topics_after, groups_after

    def _partition_record(self, topic_id: uuid.UUID, index: int) -> MetadataRecord:
        return MetadataRecord(PartitionRecord(
            partition_id=index, topic_id=topic_id, replicas=[self.node_id], isr=[self.node_id], leader=self.node_id,
            leader_epoch=0, partition_epoch=0, directories=[UNASSIGNED_DIRECTORY]), PartitionRecord.MAX_VERSION)

    def records(self) -> list[MetadataRecord]:
        """The whole table as the records that make it (a snapshot's content)."""
        records = self._changes({}, {})[0]
        if self.next_producer_id_block:
            records.append(self._producer_ids_record(self.next_producer_id_block))
        return records

    def reserve_producer_ids(self, next_block: int) -> None:
        """Record that every producer id below ``next_block`` may be handed out (Kafka's
        ProducerIdsRecord; the broker epoch is -1: odradek's node does not register yet).
        Raises OSError when it is not written."""
        try:
            self.metadata_log.append([self._producer_ids_record(next_block)])
        except StorageError as error:
            raise OSError(errno.EIO, str(error)) from error
        self.next_producer_id_block = next_block

    def _producer_ids_record(self, next_block: int) -> MetadataRecord:
        return MetadataRecord(ProducerIdsRecord(broker_id=self.node_id, broker_epoch=-1, next_producer_id=next_block), 0)

    def close(self, durable: bool = True) -> None:
        """Close the metadata log (every save is already durable; ``durable`` False skips the
        final flush of a log about to be removed)."""
        if self.metadata_log is not None:
            if durable:
                self.metadata_log.close()
            else:
                self.metadata_log.abandon()
            self.metadata_log = None

    def add(self, topic: Topic, *, save: bool = True) -> None:
        """Add ``topic``; with ``save`` False the caller saves once after adding several (the
        whole table is one file: a save per topic would make creating N topics cost O(N^2))."""
        self._index(topic)
        if save:
            self.save()

    def remove(self, topic: Topic, *, save: bool = True, keep_if_unsaved: bool = False) -> None:
        """Forget ``topic`` and (with ``save``) save. When the save fails (OSError) the topic
        stays forgotten (undoing a creation), or, with ``keep_if_unsaved`` (a deletion), stays
        in the table."""
        self.by_name.pop(topic.name, None)
        self.by_id.pop(topic.topic_id, None)
        if self.by_collision_key.get(collision_key(topic.name)) == topic.name:
            del self.by_collision_key[collision_key(topic.name)]
        if not save:
            return
        try:
            self.save()
        except OSError:
            if keep_if_unsaved:
                self._index(topic)
            raise

    def get(self, name: str) -> Topic | None:
        return self.by_name.get(name)

    def __iter__(self):
        return iter(list(self.by_name.values()))

    def __len__(self) -> int:
        return len(self.by_name)


def _config_changes(resource_type: int, resource: str, before: dict[str, str], after: dict[str, str]) -> list:
    """ConfigRecords turning ``before`` into ``after`` (a null value deletes an override)."""
    records = [MetadataRecord(ConfigRecord(resource_type=resource_type, resource_name=resource, name=name,
                                           value=value), 0)
               for name, value in sorted(after.items()) if before.get(name) != value]
    records.extend(MetadataRecord(ConfigRecord(resource_type=resource_type, resource_name=resource, name=name,
                                               value=None), 0)
                   for name in sorted(before.keys() - after.keys()))
    return records
