"""Offsets committed inside a transaction that has not ended yet (TxnOffsetCommit), as Kafka's
``OffsetMetadataManager`` keeps them (``pendingTransactionalOffsets``, ``openTransactions``).

A transactional offset commit is written to ``__consumer_offsets`` as a transactional batch of
the producer's (``CoordinatorRuntime.write_transactional``) and held here, per producer id, until
the producer's end-transaction marker reaches the same ``__consumer_offsets`` partition
(``GroupCoordinator.complete_transaction``, or the marker read back at load): a COMMIT makes the
offsets the group's committed offsets, an ABORT drops them. Until then the group does not see
them: OffsetFetch answers the committed offset (or none), and with ``require_stable``
UNSTABLE_OFFSET_COMMIT for a partition with a pending one.

The same producer may have pending offsets in several ``__consumer_offsets`` partitions (one per
group it committed for, as a transaction may commit for several groups): a marker completes
only those of its own partition, as each of Kafka's shards holds its own partition's.

Ownership: pure state of the group coordinator (``GroupCoordinator.transactional_offsets``),
changed only by its replay of records and markers, on the broker's event loop.
"""

from __future__ import annotations

from typing import Iterable

OffsetKey = tuple[str, int]  # (topic, partition)


class PendingTransactionalOffsets:
    """Pending offsets by (``__consumer_offsets`` partition, producer id), and the reverse index
    Kafka keeps to answer "has this group partition a pending offset?" without a scan."""

    def __init__(self):
        # (coordinator partition, producer id) -> group -> (topic, partition) -> CommittedOffset
        self._by_producer: dict[tuple[int, int], dict[str, dict[OffsetKey, object]]] = {}
        # group -> (topic, partition) -> producer ids with a pending offset for it
        self._open_by_group: dict[str, dict[OffsetKey, set[int]]] = {}
        # group -> its __consumer_offsets partition, while it has open transactions
        self._partition_of: dict[str, int] = {}

    def add(self, partition: int, producer_id: int, group_id: str, key: OffsetKey, committed) -> None:
        """A transactional offset commit was replayed: the latest one of a producer for a key wins."""
        self._by_producer.setdefault((partition, producer_id), {}).setdefault(group_id, {})[key] = committed
        self._open_by_group.setdefault(group_id, {}).setdefault(key, set()).add(producer_id)
        self._partition_of[group_id] = partition

    def has_pending(self, group_id: str, key: OffsetKey) -> bool:
        return key in self._open_by_group.get(group_id, {})

    def has_open_transactions(self, group_id: str) -> bool:
        return group_id in self._open_by_group

    def keys_of(self, group_id: str) -> list[OffsetKey]:
        """The group's partitions with a pending offset of any producer."""
        return list(self._open_by_group.get(group_id, {}))

    def groups(self) -> list[str]:
        return list(self._open_by_group)

    def pending(self, partition: int, producer_id: int) -> dict[str, dict[OffsetKey, object]]:
        """What ``producer_id`` has pending in ``partition`` (a copy; for tests and tools)."""
        return {group_id: dict(offsets) for group_id, offsets in self._by_producer.get((partition, producer_id), {}).items()}

    def drop(self, group_id: str, keys: Iterable[OffsetKey]) -> None:
        """An offset tombstone (OffsetDelete, DeleteGroups, expiry, a deleted topic): every
        producer's pending offset for these keys goes with the committed one (Kafka's replay of
        a tombstone)."""
        open_keys = self._open_by_group.get(group_id)
        if not open_keys:
            return
        partition = self._partition_of[group_id]
        for key in keys:
            for producer_id in open_keys.pop(key, ()):
                by_group = self._by_producer.get((partition, producer_id), {})
                offsets = by_group.get(group_id, {})
                offsets.pop(key, None)
                if not offsets:
                    by_group.pop(group_id, None)
                if not by_group:
                    self._by_producer.pop((partition, producer_id), None)
        if not open_keys:
            del self._open_by_group[group_id]
            del self._partition_of[group_id]

    def end(self, partition: int, producer_id: int) -> dict[str, dict[OffsetKey, object]]:
        """The producer's marker reached ``partition``: its pending offsets there, removed (empty
        when it has none, which is not an error: Kafka ignores such a marker)."""
        ended = self._by_producer.pop((partition, producer_id), {})
        for group_id, offsets in ended.items():
            open_keys = self._open_by_group.get(group_id, {})
            for key in offsets:
                producers = open_keys.get(key)
                if producers is not None:
                    producers.discard(producer_id)
                    if not producers:
                        del open_keys[key]
            if not open_keys:
                self._open_by_group.pop(group_id, None)
                self._partition_of.pop(group_id, None)
        return ended
