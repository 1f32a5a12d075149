"""Crash test: a subprocess appends as fast as it can and is SIGKILLed at random moments; after
each kill the directory is reopened (recovery) and checked: every batch reported flushed is
there once, batches are whole and in order, nothing is duplicated, indexes agree with the log,
and the idempotent producer's state was recovered (a retry of the last batch is recognised).
5 kills in the CI suite, 50 under ``-m slow``."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from odradek.protocol.records.batch import decode_batch
from odradek.storage.log_directory import LogDirectory

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from storage_crash_writer import CONFIG, batch_number  # noqa: E402


def run_and_kill(path: str, seed: int, rng: random.Random) -> int:
    """Start the writer, kill it at a random moment; return the batch count last reported flushed."""
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    writer = subprocess.Popen([sys.executable, os.path.join(HERE, "storage_crash_writer.py"), path, str(seed)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    flushed = 0
    try:
        line = writer.stdout.readline()
        if not line.startswith("ready"):
            writer.kill()  # its stderr ends only once it is gone: a live writer blocked on a full pipe would hang
            writer.wait()
            raise AssertionError(f"the writer did not start: {line!r} {writer.stderr.read()}")
        os.set_blocking(writer.stdout.fileno(), False)
        deadline = time.monotonic() + rng.uniform(0.02, 0.4)
        while time.monotonic() < deadline:
            time.sleep(0.005)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        # It must have been writing until killed, not stopped by an error of its own.
        assert writer.returncode == -signal.SIGKILL, writer.stderr.read()
        os.set_blocking(writer.stdout.fileno(), True)
        for line in writer.stdout.read().splitlines():
            if line.startswith("flushed "):
                flushed = int(line.split()[1])
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdout.close()
        writer.stderr.close()
    return flushed


def check_directory(path: str, flushed_batches: int, clean_close: bool) -> int:
    directory = LogDirectory.open(path, node_id=1, default_config=CONFIG)
    log = directory.get_log("crash", 0)
    numbers = []
    if log is not None:
        log.update_high_watermark(log.log_end_offset)
        expected_offset = log.log_start_offset
        for segment in log.segments:
            segment.check_indexes()
            for batch in segment.batches():
                data = segment.log.pread(batch.size, batch.position)
                decoded = decode_batch(data, 0, max_decompressed_size=1 << 20)  # CRC and every record
                assert decoded.base_offset == expected_offset
                expected_offset = decoded.base_offset + len(decoded.records)
                assert segment.find_batch(batch.base_offset).position == batch.position
                numbers.append(batch_number(data))
        assert expected_offset == log.log_end_offset
        if log.log_end_offset > log.log_start_offset:
            # The producer state survived too: a retry of the last batch is recognised.
            last = log.read(log.log_end_offset - 1, 1).read_bytes()
            end = log.log_end_offset
            retry = log.append(last)
            assert (retry.last_offset + 1, log.log_end_offset) == (end, end), "retry appended twice"
    assert numbers == list(range(len(numbers))), "batches lost, duplicated or reordered"
    assert len(numbers) >= flushed_batches, f"{flushed_batches} reported flushed, {len(numbers)} found"
    if clean_close:
        directory.close()
    else:
        directory._release_lock()  # leave it as a crash would: the writer recovers it again
    return len(numbers)


def crash_loop(tmp_path, iterations: int, seed: int):
    rng = random.Random(seed)
    path = str(tmp_path / "data")
    total = 0
    for iteration in range(iterations):
        flushed = run_and_kill(path, seed + iteration, rng)
        total = check_directory(path, max(flushed, 0), clean_close=rng.random() < 0.5)
    assert total > 0


def test_crash_loop_ci(tmp_path):
    crash_loop(tmp_path, 5, seed=1)


@pytest.mark.slow
def test_crash_loop_50(tmp_path):
    crash_loop(tmp_path, 50, seed=100)
