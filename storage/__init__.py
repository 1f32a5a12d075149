"""odradek.storage: partition logs in Apache Kafka's on-disk format.

Knows record batches (by their 61-byte headers) and files; nothing of the network. The pieces
the broker uses:

* :class:`LogDirectory` — one data directory (``log.dirs`` entry): lock, ``meta.properties``,
  checkpoints, clean-shutdown marker, and the :class:`PartitionLog` of every partition in it.
* :class:`PartitionLog` — one partition: ``append`` (validate, assign offsets, write),
  ``flush``/``flush_up_to`` (group commit), ``read`` (file regions the server reads with preadv),
  ``offset_for_timestamp``, retention, ``delete_records_before``, ``truncate_to``.
* :class:`LogConfig` — Kafka's topic config names and defaults.
* :class:`OsFileSystem` (default) and :class:`MemoryFileSystem` (the in-memory backend, with
  simulated crashes and full disks) — pass ``fs=`` to choose.

Errors are :mod:`odradek.storage.errors` classes, each carrying its Kafka error code. On-disk
formats and guarantees: docs/storage.md and each module's docstring.
"""

from .config import LogConfig
from .fs import MemoryFileSystem, OsFileSystem
from .log_directory import LogDirectory
from .partition_log import AppendResult, PartitionLog, ReadResult
from .segment import FileRegion

__all__ = [
    "AppendResult",
    "FileRegion",
    "LogConfig",
    "LogDirectory",
    "MemoryFileSystem",
    "OsFileSystem",
    "PartitionLog",
    "ReadResult",
]
