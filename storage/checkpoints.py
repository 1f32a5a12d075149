"""Small text files Kafka keeps next to the logs, read and written in Kafka's formats.

Offset checkpoints (``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint``,
``replication-offset-checkpoint``, ``cleaner-offset-checkpoint``, one of each per data
directory)::

    0                      <- version
    2                      <- number of entries
    my-topic 0 1234        <- topic, partition, offset (space separated)
    my-topic 1 99

``leader-epoch-checkpoint`` (per partition directory): the same frame, entries ``epoch
start_offset``.

``partition.metadata`` (per partition directory)::

    version: 0
    topic_id: <the topic id, Kafka's Uuid.toString(): URL-safe base64 without padding>

``meta.properties`` (per data directory): a Java properties file; Kafka 3.7+ writes
``version=1``, ``node.id``, ``cluster.id`` and ``directory.id``.

``quorum-state`` (in ``__cluster_metadata-0``): the raft election state of a KRaft node, the
JSON of Kafka's QuorumStateData schema plus ``data_version``, on one line, in schema order::

    {"leaderId":1,"leaderEpoch":2,"votedId":-1,"votedDirectoryId":"AAAAAAAAAAAAAAAAAAAAAA","data_version":1}

(version 0, of kraft.version 0 quorums, has ``clusterId``, ``appliedOffset`` and
``currentVoters`` and no ``votedDirectoryId``).

Every write goes to ``<name>.tmp``, is fsynced, then renamed over the old file (and the
directory fsynced), so a crash leaves either the old or the new content, never a mix. A file
that does not parse raises :class:`CorruptCheckpoint` and the caller decides, as Kafka's
LogManager and UnifiedLog do: an offset checkpoint is ignored (a recovery point of 0 rescans
the logs), a leader-epoch checkpoint starts empty, a ``partition.metadata`` is written again
from the topic id; a ``meta.properties`` that does not parse refuses the start.

Thread safety: none needed; these are functions.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field

CHECKPOINT_VERSION = 0


class CorruptCheckpoint(Exception):
    pass


def _parse_frame(text: str, path: str, fields_per_line: int) -> list[list[str]]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    try:
        if int(lines[0]) != CHECKPOINT_VERSION:
            raise CorruptCheckpoint(f"{path}: unknown version {lines[0]!r}")
        count = int(lines[1])
    except (IndexError, ValueError):
        raise CorruptCheckpoint(f"{path}: malformed version or count line") from None
    entries = [line.split(" ") for line in lines[2:]]
    if len(entries) != count or any(len(e) != fields_per_line for e in entries):
        raise CorruptCheckpoint(f"{path}: expected {count} entries of {fields_per_line} fields")
    return entries


def _frame(rows: list[str]) -> bytes:
    return ("\n".join([str(CHECKPOINT_VERSION), str(len(rows)), *rows]) + "\n").encode()


def read_offset_checkpoint(fs, path: str) -> dict[tuple[str, int], int]:
    """``{(topic, partition): offset}``; empty if the file does not exist."""
    if not fs.exists(path):
        return {}
    try:
        text = fs.read_file(path).decode("utf-8")
        return {(t, int(p)): int(o) for t, p, o in _parse_frame(text, path, 3)}
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptCheckpoint(f"{path}: {error}") from None


def write_offset_checkpoint(fs, path: str, offsets: dict[tuple[str, int], int]) -> None:
    rows = [f"{topic} {partition} {offset}" for (topic, partition), offset in sorted(offsets.items())]
    fs.write_file_atomic(path, _frame(rows))


def read_leader_epochs(fs, path: str) -> list[tuple[int, int]]:
    """``[(epoch, start_offset), ...]`` in file order; empty if the file does not exist."""
    if not fs.exists(path):
        return []
    try:
        text = fs.read_file(path).decode("utf-8")
        return [(int(e), int(o)) for e, o in _parse_frame(text, path, 2)]
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptCheckpoint(f"{path}: {error}") from None


def write_leader_epochs(fs, path: str, entries: list[tuple[int, int]], *, durable: bool = True) -> None:
    """``durable`` False writes in place without fsync (see :meth:`LeaderEpochCache.__init__`)."""
    data = _frame([f"{epoch} {offset}" for epoch, offset in entries])
    if durable:
        fs.write_file_atomic(path, data)
    else:
        fs.write_file(path, data)


def uuid_to_kafka(value: uuid.UUID) -> str:
    """Kafka's ``Uuid.toString()``: URL-safe base64 of the 16 bytes, no padding (22 chars)."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def uuid_from_kafka(text: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(text + "==")
    except ValueError:
        raise CorruptCheckpoint(f"not a Kafka uuid: {text!r}") from None
    if len(raw) != 16:
        raise CorruptCheckpoint(f"not a Kafka uuid: {text!r}")
    return uuid.UUID(bytes=raw)


def read_partition_metadata(fs, path: str) -> uuid.UUID | None:
    if not fs.exists(path):
        return None
    fields = {}
    for line in fs.read_file(path).decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise CorruptCheckpoint(f"{path}: expected 'version: 0' and 'topic_id'")
    return uuid_from_kafka(fields["topic_id"])


def write_partition_metadata(fs, path: str, topic_id: uuid.UUID) -> None:
    fs.write_file_atomic(path, f"version: 0\ntopic_id: {uuid_to_kafka(topic_id)}".encode())


def read_meta_properties(fs, path: str) -> dict[str, str] | None:
    """The key/value pairs of ``meta.properties`` (None if absent). Kafka writes only plain
    ``key=value`` lines and ``#`` comments there, which is all this reads."""
    if not fs.exists(path):
        return None
    properties = {}
    for line in fs.read_file(path).decode("latin-1").splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CorruptCheckpoint(f"{path}: line without '=': {line!r}")
        properties[key.strip()] = value.strip()
    return properties


def write_meta_properties(fs, path: str, properties: dict[str, str]) -> None:
    lines = ["#", "#Written by odradek"] + [f"{key}={value}" for key, value in sorted(properties.items())]
    fs.write_file_atomic(path, ("\n".join(lines) + "\n").encode("latin-1"))


QUORUM_STATE_FILE = "quorum-state"
QUORUM_STATE_VERSIONS = (0, 1)


@dataclass
class QuorumState:
    """A KRaft node's election state (Kafka's QuorumStateData): -1 is "none" for the ids and
    the epoch, the zero uuid for the voted directory. ``cluster_id``, ``applied_offset`` and
    ``current_voters`` exist in data version 0 only."""

    leader_id: int = -1
    leader_epoch: int = -1
    voted_id: int = -1
    voted_directory_id: uuid.UUID = uuid.UUID(int=0)
    data_version: int = 1
    cluster_id: str = ""
    applied_offset: int = 0
    current_voters: list[int] | None = field(default_factory=list)


def _json_int(document: dict, name: str, bits: int, path: str) -> int:
    value = document.get(name)
    if type(value) is not int or not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise CorruptCheckpoint(f"{path}: {name} is not an int{bits}: {value!r}")
    return value


def read_quorum_state(fs, path: str) -> QuorumState | None:
    """``quorum-state`` (None if absent); CorruptCheckpoint where Kafka's FileQuorumStateStore
    refuses it: not JSON, no ``data_version`` or one it does not know, a field missing or of the
    wrong type."""
    if not fs.exists(path):
        return None
    try:
        document = json.loads(fs.read_file(path).decode("utf-8"))
    except ValueError as error:  # JSON and UTF-8 errors
        raise CorruptCheckpoint(f"{path}: not JSON: {error}") from None
    if not isinstance(document, dict):
        raise CorruptCheckpoint(f"{path}: not a JSON object")
    if "data_version" not in document:
        raise CorruptCheckpoint(f"{path}: no data_version field")
    version = _json_int(document, "data_version", 16, path)
    if version not in QUORUM_STATE_VERSIONS:
        raise CorruptCheckpoint(f"{path}: data_version ({version}) is not within the min "
                                f"({QUORUM_STATE_VERSIONS[0]}) and max ({QUORUM_STATE_VERSIONS[-1]}) supported version")
    state = QuorumState(leader_id=_json_int(document, "leaderId", 32, path),
                        leader_epoch=_json_int(document, "leaderEpoch", 32, path),
                        voted_id=_json_int(document, "votedId", 32, path), data_version=version)
    if version >= 1:
        voted = document.get("votedDirectoryId")
        if not isinstance(voted, str):
            raise CorruptCheckpoint(f"{path}: votedDirectoryId is not a string: {voted!r}")
        state.voted_directory_id = uuid_from_kafka(voted)
        return state
    cluster_id, voters = document.get("clusterId"), document.get("currentVoters")
    if "currentVoters" not in document:
        raise CorruptCheckpoint(f"{path}: no currentVoters field")
    if not isinstance(cluster_id, str):
        raise CorruptCheckpoint(f"{path}: clusterId is not a string: {cluster_id!r}")
    state.cluster_id = cluster_id
    state.applied_offset = _json_int(document, "appliedOffset", 64, path)
    if voters is not None and not isinstance(voters, list):
        raise CorruptCheckpoint(f"{path}: currentVoters is not a list: {voters!r}")
    state.current_voters = None if voters is None else [
        _json_int(voter if isinstance(voter, dict) else {}, "voterId", 32, path) for voter in voters]
    return state


def write_quorum_state(fs, path: str, state: QuorumState) -> None:
    """Write ``state`` at its data version, as Kafka writes it (temporary file, fsync, rename)."""
    document: dict = {}
    if state.data_version == 0:
        document["clusterId"] = state.cluster_id
    document.update(leaderId=state.leader_id, leaderEpoch=state.leader_epoch, votedId=state.voted_id)
    if state.data_version >= 1:
        document["votedDirectoryId"] = uuid_to_kafka(state.voted_directory_id)
    else:
        document["appliedOffset"] = state.applied_offset
        document["currentVoters"] = (None if state.current_voters is None
                                     else [{"voterId": voter} for voter in state.current_voters])
    document["data_version"] = state.data_version
    fs.write_file_atomic(path, json.dumps(document, separators=(",", ":")).encode("utf-8"))
