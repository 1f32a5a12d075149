"""Incremental fetch sessions (KIP-227): the broker remembers what a consumer fetches, so that
later requests name only what changed and responses carry only what changed.

A request's (session id, epoch) says what it is, as Kafka's FetchManager reads it. Epochs 0
and -1 make a *full* fetch whatever the session id; every other epoch is *incremental*:

==========  ========  ==================================================================
session id  epoch     answer
==========  ========  ==================================================================
0           -1        a full fetch without a session (session id 0 in the response)
0           0         a full fetch that opens a new session: the response carries its new
                      id, or 0 when the cache has no room (the client stays sessionless)
id          -1        session ``id`` is closed if it exists; a full sessionless fetch
id          0         session ``id`` is closed if it exists and a new session is opened,
                      as for (0, 0): this is how a client restarts a session it no longer
                      trusts (franz-go does after dropping an in-flight fetch)
0           other     FETCH_SESSION_ID_NOT_FOUND (no session has id 0)
id          other     an incremental fetch in session ``id``: FETCH_SESSION_ID_NOT_FOUND
                      when there is no such session, INVALID_FETCH_SESSION_EPOCH unless the
                      epoch is the session's next one, FETCH_SESSION_TOPIC_ID_ERROR when the
                      session was opened with topic names (Fetch < v13) and the request
                      uses topic ids or the other way round. Otherwise partitions listed are
                      added or updated (fetch offset, max bytes), forgotten ones removed;
                      a session left with no partitions is closed and the fetch answered
                      without one (session id 0)
no shard's  any       UNKNOWN_SERVER_ERROR with the request's session id and, before v13,
                      in every partition it names: Kafka's shard lookup throws for ids from
                      8 * :data:`SESSION_ID_RANGE` up or below -:data:`SESSION_ID_RANGE` + 1
==========  ========  ==================================================================

Session errors answer at once with session id 0 and no partitions, and leave the session as
it was. A full fetch reads exactly the partitions it lists (forgotten topics are ignored).

An incremental response carries a partition only when it has records or an error, or its high
watermark or log start offset differs from what the session last sent (an error makes the next
answer for the partition be sent, whatever it is). Partitions that returned records move to the
end of the session's order (in incremental answers only, as in Kafka), so that one busy
partition cannot take every response's byte budget.
A response whose session moved on while it waited (another request in the session was answered
meanwhile) is INVALID_FETCH_SESSION_EPOCH with the session's id and no partitions.

The cache is Kafka's: ``max.incremental.fetch.session.cache.slots`` is divided evenly among
:data:`CACHE_SHARDS` shards (so fewer than 8 slots keep no session at all), new sessions go to
the shards in turn and a session's id says its shard. A full shard makes room only by evicting
one of its own sessions: one unused for :data:`EVICTION_MS`, else, when the new session has
more partitions, the smallest session that was older than :data:`EVICTION_MS` when last used;
otherwise the new session is not created. An evicted session's client gets
FETCH_SESSION_ID_NOT_FOUND on its next request and starts a new one. Owner: the Broker, on the
event loop.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from odradek.protocol import error_codes

from .config import BROKER_CONFIGS

log = structlog.get_logger("odradek.fetch_sessions")

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
MAX_EPOCH = 2**31 - 1
# Kafka's NumFetchSessionCacheShards and MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS.
CACHE_SHARDS = 8
EVICTION_MS = 120_000
SESSION_ID_RANGE = MAX_EPOCH // CACHE_SHARDS  # shard n holds ids [max(1, n * range), (n + 1) * range)


class FetchSessionError(Exception):
    def __init__(self, error_code: int, message: str):
        super().__init__(message)
        self.error_code = error_code


class FetchSessionIdOutOfRange(FetchSessionError):
    """A session id that no shard holds (at least ``CACHE_SHARDS * SESSION_ID_RANGE``, or far
    below 0): Kafka's shard lookup throws for it and the whole request fails with
    UNKNOWN_SERVER_ERROR, so the answer has the shape of a failed request, not a session error."""

    def __init__(self, session_id: int):
        super().__init__(error_codes.UNKNOWN_SERVER_ERROR, f"Fetch session id {session_id} has no shard")


@dataclass
class FetchTarget:
    """One partition a fetch reads: where from and how much. ``key`` identifies it inside a
    session (topic name before v13, topic id from v13)."""

    key: tuple
    topic_name: str | None
    topic_id: object
    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    # What the session last sent for it (None: nothing yet; a high watermark of -1 after an error).
    sent_high_watermark: int | None = None
    sent_log_start_offset: int | None = None


def next_epoch(epoch: int) -> int:
    return 1 if epoch >= MAX_EPOCH else epoch + 1


class FetchSession:
    __slots__ = ("session_id", "next_epoch", "targets", "uses_topic_ids", "created_ms", "last_used_ms",
                 "size_when_used", "evictable")

    def __init__(self, session_id: int, uses_topic_ids: bool, targets: dict[tuple, FetchTarget], now_ms: int):
        self.session_id = session_id
        self.next_epoch = next_epoch(INITIAL_EPOCH)
        self.targets = targets  # in fetch order (dicts keep insertion order)
        self.uses_topic_ids = uses_topic_ids
        self.created_ms = now_ms
        self.last_used_ms = now_ms
        self.size_when_used = len(targets)
        # Kafka lets a bigger session evict this one only if it was older than EVICTION_MS when
        # last used (its evictableByAll tree).
        self.evictable = False

    def touch(self, now_ms: int) -> None:
        self.last_used_ms = now_ms
        self.size_when_used = len(self.targets)
        self.evictable = now_ms - self.created_ms > EVICTION_MS

    def should_send(self, target: FetchTarget, error_code: int, size: int, high_watermark: int,
                    log_start_offset: int) -> bool:
        return (size > 0 or error_code != error_codes.NONE
                or target.sent_high_watermark != high_watermark
                or target.sent_log_start_offset != log_start_offset)

    def record_sent(self, target: FetchTarget, error_code: int, high_watermark: int, log_start_offset: int,
                    rotate: bool) -> None:
        """Remember what was sent for ``target``; ``rotate``: move it to the end of the order
        (an incremental answer carried records of it)."""
        # After an error the next answer differs from -1 and is sent: the client learns the
        # partition recovered even if its high watermark did not move.
        target.sent_high_watermark = -1 if error_code != error_codes.NONE else high_watermark
        target.sent_log_start_offset = log_start_offset
        if rotate:
            # Only if it is still in the session (a later request may have forgotten it).
            if self.targets.get(target.key) is target:
                del self.targets[target.key]
                self.targets[target.key] = target


@dataclass
class FetchContext:
    """How one request is answered. ``kind`` is "sessionless" (session id 0 in the response),
    "full" (the response opens a session: :meth:`FetchSessionCache.open` at response time) or
    "incremental" (``session``; only what changed is sent, and ``expected_epoch`` is the
    session's next epoch unless another request answered first)."""

    kind: str
    targets: list[FetchTarget]
    uses_topic_ids: bool
    session: FetchSession | None = None
    expected_epoch: int = 0


class _Shard:
    __slots__ = ("number", "max_sessions", "sessions")

    def __init__(self, number: int, max_sessions: int):
        self.number = number
        self.max_sessions = max_sessions
        self.sessions: dict[int, FetchSession] = {}

    def new_session_id(self) -> int:
        low, high = max(1, self.number * SESSION_ID_RANGE), (self.number + 1) * SESSION_ID_RANGE
        while True:
            session_id = random.randrange(low, high)
            if session_id not in self.sessions:
                return session_id

    def make_room(self, size: int, now_ms: int) -> bool:
        if len(self.sessions) < self.max_sessions:
            return True
        if not self.sessions:
            return False
        least_recent = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.session_id))
        if now_ms - least_recent.last_used_ms > EVICTION_MS:
            del self.sessions[least_recent.session_id]
            log.debug("fetch session evicted: unused", session_id=least_recent.session_id)
            return True
        evictable = [s for s in self.sessions.values() if s.evictable]
        if not evictable:
            return False
        smallest = min(evictable, key=lambda s: (s.size_when_used, s.session_id))
        if size <= smallest.size_when_used:  # the new one must be worth more (ids are > 0)
            return False
        del self.sessions[smallest.session_id]
        log.debug("fetch session evicted by a bigger one", session_id=smallest.session_id)
        return True


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class FetchSessionCache:
    def __init__(self, max_sessions: int = BROKER_CONFIGS["max.incremental.fetch.session.cache.slots"].default,
                 clock_ms: Callable[[], int] = _monotonic_ms):
        self.max_sessions = max_sessions
        self._clock_ms = clock_ms
        self._shards = [_Shard(number, max_sessions // CACHE_SHARDS) for number in range(CACHE_SHARDS)]
        self._next_shard = 0

    def __len__(self) -> int:
        return sum(len(shard.sessions) for shard in self._shards)

    def get(self, session_id: int) -> FetchSession | None:
        shard = self._shard_of(session_id)
        return shard.sessions.get(session_id) if shard is not None else None

    def _shard_of(self, session_id: int) -> _Shard | None:
        # Java's integer division truncates toward zero: small negative ids land in shard 0.
        number = abs(session_id) // SESSION_ID_RANGE * (1 if session_id >= 0 else -1)
        return self._shards[number] if 0 <= number < CACHE_SHARDS else None

    def _shard_for(self, session_id: int) -> _Shard:
        shard = self._shard_of(session_id)
        if shard is None:
            raise FetchSessionIdOutOfRange(session_id)
        return shard

    def resolve(self, session_id: int, epoch: int, request_targets: list[FetchTarget], forgotten: list[tuple],
                uses_topic_ids: bool) -> FetchContext:
        """How to answer a request (see the table in the module docstring). Raises
        FetchSessionError for a session error."""
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                # A full fetch closes the session it names (a client restarting its session).
                if self._shard_for(session_id).sessions.pop(session_id, None) is not None:
                    log.debug("fetch session closed by a full fetch", session_id=session_id, epoch=epoch)
            kind = "sessionless" if epoch == FINAL_EPOCH else "full"
            return FetchContext(kind, _distinct(request_targets), uses_topic_ids)
        shard = self._shard_for(session_id)
        session = shard.sessions.get(session_id)
        if session is None:
            raise FetchSessionError(error_codes.FETCH_SESSION_ID_NOT_FOUND, f"Fetch session {session_id} not found")
        if epoch != session.next_epoch:
            raise FetchSessionError(error_codes.INVALID_FETCH_SESSION_EPOCH,
                                    f"Fetch session {session_id} expected epoch {session.next_epoch}, got {epoch}")
        if session.uses_topic_ids != uses_topic_ids:
            raise FetchSessionError(error_codes.FETCH_SESSION_TOPIC_ID_ERROR,
                                    "The fetch session switched between topic names and topic ids")
        for target in request_targets:
            known = session.targets.get(target.key)
            if known is None:
                session.targets[target.key] = target
            else:
                known.fetch_offset = target.fetch_offset
                known.partition_max_bytes = target.partition_max_bytes
                known.current_leader_epoch = target.current_leader_epoch
        for key in forgotten:
            session.targets.pop(key, None)
        if not session.targets:
            del shard.sessions[session_id]
            log.debug("fetch session closed: no partitions left", session_id=session_id)
            return FetchContext("sessionless", _distinct(request_targets), uses_topic_ids)
        session.touch(self._clock_ms())
        session.next_epoch = next_epoch(session.next_epoch)
        return FetchContext("incremental", list(session.targets.values()), uses_topic_ids, session,
                            session.next_epoch)

    def open(self, targets: list[FetchTarget], uses_topic_ids: bool) -> FetchSession | None:
        """A new session holding ``targets`` (a full fetch's, as it is answered), or None when
        its shard has no room for it."""
        shard = self._shards[self._next_shard]
        self._next_shard = (self._next_shard + 1) % CACHE_SHARDS
        now_ms = self._clock_ms()
        if not shard.make_room(len(targets), now_ms):
            log.debug("fetch session not opened: its cache shard is full", shard=shard.number)
            return None
        session = FetchSession(shard.new_session_id(), uses_topic_ids, {t.key: t for t in targets}, now_ms)
        shard.sessions[session.session_id] = session
        session.touch(now_ms)
        log.debug("fetch session opened", session_id=session.session_id, partitions=len(targets))
        return session


def _distinct(targets: list[FetchTarget]) -> list[FetchTarget]:
    """A partition named twice is read once, at its first place with its last parameters (the
    request's partitions form a map in Kafka)."""
    by_key: dict[tuple, FetchTarget] = {}
    for target in targets:
        by_key[target.key] = target
    return list(by_key.values())
