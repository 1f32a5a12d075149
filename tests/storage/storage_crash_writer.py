"""Subprocess for the crash test: append to a data directory as fast as possible, flush now and
then, print ``flushed <batches> <end_offset>`` after each flush; killed with SIGKILL at random.

Batches come from one idempotent producer (id 77) whose sequences follow the offsets.
Batch number n holds ``n % 5 + 1`` records whose values start with ``b"n=<n>;"``, so a reader can
tell which batches survived, in order, each once. On start it recovers the directory and
continues after the last batch it finds.
"""

import sys

import structlog

from odradek.protocol.records.batch import decode_batch
from odradek.storage.config import LogConfig
from odradek.storage.log_directory import LogDirectory

from storage_batches import make_batch

CONFIG = LogConfig(segment_bytes=64 * 1024, index_interval_bytes=512, segment_index_bytes=1024,
                   retention_bytes=-1)


PRODUCER_ID = 77


def batch_number(data: bytes) -> int:
    value = decode_batch(data, 0, max_decompressed_size=1 << 20).records[0].value
    return int(value.split(b";", 1)[0][2:])


def main(path: str, seed: int) -> None:
    # stdout carries only the lines above; what recovery logs (structlog prints to stdout
    # unless told otherwise) goes to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    directory = LogDirectory.open(path, node_id=1, default_config=CONFIG)
    log = directory.create_log("crash", 0)
    next_number = 0
    if log.log_end_offset > log.log_start_offset:
        log.update_high_watermark(log.log_end_offset)
        last_batch = log.read(log.log_end_offset - 1, 1).read_bytes()
        next_number = batch_number(last_batch) + 1
    print(f"ready {next_number}", flush=True)
    number = next_number
    while True:
        count = number % 5 + 1
        padding = b"x" * ((number * 7919 + seed) % 700)
        # An idempotent producer whose sequence is the offset (it is the only writer from 0):
        # a producer state recovered wrongly makes this append fail, and the test sees it.
        log.append(make_batch([b"n=%d;%s" % (number, padding)] * count, producer_id=PRODUCER_ID,
                              producer_epoch=0, base_sequence=log.log_end_offset % (2**31)))
        number += 1
        if number % 3 == 0:
            end = log.flush()
            log.update_high_watermark(end)
            print(f"flushed {number} {end}", flush=True)
        if number % 50 == 0:
            directory.checkpoint()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
