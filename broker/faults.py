"""Scripted faults: the broker misbehaving on purpose, so that a test can watch its client retry.

A fault is a validated spec (:func:`parse_fault_spec`, what ``POST /v1/faults`` takes, docs/testing.md
"Faults") held by the broker's :class:`FaultRegistry` until it is removed, cleared, used up
(``count`` matching requests) or expired (``duration_ms``). Actions, at Kafka's behaviour:

* ``error``: the request is answered with the given Kafka error code without being handled, in
  the place its API's error response carries it (``error_responses.error_response``, Kafka's
  ``getErrorResponse``); an acks=0 produce, which has no response, gets its connection closed.
* ``delay``: the request waits ``delay_ms`` before it is handled. Kafka handles one request of a
  connection at a time (the channel is muted until the response is sent), so the requests that
  follow it on the connection wait behind it, in order.
* ``no_response``: the request is never handled nor answered; nothing later on that connection
  is either (the client's request timeout fires, and it reconnects).
* ``close_before_response``: the connection is closed in the request's place, unhandled (the
  responses before it are sent first).
* ``close_after_response``: the request is handled and answered, then the connection closed.
* ``throttle``: the response carries ``throttle_time_ms`` and the connection is not read for that
  long after it is sent (a quota violation, KIP-219).
* ``offline``: a topic's partition (every partition without ``partition``) has no leader until
  the fault is removed or expires: Metadata and DescribeTopicPartitions show LEADER_NOT_AVAILABLE
  with leader -1; Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords and
  DescribeProducers answer the fault's error for it (NOT_LEADER_OR_FOLLOWER, as Kafka's
  ReplicaManager answers for a partition this broker does not lead, or LEADER_NOT_AVAILABLE).

Request faults match on the API, the client id, and the topics, partitions and groups a request
names (:func:`request_targets`, read from the generated request messages' schema: fields that are
topic names or group ids, topic ids, partition indexes); the oldest matching fault applies.
A filter on a topic matches only requests that name it (a Metadata request for every topic, or
an incremental fetch that leaves a partition out, does not name it).

Ownership: the registry belongs to the broker state (:class:`odradek.broker.broker.Broker`) and is
used on the broker's event loop only; the server applies request faults (broker/server.py), the
handlers ask :meth:`FaultRegistry.offline_error`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from odradek.protocol import error_codes

ERROR = "error"
DELAY = "delay"
NO_RESPONSE = "no_response"
CLOSE_BEFORE_RESPONSE = "close_before_response"
CLOSE_AFTER_RESPONSE = "close_after_response"
THROTTLE = "throttle"
OFFLINE = "offline"
ACTIONS = (ERROR, DELAY, NO_RESPONSE, CLOSE_BEFORE_RESPONSE, CLOSE_AFTER_RESPONSE, THROTTLE, OFFLINE)

# The most faults a broker holds (used-up ones included): every request is matched against the
# active ones, and the control API is open to anything on the host.
MAX_FAULTS = 1000
# Kafka's int32 milliseconds (throttle_time_ms is one); also the bound on the other durations.
MAX_MS = 2**31 - 1
# What an offline partition may answer Produce/Fetch/ListOffsets/OffsetForLeaderEpoch with.
OFFLINE_ERRORS = (error_codes.NOT_LEADER_OR_FOLLOWER, error_codes.LEADER_NOT_AVAILABLE)

# Fields of a spec, and which action takes or needs which.
_FILTERS = ("api", "topic", "partition", "group", "client_id")
_FIELDS = ("action", "error", "delay_ms", "throttle_ms", "count", "duration_ms") + _FILTERS
_REQUIRED = {ERROR: ("error",), DELAY: ("delay_ms",), THROTTLE: ("throttle_ms",), OFFLINE: ("topic",)}
_ONLY_FOR = {"error": (ERROR, OFFLINE), "delay_ms": (DELAY,), "throttle_ms": (THROTTLE,)}
_NOT_FOR_OFFLINE = ("api", "group", "client_id", "count")


class FaultSpecError(ValueError):
    """A fault spec that cannot be used (the control API answers it 400)."""


@dataclass(frozen=True)
class FaultSpec:
    """A validated fault spec: :func:`parse_fault_spec`'s result."""

    action: str
    api_key: int | None = None
    error: int | None = None
    delay_ms: int | None = None
    throttle_ms: int | None = None
    count: int | None = None
    duration_ms: int | None = None
    topic: str | None = None
    partition: int | None = None
    group: str | None = None
    client_id: str | None = None

    def describe(self) -> dict:
        """The spec as the control API lists it: names, not numbers (API, error)."""
        from .handlers import REGISTRY

        document: dict = {"action": self.action}
        if self.api_key is not None:
            document["api"] = REGISTRY.get(self.api_key).name
        if self.error is not None:
            document["error"] = error_codes.lookup(self.error).name
        for name in ("delay_ms", "throttle_ms", "count", "duration_ms", "topic", "partition", "group", "client_id"):
            value = getattr(self, name)
            if value is not None:
                document[name] = value
        return document


def _normalized_api_name(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def _api_key(value) -> int:
    from .handlers import REGISTRY

    if isinstance(value, int) and not isinstance(value, bool):
        if value not in REGISTRY:
            raise FaultSpecError(f"api: odradek serves no API with key {value}")
        return value
    if isinstance(value, str):
        wanted = _normalized_api_name(value)
        for entry in REGISTRY:
            if _normalized_api_name(entry.name) == wanted:
                return entry.api_key
        raise FaultSpecError(f"api: no API named {value!r} (Kafka's names: Produce, Fetch, Metadata, ...)")
    raise FaultSpecError(f"api: an API name or key, not {value!r}")


def _error_code(value) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in error_codes.ERRORS:
            raise FaultSpecError(f"error: Kafka has no error code {value}")
        code = value
    elif isinstance(value, str):
        known = error_codes.BY_NAME.get(value.upper())
        if known is None:
            raise FaultSpecError(f"error: Kafka has no error named {value!r} (e.g. NOT_LEADER_OR_FOLLOWER)")
        code = known.code
    else:
        raise FaultSpecError(f"error: an error name or code, not {value!r}")
    if code == error_codes.NONE:
        raise FaultSpecError("error: NONE is no error")
    return code


def _integer(name: str, value, low: int, high: int = MAX_MS) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FaultSpecError(f"{name}: an integer from {low} to {high}, not {value!r}")
    return value


def _text(name: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise FaultSpecError(f"{name}: a non-empty string, not {value!r}")
    return value


def parse_fault_spec(document) -> FaultSpec:
    """A :class:`FaultSpec` from a JSON document (docs/testing.md "Faults"); FaultSpecError saying
    what is wrong otherwise. Fields set to null count as left out."""
    if not isinstance(document, dict):
        raise FaultSpecError(f"a fault is a JSON object, not {type(document).__name__}")
    unknown = sorted(str(key) for key in document if key not in _FIELDS)
    if unknown:
        raise FaultSpecError(f"unknown field(s) {', '.join(unknown)}; a fault has {', '.join(_FIELDS)}")
    given = {key: value for key, value in document.items() if value is not None}
    action = given.get("action")
    if action not in ACTIONS:
        raise FaultSpecError(f"action: one of {', '.join(ACTIONS)}, not {action!r}")
    for name in _REQUIRED.get(action, ()):
        if name not in given:
            raise FaultSpecError(f"action {action} needs {name}")
    for name, actions in _ONLY_FOR.items():
        if name in given and action not in actions:
            raise FaultSpecError(f"{name} is for action {' or '.join(actions)}, not {action}")
    if action == OFFLINE:
        for name in _NOT_FOR_OFFLINE:
            if name in given:
                raise FaultSpecError(f"{name} does not apply to offline (it lasts until removed, cleared or expired)")
    if "partition" in given and "topic" not in given:
        raise FaultSpecError("partition needs topic")
    error = _error_code(given["error"]) if "error" in given else None
    if action == OFFLINE:
        if error is None:
            error = error_codes.NOT_LEADER_OR_FOLLOWER
        elif error not in OFFLINE_ERRORS:
            raise FaultSpecError("error: an offline partition answers NOT_LEADER_OR_FOLLOWER or LEADER_NOT_AVAILABLE")
    return FaultSpec(
        action=action,
        api_key=_api_key(given["api"]) if "api" in given else None,
        error=error,
        delay_ms=_integer("delay_ms", given["delay_ms"], 0) if "delay_ms" in given else None,
        throttle_ms=_integer("throttle_ms", given["throttle_ms"], 1) if "throttle_ms" in given else None,
        count=_integer("count", given["count"], 1) if "count" in given else None,
        duration_ms=_integer("duration_ms", given["duration_ms"], 1) if "duration_ms" in given else None,
        topic=_text("topic", given["topic"]) if "topic" in given else None,
        partition=_integer("partition", given["partition"], 0) if "partition" in given else None,
        group=_text("group", given["group"]) if "group" in given else None,
        client_id=_text("client_id", given["client_id"]) if "client_id" in given else None,
    )


# --- what a request names ---

@dataclass
class RequestTargets:
    """The topics (by name, or by id where the request has only ids) with the partitions named
    under each, and the group ids, a request names."""

    topics: dict = field(default_factory=dict)  # name or UUID -> set of partition indexes
    groups: set = field(default_factory=set)


_TOPIC_NAME, _TOPIC_NAMES, _TOPIC_ID, _GROUP, _GROUPS, _PARTITION, _PARTITIONS, _STRUCT, _STRUCTS = range(9)
# Partition index fields: a scalar in a struct under a topic, or an int32 array beside the topic.
_PARTITION_FIELDS = ("partition", "partition_index", "index")
_PARTITION_ARRAYS = ("partitions", "partition_indexes")
# Not a request *for* these topics: a fetch session dropping them.
_SKIPPED_FIELDS = ("forgotten_topics_data",)
_plans: dict[type, tuple] = {}


def _plan(cls) -> tuple:
    """How to read the targets out of a generated struct class (cached per class)."""
    plan = _plans.get(cls)
    if plan is not None:
        return plan
    steps = []
    for info in cls.FIELDS:
        attr = info.attr
        if attr in _SKIPPED_FIELDS:
            continue
        if info.entity_type == "topicName":
            steps.append((attr, _TOPIC_NAMES if info.is_array else _TOPIC_NAME))
        elif info.entity_type == "groupId":
            steps.append((attr, _GROUPS if info.is_array else _GROUP))
        elif attr == "topic_id" and info.type == "uuid":
            steps.append((attr, _TOPIC_ID))
        elif info.type == "int32" and not info.is_array and attr in _PARTITION_FIELDS:
            steps.append((attr, _PARTITION))
        elif info.type == "int32" and info.is_array and attr in _PARTITION_ARRAYS:
            steps.append((attr, _PARTITIONS))
        elif info.struct is not None:
            steps.append((attr, _STRUCTS if info.is_array else _STRUCT))
    plan = _plans[cls] = tuple(steps)
    return plan


def request_targets(body) -> RequestTargets:
    """The topics, partitions and groups ``body`` (a decoded request) names."""
    targets = RequestTargets()
    _walk(body, None, targets)
    if type(body).__name__ == "FindCoordinatorRequest" and body.key_type == 0:  # key type 0: a group
        targets.groups.update(body.coordinator_keys or ())
        if body.key:
            targets.groups.add(body.key)
    return targets


def _walk(obj, topic, targets: RequestTargets) -> None:
    plan = _plan(type(obj))
    # This struct's own topic (a name, else an id) comes first: its partitions belong to it.
    for attr, kind in plan:
        if kind == _TOPIC_NAME:
            name = getattr(obj, attr)
            if name:
                topic = name
                targets.topics.setdefault(topic, set())
                break
    else:
        for attr, kind in plan:
            if kind == _TOPIC_ID:
                topic_id = getattr(obj, attr)
                if topic_id is not None and topic_id.int:
                    topic = topic_id
                    targets.topics.setdefault(topic, set())
                break
    for attr, kind in plan:
        value = getattr(obj, attr)
        if value is None:
            continue
        if kind == _STRUCTS:
            for item in value:
                _walk(item, topic, targets)
        elif kind == _STRUCT:
            _walk(value, topic, targets)
        elif kind == _PARTITION:
            if topic is not None:
                targets.topics[topic].add(value)
        elif kind == _PARTITIONS:
            if topic is not None:
                targets.topics[topic].update(value)
        elif kind == _TOPIC_NAMES:
            for name in value:
                targets.topics.setdefault(name, set())
        elif kind == _GROUP:
            if value:
                targets.groups.add(value)
        elif kind == _GROUPS:
            targets.groups.update(value)


# --- the registry ---

@dataclass
class Fault:
    """One fault in the registry: its spec, how often it applied, when it expires."""

    id: int
    spec: FaultSpec
    added_at: float
    hits: int = 0
    removed: bool = False

    @property
    def expires_at(self) -> float | None:
        return None if self.spec.duration_ms is None else self.added_at + self.spec.duration_ms / 1000

    @property
    def remaining(self) -> int | None:
        return None if self.spec.count is None else self.spec.count - self.hits

    def active(self, now: float) -> bool:
        expires_at = self.expires_at
        return (not self.removed and (self.spec.count is None or self.hits < self.spec.count)
                and (expires_at is None or now < expires_at))

    def describe(self, now: float) -> dict:
        expires_at = self.expires_at
        return {"id": self.id, **self.spec.describe(), "hits": self.hits, "remaining": self.remaining,
                "expires_in_ms": None if expires_at is None else max(0, round((expires_at - now) * 1000)),
                "active": self.active(now)}


class FaultRegistry:
    """The broker's faults, in the order they were added. Faults used up or expired stay listed
    (inactive, with their hits) until removed or cleared, so that a test can read how often one
    applied."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._faults: dict[int, Fault] = {}
        self._next_id = 1
        self._request_faults: list[Fault] = []  # active request faults (not offline), oldest first
        self._offline: list[Fault] = []  # active offline faults

    @property
    def active(self) -> bool:
        """Whether a request may meet a request fault (the server asks on every request)."""
        return bool(self._request_faults)

    def add(self, document) -> Fault:
        """Validate ``document`` and add it; FaultSpecError when it is no fault, or when
        :data:`MAX_FAULTS` are held already."""
        spec = parse_fault_spec(document)
        if len(self._faults) >= MAX_FAULTS:
            raise FaultSpecError(f"the broker holds {MAX_FAULTS} faults already: remove or clear some")
        fault = Fault(self._next_id, spec, self._clock())
        self._next_id += 1
        self._faults[fault.id] = fault
        (self._offline if spec.action == OFFLINE else self._request_faults).append(fault)
        return fault

    def list(self) -> list[dict]:
        now = self._clock()
        return [fault.describe(now) for fault in self._faults.values()]

    def describe(self, fault: Fault) -> dict:
        """``fault`` as :meth:`list` shows it."""
        return fault.describe(self._clock())

    def get(self, fault_id: int) -> Fault | None:
        return self._faults.get(fault_id)

    def remove(self, fault_id: int) -> Fault | None:
        """Remove the fault (None when there is none); a removed fault lists as inactive."""
        fault = self._faults.pop(fault_id, None)
        if fault is not None:
            fault.removed = True
            self._prune()
        return fault

    def clear(self) -> int:
        removed = len(self._faults)
        for fault in self._faults.values():
            fault.removed = True
        self._faults.clear()
        self._request_faults.clear()
        self._offline.clear()
        return removed

    def _prune(self) -> None:
        now = self._clock()
        self._request_faults = [fault for fault in self._request_faults if fault.active(now)]
        self._offline = [fault for fault in self._offline if fault.active(now)]

    def match(self, api_key: int, client_id: str | None, body, topic_name_of_id: Callable) -> Fault | None:
        """The oldest active request fault that matches the request, counted as applied; None
        when none does. ``topic_name_of_id(uuid)`` names a topic a request gives by id only."""
        now = self._clock()
        targets = None
        expired = False
        for fault in self._request_faults:
            if not fault.active(now):
                expired = True
                continue
            spec = fault.spec
            if spec.api_key is not None and spec.api_key != api_key:
                continue
            if spec.client_id is not None and spec.client_id != client_id:
                continue
            if spec.topic is not None or spec.group is not None:
                if targets is None:
                    targets = named_request_targets(body, topic_name_of_id)
                if spec.group is not None and spec.group not in targets.groups:
                    continue
                if spec.topic is not None:
                    partitions = targets.topics.get(spec.topic)
                    if partitions is None or (spec.partition is not None and spec.partition not in partitions):
                        continue
            fault.hits += 1
            if not fault.active(now):
                expired = True
            if expired:
                self._prune()
            return fault
        if expired:
            self._prune()
        return None

    def offline_error(self, topic: str, partition: int) -> int | None:
        """The error a request for ``topic``'s ``partition`` gets while an offline fault holds it
        (None: it is online)."""
        if not self._offline:
            return None
        now = self._clock()
        found = None
        expired = False
        for fault in self._offline:
            if not fault.active(now):
                expired = True
            elif found is None and fault.spec.topic == topic and fault.spec.partition in (None, partition):
                fault.hits += 1  # a partition answered as offline (Metadata's too)
                found = fault.spec.error
        if expired:
            self._prune()
        return found


def named_request_targets(body, topic_name_of_id: Callable) -> RequestTargets:
    """:func:`request_targets` with topics given by id put under their names (unknown ids stay
    as they are): what the request names, as a fault filter or the activity stream sees it."""
    return _named_targets(request_targets(body), topic_name_of_id)


def _named_targets(targets: RequestTargets, topic_name_of_id: Callable) -> RequestTargets:
    """``targets`` with topics given by id put under their names (unknown ids stay as they are)."""
    if all(isinstance(topic, str) for topic in targets.topics):
        return targets
    named: dict = {}
    for topic, partitions in targets.topics.items():
        if not isinstance(topic, str):
            topic = topic_name_of_id(topic) or topic
        named.setdefault(topic, set()).update(partitions)
    return RequestTargets(named, targets.groups)


def set_throttle_time(response, version: int, throttle_ms: int) -> None:
    """Put ``throttle_ms`` in ``response``'s throttle_time_ms where ``version`` carries one
    (``response`` None: an acks=0 produce, answered by nothing)."""
    if response is None:
        return
    for info in type(response).FIELDS:
        if info.attr == "throttle_time_ms":
            if info.present >> version & 1:
                response.throttle_time_ms = throttle_ms
            return
