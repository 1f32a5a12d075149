"""kill -9 in the middle of acks=all produce traffic: after a restart every acknowledged record
is readable, once, in order, at the offset it was acknowledged with, and offsets continue."""

from __future__ import annotations

import threading
import time

import pytest

from odradek.protocol.records.batch import Record, build_batch

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

    second = broker_process(data_dir)
    client = RawClient(second.host, second.port)
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
