"""What the Sarama and kafkajs tests share: the records every client produces, the JSON-lines
protocol of the client programs (compat/sarama, compat/kafkajs), the checks of what they
report, and a group member run as a subprocess.

A program reads records on standard input and writes events on standard output, one JSON
object a line; bytes travel as base64 and a null key or value as JSON null:
``{"partition": p, "key": b64|null, "value": b64|null, "headers": [[b64, b64], ...], "timestamp": ms}``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

from broker.test_server import fetch_request
from groups.test_clients import committed_offsets, wait_until
from program_process import ProgramProcess
from odradek.protocol.messages.list_offsets import ListOffsetsRequest
from odradek.protocol.records.batch import iter_batches
from odradek.protocol.records.compression import CODEC_NAMES

PROGRAM_TIMEOUT = 60.0
BASE_TIMESTAMP = 1_700_000_000_000


def expected_records(count: int, partitions: int) -> list[dict]:
    """Records with keys and null keys, null values, headers (a repeated header key, an empty
    header value, none at all) and explicit, distinct timestamps, round-robin over the
    partitions. A repeated key's values are adjacent: kafkajs's headers are an object, one
    entry (an array) per key."""
    records = []
    for i in range(count):
        headers = [(b"h", b"%d" % i), (b"h", b"again"), (b"empty", b"")] if i % 2 else []
        records.append({
            "partition": i % partitions,
            "key": None if i % 7 == 3 else b"key-%d" % i,
            "value": None if i % 5 == 4 else (b"value-%d-" % i) * (i % 4 + 1),
            "headers": headers,
            "timestamp": BASE_TIMESTAMP + i * 1000,
        })
    return records


def _b64(data: bytes | None):
    return None if data is None else base64.b64encode(data).decode()


def _bytes(text: str | None):
    return None if text is None else base64.b64decode(text)


def encode_records(records: list[dict]) -> bytes:
    lines = [json.dumps({"partition": r["partition"], "key": _b64(r["key"]), "value": _b64(r["value"]),
                         "headers": [[_b64(k), _b64(v)] for k, v in r["headers"]], "timestamp": r["timestamp"]})
             for r in records]
    return ("\n".join(lines) + "\n").encode()


def decode_record(event: dict) -> dict:
    return {"partition": event["partition"], "key": _bytes(event["key"]), "value": _bytes(event["value"]),
            "headers": [(_bytes(k), _bytes(v)) for k, v in event["headers"] or []],
            "timestamp": int(event["timestamp"])}


def run(command: list[str], stdin: bytes = b"", timeout: float = PROGRAM_TIMEOUT, env=None) -> list[dict]:
    """Run a client program to completion; its events (exit 0 required, stderr in the message)."""
    result = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout, env=env)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 0, (f"{command[:3]} exited {result.returncode}: {events[-3:]}\n"
                                    f"{result.stderr.decode(errors='replace')[-4000:]}")
    return events


def check_acknowledged(events: list[dict], records: list[dict]) -> dict[tuple[int, int], dict]:
    """Every record acknowledged once, on its partition, at consecutive offsets from 0 in
    the order sent; the records by (partition, offset)."""
    acked = sorted((e for e in events if e["event"] == "acked"), key=lambda e: e["index"])
    assert [e["index"] for e in acked] == list(range(len(records)))
    placed: dict[tuple[int, int], dict] = {}
    next_offset: dict[int, int] = {}
    for event, record in zip(acked, records):
        assert event["partition"] == record["partition"]
        expected_offset = next_offset.get(record["partition"], 0)
        assert int(event["offset"]) == expected_offset, (event, record)
        next_offset[record["partition"]] = expected_offset + 1
        placed[(record["partition"], expected_offset)] = record
    return placed


def check_consumed(events: list[dict], placed: dict[tuple[int, int], dict]) -> None:
    """The consumed records are exactly the produced ones, field by field, at their offsets."""
    consumed = {(e["partition"], int(e["offset"])): decode_record(e) for e in events if e["event"] == "record"}
    assert len(consumed) == sum(e["event"] == "record" for e in events), "a record was delivered twice"
    assert consumed == placed


def stored_batches(client, topic: str, partitions: int) -> list:
    """The record batches as the broker stores them (one raw Fetch per partition)."""
    batches = []
    for partition in range(partitions):
        data = client.request(fetch_request(topic, partition, 0), 12).responses[0].partitions[0]
        assert data.error_code == 0
        batches.extend(iter_batches(bytes(data.records)))
    return batches


def check_batches(batches: list, codec: str, idempotent: bool) -> None:
    """The client compressed with ``codec`` and, if idempotent, wrote with a producer id and
    consecutive sequences from 0 on each partition (else without one)."""
    assert batches
    assert {CODEC_NAMES[b.compression] for b in batches} == {codec}
    if idempotent:
        assert len({b.producer_id for b in batches}) == 1 and batches[0].producer_id >= 0
        assert all(b.base_sequence == b.base_offset for b in batches)  # one producer, from sequence 0
    else:
        assert {b.producer_id for b in batches} == {-1}


def log_end_offsets(client, topic: str, partitions: int) -> dict[int, int]:
    request = ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=[ListOffsetsRequest.ListOffsetsTopic(
        name=topic, partitions=[ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
            partition_index=p, timestamp=-1) for p in range(partitions)])])
    answer = client.request(request, 5).topics[0]
    return {p.partition_index: p.offset for p in answer.partitions}


class GroupMember(ProgramProcess):
    """A client program run as a consumer group member: events read from its standard output
    in a thread; it leaves the group and exits when its standard input closes."""

    def __init__(self, command: list[str], name: str, log_path: Path, env=None):
        self.events: list[dict] = []
        super().__init__(command, name, log_path, stdin=subprocess.PIPE, env=env)

    def on_line(self, line: bytes) -> None:
        if line.strip():
            self.events.append(json.loads(line))

    @property
    def assignment(self) -> set[int] | None:
        """The partitions of the member's latest assignment (None before the first)."""
        assigned = [e for e in self.events if e["event"] == "assigned"]
        return None if not assigned else set(assigned[-1]["partitions"] or [])

    def records(self) -> list[tuple[int, int, bytes]]:
        return [(e["partition"], int(e["offset"]), _bytes(e["value"])) for e in self.events if e["event"] == "record"]

    def errors(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "error"]

    def stop(self, timeout: float = 30.0) -> int:
        self.process.stdin.close()
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()


def run_group(broker, setup_client, members: list[GroupMember], topic: str, group: str, partitions: int,
              produce, records: int, timeout: float = 60.0) -> None:
    """Two or more members split ``partitions`` evenly; ``produce(values)`` then writes
    ``records`` values; each is consumed exactly once, by the member that owns its partition;
    after the members leave, the group's committed offsets are the log end offsets."""
    try:
        def split():
            shares = [m.assignment for m in members]
            return (all(s is not None and len(s) == partitions // len(members) for s in shares)
                    and set().union(*shares) == set(range(partitions)))

        wait_until(split, timeout=timeout,
                   what=lambda: f"an even split: {[(m.name, m.assignment, m.errors(), m.log()) for m in members]}")
        shares = {m.name: m.assignment for m in members}
        values = [b"%s-%d" % (group.encode(), i) for i in range(records)]
        produce(values)
        wait_until(lambda: sum(len(m.records()) for m in members) >= records, timeout=timeout,
                   what=lambda: {m.name: (len(m.records()), m.errors()) for m in members})
        time.sleep(1.0)  # anything delivered twice would show up now
        assert sorted(v for m in members for _, _, v in m.records()) == sorted(values)  # each exactly once
        for member in members:
            assert {p for p, _, _ in member.records()} <= shares[member.name], member.name
            assert member.assignment == shares[member.name], f"{member.name} was rebalanced while consuming"
    finally:
        codes = {}
        for member in members:
            try:
                codes[member.name] = member.stop()
            finally:
                member.kill()
    for member in members:
        assert codes[member.name] == 0 and not member.errors(), f"{member.name}: {member.errors()} {member.log()}"
    ends = log_end_offsets(setup_client, topic, partitions)
    assert sum(ends.values()) == records
    assert committed_offsets(broker, group, topic, partitions) == ends
