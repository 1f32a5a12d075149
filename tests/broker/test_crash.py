"""kill -9 and SIGTERM in the middle of acks=all produce traffic: after a restart every
acknowledged record is readable, once, in order, at the offset it was acknowledged with, and
offsets continue. SIGTERM also answers the requests in flight, writes the clean-shutdown marker
and exits 0."""

from __future__ import annotations

import os
import threading
import time

import pytest

from odradek.protocol.messages.produce import ProduceRequest
from odradek.protocol.records.batch import Record, build_batch
from odradek.protocol.records.header import BATCH_HEADER_SIZE, read_batch_header

from odradek.storage.log_directory import CLEAN_SHUTDOWN_FILE

from .conftest import RawClient
from .test_server import create_topic, fetch_request, produce, records_of


def produce_until_killed(broker, acknowledged: list, stop: threading.Event):
    client = RawClient(broker.host, broker.port)
    try:
        i = 0
        while not stop.is_set():
            batch = build_batch([Record(j, 0, None, b"%d-%d" % (i, j)) for j in range(3)],
                                base_timestamp=1_700_000_000_000)
            answer = produce(client, "crash", 0, batch, acks=-1)
            assert answer.error_code == 0
            acknowledged.append((answer.base_offset, i))
            i += 1
    except (ConnectionError, OSError):
        pass  # the broker died under us
    finally:
        client.close()


@pytest.mark.parametrize("round_", [0] + [pytest.param(n, marks=pytest.mark.slow) for n in range(1, 10)])
def test_acknowledged_records_survive_kill_9(broker_process, tmp_path, round_):
    data_dir = tmp_path / "crash-data"
    first = broker_process(data_dir)
    setup = RawClient(first.host, first.port)
    create_topic(setup, "crash")
    setup.close()
    acknowledged: list = []
    stop = threading.Event()
    worker = threading.Thread(target=produce_until_killed, args=(first, acknowledged, stop))
    worker.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 3 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.01)  # a loaded machine may take a while for the first acks
    time.sleep(0.05 + 0.17 * round_)  # a different kill point each round
    first.kill()
    stop.set()
    worker.join(10)
    assert acknowledged, "nothing was acknowledged before the kill"

    check_acknowledged_after_restart(broker_process(data_dir), acknowledged)


def check_acknowledged_after_restart(broker, acknowledged) -> None:
    """Every acknowledged batch at its offset, nothing twice, and the next offset continues."""
    client = RawClient(broker.host, broker.port)
    try:
        values = []
        offset = 0
        while True:
            data = client.request(fetch_request("crash", 0, offset), 12).responses[0].partitions[0]
            assert data.error_code == 0
            batch_records = records_of(data.records)
            if not batch_records:
                break
            values += batch_records
            offset += len(batch_records)
        by_offset = {index: record.value for index, record in enumerate(values)}
        for base_offset, i in acknowledged:
            assert [by_offset.get(base_offset + j) for j in range(3)] == [b"%d-%d" % (i, j) for j in range(3)]
        all_values = [record.value for record in values]
        assert len(all_values) == len(set(all_values))  # nothing twice
        # Offsets continue after the recovered end.
        next_answer = produce(client, "crash", 0, build_batch([Record(0, 0, None, b"after")]), acks=-1)
        assert next_answer.base_offset == len(values)
    finally:
        client.close()


def produce_pipelined_until_closed(broker, acknowledged: list, sent: list, failures: list,
                                   stop: threading.Event, depth=4):
    """acks=all produces with ``depth`` requests in flight on one connection, until the broker
    closes it: ``sent`` lists every request sent, ``acknowledged`` (base offset, i) each answer,
    ``failures`` an answer out of order or with an error."""
    client = RawClient(broker.host, broker.port)
    in_flight = []
    try:
        i = 0
        while not stop.is_set():
            while len(in_flight) < depth:
                batch = build_batch([Record(j, 0, None, b"%d-%d" % (i, j)) for j in range(3)],
                                    base_timestamp=1_700_000_000_000)
                request = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[ProduceRequest.TopicProduceData(
                    name="crash", partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(
                        index=0, records=batch)])])
                in_flight.append((client.send(request, 9), i))
                sent.append(i)
                i += 1
            correlation_id, response = client.receive()
            expected_id, expected_i = in_flight.pop(0)
            assert correlation_id == expected_id  # answers in request order, none skipped
            answer = response.responses[0].partition_responses[0]
            assert answer.error_code == 0, answer
            acknowledged.append((answer.base_offset, expected_i))
    except (ConnectionError, OSError):
        pass  # the broker closed the connection: the requests still in flight are unanswered
    except AssertionError as failure:
        failures.append(failure)
    finally:
        client.close()


def test_acknowledged_records_survive_sigterm(broker_process, tmp_path):
    data_dir = tmp_path / "sigterm-data"
    first = broker_process(data_dir)
    setup = RawClient(first.host, first.port)
    create_topic(setup, "crash")
    setup.close()
    acknowledged: list = []
    sent: list = []
    failures: list = []
    stop = threading.Event()
    worker = threading.Thread(target=produce_pipelined_until_closed, args=(first, acknowledged, sent, failures, stop))
    worker.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 10 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.01)
    assert worker.is_alive(), "the producer stopped before SIGTERM"
    acknowledged_before = len(acknowledged)
    # SIGTERM with the producer still sending: in-flight requests are answered, exit code 0.
    assert first.stop() == 0, first.log()
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
    assert not failures, failures
    assert acknowledged_before >= 10, "too few acknowledgements before SIGTERM"
    # Answers came in order for a prefix of what was sent (the producer asserts the order).
    assert [i for _, i in acknowledged] == sent[:len(acknowledged)]
    assert "connection still busy at shutdown" not in first.log()
    assert os.path.exists(data_dir / CLEAN_SHUTDOWN_FILE)

    check_acknowledged_after_restart(broker_process(data_dir), acknowledged)


def _end_of_batches(segment_path) -> int:
    """Where the record batches of a ``.log`` end (the zeros written ahead, if any, follow)."""
    data = segment_path.read_bytes()
    position = 0
    while position + BATCH_HEADER_SIZE <= len(data) and any(data[position:position + BATCH_HEADER_SIZE]):
        position += read_batch_header(data, position).size_in_bytes
    return position


def _produce_acknowledged(broker, acknowledged: list, count: int) -> None:
    client = RawClient(broker.host, broker.port)
    try:
        for _ in range(count):
            i = len(acknowledged)
            batch = build_batch([Record(j, 0, None, b"%d-%d" % (i, j)) for j in range(3)],
                                base_timestamp=1_700_000_000_000)
            answer = produce(client, "crash", 0, batch, acks=-1)
            assert answer.error_code == 0
            acknowledged.append((answer.base_offset, i))
    finally:
        client.close()


def test_zeros_ahead_of_a_partition_synced_often_survive_kill_9_and_sigterm(broker_process, tmp_path):
    """acks=all produce, each request its own sync: the segment gets zeros ahead of its
    appends; kill -9 leaves them on disk and the restart cuts them (every acknowledged record
    there, offsets continuing); SIGTERM cuts them before its flush."""
    data_dir = tmp_path / "zeros-data"
    segment = data_dir / "crash-0" / "00000000000000000000.log"
    first = broker_process(data_dir)
    setup = RawClient(first.host, first.port)
    create_topic(setup, "crash")
    setup.close()
    acknowledged: list = []
    _produce_acknowledged(first, acknowledged, 40)
    data_end = _end_of_batches(segment)
    assert segment.stat().st_size > data_end > 0  # zeros ahead of the appends, on disk
    first.kill()
    assert segment.stat().st_size > data_end

    second = broker_process(data_dir)
    assert "recovery cut a segment" not in second.log()  # zeros are not lost bytes
    assert segment.stat().st_size == _end_of_batches(segment)
    _produce_acknowledged(second, acknowledged, 40)
    assert segment.stat().st_size > _end_of_batches(segment)
    assert second.stop() == 0, second.log()
    assert segment.stat().st_size == _end_of_batches(segment)  # cut by the clean close

    third = broker_process(data_dir)
    assert "did not end in whole, valid batches" not in third.log()
    check_acknowledged_after_restart(third, acknowledged)
