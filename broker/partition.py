"""One partition as the broker sees it: leadership, offsets, durability waits, fetch wake-ups.

Even with a single node a partition carries what replication will need (DESIGN.md):

* ``leader_epoch``: 0 since creation; bumped by leader changes once there is more than one node.
* ``log_start_offset`` / ``log_end_offset``: from the partition log.
* ``high_watermark``: the offset up to which consumers may read. Kafka advances it when every
  in-sync replica has a record; here the leader is the only in-sync replica, so it advances to
  the log end offset right after each append (what Kafka does with replication factor 1).
* ``last_stable_offset``: the high watermark, or below it the first offset of the oldest open
  transaction (from the partition log's producer state).

Durability: with ``odradek.flush.on.acks.all`` (default true) an acks=all produce is answered
only once its records are synced to disk: :meth:`Partition.wait_durable` waits for the data
directory's :class:`~odradek.broker.group_commit.GroupCommit`, whose rounds cover every
partition and every append made before they start.

Owner: the broker's event loop. Nothing here is thread-safe; handlers call it from the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from odradek.storage.errors import KafkaStorageError
from odradek.storage.validation import ORIGIN_CLIENT

from . import recompress


class Partition:
    """A partition this node leads (on one node: every partition)."""

    def __init__(self, topic_name: str, topic_id, index: int, log: Any, node_id: int, group_commit=None):
        self.topic_name = topic_name
        self.topic_id = topic_id
        self.index = index
        self.log = log
        self.node_id = node_id
        self.leader_epoch = 0
        self._min_insync_replicas = 1
        self.downconversion_enabled = True
        self._target_codec: int | None = None  # compression.type "producer": keep as sent
        self._codec_level: int | None = None
        self._fetch_waiters: list[asyncio.Future] = []
        self._group_commit = group_commit  # its data directory's (None: an offline log)

    def __repr__(self) -> str:
        return f"Partition({self.topic_name}-{self.index}, leo={self.log_end_offset}, hw={self.high_watermark})"

    @property
    def offline(self) -> bool:
        """Whether the partition's log could not be opened (the storage engine's OfflineLog
        stands in for it): requests for it are answered KAFKA_STORAGE_ERROR, and Metadata
        reports no leader, as Kafka does for a replica in an offline log directory."""
        return self.log.offline

    def apply_topic_config(self, values: dict) -> None:
        """Take the broker-level parts of the topic's effective config (the log's own parts
        go to the log's LogConfig)."""
        self._min_insync_replicas = values["min.insync.replicas"]
        self.downconversion_enabled = values["message.downconversion.enable"]
        codec = recompress.target_codec(values["compression.type"])
        self._target_codec = codec
        self._codec_level = (None if codec is None else recompress.codec_level(
            codec, values["compression.gzip.level"], values["compression.lz4.level"], values["compression.zstd.level"]))

    @property
    def target_codec(self) -> int | None:
        """The codec ``compression.type`` recompresses to (None: ``producer``, kept as sent)."""
        return self._target_codec

    @property
    def codec_level(self) -> int | None:
        """The level of :attr:`target_codec` (its ``compression.*.level``; None: no recompression)."""
        return self._codec_level

    # --- offsets ---

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def last_stable_offset(self) -> int:
        return self.log.last_stable_offset

    @property
    def leader_id(self) -> int:
        return self.node_id

    @property
    def replicas(self) -> list[int]:
        return [self.node_id]

    @property
    def in_sync_replicas(self) -> list[int]:
        return [self.node_id]

    @property
    def min_insync_replicas(self) -> int:
        """The topic's ``min.insync.replicas`` (set by the broker when configs change)."""
        return self._min_insync_replicas

    @property
    def effective_min_insync_replicas(self) -> int:
        """``min.insync.replicas`` capped at the replication factor, as Kafka's
        Partition.effectiveMinIsr: a setting above it does not refuse acks=all."""
        return min(self._min_insync_replicas, len(self.replicas))

    # --- writes ---

    def append(self, records, origin: str = ORIGIN_CLIENT) -> Any:
        """Validate and append ``records`` (a produce's record set, or a coordinator's batch:
        ``origin`` ORIGIN_COORDINATOR) as the leader. Raises the storage layer's errors (each
        carries the Kafka error code to answer with). The high watermark follows the log end
        offset at once (single replica), and fetches waiting on this partition are woken."""
        if self._target_codec is not None and origin == ORIGIN_CLIENT:
            records = recompress.recompress(records, self._target_codec, self._codec_level)
        info = self.log.append(records, leader_epoch=self.leader_epoch, origin=origin)
        self.log.update_high_watermark(self.log.log_end_offset)
        self._wake_fetchers()
        return info

    def wait_durable(self, end_offset: int) -> asyncio.Future | None:
        """None if every record below ``end_offset`` is durable already, else a future set
        once it is (failing with KAFKA_STORAGE_ERROR if the sync fails)."""
        if self.log.durable_offset >= end_offset:
            return None
        return self._durable_group_commit().wait(self.log, end_offset)

    def when_durable(self, end_offset: int, on_durable: Callable[[BaseException | None], None]) -> bool:
        """False if every record below ``end_offset`` is durable already; else True, and
        ``on_durable(None)`` is called on the loop once it is (``on_durable(error)`` if the
        sync fails): :meth:`wait_durable` without a future, for the produce path."""
        if self.log.durable_offset >= end_offset:
            return False
        self._durable_group_commit().when_durable(self.log, end_offset, on_durable)
        return True

    def _durable_group_commit(self):
        if self._group_commit is None:
            raise KafkaStorageError(f"partition {self.topic_name}-{self.index} has no log to sync")
        return self._group_commit

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: raise the log start offset to ``offset`` (<= high watermark).
        Returns the new log start offset; raises OffsetOutOfRange above the high watermark."""
        return self.log.delete_records_before(offset)

    # --- reads ---

    def active_producers(self) -> list:
        """The producers whose idempotence state the log keeps (DescribeProducers)."""
        return list(self.log.producer_state.producers.values())

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(largest epoch <= ``epoch``, where the next epoch starts or the log end offset);
        (-1, -1) when the leader-epoch cache knows no such epoch (OffsetForLeaderEpoch)."""
        return self.log.leader_epochs.end_offset_for(epoch, self.log.log_end_offset)


    def read(self, fetch_offset: int, max_bytes: int, min_one_batch: bool, isolation_level: int = 0):
        """File regions of the records from ``fetch_offset`` up to the high watermark (or the
        last stable offset for read_committed, with the aborted transactions they overlap), at
        most ``max_bytes`` unless ``min_one_batch`` lets a first batch exceed it. Raises
        OffsetOutOfRange outside [log start, log end]."""
        committed = isolation_level == 1
        upper = self.last_stable_offset if committed else self.high_watermark
        return self.log.read(fetch_offset, max_bytes, max_offset=upper, min_one_batch=min_one_batch,
                             with_aborted_transactions=committed)

    def add_fetch_waiter(self, future: asyncio.Future) -> None:
        self._fetch_waiters.append(future)

    def remove_fetch_waiter(self, future: asyncio.Future) -> None:
        try:
            self._fetch_waiters.remove(future)
        except ValueError:
            pass

    def _wake_fetchers(self) -> None:
        if not self._fetch_waiters:
            return
        waiters, self._fetch_waiters = self._fetch_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def fail_waiters(self, error: BaseException) -> None:
        """The partition goes away (deleted, broker stopping): wake every waiter."""
        self._wake_fetchers()
        if self._group_commit is not None:
            self._group_commit.fail(self.log, error)
