"""Topics: names, ids, partition counts and config overrides, and their validation.

:class:`TopicTable` is the broker's topic metadata, persisted in the data directory as
``odradek-topics.json`` (written to a temporary file, fsynced, renamed) until odradek has a
metadata log as KRaft does. Each partition's data lives in the storage engine's
``<topic>-<partition>`` directory; the table says which topics exist, so a partition directory
left behind by a crash in the middle of a deletion is not resurrected.

File format (version 1)::

    {"version": 1, "topics": {"<name>": {"topic_id": "<uuid>", "partitions": N,
                                        "configs": {"<topic config>": "<value as given>"}}},
     "group_configs": {"<group id>": {"<group config>": "<value as given>"}}}

``group_configs`` (optional; absent in files written before it) holds the per-group configs
of ``odradek.broker.groups.group_configs``, which Kafka keeps in its metadata log as well.

Owner: the :class:`~odradek.broker.broker.Broker`, on the event loop.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field

from odradek.protocol import error_codes
from odradek.storage.fs import OsFileSystem

from .config import ConfigError, validate_topic_configs

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
TOPICS_FILE = "odradek-topics.json"


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
    """The topic table's file does not parse."""


class TopicTable:
    """Name -> Topic and id -> Topic, persisted on every change."""

    def __init__(self, directory: str, fs: OsFileSystem | None = None):
        self.directory = directory
        # The broker's file system once it is open (its descriptor budget makes room for a
        # save when the process runs out of descriptors).
        self.fs = fs or OsFileSystem()
        self.path = os.path.join(directory, TOPICS_FILE)
        self.by_name: dict[str, Topic] = {}
        self.by_id: dict[uuid.UUID, Topic] = {}
        # collision_key(name) -> name: Kafka refuses a topic whose name equals another's once
        # '.' and '_' are taken for the same; a dict keeps that check O(1) per creation.
        self.by_collision_key: dict[str, str] = {}
        # Per-group config overrides (group id -> name -> value); changed in place, then saved.
        self.group_configs: dict[str, dict[str, str]] = {}

    def load(self) -> bool:
        """Read the file; False if there is none. Raises :class:`DamagedTopicTable` when it does
        not parse (the table is then left empty)."""
        if not self.fs.exists(self.path):
            return False
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
            self._index(topic)
        self.group_configs.update(group_configs)
        return True

    def set_aside(self) -> str:
        """Rename a damaged file to ``<name>.damaged`` (kept for the operator); returns the new path."""
        damaged = self.path + ".damaged"
        self.fs.rename(self.path, damaged)
        return damaged

    def _index(self, topic: Topic) -> None:
        self.by_name[topic.name] = topic
        self.by_id[topic.topic_id] = topic
        self.by_collision_key[collision_key(topic.name)] = topic.name

    def colliding_name(self, name: str) -> str | None:
        """The existing topic ``name`` collides with (the same once '.' and '_' are one), if any."""
        return self.by_collision_key.get(collision_key(name))

    def save(self) -> None:
        document = {
            "version": 1,
            "topics": {
                topic.name: {"topic_id": str(topic.topic_id), "partitions": topic.partition_count,
                             "configs": topic.configs}
                for topic in self.by_name.values()
            },
            "group_configs": self.group_configs,
        }
        self.fs.write_file_atomic(self.path, json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))

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
