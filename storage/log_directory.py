"""A data directory (one entry of ``log.dirs``): its metadata files and the partition logs in it.

Layout, as Kafka writes it::

    <log.dir>/
        meta.properties                     version=1, node.id, cluster.id, directory.id
        .lock                               fcntl lock held while a broker uses the directory
        .kafka_cleanshutdown                present only between a clean shutdown and the next start
        recovery-point-offset-checkpoint    per partition: offsets below are fsynced
        log-start-offset-checkpoint         per partition: first readable offset
        replication-offset-checkpoint       per partition: high watermark
        cleaner-offset-checkpoint           per compacted partition: its first dirty offset
                                            (how far the log cleaner got; lowered, and
                                            rewritten, when the log is truncated below it)
        <topic>-<partition>/                one PartitionLog each

Start: take the lock (another process holding it -> :class:`LogDirectoryLocked`), read or
create ``meta.properties`` (a different node or cluster id -> :class:`InconsistentLogDirectory`),
note whether the clean-shutdown marker is there and remove it, open every partition directory
(recovering it when the marker was absent), remove directories of interrupted deletions
(``*-delete``). A checkpoint that does not parse is ignored (named in a warning); a partition
directory that cannot be opened at all (an unreadable directory, an I/O error) is taken
offline alone: it is kept as an :class:`OfflineLog` in :attr:`LogDirectory.offline`, every
other partition serves, and its checkpointed offsets are written back unchanged. Clean shutdown (:meth:`close`): flush and close every log, write the four
checkpoints, write the marker (Kafka 4's JSON ``{"version":0,"brokerEpoch":...}``, fsynced),
release the lock.

Thread safety: single-threaded, owned by the broker's event loop; the object is the one owner
of the partition logs it opened.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import uuid

import structlog

from .checkpoints import (
    CorruptCheckpoint,
    read_meta_properties,
    read_offset_checkpoint,
    uuid_from_kafka,
    uuid_to_kafka,
    write_meta_properties,
    write_offset_checkpoint,
)
from .config import LogConfig
from .deletions import PendingDeletions
from .errors import InconsistentLogDirectory, KafkaStorageError, LogDirectoryLocked
from .fs import OsFileSystem
from .metadata_log import METADATA_TOPIC
from .partition_log import PartitionLog, _system_clock_ms, parse_partition_dir_name
from .producer_state import write_snapshot

META_PROPERTIES = "meta.properties"
LOCK_FILE = ".lock"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
REPLICATION_OFFSET_CHECKPOINT = "replication-offset-checkpoint"
CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"

_log = structlog.get_logger("odradek.storage")


class OfflineLog:
    """Stands in for the :class:`PartitionLog` of a partition whose directory could not be
    opened: every operation raises KAFKA_STORAGE_ERROR (what Kafka answers for a replica in an
    offline log directory); the offsets read -1. Keeps the offsets the checkpoints had for it,
    so that they are written back unchanged and the next start tries again from them."""

    offline = True
    log_start_offset = log_end_offset = high_watermark = last_stable_offset = durable_offset = -1
    size_in_bytes = 0

    def __init__(self, directory: str, topic: str, partition: int, error: BaseException,
                 checkpointed: tuple[int | None, int | None, int | None]):
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self.error = error
        self.recovery_point, self.checkpointed_log_start_offset, self.checkpointed_high_watermark = checkpointed
        self.config = LogConfig()
        self.closed = True

    def _refuse(self, *_args, **_kwargs):
        raise KafkaStorageError(f"partition {self.topic}-{self.partition} is offline: its log {self.directory} "
                                f"could not be opened ({self.error})")

    append = read = flush = flush_if_due = flush_up_to = prepare_flush = update_high_watermark = _refuse
    offset_for_timestamp = max_timestamp_offset = delete_records_before = delete_old_segments = _refuse
    truncate_to = aborted_transactions = expire_producers = compact = roll = _refuse

    def close(self) -> None:
        pass


def make_durable(fs, logs: list[PartitionLog], threads: int) -> None:
    """What closing ``logs`` makes durable, ahead of their :meth:`PartitionLog.close`: each
    one's appends since its last flush (fsynced, the recovery point advanced to its end) and a
    producer snapshot at its end. A log with nothing appended since its last flush and snapshot
    costs nothing (Kafka's shutdown flush and takeSnapshot skip it too), so a clean stop costs
    what was written since the last one, not the number of partitions.

    The fsyncs are most of the time (a few hundred microseconds each, and a file system serves
    several at once): each log's flush is prepared on this thread (:meth:`PartitionLog.prepare_flush`),
    synced and its snapshot written on one of up to ``threads`` threads (neither touches the
    descriptor budget there), and completed back on this thread, so no log's state is touched
    elsewhere. At most ``IN_FLIGHT_PER_THREAD`` flushes
    per thread are prepared ahead (a prepared flush may hold a descriptor: the budget must not
    run out under a low open-files limit). Raises the first failure (KAFKA_STORAGE_ERROR) once
    every log was tried."""
    pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="odradek-durable") if threads > 1 else None
    in_flight: collections.deque = collections.deque()
    failure: KafkaStorageError | None = None

    def complete(log: PartitionLog, ticket, snapshot, outcome) -> None:
        nonlocal failure
        error = outcome.result() if pool is not None else outcome
        try:
            if ticket is not None:
                log.complete_flush(ticket)
            if error is not None:
                try:  # once more here, where running out of descriptors may close idle files
                    write_snapshot(fs, *snapshot)
                except OSError as second:
                    raise KafkaStorageError(f"producer snapshot of {log.directory} failed: {second}") from second
        except KafkaStorageError as storage_error:
            failure = failure or storage_error

    try:
        for log in logs:
            try:
                ticket = log.prepare_flush()
            except KafkaStorageError as error:
                failure = failure or error
                continue
            snapshot = log.producer_state.snapshot_due()
            if ticket is None and snapshot is None:
                continue
            outcome = pool.submit(_sync_and_snapshot, fs, ticket, snapshot, True) if pool is not None \
                else _sync_and_snapshot(fs, ticket, snapshot, False)
            in_flight.append((log, ticket, snapshot, outcome))
            while len(in_flight) >= IN_FLIGHT_PER_THREAD * threads:
                complete(*in_flight.popleft())
        while in_flight:
            complete(*in_flight.popleft())
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    if failure is not None:
        raise failure


# Flushes make_durable prepares ahead of the ones its threads are syncing.
IN_FLIGHT_PER_THREAD = 4


def _sync_and_snapshot(fs, ticket, snapshot, other_thread: bool) -> OSError | None:
    """One log's part of :func:`make_durable`, on any thread: the flush's fsyncs (their error
    is kept in the ticket), then the snapshot (after the data it describes); its error returned.
    Neither touches the descriptor budget (a sync target opens its own descriptor)."""
    if ticket is not None:
        ticket.sync()
        if ticket.error is not None:
            return None
    if snapshot is not None:
        try:
            write_snapshot(fs, *snapshot, other_thread=other_thread)
        except OSError as error:
            return error
    return None


class LogDirectory:
    def __init__(self, fs, path: str, default_config: LogConfig, clock):
        self.fs = fs
        self.path = path.rstrip("/") or "/"
        self.default_config = default_config
        self.clock = clock
        self.logs: dict[tuple[str, int], PartitionLog] = {}
        self.node_id: int | None = None
        self.cluster_id: str | None = None
        self.directory_id: uuid.UUID | None = None
        self.had_clean_shutdown = False
        self.corrupt_checkpoints: list[str] = []  # names of checkpoint files ignored at start
        # Partitions whose directory could not be opened at start (offline, alone).
        self.offline: dict[tuple[str, int], OfflineLog] = {}
        # First dirty offset per compacted partition, kept by the log cleaner (odradek.storage.cleaner_manager).
        self.cleaner_offsets: dict[tuple[str, int], int] = {}
        # Deleted segments' *.deleted files waiting out file.delete.delay.ms (every log's).
        self.pending_deletions = PendingDeletions(fs)
        self._lock = None

    @classmethod
    def open(cls, path: str, *, node_id: int, cluster_id: str | None = None, fs=None,
             default_config: LogConfig | None = None, topic_configs: dict[str, LogConfig] | None = None,
             clock=_system_clock_ms, recovery_threads: int = 1) -> "LogDirectory":
        """Open (creating if needed) the data directory at ``path`` and every log in it.
        ``topic_configs`` gives the effective config of topics that override defaults. After an
        unclean shutdown the recovered logs are flushed on ``recovery_threads`` threads."""
        directory = cls(fs or OsFileSystem(), path, default_config or LogConfig(), clock)
        directory._open(node_id, cluster_id, topic_configs or {}, recovery_threads)
        return directory

    def _open(self, node_id: int, cluster_id: str | None, topic_configs: dict[str, LogConfig],
              recovery_threads: int = 1) -> None:
        fs = self.fs
        if not fs.exists(self.path):
            fs.makedirs(self.path)
            fs.fsync_dir(os.path.dirname(self.path.rstrip("/")) or ".")  # as Kafka's LogManager for a new log dir
        try:
            self._lock = fs.lock(f"{self.path}/{LOCK_FILE}")
        except BlockingIOError:
            raise LogDirectoryLocked(
                f"data directory {self.path} is in use by another process (its {LOCK_FILE} is locked)") from None
        try:
            self._load_meta_properties(node_id, cluster_id)
            marker = f"{self.path}/{CLEAN_SHUTDOWN_FILE}"
            self.had_clean_shutdown = fs.exists(marker)
            # A checkpoint that does not parse is treated as Kafka's LogManager does: reset
            # (recovery points to 0, so every log is rescanned from its start).
            recovery_points = self._read_checkpoint(RECOVERY_POINT_CHECKPOINT)
            if recovery_points is None:
                recovery_points, self.had_clean_shutdown = {}, False
            log_starts = self._read_checkpoint(LOG_START_OFFSET_CHECKPOINT) or {}
            high_watermarks = self._read_checkpoint(REPLICATION_OFFSET_CHECKPOINT) or {}
            self.cleaner_offsets = self._read_checkpoint(CLEANER_OFFSET_CHECKPOINT) or {}
            for name in fs.listdir(self.path):
                full = f"{self.path}/{name}"
                if not fs.is_dir(full):
                    continue
                if name.endswith("-delete"):
                    fs.rmtree(full)  # a deletion interrupted by a crash
                    continue
                parsed = parse_partition_dir_name(name)
                if parsed is None or parsed[0] == METADATA_TOPIC:
                    continue  # the metadata log is its owner's (storage/metadata_log.py), as in Kafka
                key = parsed
                try:
                    self.logs[key] = self._watch_truncations(key, PartitionLog.open(
                        fs, full, topic_configs.get(key[0], self.default_config), topic=key[0], partition=key[1],
                        recovery_point=recovery_points.get(key, 0), log_start_offset=log_starts.get(key, 0),
                        high_watermark=high_watermarks.get(key, 0), clean_shutdown=self.had_clean_shutdown,
                        clock=self.clock, pending_deletions=self.pending_deletions, flush_recovered=False))
                except Exception as error:  # noqa: BLE001 - whatever it is, only this partition goes offline
                    _log.error("partition offline: its log could not be opened", partition=f"{key[0]}-{key[1]}",
                              directory=full, error=repr(error))
                    self.offline[key] = OfflineLog(full, key[0], key[1], error, (
                        recovery_points.get(key), log_starts.get(key), high_watermarks.get(key)))
            if not self.had_clean_shutdown:
                # What recovery kept, fsynced and snapshotted for every log together (the
                # fsyncs of different logs overlap on the recovery threads), as Kafka's
                # recovery ends each log with a producer snapshot at its end.
                try:
                    make_durable(fs, list(self.logs.values()), recovery_threads)
                except KafkaStorageError as error:
                    # The logs serve; a recovery point left behind is recovered again after a crash.
                    _log.error("flushing the recovered logs failed", directory=self.path, error=repr(error))
            # The marker vouches for the state we just loaded, not for the run that starts now.
            fs.unlink(marker)
            fs.fsync_dir(self.path)
        except BaseException:
            self._release_lock()
            raise

    def _read_checkpoint(self, name: str):
        """The checkpoint's offsets, or None if the file is corrupt or unreadable (it is then
        ignored, as Kafka's LogManager resets a recovery-point checkpoint it cannot read)."""
        path = f"{self.path}/{name}"
        try:
            return read_offset_checkpoint(self.fs, path)
        except (CorruptCheckpoint, OSError) as error:
            _log.warning("ignoring a checkpoint file that cannot be read", file=path, reason=str(error))
            self.corrupt_checkpoints.append(name)
            return None

    def _load_meta_properties(self, node_id: int, cluster_id: str | None) -> None:
        path = f"{self.path}/{META_PROPERTIES}"
        try:
            properties = read_meta_properties(self.fs, path)
        except Exception as error:  # noqa: BLE001 - any parse failure is the same refusal
            raise InconsistentLogDirectory(f"{path}: {error}") from None
        if properties is None:
            properties = {"version": "1", "node.id": str(node_id)}
            if cluster_id is not None:
                properties["cluster.id"] = cluster_id
            properties["directory.id"] = uuid_to_kafka(uuid.uuid4())
            write_meta_properties(self.fs, path, properties)
        version = properties.get("version")
        stored_node = properties.get("node.id", properties.get("broker.id"))
        if version not in ("0", "1"):
            raise InconsistentLogDirectory(f"{path}: unsupported version {version!r}")
        if stored_node is not None and stored_node != str(node_id):
            raise InconsistentLogDirectory(f"{path} belongs to node {stored_node}, not {node_id}")
        stored_cluster = properties.get("cluster.id")
        if cluster_id is not None and stored_cluster is not None and stored_cluster != cluster_id:
            raise InconsistentLogDirectory(f"{path} belongs to cluster {stored_cluster}, not {cluster_id}")
        if "directory.id" not in properties:
            properties["directory.id"] = uuid_to_kafka(uuid.uuid4())
            if cluster_id is not None:
                properties.setdefault("cluster.id", cluster_id)
            write_meta_properties(self.fs, path, properties)
        self.node_id = node_id
        self.cluster_id = stored_cluster or cluster_id
        self.directory_id = uuid_from_kafka(properties["directory.id"])

    # -------------------------------------------------------------------------------- logs
    def create_log(self, topic: str, partition: int, *, topic_id: uuid.UUID | None = None,
                   config: LogConfig | None = None) -> PartitionLog:
        """Open the log of a new partition (or return the existing one)."""
        key = (topic, partition)
        if key not in self.logs:
            self.logs[key] = self._watch_truncations(key, PartitionLog.open(
                self.fs, f"{self.path}/{topic}-{partition}", config or self.default_config, topic=topic,
                partition=partition, topic_id=topic_id, clock=self.clock, pending_deletions=self.pending_deletions))
        return self.logs[key]

    def _watch_truncations(self, key: tuple[str, int], log: PartitionLog) -> PartitionLog:
        def truncated(offset: int) -> None:
            # Kafka's maybeTruncateCheckpoint: records appended after the cut are dirty.
            if self.cleaner_offsets.get(key, -1) > offset:
                self.cleaner_offsets[key] = offset
                self.write_cleaner_checkpoint()

        log.truncation_listener = truncated
        return log

    def get_log(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get((topic, partition))

    def delete_log(self, topic: str, partition: int) -> None:
        log = self.logs.pop((topic, partition), None)
        self.cleaner_offsets.pop((topic, partition), None)
        stand_in = self.offline.pop((topic, partition), None)
        if stand_in is not None:
            try:
                PartitionLog.delete_directory(self.fs, stand_in.directory, None, 0)
            except OSError as error:
                _log.error("the directory of a deleted offline partition could not be removed",
                          directory=stand_in.directory, error=repr(error))
        if log is not None:
            # Kafka's LogManager waits the broker's delay (not the topic's) before the files go.
            delay = self.default_config.file_delete_delay_ms
            log.delete(self.pending_deletions if delay > 0 else None, self.clock() + delay)

    def checkpoint(self) -> None:
        """Write the recovery points, log start offsets and high watermarks of every log (and
        what the previous checkpoints said of offline ones)."""
        fs = self.fs
        offline = self.offline.items()
        write_offset_checkpoint(fs, f"{self.path}/{RECOVERY_POINT_CHECKPOINT}", {
            **{key: stand_in.recovery_point for key, stand_in in offline if stand_in.recovery_point is not None},
            **{key: log.recovery_point for key, log in self.logs.items()}})
        write_offset_checkpoint(fs, f"{self.path}/{LOG_START_OFFSET_CHECKPOINT}", {
            **{key: stand_in.checkpointed_log_start_offset for key, stand_in in offline
               if stand_in.checkpointed_log_start_offset is not None},
            **{key: log.log_start_offset for key, log in self.logs.items()}})
        write_offset_checkpoint(fs, f"{self.path}/{REPLICATION_OFFSET_CHECKPOINT}", {
            **{key: stand_in.checkpointed_high_watermark for key, stand_in in offline
               if stand_in.checkpointed_high_watermark is not None},
            **{key: log.high_watermark for key, log in self.logs.items()}})
        self.write_cleaner_checkpoint()

    def write_cleaner_checkpoint(self) -> None:
        """Write ``cleaner-offset-checkpoint`` (the log cleaner does after every clean)."""
        write_offset_checkpoint(self.fs, f"{self.path}/{CLEANER_OFFSET_CHECKPOINT}",
                                {key: offset for key, offset in self.cleaner_offsets.items()
                                 if key in self.logs or key in self.offline})

    def flush_all(self) -> None:
        for log in self.logs.values():
            log.flush()

    def delete_pending_files(self) -> int:
        """Unlink the ``*.deleted`` files whose ``file.delete.delay.ms`` has passed (the
        broker's periodic task calls this); returns how many went."""
        return self.pending_deletions.delete_due(self.clock())

    def close(self, broker_epoch: int = -1, threads: int = 1) -> None:
        """Clean shutdown: flush and close every log, checkpoint, write the marker. The fsyncs
        and producer snapshots of different logs run on up to ``threads`` threads (Kafka's
        ``num.recovery.threads.per.data.dir``); see :func:`make_durable`."""
        make_durable(self.fs, list(self.logs.values()), threads)
        for log in self.logs.values():
            log.close()  # its flush and snapshot are done: trims the active indexes, closes the files
        self.checkpoint()
        # Kafka 4.x's CleanShutdownFileHandler shape: numbers, camelCase key.
        marker = json.dumps({"version": 0, "brokerEpoch": broker_epoch}, separators=(",", ":")).encode()
        self.fs.write_file_atomic(f"{self.path}/{CLEAN_SHUTDOWN_FILE}", marker)
        self._release_lock()

    def abandon(self) -> None:
        """Close every log without a flush, a checkpoint or a marker, and release the lock: the
        directory's contents are about to be removed (a broker reset)."""
        for log in self.logs.values():
            log.abandon()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
