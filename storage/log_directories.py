"""Every data directory of ``log.dirs`` together, as Kafka's ``LogManager`` keeps them.

Each directory is a :class:`~odradek.storage.log_directory.LogDirectory` of its own: its
``meta.properties`` (the same ``node.id`` and ``cluster.id`` in all, a ``directory.id`` of its
own), its ``.lock``, its checkpoints and clean-shutdown marker, and the partition directories
placed in it. At start every directory is opened and recovered; a partition found in two
directories refuses the start (Kafka: "Duplicate log directories for ... are found in both"),
as does a ``directory.id`` shared by two directories (a copied directory) or one directory
named twice. A new partition goes to the directory holding the fewest partitions, the first
listed on a tie (Kafka's ``LogManager.nextLogDirs``), so a topic's partitions may span
directories. With one directory this is a thin wrapper: every lookup is one dict access.

Thread safety: single-threaded, owned by the broker's event loop; the one owner of every
partition log the directories hold.
"""

from __future__ import annotations

import os
import uuid

from .checkpoints import CorruptCheckpoint, read_meta_properties
from .config import LogConfig
from .errors import InconsistentLogDirectory
from .fs import OsFileSystem
from .log_directory import META_PROPERTIES, LogDirectory, OfflineLog
from .partition_log import PartitionLog, _system_clock_ms


def stored_cluster_id(fs, paths: list[str]) -> str | None:
    """The ``cluster.id`` recorded in the first of ``paths`` whose ``meta.properties`` has one."""
    for path in paths:
        meta_path = f"{path}/{META_PROPERTIES}"
        if fs.exists(meta_path):
            try:
                stored = read_meta_properties(fs, meta_path) or {}
            except CorruptCheckpoint:
                continue  # opening that directory refuses the start, naming the file
            if stored.get("cluster.id"):
                return stored["cluster.id"]
    return None


class LogDirectories:
    def __init__(self, directories: list[LogDirectory]):
        self.directories = directories
        self.logs: dict[tuple[str, int], PartitionLog] = {}
        self._directory_of: dict[tuple[str, int], LogDirectory] = {}
        # Partitions whose log could not be opened at start, with the directory holding them.
        self.offline: dict[tuple[str, int], OfflineLog] = {}
        for directory in directories:
            for key, stand_in in directory.offline.items():
                self.offline[key] = stand_in
                self._directory_of.setdefault(key, directory)
            for key, log in directory.logs.items():
                previous = self._directory_of.get(key)
                if previous is not None:
                    raise InconsistentLogDirectory(
                        f"Duplicate log directories for {key[0]}-{key[1]} are found in both {log.directory} and "
                        f"{previous.logs[key].directory}. Delete the copy that is known to be stale.")
                self.logs[key] = log
                self._directory_of[key] = directory

    @classmethod
    def open(cls, paths: list[str], *, node_id: int, cluster_id: str | None = None, fs=None,
             default_config: LogConfig | None = None, topic_configs: dict[str, LogConfig] | None = None,
             clock=_system_clock_ms, recovery_threads: int = 1) -> "LogDirectories":
        """Open (creating where needed) every directory of ``paths`` and the logs in them;
        the same arguments as :meth:`LogDirectory.open`, for each directory."""
        fs = fs or OsFileSystem()
        normalized = [os.path.normpath(path) for path in paths]
        if not normalized:
            raise ValueError("no data directory given")
        duplicates = sorted({path for path in normalized if normalized.count(path) > 1})
        if duplicates:
            raise InconsistentLogDirectory(f"Duplicate log directory found: {', '.join(duplicates)}")
        opened: list[LogDirectory] = []
        try:
            for path in normalized:
                directory = LogDirectory.open(path, node_id=node_id, cluster_id=cluster_id, fs=fs,
                                              default_config=default_config, topic_configs=topic_configs, clock=clock,
                                              recovery_threads=recovery_threads)
                opened.append(directory)
                # A directory formatted now takes the cluster id of the ones already open.
                cluster_id = cluster_id or directory.cluster_id
            ids: dict[uuid.UUID, str] = {}
            for directory in opened:
                if directory.directory_id in ids:
                    raise InconsistentLogDirectory(
                        f"{directory.path} and {ids[directory.directory_id]} have the same directory.id "
                        f"{directory.directory_id} in their {META_PROPERTIES} (a copied directory?)")
                ids[directory.directory_id] = directory.path
            return cls(opened)
        except BaseException:
            for directory in opened:
                directory._release_lock()
            raise

    @property
    def cluster_id(self) -> str | None:
        return next((directory.cluster_id for directory in self.directories if directory.cluster_id), None)

    @property
    def had_clean_shutdown(self) -> bool:
        return all(directory.had_clean_shutdown for directory in self.directories)

    # -------------------------------------------------------------------------------- logs
    def create_log(self, topic: str, partition: int, *, topic_id: uuid.UUID | None = None,
                   config: LogConfig | None = None) -> PartitionLog:
        """Open the log of a new partition in the directory with the fewest partitions (or
        return the existing one, wherever it is)."""
        key = (topic, partition)
        log = self.logs.get(key)
        if log is not None:
            return log
        if key in self.offline:
            raise ValueError(f"{topic}-{partition} is offline: its log cannot be created again")
        directories = self.directories
        directory = directories[0] if len(directories) == 1 else min(
            directories, key=lambda candidate: len(candidate.logs))  # min keeps the first of equals
        log = directory.create_log(topic, partition, topic_id=topic_id, config=config)
        self.logs[key] = log
        self._directory_of[key] = directory
        return log

    def get_log(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get((topic, partition))

    def offline_log(self, topic: str, partition: int) -> OfflineLog | None:
        """The stand-in of a partition whose log could not be opened at start, if it is one."""
        return self.offline.get((topic, partition))

    def directory_of(self, topic: str, partition: int) -> LogDirectory | None:
        return self._directory_of.get((topic, partition))

    def delete_log(self, topic: str, partition: int) -> None:
        key = (topic, partition)
        directory = self._directory_of.pop(key, None)
        self.logs.pop(key, None)
        self.offline.pop(key, None)
        if directory is not None:
            directory.delete_log(topic, partition)

    def checkpoint(self) -> None:
        for directory in self.directories:
            directory.checkpoint()

    def delete_pending_files(self) -> int:
        return sum(directory.delete_pending_files() for directory in self.directories)

    def flush_all(self) -> None:
        for directory in self.directories:
            directory.flush_all()

    def abandon(self) -> None:
        """Close every directory's logs without making anything durable and release the locks
        (a broker reset removes the directories' contents next)."""
        for directory in self.directories:
            directory.abandon()

    def close(self, broker_epoch: int = -1, threads_per_directory: int = 1) -> None:
        """Clean shutdown of every directory (its logs' fsyncs on ``threads_per_directory``
        threads); one failing (no marker: it recovers at the next start) does not keep the
        others from closing cleanly. The first failure is raised."""
        failure = None
        for directory in self.directories:
            try:
                directory.close(broker_epoch, threads_per_directory)
            except Exception as error:  # noqa: BLE001 - re-raised below
                failure = failure or error
        if failure is not None:
            raise failure
