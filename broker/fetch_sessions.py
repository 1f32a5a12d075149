"""Incremental fetch sessions (KIP-227): the broker remembers what a consumer fetches, so that
later requests name only what changed and responses carry only what changed.

A request's (session id, epoch) says what it is:

==========  =====  ==============================================================
session id  epoch  meaning
==========  =====  ==============================================================
0           -1     a full fetch without a session
0           0      a full fetch that asks for a new session (answered with its id,
                   or 0 when the cache has no room: the client stays sessionless)
0           other  INVALID_FETCH_SESSION_EPOCH
id          -1     close session ``id``; the request is a full sessionless fetch
id          n > 0  an incremental fetch in session ``id``: partitions listed are
                   added or updated (fetch offset, max bytes), forgotten ones removed;
                   n must be the session's next epoch (else
                   INVALID_FETCH_SESSION_EPOCH); an unknown id is
                   FETCH_SESSION_ID_NOT_FOUND
==========  =====  ==============================================================

An incremental response carries a partition only when it has records, an error, or a high
watermark, last stable offset or log start offset that differs from what the session last
sent. Partitions that returned records move to the end of the session's order, so that one busy
partition cannot take every response's byte budget (Kafka does the same).

A session created with topic names (Fetch < v13) cannot continue with topic ids or the other
way round: FETCH_SESSION_TOPIC_ID_ERROR.

The cache holds at most ``max.incremental.fetch.session.cache.slots`` sessions; when it is
full, the least recently used session is evicted (its client gets FETCH_SESSION_ID_NOT_FOUND
on its next request and starts a new one). Owner: the Broker, on the event loop.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from dataclasses import dataclass

from odradek.protocol import error_codes

from .config import BROKER_CONFIGS

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
MAX_EPOCH = 2**31 - 1


class FetchSessionError(Exception):
    def __init__(self, error_code: int, message: str):
        super().__init__(message)
        self.error_code = error_code


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
    # What the session last sent for it (None: nothing yet).
    sent_high_watermark: int | None = None
    sent_last_stable_offset: int | None = None
    sent_log_start_offset: int | None = None


class FetchSession:
    __slots__ = ("session_id", "next_epoch", "targets", "uses_topic_ids", "last_used")

    def __init__(self, session_id: int, uses_topic_ids: bool):
        self.session_id = session_id
        self.next_epoch = 1
        self.targets: OrderedDict[tuple, FetchTarget] = OrderedDict()
        self.uses_topic_ids = uses_topic_ids
        self.last_used = time.monotonic()

    def advance_epoch(self) -> None:
        self.next_epoch = 1 if self.next_epoch >= MAX_EPOCH else self.next_epoch + 1

    def should_send(self, target: FetchTarget, error_code: int, size: int, high_watermark: int,
                    last_stable_offset: int, log_start_offset: int) -> bool:
        return (size > 0 or error_code != error_codes.NONE
                or target.sent_high_watermark != high_watermark
                or target.sent_last_stable_offset != last_stable_offset
                or target.sent_log_start_offset != log_start_offset)

    def record_sent(self, target: FetchTarget, high_watermark: int, last_stable_offset: int,
                    log_start_offset: int, had_records: bool) -> None:
        target.sent_high_watermark = high_watermark
        target.sent_last_stable_offset = last_stable_offset
        target.sent_log_start_offset = log_start_offset
        if had_records:
            self.targets.move_to_end(target.key)


class FetchSessionCache:
    def __init__(self, max_sessions: int = BROKER_CONFIGS["max.incremental.fetch.session.cache.slots"].default):
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[int, FetchSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def resolve(self, session_id: int, epoch: int, request_targets: list[FetchTarget], forgotten: list[tuple],
                uses_topic_ids: bool) -> tuple[FetchSession | None, list[FetchTarget], bool]:
        """(session or None, the targets to read in order, whether the response is incremental).
        Raises FetchSessionError for the errors in the table of the module docstring."""
        if session_id == INVALID_SESSION_ID:
            if epoch == FINAL_EPOCH:
                return None, request_targets, False
            if epoch != INITIAL_EPOCH:
                raise FetchSessionError(error_codes.INVALID_FETCH_SESSION_EPOCH,
                                        f"Epoch {epoch} without a session id")
            session = self._new_session(uses_topic_ids)
            if session is None:
                return None, request_targets, False
            for target in request_targets:
                session.targets[target.key] = target
            return session, list(session.targets.values()), False
        if epoch == FINAL_EPOCH:
            self._sessions.pop(session_id, None)
            return None, request_targets, False
        session = self._sessions.get(session_id)
        if session is None:
            raise FetchSessionError(error_codes.FETCH_SESSION_ID_NOT_FOUND, f"Fetch session {session_id} not found")
        if epoch != session.next_epoch:
            raise FetchSessionError(error_codes.INVALID_FETCH_SESSION_EPOCH,
                                    f"Fetch session {session_id} expected epoch {session.next_epoch}, got {epoch}")
        if session.uses_topic_ids != uses_topic_ids:
            raise FetchSessionError(error_codes.FETCH_SESSION_TOPIC_ID_ERROR,
                                    "The fetch session switched between topic names and topic ids")
        for key in forgotten:
            session.targets.pop(key, None)
        for target in request_targets:
            known = session.targets.get(target.key)
            if known is None:
                session.targets[target.key] = target
            else:
                known.fetch_offset = target.fetch_offset
                known.partition_max_bytes = target.partition_max_bytes
                known.current_leader_epoch = target.current_leader_epoch
        session.advance_epoch()
        session.last_used = time.monotonic()
        self._sessions.move_to_end(session_id)
        return session, list(session.targets.values()), True

    def _new_session(self, uses_topic_ids: bool) -> FetchSession | None:
        if self.max_sessions <= 0:
            return None
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)  # the least recently used
        while True:
            session_id = random.randint(1, 2**31 - 1)
            if session_id not in self._sessions:
                break
        session = FetchSession(session_id, uses_topic_ids)
        self._sessions[session_id] = session
        return session
