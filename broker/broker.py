"""The broker's state and its one owner.

:class:`Broker` owns every piece of mutable broker state: the configuration, the cluster
identity, the topic table, the partitions and their logs. Handlers receive it in their
context and change state only through its methods; everything runs on the event loop, so no
locks exist and none are needed. Tests and admin hooks mutate through the same methods.

Lifecycle: ``open()`` (lock and recover the data directories, load topics, open partition logs),
then serving, then ``begin_shutdown()`` (long polls answer at once) and ``close()`` (flush and
close every log; the storage engine writes its checkpoints and clean-shutdown marker).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import structlog

from odradek.protocol import error_codes
from odradek.storage.cleaner_manager import LogCleanerManager
from odradek.storage.config import LogConfig
from odradek.storage.errors import StorageError
from odradek.storage.fs import MemoryFileSystem, OsFileSystem, is_out_of_descriptors
from odradek.storage.log_directories import LogDirectories, stored_cluster_id
from odradek.storage.metadata_log import METADATA_TOPIC

from .client_metrics import ClientMetrics
from .config import BrokerConfig, TOPIC_CONFIGS, generate_cluster_id
from .group_commit import GroupCommit
from .groups import GroupConfig, GroupCoordinator
from .coordinators.runtime import CoordinatorLog
from .groups.persistence import CONSUMER_OFFSETS
from .faults import FaultRegistry
from .fetch_sessions import FetchSessionCache
from .open_files import descriptor_budget, raise_open_files_limit
from .partition import Partition
from .producer_ids import ProducerIdManager
from .transactions.coordinator import TRANSACTION_STATE, TransactionCoordinator
from .topics import (
    INTERNAL_TOPICS,
    DamagedTopicTable,
    NewTopic,
    Topic,
    TopicError,
    TopicTable,
    validate_topic_config_overrides,
    validate_topic_name,
)

log = structlog.get_logger("odradek.broker")


class Broker:
    def __init__(self, config: BrokerConfig, clock_ms=None, fs=None, cluster_id: str | None = None):
        """``cluster_id``: the id to take when neither ``cluster.id`` nor the data directories
        give one (a reset, whose emptied directories must keep the broker's id); None makes one."""
        self.config = config
        self._fallback_cluster_id = cluster_id
        # The file system the data directories live on: None for the real one (made at open(),
        # with its descriptor budget), or one given, such as the memory backend of memory mode.
        self._given_fs = fs
        self.in_memory = isinstance(fs, MemoryFileSystem)  # memory mode: no file is ever written
        # Wall-clock milliseconds (record timestamps, retention); injectable for tests.
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.node_id = config.node_id
        # Every entry of log.dirs; the first also holds the metadata log and producer id blocks.
        self.log_dirs = [os.path.abspath(path) for path in config.log_dirs]
        self.log_dir = self.log_dirs[0]
        self.cluster_id: str = config["cluster.id"] or ""
        self.topics = TopicTable(self.log_dir, node_id=self.node_id)
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.bound_listeners: dict[str, tuple[str, int]] = {}
        self.shutting_down = False
        self._data_dir = None
        # The acks=all sync rounds of each data directory (broker/group_commit.py), while open.
        self._group_commits: dict[str, GroupCommit] = {}
        self._cleaner_manager = None  # the log cleaner's state (first dirty offsets live in the data dirs)
        self.producer_ids: ProducerIdManager | None = None
        self.fetch_sessions = FetchSessionCache(config["max.incremental.fetch.session.cache.slots"])
        # Consumer groups and committed offsets, persisted in __consumer_offsets (odradek.broker.groups).
        self.group_coordinator = GroupCoordinator(GroupConfig.from_broker_config(config))
        # KIP-848 groups resolve names and ids through the topic table (classic members' JoinGroup).
        self.group_coordinator.consumer.topics = self.topics.by_name
        # Per-group configs (consumer.session.timeout.ms, ...) live with the topic configs.
        self.group_coordinator.group_configs = self.topics.group_configs
        # Transactional ids and the two phases of a transaction's end, persisted in
        # __transaction_state (odradek.broker.transactions).
        self.transaction_coordinator = TransactionCoordinator(self)
        # KIP-714 client instances (GetTelemetrySubscriptions / PushTelemetry, not advertised).
        self.client_metrics = ClientMetrics(config["telemetry.max.bytes"], self.clock_ms)
        # Scripted faults (the control API's /v1/faults): applied by the server to requests,
        # asked by handlers for partitions taken offline.
        self.faults = FaultRegistry()

    # --- lifecycle ---

    def open(self) -> None:
        """Lock and recover the data directories (the storage engine's LogDirectories), load
        the topic table and attach every partition's log."""
        fs = self._given_fs
        if fs is None:
            limit = raise_open_files_limit()
            budget = descriptor_budget(self.config["odradek.log.open.files.max"], limit)
            log.info("file descriptor budget", open_files_limit=limit, budget=budget)
            fs = OsFileSystem(max_open_files=budget)
        self.topics.fs = fs
        fs.makedirs(self.log_dir)
        self._group_commits = {path: GroupCommit(str(number)) for number, path in enumerate(self.log_dirs)}
        cluster_id = (self.config["cluster.id"] or stored_cluster_id(fs, self.log_dirs) or self._fallback_cluster_id
                      or generate_cluster_id())
        # The logs open with the default config: the topics' overrides are in the metadata log,
        # read once the data directories are locked (below), then applied to each log (here for
        # every topic with overrides, the rebuilt ones included).
        self._data_dir = LogDirectories.open(
            self.log_dirs, node_id=self.node_id, cluster_id=cluster_id, fs=fs,
            default_config=log_config_from(self.default_topic_config()),
            clock=self.clock_ms, recovery_threads=self.config["num.recovery.threads.per.data.dir"])
        self.cluster_id = self._data_dir.cluster_id or cluster_id
        try:
            table_found = self.topics.load(directory_id=self._data_dir.directories[0].directory_id,
                                           clock=self.clock_ms)
        except DamagedTopicTable as error:
            damaged = self.topics.set_aside()
            log.error("the metadata log does not read: set aside, topics rebuilt from the partition directories "
                      "(topic config overrides are lost)", kept_as=damaged, error=str(error))
            table_found = False
        # Lost changes: a torn end of the log is what a crash leaves of a change that was not
        # acknowledged (its partition directories were not made yet); a partition directory
        # the table lacks then is not a deletion's leftover, but the log's damage.
        rebuilt = (not table_found or self.topics.lost_changes) and bool(self._data_dir.logs or self._data_dir.offline)
        if rebuilt:
            self._rebuild_topic_table()
        for topic in self.topics:
            if topic.configs:
                log_config = log_config_from(self.topic_log_config(topic))
                for index in range(topic.partition_count):
                    partition_log = self._data_dir.logs.get((topic.name, index))
                    if partition_log is not None:
                        partition_log.config = log_config
        self.producer_ids = ProducerIdManager(self.topics, self.log_dir)
        if self.producer_ids.damaged or rebuilt:  # the block in the log may be behind the ids in use
            self.producer_ids.skip_past(max((producer_id for partition_log in self._data_dir.logs.values()
                                             for producer_id in partition_log.producer_state.producers), default=-1))
        for topic in self.topics:
            values = self.topic_log_config(topic)  # once per topic: it is the same for every partition
            for index in range(topic.partition_count):
                self._attach_partition(topic, index, values)
        for topic_name, index in list(self._data_dir.logs):
            if topic_name not in self.topics.by_name:
                # A partition directory of a topic the table does not have: left by a crash in
                # the middle of a deletion (the table is updated first). Finish the deletion.
                log.warning("deleting the log of an unknown topic", topic=topic_name, partition=index)
                self._data_dir.delete_log(topic_name, index)
        # Replay __consumer_offsets in the background, in slices on the event loop: the broker
        # listens meanwhile, and a group answers COORDINATOR_LOAD_IN_PROGRESS until its
        # partition is replayed (as Kafka's coordinators load).
        self.group_coordinator.attach_store(CoordinatorLog(self, CONSUMER_OFFSETS))
        self.transaction_coordinator.attach_store(CoordinatorLog(self, TRANSACTION_STATE))

    def _rebuild_topic_table(self) -> None:
        """The topic table is missing or damaged while partition directories exist, or its
        metadata log lost its end (recovery cut it): restore the topics it lacks from the
        partition directories (a topic per name, its partition count from the highest partition
        found, its id from ``partition.metadata``), so that no partition is taken for a deleted
        topic's. Config overrides are lost, except ``__consumer_offsets``' own, which are
        re-applied."""
        found: dict[str, tuple[int, uuid.UUID | None]] = {}
        logs = dict(self._data_dir.logs)
        for (name, index) in list(logs) + list(self._data_dir.offline):
            if name in self.topics.by_name:
                continue
            count, topic_id = found.get(name, (0, None))
            stored = logs[(name, index)].topic_id if (name, index) in logs else None
            found[name] = (max(count, index + 1), topic_id or stored)
        for name, (count, topic_id) in sorted(found.items()):
            configs = CONSUMER_OFFSETS.topic_configs(self.config) if name == CONSUMER_OFFSETS.name else {}
            topic = Topic(name, topic_id or uuid.uuid4(), count, configs)
            self.topics.add(topic)
            log.warning("topic restored from its partition directories", topic=name, partitions=count,
                        topic_id=str(topic.topic_id))

    async def run_maintenance(self) -> None:
        """Background work, run as one task on the event loop until cancelled: retention
        (every ``log.retention.check.interval.ms``: segments past ``retention.ms`` /
        ``retention.bytes`` / the log start offset are deleted), time-based flushing
        (``flush.ms``, checked every second when some topic sets it), the offset checkpoints
        (recovery points, log start offsets, high watermarks), producer id expiry
        (``producer.id.expiration.ms``, every ``producer.id.expiration.check.interval.ms``);
        and the log cleaner (:meth:`run_log_cleaner`) as a second task, cancelled with this one."""
        cleaner = asyncio.ensure_future(self.run_log_cleaner())
        try:
            await self._run_periodic_log_work()
        finally:
            cleaner.cancel()

    async def _run_periodic_log_work(self) -> None:
        config = self.config
        periods = {
            "retention": config["log.retention.check.interval.ms"] / 1000,
            # One write covers the offset checkpoints (so a crash keeps DeleteRecords and
            # skips rescanning fsynced segments); Kafka writes each on its own interval, the
            # shortest (the high watermark's, 5 s by default) serves here for all of them.
            "checkpoint": max(0.01, min(config["log.flush.offset.checkpoint.interval.ms"],
                                        config["log.flush.start.offset.checkpoint.interval.ms"],
                                        config["replica.high.watermark.checkpoint.interval.ms"]) / 1000),
            "producer_expiry": config["producer.id.expiration.check.interval.ms"] / 1000,
            "file_deletion": 1.0,  # deleted segments' files go once file.delete.delay.ms has passed
        }
        loop = asyncio.get_running_loop()
        due = {job: loop.time() + period for job, period in periods.items()}
        while True:
            flush_timed = any(p.log.config.flush_ms < 2**63 - 1 for p in self.partitions.values())
            wait = min(due.values()) - loop.time()
            await asyncio.sleep(max(0.0, min(wait, 1.0) if flush_timed else wait))
            now = loop.time()
            run = {job for job, at in due.items() if now >= at}
            for partition in list(self.partitions.values()):
                if partition.offline:
                    continue
                try:
                    if flush_timed:
                        partition.log.flush_if_due()
                    if "retention" in run:
                        deleted = partition.log.delete_old_segments()
                        if deleted:
                            log.info("retention deleted segments", partition=repr(partition), segments=deleted)
                    if "producer_expiry" in run:
                        partition.log.expire_producers(config["producer.id.expiration.ms"])
                except Exception as error:  # one partition's disk trouble must not stop the others
                    log.error("maintenance failed", partition=repr(partition), error=repr(error))
            if "checkpoint" in run and self._data_dir is not None:
                try:
                    self._data_dir.checkpoint()
                except Exception as error:  # the next round tries again; a clean stop writes them too
                    log.error("writing the offset checkpoints failed", error=repr(error))
            if "file_deletion" in run and self._data_dir is not None:
                try:
                    self._data_dir.delete_pending_files()
                except OSError as error:  # the next round tries the rest; the next start removes them
                    log.error("deleting segment files failed", error=repr(error))
            for job in run:
                due[job] = now + periods[job]

    async def run_log_cleaner(self) -> None:
        """Kafka's log cleaner (``log.cleaner.enable``): clean the filthiest compacted log
        (``cleanup.policy`` with ``compact``, ``__consumer_offsets`` included), yielding to the
        event loop every few MiB of work (see odradek.storage.cleaner); when no log needs
        cleaning, sleep ``log.cleaner.backoff.ms``."""
        if not self.config["log.cleaner.enable"]:
            return
        backoff = self.config["log.cleaner.backoff.ms"] / 1000
        while True:
            data_dir = self._data_dir
            if data_dir is None:
                return
            manager = self._cleaner_manager
            if manager is None or manager.directories != data_dir.directories:
                map_bytes = int(self.config["log.cleaner.dedupe.buffer.size"]
                                * self.config["log.cleaner.io.buffer.load.factor"])
                manager = self._cleaner_manager = LogCleanerManager(data_dir.directories, self.clock_ms, map_bytes)
            manager.last_stats = None
            try:
                for _ in manager.clean_filthiest():
                    await asyncio.sleep(0)  # let requests in between slices of the clean
            except Exception as error:  # noqa: BLE001 - the cleaner must outlive one bad round
                log.error("log cleaner round failed", error=repr(error))
            await asyncio.sleep(0 if manager.last_stats is not None else backoff)

    def set_bound_listeners(self, bound: dict[str, tuple[str, int]]) -> None:
        self.bound_listeners = dict(bound)

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        for partition in self.partitions.values():
            partition._wake_fetchers()
        self.group_coordinator.shutdown()  # answers parked JoinGroup/SyncGroup so connections drain
        self.transaction_coordinator.shutdown()

    def close(self) -> None:
        """Flush and close every log, write the checkpoints and the clean-shutdown marker of
        every data directory (the storage engine's LogDirectories.close; a directory whose
        close fails gets no marker, so the next start recovers it)."""
        data_dir = self._release()
        if data_dir is not None:
            data_dir.close(threads_per_directory=self.config["num.recovery.threads.per.data.dir"])

    def abandon(self) -> None:
        """Close every log without making anything durable and release the data directories:
        their contents are removed next (a reset, broker/service.py). Call after
        :meth:`begin_shutdown`."""
        data_dir = self._release(durable=False)
        if data_dir is not None:
            data_dir.abandon()

    def _release(self, durable: bool = True):
        self.topics.close(durable=durable)  # the metadata log, before its directory's lock goes
        data_dir, self._data_dir = self._data_dir, None
        group_commits, self._group_commits = self._group_commits, {}
        for group_commit in group_commits.values():
            group_commit.close()  # a sync in flight ends first; the logs' close flushes the rest
        self.partitions.clear()
        return data_dir

    # --- listeners ---

    def advertised_endpoint(self, listener_name: str) -> tuple[str, int]:
        """The host and port clients on ``listener_name`` are told to use (Metadata)."""
        for listener in self.config.advertised_listeners:
            if listener.name == listener_name:
                host, port = listener.host, listener.port
                bound = self.bound_listeners.get(listener_name)
                if port == 0 and bound is not None:
                    port = bound[1]
                if not host:
                    host = "localhost"
                return host, port
        bound = self.bound_listeners.get(listener_name)
        return bound if bound else ("localhost", 9092)

    # --- topics ---

    def default_topic_config(self) -> dict:
        """Every topic config's value on this broker when a topic does not override it."""
        return {name: self.config.broker_value_for_topic_config(name)[0] for name in TOPIC_CONFIGS}

    def topic_log_config(self, topic: Topic) -> dict:
        """The topic's effective config, by Kafka name: overrides over broker defaults."""
        values = self.default_topic_config()
        for name, raw in topic.configs.items():
            values[name] = TOPIC_CONFIGS[name].parse(raw)
        return values

    def _attach_partition(self, topic: Topic, index: int, values: dict | None = None) -> Partition:
        """The Partition of ``topic``'s partition ``index``, its log created if new; ``values``
        is ``topic_log_config(topic)`` when the caller has it (attaching many partitions)."""
        if values is None:
            values = self.topic_log_config(topic)
        offline_log = self._data_dir.offline_log(topic.name, index)
        if offline_log is not None:
            # Its log could not be opened at start (the storage engine logged why): the
            # partition answers KAFKA_STORAGE_ERROR, every other one serves.
            partition = Partition(topic.name, topic.topic_id, index, offline_log, self.node_id)
            partition.apply_topic_config(values)
            self.partitions[(topic.name, index)] = partition
            return partition
        partition_log = self._data_dir.get_log(topic.name, index)
        if partition_log is None:
            partition_log = self._data_dir.create_log(topic.name, index, topic_id=topic.topic_id,
                                                      config=log_config_from(values))
        elif partition_log.topic_id is None:
            # Missing (or unreadable, and ignored) partition.metadata: Kafka writes it again from
            # the topic id the metadata holds.
            log.warning("writing a missing partition.metadata", topic=topic.name, partition=index,
                        file=f"{partition_log.directory}/partition.metadata", topic_id=str(topic.topic_id))
            partition_log.set_topic_id(topic.topic_id)
        elif partition_log.topic_id != topic.topic_id:
            log.warning("partition.metadata has another topic id", topic=topic.name, partition=index,
                        stored=str(partition_log.topic_id), expected=str(topic.topic_id))
        # One replica: everything in the log was acknowledged by the only in-sync replica.
        partition_log.update_high_watermark(partition_log.log_end_offset)
        partition = Partition(topic.name, topic.topic_id, index, partition_log, self.node_id,
                              group_commit=self._group_commit_of(partition_log))
        partition.apply_topic_config(values)
        self.partitions[(topic.name, index)] = partition
        return partition

    def _group_commit_of(self, partition_log) -> GroupCommit:
        """The group commit of the data directory holding ``partition_log``."""
        data_dir = os.path.dirname(os.path.abspath(partition_log.directory))
        group_commit = self._group_commits.get(data_dir)
        if group_commit is None:  # a log.dirs entry spelled differently (a symbolic link)
            group_commit = self._group_commits[data_dir] = GroupCommit(str(len(self._group_commits)))
        return group_commit

    def partition(self, topic_name: str, index: int) -> Partition | None:
        return self.partitions.get((topic_name, index))

    def leaderless(self, topic_name: str, index: int) -> bool:
        """Whether Metadata shows the partition without a leader: its log is offline, or a fault
        took it offline (broker/faults.py)."""
        partition = self.partitions.get((topic_name, index))
        return ((partition is not None and partition.offline)
                or self.faults.offline_error(topic_name, index) is not None)

    def topic_name_of_id(self, topic_id) -> str | None:
        topic = self.topics.by_id.get(topic_id)
        return topic.name if topic is not None else None

    def log_dir_of(self, topic_name: str, index: int) -> str | None:
        """The data directory (an entry of ``log_dirs``) holding the partition's log."""
        directory = self._data_dir.directory_of(topic_name, index) if self._data_dir is not None else None
        return directory.path if directory is not None else None

    def check_new_topic(self, name: str, num_partitions: int, replication_factor: int,
                        assignments: dict[int, list[int]] | None, configs: dict[str, str | None]) -> tuple[int, dict[str, str]]:
        """Validate a topic creation without doing it (CreateTopics validate_only, and the
        first half of create_topic). Returns (partition count, config overrides as strings).
        Raises TopicError with Kafka's code and message."""
        if name == METADATA_TOPIC:  # checked first, as Kafka's CreateTopics does
            raise TopicError(error_codes.INVALID_REQUEST, f"Creation of internal topic {METADATA_TOPIC} is prohibited.")
        validate_topic_name(name)
        if name in self.topics.by_name:
            raise TopicError(error_codes.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        existing = self.topics.colliding_name(name)
        if existing is not None:
            raise TopicError(error_codes.INVALID_TOPIC_EXCEPTION,
                             f"Topic '{name}' collides with existing topic: {existing}")
        if assignments:
            if num_partitions != -1 or replication_factor != -1:
                raise TopicError(error_codes.INVALID_REQUEST,
                                 "Both numPartitions or replicationFactor and replicasAssignments were set. "
                                 "Both cannot be used at the same time.")
            indexes = sorted(assignments)
            if indexes != list(range(len(indexes))):
                raise TopicError(error_codes.INVALID_REPLICA_ASSIGNMENT,
                                 "Partitions should be a consecutive 0-based integer sequence")
            for index, brokers in assignments.items():
                if not brokers:
                    raise TopicError(error_codes.INVALID_REPLICA_ASSIGNMENT,
                                     f"Replica assignment of partition {index} is empty")
                if len(set(brokers)) != len(brokers):
                    raise TopicError(error_codes.INVALID_REPLICA_ASSIGNMENT,
                                     f"Duplicate brokers not allowed in replica assignment: {brokers}")
                unknown = [broker for broker in brokers if broker != self.node_id]
                if unknown:
                    raise TopicError(error_codes.INVALID_REPLICA_ASSIGNMENT,
                                     f"Unknown broker(s) {unknown} in replica assignment of partition {index}")
            num_partitions = len(indexes)
        else:
            if num_partitions == -1:
                num_partitions = self.config["num.partitions"]
            if num_partitions <= 0:
                raise TopicError(error_codes.INVALID_PARTITIONS, "Number of partitions must be larger than 0.")
            if replication_factor == -1:
                replication_factor = self.config["default.replication.factor"]
            if replication_factor <= 0:
                raise TopicError(error_codes.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0.")
            if replication_factor > 1:
                raise TopicError(error_codes.INVALID_REPLICATION_FACTOR,
                                 f"Unable to replicate the partition {replication_factor} time(s): The target "
                                 f"replication factor of {replication_factor} cannot be reached because only "
                                 "1 broker(s) are registered.")
        overrides = validate_topic_config_overrides(configs)
        return num_partitions, overrides

    def create_topic(self, name: str, num_partitions: int = -1, replication_factor: int = -1,
                     assignments: dict[int, list[int]] | None = None,
                     configs: dict[str, str | None] | None = None) -> Topic:
        """Create one topic; raises TopicError with Kafka's code and message when refused."""
        created = self.create_topics([NewTopic(name, num_partitions, replication_factor, assignments, configs)])[0]
        if isinstance(created, TopicError):
            raise created
        return created

    def create_topics(self, wanted: list[NewTopic]) -> list[Topic | TopicError]:
        """Create several topics (one CreateTopics request): each is validated on its own (a
        later one sees the earlier ones, as a loop of :meth:`create_topic` would), then the
        topic table is written once for all of them before any partition directory is made
        (a crash in between leaves the table naming topics whose logs the next start creates;
        never a partition directory of a topic the table does not know, which the start would
        take for a deleted one's). Returns, in order, the Topic or the TopicError of each."""
        results: list[Topic | TopicError] = []
        added: list[Topic] = []
        for spec in wanted:
            try:
                count, overrides = self.check_new_topic(spec.name, spec.num_partitions, spec.replication_factor,
                                                        spec.assignments, spec.configs or {})
            except TopicError as error:
                results.append(error)
                continue
            topic = Topic(spec.name, uuid.uuid4(), count, overrides)
            self.topics.add(topic, save=False)
            added.append(topic)
            results.append(topic)
        if not added:
            return results
        try:
            self.topics.save()
        except OSError as error:
            for topic in added:
                self.topics.remove(topic, save=False)
            return [_storage_failure(f"Could not create topic {result.name}", error) if isinstance(result, Topic)
                    else result for result in results]
        failed: dict[str, TopicError] = {}
        for topic in added:
            try:
                values = self.topic_log_config(topic)
                for index in range(topic.partition_count):
                    self._attach_partition(topic, index, values)
            except (OSError, StorageError) as error:
                self._undo_partitions(topic, 0, topic.partition_count)
                self.topics.remove(topic, save=False)
                failed[topic.name] = _storage_failure(f"Could not create topic {topic.name}", error)
                continue
            log.info("topic created", topic=topic.name, partitions=topic.partition_count,
                     topic_id=str(topic.topic_id))
        if failed:
            try:
                self.topics.save()
            except OSError as second:  # the table on disk still names them: the next start creates their logs
                log.warning("could not remove topics whose creation failed", topics=sorted(failed),
                            error=str(second))
        return [failed.get(result.name, result) if isinstance(result, Topic) else result for result in results]

    def _undo_partitions(self, topic: Topic, start: int, end: int) -> None:
        """Remove the partitions ``start``..``end-1`` a failed creation attached (or began)."""
        for index in range(start, end):
            self.partitions.pop((topic.name, index), None)
            try:
                self._data_dir.delete_log(topic.name, index)
            except (OSError, StorageError) as error:  # the next start removes what is left
                log.warning("could not remove a partition of a failed creation", topic=topic.name,
                            partition=index, error=str(error))

    def auto_create_topic(self, name: str) -> Topic | None:
        """Create ``name`` with the broker defaults if auto-creation is on; None when it is off.
        Raises TopicError for an invalid name."""
        if not self.config["auto.create.topics.enable"]:
            return None
        if name in INTERNAL_TOPICS:
            return None  # created by their coordinators, never by a client's Metadata request
        return self.create_topic(name)

    def check_new_partitions(self, topic: Topic, count: int, assignments: list[list[int]] | None) -> None:
        """Validate growing ``topic`` to ``count`` partitions (CreatePartitions); TopicError
        with Kafka's code and message when refused."""
        current = topic.partition_count
        if count < current:
            raise TopicError(error_codes.INVALID_PARTITIONS,
                             f"Topic currently has {current} partitions, which is higher than the requested {count}.")
        if count == current:
            raise TopicError(error_codes.INVALID_PARTITIONS, f"Topic already has {current} partitions.")
        if assignments is not None:
            if len(assignments) != count - current:
                raise TopicError(error_codes.INVALID_REPLICA_ASSIGNMENT,
                                 f"Increasing the number of partitions by {count - current} but "
                                 f"{len(assignments)} assignments provided.")
            for brokers in assignments:
                if not brokers or any(broker != self.node_id for broker in brokers) or len(set(brokers)) != len(brokers):
                    raise TopicError(error_codes.INVALID_REPLICA_ASSIGNMENT,
                                     f"Invalid replica assignment {brokers}: the only broker is {self.node_id}")

    def create_partitions(self, topic: Topic, count: int, assignments: list[list[int]] | None = None) -> None:
        self.check_new_partitions(topic, count, assignments)
        previous = topic.partition_count
        try:
            topic.partition_count = count
            self.topics.save()
            values = self.topic_log_config(topic)
            for index in range(previous, count):
                self._attach_partition(topic, index, values)
        except (OSError, StorageError) as error:
            topic.partition_count = previous
            self._undo_partitions(topic, previous, count)
            try:
                self.topics.save()
            except OSError as second:  # the table on disk names them: the next start creates their logs
                log.warning("could not save the topic table after a failed creation", topic=topic.name,
                            error=str(second))
            raise _storage_failure(f"Could not create partitions of {topic.name}", error) from error
        log.info("partitions created", topic=topic.name, partitions=count)

    def check_topic_configs(self, overrides: dict[str, str | None]) -> dict[str, str]:
        """Validate a complete new set of topic overrides; TopicError(INVALID_CONFIG) if refused."""
        return validate_topic_config_overrides(overrides)

    def set_topic_configs(self, topic: Topic, overrides: dict[str, str | None]) -> None:
        """Replace ``topic``'s overrides (AlterConfigs, IncrementalAlterConfigs) and apply them
        to its partition logs at once (the log reads its config on every append and roll)."""
        checked = self.check_topic_configs(overrides)
        previous, topic.configs = topic.configs, checked
        try:
            self.topics.save()
        except OSError:  # not saved, not applied: the request is answered KAFKA_STORAGE_ERROR
            topic.configs = previous
            raise
        values = self.topic_log_config(topic)
        log_config = log_config_from(values)
        for index in range(topic.partition_count):
            partition = self.partitions.get((topic.name, index))
            if partition is not None:
                partition.log.config = log_config
                partition.apply_topic_config(values)
        log.info("topic configs changed", topic=topic.name, configs=topic.configs)

    def delete_topic(self, topic: Topic) -> None:
        if not self.config["delete.topic.enable"]:
            raise TopicError(error_codes.TOPIC_DELETION_DISABLED, "Topic deletion is disabled.")
        self.topics.remove(topic, keep_if_unsaved=True)  # not saved: not deleted (KAFKA_STORAGE_ERROR)
        for index in range(topic.partition_count):
            partition = self.partitions.pop((topic.name, index), None)
            if partition is not None:
                partition.fail_waiters(TopicError(error_codes.UNKNOWN_TOPIC_OR_PARTITION, "topic deleted"))
                self._data_dir.delete_log(topic.name, index)
        self.group_coordinator.delete_topic_offsets(topic.name)
        log.info("topic deleted", topic=topic.name)

    async def verify_transactional_offset_commit(self, transactional_id: str, group_id: str, producer_id: int,
                                                 producer_epoch: int, api_version: int) -> int:
        """KIP-890 before a TxnOffsetCommit is written (Kafka's ``maybeStartTransactionVerification``
        for the group's ``__consumer_offsets`` partition): the Kafka error code to answer, NONE to
        go on. From ``api_version`` 5 (transaction version 2, no AddOffsetsToTxn) the partition
        is added to the producer's transaction; below, the transaction coordinator is asked
        whether it is in it (AddOffsetsToTxn put it there). Nothing to check when
        ``transaction.partition.verification.enable`` is false, or when the producer's
        transaction is already open in the partition at this epoch (its first write there was
        verified). The coordinator's verdict is answered as Kafka's AddPartitionsToTxnManager
        maps it: PRODUCER_FENCED as INVALID_PRODUCER_EPOCH, TRANSACTION_ABORTABLE as
        INVALID_TXN_STATE below ``api_version`` 4, the rest as it is."""
        if not self.config["transaction.partition.verification.enable"]:
            return error_codes.NONE
        index = self.group_coordinator.runtime.partition_of(group_id)
        partition = self.partition(CONSUMER_OFFSETS.name, index)
        if partition is not None and not partition.offline:
            entry = partition.log.producer_state.producers.get(producer_id)
            if entry is not None and entry.epoch == producer_epoch and entry.current_txn_first_offset >= 0:
                return error_codes.NONE
        offsets_partition = (CONSUMER_OFFSETS.name, index)
        if api_version >= TXN_OFFSET_COMMIT_IMPLICIT_ADD_VERSION:
            code = await self.transaction_coordinator.add_partitions_for_produce(
                transactional_id, producer_id, producer_epoch, [offsets_partition])
        else:
            code = self.transaction_coordinator.verify_partition(transactional_id, producer_id, producer_epoch,
                                                                 *offsets_partition)
        return self.transaction_coordinator.verification_answer(
            code, knows_abortable=api_version >= TXN_OFFSET_COMMIT_ABORTABLE_VERSION)


# TxnOffsetCommit v4 clients understand TRANSACTION_ABORTABLE; v5 ones (transaction version 2)
# have the group's __consumer_offsets partition added to their transaction by the broker.
TXN_OFFSET_COMMIT_ABORTABLE_VERSION = 4
TXN_OFFSET_COMMIT_IMPLICIT_ADD_VERSION = 5


def _storage_failure(what: str, error: BaseException) -> TopicError:
    """A creation that failed on the disk (out of file descriptors, no space): Kafka's answer
    for a log it cannot create is KAFKA_STORAGE_ERROR; the creation was undone, so a retry
    once descriptors are free succeeds."""
    log.warning("creating logs failed", what=what, error=str(error),
                out_of_descriptors=is_out_of_descriptors(error))
    return TopicError(error_codes.KAFKA_STORAGE_ERROR, f"{what}: {error}")


def log_config_from(values: dict) -> LogConfig:
    """The storage engine's LogConfig from typed topic config values (Kafka names)."""
    properties = {}
    for name, value in values.items():
        if isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            continue  # no LogConfig field is a flag
        properties[name] = value
    return LogConfig.from_properties(properties)
