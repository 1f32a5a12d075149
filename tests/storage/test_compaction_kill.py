"""Crash test of the log cleaner on real files: a subprocess cleans a compacted partition (in a
loop, each round on fresh dirty data) and is SIGKILLed at a random moment; the partition is
then reopened with recovery and checked: no ``.cleaned``/``.swap`` file left, the same log
end offset, every record either as written or as the cleaner leaves it (each group of
segments is the original or the cleaned one), never a record lost that a clean keeps, indexes
consistent, and a clean of the reopened log gives what an uninterrupted clean gives.
3 kills in the CI suite, 25 under ``-m slow``."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from odradek.storage.cleaner import CLEANED_SUFFIX, SWAP_SUFFIX
from odradek.storage.config import LogConfig
from odradek.storage.fs import OsFileSystem
from odradek.storage.partition_log import PartitionLog

from test_storage_compaction import T0, contents, keyed_batch

CONFIG = LogConfig(cleanup_policy="compact", segment_bytes=64 * 1024, index_interval_bytes=1024)
CLEANER = """
import sys
from odradek.storage.config import LogConfig
from odradek.storage.fs import OsFileSystem
from odradek.storage.partition_log import PartitionLog
log = PartitionLog.open(OsFileSystem(), sys.argv[1], LogConfig(cleanup_policy="compact", segment_bytes=64 * 1024,
                        index_interval_bytes=1024), clock=lambda: %d)
log.update_high_watermark(log.log_end_offset)
print("ready", flush=True)
while True:
    log.compact()
""" % (T0 + 1000)


def build(directory: str) -> None:
    log = PartitionLog.open(OsFileSystem(), directory, CONFIG, clock=lambda: T0 + 1000)
    rng = random.Random(7)
    for i in range(3000):  # ~3.3 MiB over 40 keys, some tombstones
        key = b"key-%02d" % rng.randrange(40)
        log.append(keyed_batch([(key, None if i % 97 == 0 else b"%d " % i + b"v" * 1000)], timestamp=T0))
    log.roll()
    log.close()


def reopen(directory: str) -> PartitionLog:
    log = PartitionLog.open(OsFileSystem(), directory, CONFIG, clock=lambda: T0 + 1000, clean_shutdown=False,
                            high_watermark=10**9)
    log.update_high_watermark(log.log_end_offset)
    return log


def kill_while_cleaning(directory: str, rng: random.Random) -> None:
    cleaner = subprocess.Popen([sys.executable, "-c", CLEANER, directory], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert cleaner.stdout.readline().startswith("ready"), cleaner.stderr.read()
        time.sleep(rng.uniform(0.0, 0.15))  # a full clean takes about that long
        cleaner.send_signal(signal.SIGKILL)
        cleaner.wait()
        assert cleaner.returncode == -signal.SIGKILL, cleaner.stderr.read()  # killed, not failed
    finally:
        if cleaner.poll() is None:
            cleaner.kill()
            cleaner.wait()
        cleaner.stdout.close()
        cleaner.stderr.close()


@pytest.mark.parametrize("kills", [pytest.param(3, id="ci"), pytest.param(25, id="slow", marks=pytest.mark.slow)])
def test_a_cleaner_killed_anywhere_leaves_the_original_or_the_cleaned_log(tmp_path, kills):
    pristine = str(tmp_path / "pristine" / "t-0")
    build(pristine)
    original_log = reopen(pristine)
    before = contents(original_log)
    end = original_log.log_end_offset
    original_log.close()
    reference_dir = str(tmp_path / "reference" / "t-0")
    shutil.copytree(pristine, reference_dir)
    reference = reopen(reference_dir)
    reference.compact()
    after = contents(reference)
    reference.close()
    assert len(after) < len(before)

    rng = random.Random(2024)
    for attempt in range(kills):
        directory = str(tmp_path / f"run{attempt}" / "t-0")
        shutil.copytree(pristine, directory)
        kill_while_cleaning(directory, rng)
        log = reopen(directory)
        assert not any(name.endswith((CLEANED_SUFFIX, SWAP_SUFFIX)) for name in os.listdir(directory))
        assert log.log_end_offset == end
        found = contents(log)
        assert set(found) <= set(before) and set(after) <= set(found), f"kill {attempt}: a kept record lost"
        for segment in log.segments:
            segment.check_indexes()
        log.compact()
        assert contents(log) == after
        log.close()
        shutil.rmtree(os.path.dirname(directory))
