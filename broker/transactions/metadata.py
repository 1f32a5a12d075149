"""A transactional id's state and its records in ``__transaction_state``, in Kafka's formats.

The transaction coordinator keeps, per transactional id, what Kafka's ``TransactionMetadata``
keeps: the producer id and epoch handed out, the previous producer id (KIP-360 recovery after
an epoch overflow) and the next one (an epoch bump at the end of a transaction that overflows
the epoch, transaction version 2), the last epoch (a retried InitProducerId), the timeout, the
state, the partitions of the open transaction, when it started and was last updated, and the
transaction version of the client that ended it last.

Records (schemas from Kafka's transaction-coordinator jar, as Kafka's ``TransactionLog``
writes them): the key is an int16 version (0) followed by ``TransactionLogKey`` (the
transactional id); the value an int16 version followed by ``TransactionLogValue``: version 0
while ``transaction.version`` is 0, version 1 (flexible: previous and next producer ids, the
client's transaction version as tagged fields) from 1 on. A null value is a tombstone: the
transactional id expired (``transactional.id.expiration.ms``).

Ownership: pure data and codecs; the transaction coordinator owns the instances.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field, replace

from odradek.protocol.errors import DecodeError
from odradek.protocol.messages.records.transaction_log_key import TransactionLogKey
from odradek.protocol.messages.records.transaction_log_value import PartitionsSchema, TransactionLogValue

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_EPOCH = 32767  # Short.MaxValue: never handed out, so that the coordinator can always fence

_VERSION = struct.Struct(">h")
KEY_VERSION = 0


class TxnState(enum.Enum):
    """Kafka's transaction states: (id in the log, name as DescribeTransactions and
    ListTransactions show it)."""

    EMPTY = (0, "Empty")
    ONGOING = (1, "Ongoing")
    PREPARE_COMMIT = (2, "PrepareCommit")
    PREPARE_ABORT = (3, "PrepareAbort")
    COMPLETE_COMMIT = (4, "CompleteCommit")
    COMPLETE_ABORT = (5, "CompleteAbort")
    DEAD = (6, "Dead")
    PREPARE_EPOCH_FENCE = (7, "PrepareEpochFence")

    @property
    def log_id(self) -> int:
        return self.value[0]

    @property
    def display_name(self) -> str:
        return self.value[1]

    @classmethod
    def from_log_id(cls, log_id: int) -> "TxnState":
        for state in cls:
            if state.log_id == log_id:
                return state
        raise DecodeError(f"unknown transaction state {log_id} in a __transaction_state record")

    @classmethod
    def from_name(cls, name: str) -> "TxnState | None":
        return next((state for state in cls if state.display_name == name), None)

    @property
    def expiration_allowed(self) -> bool:
        """A transactional id in this state may expire (Kafka's isExpirationAllowed)."""
        return self in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)

    @property
    def preparing(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)


def epoch_exhausted(epoch: int) -> bool:
    """No further epoch may be handed out for this producer id (Kafka's isEpochExhausted)."""
    return epoch >= MAX_EPOCH - 1


@dataclass(slots=True)
class TransactionMetadata:
    """One transactional id's state (module doc). ``partitions`` is a set of (topic, index).
    ``fence_pending`` is in memory only: an abort of this id's open transaction with a fenced
    (bumped) epoch is under way (Kafka's pendingState PrepareEpochFence)."""

    transactional_id: str
    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    previous_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    timeout_ms: int = 0
    state: TxnState = TxnState.EMPTY
    partitions: frozenset = field(default_factory=frozenset)
    start_ms: int = -1
    last_update_ms: int = -1
    client_transaction_version: int = 0
    fence_pending: bool = False

    def but(self, **changes) -> "TransactionMetadata":
        """A copy with ``changes`` (the record an operation writes is built from one)."""
        return replace(self, fence_pending=False, **changes)


# --- records ---

def transaction_key(transactional_id: str) -> bytes:
    return _VERSION.pack(KEY_VERSION) + TransactionLogKey(transactional_id=transactional_id).encode(KEY_VERSION)


def transaction_value(metadata: TransactionMetadata, transaction_version: int) -> bytes:
    """The value Kafka writes for ``metadata`` with ``transaction.version`` at
    ``transaction_version`` (value version 0 below 1, else 1)."""
    version = 0 if transaction_version < 1 else 1
    by_topic: dict[str, list[int]] = {}
    for topic, index in sorted(metadata.partitions):
        by_topic.setdefault(topic, []).append(index)
    flexible = {} if version == 0 else dict(  # tagged fields, which version 0 does not have
        previous_producer_id=metadata.previous_producer_id, next_producer_id=metadata.next_producer_id,
        client_transaction_version=metadata.client_transaction_version)
    value = TransactionLogValue(
        producer_id=metadata.producer_id, producer_epoch=metadata.producer_epoch,
        transaction_timeout_ms=metadata.timeout_ms, transaction_status=metadata.state.log_id,
        transaction_partitions=None if metadata.state == TxnState.EMPTY else [
            PartitionsSchema(topic=topic, partition_ids=indexes) for topic, indexes in by_topic.items()],
        transaction_last_update_timestamp_ms=metadata.last_update_ms,
        transaction_start_timestamp_ms=metadata.start_ms, **flexible)
    return _VERSION.pack(version) + value.encode(version)


def decode_record(key, value):
    """``("txn", transactional id, TransactionMetadata | None)`` for a ``__transaction_state``
    record (None: a tombstone). Raises DecodeError / UnsupportedVersion for other bytes."""
    if key is None or len(key) < 2:
        raise DecodeError("a __transaction_state key needs a 2-byte version")
    key_version = _VERSION.unpack_from(key, 0)[0]
    if key_version != KEY_VERSION:
        raise DecodeError(f"unknown __transaction_state key version {key_version}")
    transactional_id = TransactionLogKey.decode(memoryview(key)[2:], KEY_VERSION).transactional_id
    if value is None:
        return ("txn", transactional_id, None)
    if len(value) < 2:
        raise DecodeError("a __transaction_state value needs a 2-byte version")
    version = _VERSION.unpack_from(value, 0)[0]
    decoded = TransactionLogValue.decode(memoryview(value)[2:], version)
    partitions = frozenset((entry.topic, index) for entry in (decoded.transaction_partitions or ())
                           for index in entry.partition_ids)
    return ("txn", transactional_id, TransactionMetadata(
        transactional_id=transactional_id, producer_id=decoded.producer_id,
        producer_epoch=decoded.producer_epoch,
        last_producer_epoch=NO_PRODUCER_EPOCH,  # not in the log: Kafka keeps it in memory only
        previous_producer_id=decoded.previous_producer_id, next_producer_id=decoded.next_producer_id,
        timeout_ms=decoded.transaction_timeout_ms, state=TxnState.from_log_id(decoded.transaction_status),
        partitions=partitions, start_ms=decoded.transaction_start_timestamp_ms,
        last_update_ms=decoded.transaction_last_update_timestamp_ms,
        client_transaction_version=decoded.client_transaction_version))
