"""The transaction coordinator: transactional ids, their producer ids and epochs, and the
two-phase end of a transaction, as Kafka's ``TransactionCoordinator`` (semantics, error codes
and state transitions are Kafka 4.4's; ``docs/transactions.md`` tells the story).

It is a shard of the coordinator runtime (:mod:`odradek.broker.coordinators.runtime`) on
``__transaction_state``: every state change is a record (:mod:`.metadata`), appended to the
transactional id's partition, replayed into :attr:`TransactionCoordinator.transactions` in the
same step, and answered once fsynced. The states (Kafka's)::

    Empty --AddPartitions--> Ongoing --EndTxn--> PrepareCommit / PrepareAbort
      ^                                                 | markers written to every partition
      +--InitProducerId-- CompleteCommit / CompleteAbort <+

* **InitProducerId**: a new id gets a producer id and epoch 0; a known one a bumped epoch (its
  open transaction, if any, is aborted first with a fenced epoch and the producer is told to
  retry: CONCURRENT_TRANSACTIONS), or a new producer id once the epoch is exhausted. KIP-360:
  a producer that sends its id and epoch continues with the next epoch, unless another
  producer took the id meanwhile (PRODUCER_FENCED).
* **AddPartitionsToTxn / AddOffsetsToTxn** put partitions into the transaction (Ongoing);
  with transaction version 2 the partitions come implicitly with Produce v12+ and
  TxnOffsetCommit v5+ (:meth:`add_partitions` from those handlers).
* **EndTxn** writes PrepareCommit / PrepareAbort, answers, then writes a COMMIT / ABORT marker
  to every partition of the transaction (for ``__consumer_offsets`` partitions, through the
  group coordinator, which makes the transaction's offsets visible or drops them) and finally
  CompleteCommit / CompleteAbort. A coordinator that loads a partition with a transaction in
  a Prepare state (a crash between the two records) writes its markers again: a marker that is
  already there changes nothing for read_committed readers. With transaction version 2
  (EndTxn v5+) every end bumps the producer epoch, the markers carry the bumped epoch.
* **Timeouts**: every ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` a
  transaction open longer than its timeout is aborted with a fenced epoch, so the producer
  learns of it at its next call; every
  ``transaction.remove.expired.transaction.cleanup.interval.ms`` an id idle (Empty or
  Complete) for ``transactional.id.expiration.ms`` is removed with a tombstone.
* **KIP-890 verification**: :meth:`verify_partition` tells the Produce handler whether a
  partition is in the producer's transaction before its first transactional batch there.

Where odradek departs from Kafka: the coordinator epoch (the ``__transaction_state``
partition's leader epoch on a cluster) is the partition's leader epoch here too, which one node
never bumps; markers are appended by this process to its own partitions rather than sent as
WriteTxnMarkers requests.

Ownership: the Broker's, on its event loop; operations are coroutines whose state change and
append happen in one step of the loop (no other operation sees half of one).
"""

from __future__ import annotations

import asyncio
from typing import Iterable

import structlog

from odradek.protocol import error_codes
from odradek.protocol.errors import ProtocolError
from odradek.protocol.records.batch import build_end_txn_marker_batch
from odradek.storage.validation import ORIGIN_COORDINATOR

from ..coordinators.runtime import CoordinatorResult, CoordinatorRuntime, CoordinatorTopic, coordinator_partition
from .metadata import (
    MAX_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TransactionMetadata, TxnState, decode_record, epoch_exhausted,
    transaction_key, transaction_value,
)

log = structlog.get_logger("odradek.transactions")

TRANSACTION_STATE_TOPIC = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"
TV_2 = 2  # transaction.version from which every end of a transaction bumps the epoch
# How long a marker that could not be written waits before it is tried again (Kafka's marker
# channel retries at its request backoff).
MARKER_RETRY_MS = 100

TRANSACTION_STATE = CoordinatorTopic(
    name=TRANSACTION_STATE_TOPIC, partitions_key="transaction.state.log.num.partitions",
    segment_bytes_key="transaction.state.log.segment.bytes", load_buffer_key="transaction.state.log.load.buffer.size",
    decode=decode_record,
    # Kafka's TransactionLog topic configs: compacted, never compressed, no unclean election.
    fixed_configs=(("cleanup.policy", "compact"), ("compression.type", "uncompressed"),
                   ("unclean.leader.election.enable", "false")),
    broker_configs=(("min.insync.replicas", "transaction.state.log.min.isr"),))


class TransactionCoordinator:
    """The shard of ``__transaction_state`` and the operations of the transaction APIs."""

    def __init__(self, broker, timer=None):
        self.broker = broker
        self.config = broker.config
        self.runtime = CoordinatorRuntime(TRANSACTION_STATE, lambda runtime: self, timer)
        self.transactions: dict[str, TransactionMetadata] = {}
        # Transactional ids whose markers are being written (Prepare state written, Complete not
        # yet durable), with their prepared state, which Describe/ListTransactions show until
        # the Complete record is durable (Kafka shows a transition once it is written); each
        # with a future set when that is over.
        self._completing: dict[str, TransactionMetadata] = {}
        self._completion_done: dict[str, asyncio.Future] = {}
        # The epoch before the last bump, which the log does not keep (Kafka's lastProducerEpoch):
        # set by an operation for the record it writes, taken by that record's replay.
        self._last_epoch_of_write: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        # Transactional id -> a future set once its latest produce request has appended (the
        # Produce handler keeps a producer's appends in the order they were sent while one
        # of them waits for an implicit add).
        self.produce_order: dict[str, asyncio.Future] = {}

    # --- settings ---

    @property
    def transaction_version(self) -> int:
        """The finalized level of the ``transaction.version`` feature."""
        return self.config["odradek.transaction.version"]

    def coordinator_epoch(self, transactional_id: str) -> int:
        partition = self.broker.partition(TRANSACTION_STATE_TOPIC, self.runtime.partition_of(transactional_id))
        return partition.leader_epoch if partition is not None else 0

    # --- lifecycle ---

    def attach_store(self, store) -> None:
        """Persist to ``store`` (a CoordinatorLog of __transaction_state) and replay it in the
        background; then arm the periodic abort of timed-out transactions and the expiry of
        idle transactional ids."""
        self.runtime.load(store)
        self._arm("abort-timed-out", "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                  self.abort_timed_out_transactions)
        self._arm("expire-ids", "transaction.remove.expired.transaction.cleanup.interval.ms",
                  self.expire_transactional_ids)

    def _arm(self, timer_key: str, interval_key: str, work) -> None:
        def fire() -> None:
            if not self.runtime.active:
                return
            self._spawn(work())
            self._arm(timer_key, interval_key, work)
        self.runtime.timer.schedule(("transactions", timer_key), self.config[interval_key], fire)

    def shutdown(self) -> None:
        self.runtime.shutdown()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the shard's side of the runtime ---

    def replay(self, record) -> None:
        if record is None:
            return
        _, transactional_id, metadata = record
        if metadata is None:
            self.transactions.pop(transactional_id, None)
            return
        metadata.last_producer_epoch = self._last_epoch_of_write.pop(transactional_id, NO_PRODUCER_EPOCH)
        self.transactions[transactional_id] = metadata

    def on_loaded(self, partition: int) -> None:
        """Finish what a crash interrupted: a transaction of this partition in a Prepare state
        gets its markers (again) and its Complete record."""
        for metadata in list(self.transactions.values()):
            if metadata.state.preparing and self.runtime.partition_of(metadata.transactional_id) == partition:
                self._start_completion(metadata)

    def on_unloaded(self, partition: int) -> None:
        for transactional_id in [tid for tid in self.transactions if self.runtime.partition_of(tid) == partition]:
            del self.transactions[transactional_id]

    # --- writing a state ---

    async def _write(self, metadata: TransactionMetadata) -> int:
        """Append ``metadata`` as its id's record; it is the state once the call returns NONE
        (the replay applied it as it was appended; the answer waits for the fsync)."""
        def operation() -> CoordinatorResult:
            self._last_epoch_of_write[metadata.transactional_id] = metadata.last_producer_epoch
            return CoordinatorResult(records=[(transaction_key(metadata.transactional_id),
                                               transaction_value(metadata, self.transaction_version))])
        error, _ = await self.runtime.write(metadata.transactional_id, operation)
        if error != error_codes.NONE:
            self._last_epoch_of_write.pop(metadata.transactional_id, None)
        return error

    def _next_producer_id(self) -> int:
        return self.broker.producer_ids.next_producer_id()

    # --- InitProducerId ---

    async def init_producer_id(self, transactional_id: str, timeout_ms: int, expected_producer_id: int = NO_PRODUCER_ID,
                               expected_epoch: int = NO_PRODUCER_EPOCH) -> tuple[int, int, int]:
        """(error code, producer id, epoch) for InitProducerId with a transactional id."""
        failed = (NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
        if transactional_id == "":
            return (error_codes.INVALID_REQUEST, *failed)
        if not 0 < timeout_ms <= self.config["transaction.max.timeout.ms"]:
            return (error_codes.INVALID_TRANSACTION_TIMEOUT, *failed)
        if (error := self.runtime.availability(transactional_id)) != error_codes.NONE:
            return (error, *failed)
        now = self.runtime.now_ms()
        metadata = self.transactions.get(transactional_id)
        if metadata is None:
            metadata = TransactionMetadata(transactional_id, self._next_producer_id(), timeout_ms=timeout_ms,
                                           last_update_ms=now)
        expected = expected_producer_id if expected_producer_id != NO_PRODUCER_ID else None
        if metadata.fence_pending or transactional_id in self._completing:
            return (error_codes.CONCURRENT_TRANSACTIONS, *failed)
        if expected is not None and not (
                metadata.producer_epoch == NO_PRODUCER_EPOCH or expected == metadata.producer_id
                or (expected == metadata.previous_producer_id and epoch_exhausted(expected_epoch))):
            return (error_codes.PRODUCER_FENCED, *failed)
        if metadata.state.preparing:
            return (error_codes.CONCURRENT_TRANSACTIONS, *failed)
        if metadata.state == TxnState.ONGOING:
            # Abort the open transaction with a fenced epoch; the producer retries and then gets
            # the epoch after it (Kafka never returns the fencing epoch itself).
            error, _, _ = await self._fence_and_abort(metadata)
            return (error if error != error_codes.NONE else error_codes.CONCURRENT_TRANSACTIONS, *failed)
        if epoch_exhausted(metadata.producer_epoch) and (expected is None or expected_epoch == metadata.producer_epoch):
            updated = metadata.but(producer_id=self._next_producer_id(), previous_producer_id=metadata.producer_id,
                                   producer_epoch=0,
                                   last_producer_epoch=metadata.producer_epoch if expected is not None
                                   else NO_PRODUCER_EPOCH,
                                   next_producer_id=NO_PRODUCER_ID)
        else:
            bumped = metadata.producer_epoch + 1
            if expected is None:
                epochs = (bumped, NO_PRODUCER_EPOCH)
            elif metadata.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == metadata.producer_epoch:
                epochs = (bumped, metadata.producer_epoch)
            elif expected_epoch == metadata.last_producer_epoch:
                epochs = (metadata.producer_epoch, metadata.last_producer_epoch)  # a retry of a bump that succeeded
            else:
                return (error_codes.PRODUCER_FENCED, *failed)
            updated = metadata.but(producer_epoch=epochs[0], last_producer_epoch=epochs[1],
                                   previous_producer_id=metadata.producer_id, next_producer_id=NO_PRODUCER_ID)
        updated = updated.but(timeout_ms=timeout_ms, state=TxnState.EMPTY, partitions=frozenset(), start_ms=-1,
                              last_update_ms=now)
        error = await self._write(updated)
        if error != error_codes.NONE:
            return (error, *failed)
        log.info("initialized transactional id", transactional_id=transactional_id, producer_id=updated.producer_id,
                 producer_epoch=updated.producer_epoch)
        return error_codes.NONE, updated.producer_id, updated.producer_epoch

    # --- partitions of a transaction ---

    def _check_producer(self, transactional_id: str, producer_id: int, producer_epoch: int) -> tuple[int, TransactionMetadata | None]:
        if not transactional_id:
            return error_codes.INVALID_REQUEST, None
        if (error := self.runtime.availability(transactional_id)) != error_codes.NONE:
            return error, None
        metadata = self.transactions.get(transactional_id)
        if metadata is None or metadata.producer_id != producer_id:
            return error_codes.INVALID_PRODUCER_ID_MAPPING, None
        if metadata.producer_epoch != producer_epoch:
            return error_codes.PRODUCER_FENCED, None
        return error_codes.NONE, metadata

    async def add_partitions_for_produce(self, transactional_id: str, producer_id: int, producer_epoch: int,
                                         partitions: Iterable[tuple[str, int]]) -> int:
        """The implicit add of a Produce v12+ (transaction version 2). While the producer's
        previous transaction is still being completed (CONCURRENT_TRANSACTIONS) it is tried
        again, as Kafka's broker does, once that completion is done or after
        ``add.partitions.to.txn.retry.backoff.ms``, for at most
        ``add.partitions.to.txn.retry.backoff.max.ms``: the producer need not back off itself."""
        partitions = frozenset(partitions)
        deadline = self.runtime.now_ms() + self.config["add.partitions.to.txn.retry.backoff.max.ms"]
        while True:
            error = await self.add_partitions(transactional_id, producer_id, producer_epoch, partitions,
                                              client_transaction_version=TV_2)
            remaining = deadline - self.runtime.now_ms()
            if error != error_codes.CONCURRENT_TRANSACTIONS or remaining <= 0:
                return error
            wait_ms = min(remaining, self.config["add.partitions.to.txn.retry.backoff.ms"])
            completion = self._completion_done.get(transactional_id)
            if completion is None:
                await asyncio.sleep(wait_ms / 1000)
            else:
                await asyncio.wait([completion], timeout=wait_ms / 1000)

    async def add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                             partitions: Iterable[tuple[str, int]], client_transaction_version: int | None = None) -> int:
        """Put ``partitions`` into the producer's transaction (AddPartitionsToTxn,
        AddOffsetsToTxn, and the implicit add of transaction version 2, which passes
        ``client_transaction_version``). The error code for all of them."""
        partitions = frozenset(partitions)
        error, metadata = self._check_producer(transactional_id, producer_id, producer_epoch)
        if error != error_codes.NONE:
            return error
        if metadata.fence_pending or transactional_id in self._completing or metadata.state.preparing:
            return error_codes.CONCURRENT_TRANSACTIONS
        if metadata.state == TxnState.ONGOING and partitions <= metadata.partitions:
            return error_codes.NONE
        now = self.runtime.now_ms()
        starting = metadata.state in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)
        changes = {}
        if client_transaction_version is not None:
            changes["client_transaction_version"] = client_transaction_version
        updated = metadata.but(state=TxnState.ONGOING, partitions=metadata.partitions | partitions,
                               start_ms=now if starting else metadata.start_ms, last_update_ms=now,
                               previous_producer_id=metadata.producer_id, **changes)
        return await self._write(updated)

    def verify_partition(self, transactional_id: str, producer_id: int, producer_epoch: int,
                         topic: str, index: int) -> int:
        """KIP-890 part 1: NONE if the partition is in the producer's transaction, else the
        coordinator's answer (TRANSACTION_ABORTABLE when it is not; Kafka's
        handleVerifyPartitionsInTransaction)."""
        error, metadata = self._check_producer(transactional_id, producer_id, producer_epoch)
        if error != error_codes.NONE:
            return error
        if metadata.state.preparing:
            return error_codes.CONCURRENT_TRANSACTIONS
        return error_codes.NONE if (topic, index) in metadata.partitions else error_codes.TRANSACTION_ABORTABLE

    @staticmethod
    def verification_answer(code: int, knows_abortable: bool) -> int:
        """What a write that asked for verification (a produce, a TxnOffsetCommit) is told
        of the coordinator's answer, as Kafka's AddPartitionsToTxnManager translates it:
        PRODUCER_FENCED as INVALID_PRODUCER_EPOCH (what producers expect from a partition),
        TRANSACTION_ABORTABLE as INVALID_TXN_STATE to a client of a version that does not know
        it."""
        if code == error_codes.PRODUCER_FENCED:
            return error_codes.INVALID_PRODUCER_EPOCH
        if code == error_codes.TRANSACTION_ABORTABLE and not knows_abortable:
            return error_codes.INVALID_TXN_STATE
        return code

    # --- EndTxn ---

    async def end_transaction(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool,
                              client_transaction_version: int, from_client: bool = True) -> tuple[int, int, int]:
        """(error code, producer id, epoch) for EndTxn: the Prepare record is durable when this
        returns NONE; the markers and the Complete record follow in the background."""
        failed = (NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
        if not transactional_id:
            return (error_codes.INVALID_REQUEST, *failed)
        if (error := self.runtime.availability(transactional_id)) != error_codes.NONE:
            return (error, *failed)
        metadata = self.transactions.get(transactional_id)
        if metadata is None:
            return (error_codes.INVALID_PRODUCER_ID_MAPPING, *failed)
        # Kafka 4.4 ends a transaction by the request's transaction version: below 2 (EndTxn
        # v0-4) the epoch must be the current one; from 2 (EndTxn v5+) a retry of an end whose
        # epoch bump the client did not hear of is recognised too. A fencing abort (a timeout,
        # a new producer) is checked as below 2 whatever the version.
        at_least_v2 = not metadata.fence_pending and client_transaction_version >= TV_2
        # A TV2 client retrying an EndTxn whose epoch bump overflowed to a new producer id, or
        # whose bump it never heard of.
        retry_on_overflow = (at_least_v2 and metadata.previous_producer_id == producer_id
                             and producer_epoch == MAX_EPOCH - 1 and metadata.producer_epoch == 0)
        retry_on_bump = at_least_v2 and metadata.producer_epoch == producer_epoch + 1
        retry = retry_on_bump or retry_on_overflow
        if at_least_v2:
            if metadata.state in (TxnState.ONGOING, TxnState.EMPTY, TxnState.DEAD):
                valid_epoch = producer_epoch == metadata.producer_epoch
            elif metadata.state.preparing:
                valid_epoch = retry_on_bump
            else:
                valid_epoch = retry or producer_epoch == metadata.producer_epoch
        else:
            valid_epoch = (not from_client or producer_epoch == metadata.producer_epoch) \
                and producer_epoch >= metadata.producer_epoch
        if metadata.producer_id != producer_id and not retry_on_overflow:
            return (error_codes.INVALID_PRODUCER_ID_MAPPING, *failed)
        if not valid_epoch:
            return (error_codes.PRODUCER_FENCED, *failed)
        if transactional_id in self._completing and not metadata.state.preparing:
            return (error_codes.CONCURRENT_TRANSACTIONS, *failed)
        state = metadata.state
        # With transaction version 2 a client may abort a transaction to which it added nothing
        # (Kafka's noPartitionAdded: a Prepare/Complete pair with no marker, and a new epoch).
        empty_abort = at_least_v2 and not commit and not retry and state in (
            TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)
        if (state == TxnState.COMPLETE_COMMIT or state == TxnState.COMPLETE_ABORT) and not empty_abort:
            if (state == TxnState.COMPLETE_COMMIT) == commit and (retry or not at_least_v2):
                return error_codes.NONE, metadata.producer_id, metadata.producer_epoch  # a retry of a finished end
            return (error_codes.INVALID_TXN_STATE, *failed)
        if state.preparing:
            if (state == TxnState.PREPARE_COMMIT) == commit:
                return (error_codes.CONCURRENT_TRANSACTIONS, *failed)
            return (error_codes.INVALID_TXN_STATE, *failed)
        if state != TxnState.ONGOING and not empty_abort:
            return (error_codes.INVALID_TXN_STATE, *failed)
        epoch, last_epoch, next_producer_id = metadata.producer_epoch, metadata.last_producer_epoch, NO_PRODUCER_ID
        if client_transaction_version >= TV_2:
            # Every end bumps the epoch once, a fencing abort included: Kafka's transaction
            # version 2 end does not take the fencing epoch but bumps the current one, so a
            # producer aborted for its timeout or by a new producer ends at epoch + 1 (Kafka
            # 4.4.0's kafka-transactions describe shows it so), not + 2.
            if epoch_exhausted(epoch):
                next_producer_id = self._next_producer_id()
            if epoch < MAX_EPOCH:
                epoch, last_epoch = epoch + 1, epoch
        elif metadata.fence_pending:
            epoch, last_epoch = producer_epoch, NO_PRODUCER_EPOCH  # the fencing epoch, bumped by the caller
        updated = metadata.but(
            state=TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT, producer_epoch=epoch,
            last_producer_epoch=last_epoch, next_producer_id=next_producer_id, previous_producer_id=metadata.producer_id,
            client_transaction_version=client_transaction_version, last_update_ms=self.runtime.now_ms())
        if empty_abort:
            updated = updated.but(partitions=frozenset(), start_ms=updated.last_update_ms)
        error = await self._write(updated)
        if error != error_codes.NONE:
            if metadata.fence_pending and transactional_id in self.transactions:
                self.transactions[transactional_id].fence_pending = False
            return (error, *failed)
        prepared = self.transactions.get(transactional_id)
        if prepared is None or not prepared.state.preparing:
            return (error_codes.NOT_COORDINATOR, *failed)
        self._start_completion(prepared)
        if prepared.next_producer_id != NO_PRODUCER_ID:
            return error_codes.NONE, prepared.next_producer_id, 0
        return error_codes.NONE, prepared.producer_id, prepared.producer_epoch

    async def _fence_and_abort(self, metadata: TransactionMetadata) -> tuple[int, int, int]:
        """Abort ``metadata``'s open transaction with a bumped epoch, which fences its producer
        (Kafka's prepareFenceProducerEpoch, then an abort not from the client, with the
        server's transaction version)."""
        fencing_epoch = metadata.producer_epoch + 1
        metadata.fence_pending = True
        try:
            return await self.end_transaction(metadata.transactional_id, metadata.producer_id, fencing_epoch,
                                              commit=False, client_transaction_version=self.transaction_version,
                                              from_client=False)
        finally:
            current = self.transactions.get(metadata.transactional_id)
            if current is not None:
                current.fence_pending = False

    # --- markers and completion ---

    def _start_completion(self, metadata: TransactionMetadata) -> None:
        if metadata.transactional_id in self._completing:
            return
        self._completing[metadata.transactional_id] = metadata
        self._completion_done[metadata.transactional_id] = asyncio.get_running_loop().create_future()
        self._spawn(self._complete(metadata))

    async def _complete(self, prepared: TransactionMetadata) -> None:
        """Write the markers of a prepared transaction, then its Complete record."""
        transactional_id = prepared.transactional_id
        commit = prepared.state == TxnState.PREPARE_COMMIT
        try:
            coordinator_epoch = self.coordinator_epoch(transactional_id)
            pending = sorted(prepared.partitions)
            while pending:
                if not self.runtime.active or not self.runtime.is_loaded(transactional_id):
                    return  # shut down or unloaded: the next owner finishes it from the log
                # Every marker is appended before any fsync is awaited: one flush round covers them.
                errors = await asyncio.gather(*(
                    self.write_marker(topic, index, prepared.producer_id, prepared.producer_epoch, coordinator_epoch,
                                      commit) for topic, index in pending))
                retry = []
                for (topic, index), error in zip(pending, errors):
                    if error in (error_codes.NONE, error_codes.UNKNOWN_TOPIC_OR_PARTITION):
                        continue  # written, or the partition was deleted with its transaction's records
                    if error in (error_codes.INVALID_PRODUCER_EPOCH, error_codes.TRANSACTION_COORDINATOR_FENCED):
                        # A newer epoch already wrote there (Kafka stops sending this marker).
                        log.warning("transaction marker refused as fenced", transactional_id=transactional_id,
                                    topic=topic, partition=index, error_code=error)
                        continue
                    log.warning("transaction marker not written; retrying", transactional_id=transactional_id,
                                topic=topic, partition=index, error_code=error)
                    retry.append((topic, index))
                pending = retry
                if pending:
                    await asyncio.sleep(MARKER_RETRY_MS / 1000)
            current = self.transactions.get(transactional_id)
            if current is None or current.state != prepared.state or current.producer_id != prepared.producer_id:
                return
            completed = current.but(
                state=TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT,
                producer_id=current.next_producer_id if current.next_producer_id != NO_PRODUCER_ID else current.producer_id,
                producer_epoch=0 if current.next_producer_id != NO_PRODUCER_ID else current.producer_epoch,
                last_producer_epoch=current.producer_epoch, previous_producer_id=current.producer_id,
                next_producer_id=NO_PRODUCER_ID, partitions=frozenset(), last_update_ms=self.runtime.now_ms())
            error = await self._write(completed)
            if error != error_codes.NONE:
                log.warning("could not write a transaction's completion", transactional_id=transactional_id,
                            error_code=error)
        finally:
            self._completing.pop(transactional_id, None)
            done = self._completion_done.pop(transactional_id, None)
            if done is not None and not done.done():
                done.set_result(None)

    async def write_marker(self, topic: str, index: int, producer_id: int, producer_epoch: int,
                           coordinator_epoch: int, commit: bool) -> int:
        """Append a COMMIT / ABORT marker of ``producer_id`` to a partition and wait until it
        is durable, as a WriteTxnMarkers request to its leader does; the error code. Markers
        of ``__consumer_offsets`` go through the group coordinator, which completes the
        transaction's offsets with them."""
        if topic == OFFSETS_TOPIC:
            return await self.broker.group_coordinator.complete_transaction(
                index, producer_id, producer_epoch, coordinator_epoch, commit)
        partition = self.broker.partition(topic, index)
        if partition is None:
            return error_codes.UNKNOWN_TOPIC_OR_PARTITION
        batch = build_end_txn_marker_batch(commit, producer_id=producer_id, producer_epoch=producer_epoch,
                                           coordinator_epoch=coordinator_epoch, timestamp=self.runtime.now_ms())
        try:
            appended = partition.append(batch, origin=ORIGIN_COORDINATOR)
            if self.config["odradek.flush.on.acks.all"]:
                synced = partition.wait_durable(appended.last_offset + 1)
                if synced is not None:
                    await synced
        except ProtocolError as error:
            return error.error_code
        except OSError:
            return error_codes.KAFKA_STORAGE_ERROR
        return error_codes.NONE

    # --- timeouts ---

    async def abort_timed_out_transactions(self) -> None:
        """Abort every transaction open longer than its timeout (Kafka's abortTimedOutTransactions)."""
        now = self.runtime.now_ms()
        for metadata in list(self.transactions.values()):
            if (metadata.state != TxnState.ONGOING or metadata.fence_pending
                    or metadata.transactional_id in self._completing
                    or not self.runtime.is_loaded(metadata.transactional_id)
                    or metadata.start_ms + metadata.timeout_ms >= now):
                continue
            error, _, _ = await self._fence_and_abort(metadata)
            if error == error_codes.NONE:
                log.info("aborted a timed-out transaction", transactional_id=metadata.transactional_id,
                         producer_id=metadata.producer_id)
            else:
                log.debug("could not abort a timed-out transaction", transactional_id=metadata.transactional_id,
                          error_code=error)

    async def expire_transactional_ids(self) -> None:
        """Remove ids idle longer than ``transactional.id.expiration.ms`` (a tombstone each)."""
        horizon = self.runtime.now_ms() - self.config["transactional.id.expiration.ms"]
        for metadata in list(self.transactions.values()):
            transactional_id = metadata.transactional_id
            if (not metadata.state.expiration_allowed or metadata.last_update_ms > horizon or metadata.fence_pending
                    or transactional_id in self._completing or not self.runtime.is_loaded(transactional_id)):
                continue
            error, _ = await self.runtime.write(
                transactional_id, lambda tid=transactional_id: CoordinatorResult(records=[(transaction_key(tid), None)]))
            if error == error_codes.NONE:
                log.info("expired a transactional id", transactional_id=transactional_id)

    # --- describing ---

    def describe(self, transactional_id: str) -> tuple[int, TransactionMetadata | None]:
        """(error code, state) for DescribeTransactions."""
        if not self.runtime.active:
            return error_codes.COORDINATOR_NOT_AVAILABLE, None
        if not transactional_id:
            return error_codes.INVALID_REQUEST, None
        if (error := self.runtime.availability(transactional_id)) != error_codes.NONE:
            return error, None
        metadata = self._completing.get(transactional_id) or self.transactions.get(transactional_id)
        if metadata is None or metadata.state == TxnState.DEAD:
            return error_codes.TRANSACTIONAL_ID_NOT_FOUND, None
        return error_codes.NONE, metadata

    def listing(self) -> tuple[int, list[TransactionMetadata]]:
        """(error code, every known transactional id's state) for ListTransactions."""
        if (error := self.runtime.availability()) != error_codes.NONE:
            return error, []
        return error_codes.NONE, [self._completing.get(metadata.transactional_id, metadata)
                                  for metadata in self.transactions.values() if metadata.state != TxnState.DEAD]

    def partition_for_group(self, group_id: str) -> int:
        """The ``__consumer_offsets`` partition of ``group_id`` (AddOffsetsToTxn adds it)."""
        return coordinator_partition(group_id, self.broker.group_coordinator.partition_count)
