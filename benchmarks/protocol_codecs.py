#!/usr/bin/env python3
"""Message codec speed: odradek's generated codecs against kafka-python 3.0.12 and kio 0.6.5.

Run from the repository root (odradek installed with its test extras):

    python3 benchmarks/protocol_codecs.py                 # every row, markdown table on stdout
    python3 benchmarks/protocol_codecs.py --runs 9 --min-run-seconds 0.2   # steadier figures
    python3 benchmarks/protocol_codecs.py --rows produce  # rows whose key contains "produce"
    python3 benchmarks/protocol_codecs.py --profile metadata-encode   # cProfile odradek's op

Rows (the operations a broker performs on its hot paths; issue #2):

* ``produce-decode-*``: decode a Produce v9 request body carrying one record batch of 16 KiB,
  1 MiB or 16 MiB. odradek hands the records out as a zero-copy slice of the input, so its
  time should not grow with the batch; the others copy the batch into a new bytes object.
* ``fetch-encode-1p``: encode a Fetch v12 response body with one partition holding 1 MiB of
  records; ``fetch-encode-100p``: the same 1 MiB spread over 10 topics x 10 partitions.
* ``metadata-encode``: encode a Metadata v12 response body for 100 topics x 10 partitions
  (three brokers, three replicas per partition).
* ``offset-commit-roundtrip``: encode and then decode an OffsetCommit v8 request (one topic,
  ten partitions, as a consumer's periodic commit).

Method: every library codes the same message. The message is built once with odradek's
classes and encoded; kafka-python's and kio's objects are their own decodes of those bytes, and
before anything is timed each library's encoding must equal odradek's bytes and each decode
must find the same records (a benchmark of codecs that disagree would be meaningless). Each
operation is timed timeit-style: a loop long enough to time (``--min-run-seconds``), repeated
``--runs`` times; the table gives the best and the median microseconds per operation and the
ratio of the other library's best time to odradek's (above 1: odradek is faster).

Bodies only, without the request/response header (the header is the same small fixed cost for
every library). kio's decoder is compiled (Rust); kafka-python's and odradek's are Python.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import uuid
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _support import KIB, MIB, batch_of_size, markdown_table, time_per_op  # noqa: E402

from odradek.protocol.messages.fetch import FetchResponse  # noqa: E402
from odradek.protocol.messages.metadata import MetadataResponse  # noqa: E402
from odradek.protocol.messages.offset_commit import OffsetCommitRequest  # noqa: E402
from odradek.protocol.messages.produce import ProduceRequest  # noqa: E402

# kafka-python reads its schema files through a deprecated importlib.resources call.
warnings.filterwarnings("ignore", category=DeprecationWarning)

try:
    from kafka.protocol.consumer import FetchResponse as KpFetchResponse
    from kafka.protocol.consumer import OffsetCommitRequest as KpOffsetCommitRequest
    from kafka.protocol.metadata import MetadataResponse as KpMetadataResponse
    from kafka.protocol.producer import ProduceRequest as KpProduceRequest
except ImportError:  # the test extras are not installed
    KpFetchResponse = KpOffsetCommitRequest = KpMetadataResponse = KpProduceRequest = None
try:
    from kio.schema.fetch.v12.response import FetchResponse as KioFetchResponse
    from kio.schema.metadata.v12.response import MetadataResponse as KioMetadataResponse
    from kio.schema.offset_commit.v8.request import OffsetCommitRequest as KioOffsetCommitRequest
    from kio.schema.produce.v9.request import ProduceRequest as KioProduceRequest
    from kio.serial import entity_reader, entity_writer
except ImportError:
    KioFetchResponse = KioMetadataResponse = KioOffsetCommitRequest = KioProduceRequest = None

HAVE_KAFKA_PYTHON = KpProduceRequest is not None
HAVE_KIO = KioProduceRequest is not None
LIBRARIES = ("odradek", "kafka-python", "kio")


class Row:
    """One benchmarked operation: a callable per library, or the reason a library cannot."""

    def __init__(self, key: str, title: str):
        self.key = key
        self.title = title
        self.ops: dict[str, object] = {}
        self.unavailable: dict[str, str] = {}
        # verify(library, result) -> bool: whether that library's result agrees with odradek's.
        self.verify = None


# ------------------------------------------------------------------------------- messages
def produce_request(batch: bytes) -> ProduceRequest:
    return ProduceRequest(acks=-1, timeout_ms=30000, topic_data=[ProduceRequest.TopicProduceData(
        name="bench-topic", partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)])])


def fetch_response(topics: int, partitions: int, total_records: int) -> FetchResponse:
    records = batch_of_size(total_records // (topics * partitions))
    return FetchResponse(session_id=7, responses=[
        FetchResponse.FetchableTopicResponse(topic=f"bench-topic-{t}", partitions=[
            FetchResponse.PartitionData(partition_index=p, high_watermark=1_000_000, last_stable_offset=1_000_000,
                                        log_start_offset=0, records=records)
            for p in range(partitions)])
        for t in range(topics)])


def metadata_response(topics: int, partitions: int) -> MetadataResponse:
    brokers = [MetadataResponse.MetadataResponseBroker(node_id=n, host=f"broker-{n}.example", port=9092,
                                                       rack=f"rack-{n}") for n in range(3)]
    return MetadataResponse(brokers=brokers, cluster_id="odradek-bench-cluster", controller_id=0, topics=[
        MetadataResponse.MetadataResponseTopic(
            name=f"bench-topic-{t:03d}", topic_id=uuid.UUID(int=t + 1), partitions=[
                MetadataResponse.MetadataResponsePartition(
                    partition_index=p, leader_id=p % 3, leader_epoch=5,
                    replica_nodes=[p % 3, (p + 1) % 3, (p + 2) % 3],
                    isr_nodes=[p % 3, (p + 1) % 3, (p + 2) % 3])
                for p in range(partitions)],
            topic_authorized_operations=-2147483648)
        for t in range(topics)])


def offset_commit_request(partitions: int) -> OffsetCommitRequest:
    return OffsetCommitRequest(
        group_id="bench-group", generation_id_or_member_epoch=12, member_id="consumer-1-3f9e5a1c",
        topics=[OffsetCommitRequest.OffsetCommitRequestTopic(name="bench-topic", partitions=[
            OffsetCommitRequest.OffsetCommitRequestPartition(
                partition_index=p, committed_offset=1_000_000 + p, committed_leader_epoch=5,
                committed_metadata="")
            for p in range(partitions)])])


# ------------------------------------------------------------------- the other libraries
def kafka_python_message(cls, raw: bytes, version: int):
    """kafka-python's object for ``raw``: its own decode."""
    return result_with_header(cls.decode(raw, version=version))


def kafka_python_encode(message, version: int) -> bytes:
    return message.encode(version=version)


def kio_encode(writer, entity) -> bytes:
    out = io.BytesIO()
    writer(out, entity)
    return out.getvalue()


def kio_decode(reader, raw: bytes):
    entity, size = reader(raw, 0)
    if size != len(raw):
        raise AssertionError(f"kio decoded {size} of {len(raw)} bytes")
    return entity


# ----------------------------------------------------------------------------------- rows
def produce_rows() -> list[Row]:
    rows = []
    for key_label, label, size in (("16KiB", "16 KiB", 16 * KIB), ("1MiB", "1 MiB", MIB), ("16MiB", "16 MiB", 16 * MIB)):
        batch = batch_of_size(size)
        raw = produce_request(batch).encode(9)
        row = Row(f"produce-decode-{key_label}", f"Produce v9 request decode, one {label} batch")
        row.ops["odradek"] = lambda raw=raw: ProduceRequest.decode(raw, 9)
        # The same attribute path in all three libraries.
        row.verify = lambda _library, decoded, batch=batch: \
            bytes(decoded.topic_data[0].partition_data[0].records) == batch
        if HAVE_KAFKA_PYTHON:
            row.ops["kafka-python"] = lambda raw=raw: KpProduceRequest.decode(raw, version=9)
        if HAVE_KIO:
            reader = entity_reader(KioProduceRequest)
            row.ops["kio"] = lambda raw=raw, reader=reader: kio_decode(reader, raw)
        rows.append(row)
    return rows


def encode_row(key: str, title: str, message, version: int, kp_cls, kio_cls) -> Row:
    raw = message.encode(version)
    row = Row(key, title)
    row.ops["odradek"] = lambda: message.encode(version)
    row.verify = lambda _library, encoded: bytes(encoded) == raw
    if HAVE_KAFKA_PYTHON:
        kp_message = kafka_python_message(kp_cls, raw, version)
        row.ops["kafka-python"] = lambda: kafka_python_encode(kp_message, version)
    if HAVE_KIO:
        entity = kio_decode(entity_reader(kio_cls), raw)
        writer = entity_writer(kio_cls)
        row.ops["kio"] = lambda: kio_encode(writer, entity)
    return row


def offset_commit_row() -> Row:
    message = offset_commit_request(10)
    raw = message.encode(8)
    row = Row("offset-commit-roundtrip", "OffsetCommit v8 request encode + decode (1 topic x 10 partitions)")
    row.ops["odradek"] = lambda: OffsetCommitRequest.decode(message.encode(8), 8)
    # The decoded message, encoded again by the same library, must give odradek's bytes.
    reencoders = {"odradek": lambda decoded: decoded.encode(8)}
    if HAVE_KAFKA_PYTHON:
        reencoders["kafka-python"] = lambda decoded: kafka_python_encode(result_with_header(decoded), 8)
    if HAVE_KIO:
        reencoders["kio"] = lambda decoded: kio_encode(entity_writer(KioOffsetCommitRequest), decoded)
    row.verify = lambda library, decoded: bytes(reencoders[library](decoded)) == raw
    if HAVE_KAFKA_PYTHON:
        kp_message = kafka_python_message(KpOffsetCommitRequest, raw, 8)
        row.ops["kafka-python"] = lambda: KpOffsetCommitRequest.decode(kafka_python_encode(kp_message, 8), version=8)
    if HAVE_KIO:
        reader, writer = entity_reader(KioOffsetCommitRequest), entity_writer(KioOffsetCommitRequest)
        entity = kio_decode(reader, raw)
        row.ops["kio"] = lambda: kio_decode(reader, kio_encode(writer, entity))
    return row


def build_rows() -> list[Row]:
    rows = produce_rows()
    rows.append(encode_row("fetch-encode-1p", "Fetch v12 response encode, 1 partition x 1 MiB of records",
                           fetch_response(1, 1, MIB), 12, KpFetchResponse,
                           KioFetchResponse))
    rows.append(encode_row("fetch-encode-100p", "Fetch v12 response encode, 10 x 10 partitions, 1 MiB of records",
                           fetch_response(10, 10, MIB), 12, KpFetchResponse,
                           KioFetchResponse))
    rows.append(encode_row("metadata-encode", "Metadata v12 response encode, 100 topics x 10 partitions",
                           metadata_response(100, 10), 12, KpMetadataResponse,
                           KioMetadataResponse))
    rows.append(offset_commit_row())
    for row in rows:
        for library in LIBRARIES:
            if library not in row.ops:
                row.unavailable.setdefault(library, "not installed")
    return rows


def check_rows(rows: list[Row]) -> None:
    """Every library must agree with odradek (same bytes, same records) before it is timed."""
    for row in rows:
        for library, op in row.ops.items():
            if not row.verify(library, op()):
                raise AssertionError(f"{row.key}: {library} does not agree with odradek")


def result_with_header(message):
    """A decoded kafka-python message has no header slot set, which its encode() reads."""
    message._header = None
    return message


# ------------------------------------------------------------------------------- running
def profile(row: Row, seconds: float) -> None:
    op = row.ops["odradek"]
    timing = time_per_op(op, runs=1, min_run_seconds=0.05)
    calls = max(1, int(seconds / timing.best))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        op()
    profiler.disable()
    print(f"cProfile of odradek's {row.key}, {calls} calls")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per operation (default 7)")
    parser.add_argument("--min-run-seconds", type=float, default=0.1,
                        help="each run loops until it lasts this long (default 0.1)")
    parser.add_argument("--rows", default="", help="only rows whose key contains this text")
    parser.add_argument("--profile", metavar="ROW", help="cProfile odradek's operation of this row instead")
    args = parser.parse_args(argv)

    all_rows = build_rows()
    if args.profile:
        matching = [row for row in all_rows if row.key == args.profile]
        if not matching:
            parser.error(f"no row {args.profile!r}; rows: {', '.join(row.key for row in all_rows)}")
        profile(matching[0], 2.0)
        return 0
    rows = [row for row in all_rows if args.rows in row.key]
    check_rows(rows)

    table = []
    for row in rows:
        timings = {library: time_per_op(op, runs=args.runs, min_run_seconds=args.min_run_seconds)
                   for library, op in row.ops.items()}
        ours = timings["odradek"]
        cells = [row.title, f"`{row.key}`", ours.micros()]
        for library in LIBRARIES[1:]:
            if library in timings:
                cells += [timings[library].micros(), f"{timings[library].best / ours.best:,.1f}x"]
            else:
                cells += [f"cannot: {row.unavailable[library]}", "-"]
        table.append(cells)
        print(f"  {row.key}: done", file=sys.stderr, flush=True)
    print(markdown_table(
        ["operation", "row", "odradek µs (best / median)", "kafka-python µs", "kafka-python ÷ odradek",
         "kio µs", "kio ÷ odradek"], table))
    print(f"\n{args.runs} runs of at least {args.min_run_seconds} s each; Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
