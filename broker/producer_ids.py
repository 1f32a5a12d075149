"""Producer id allocation for InitProducerId.

Kafka's controller hands brokers blocks of producer ids and records each block in the metadata
log, so an id is never given out twice, even across restarts. odradek does the same with one
file in the data directory, ``odradek-producer-ids.json`` (``{"version": 1,
"next_block_start": N}``, written to a temporary file, fsynced, renamed): a block of
``BLOCK_SIZE`` ids is reserved (and the file written) before any id of it is handed out, so a
crash can waste the rest of a block but never repeat an id.

Owner: the Broker, on the event loop.
"""

from __future__ import annotations

import json
import os

import structlog

from odradek.storage.fs import OsFileSystem

BLOCK_SIZE = 1000
FILE_NAME = "odradek-producer-ids.json"

log = structlog.get_logger("odradek.broker")


class ProducerIdManager:
    def __init__(self, directory: str, fs=None):
        self.fs = fs or OsFileSystem()  # the broker's file system (the memory backend in memory mode)
        self.path = os.path.join(directory, FILE_NAME)
        self._next = 0
        self._block_end = 0
        self.damaged = False  # the file did not parse: the owner skips past every id in use
        if self.fs.exists(self.path):
            try:
                document = json.loads(self.fs.read_file(self.path).decode("utf-8"))
                self._next = self._block_end = int(document["next_block_start"])
            except (ValueError, KeyError, TypeError) as error:  # JSON and UTF-8 errors are ValueErrors
                log.error("the producer id block file does not parse", file=self.path, error=repr(error))
                self.damaged = True

    def skip_past(self, producer_id: int) -> None:
        """Hand out only ids above ``producer_id`` (the largest found in the logs) from now on,
        a block further on so that ids given out but not yet in a log are not repeated either."""
        start = max(self._next, (producer_id // BLOCK_SIZE + 2) * BLOCK_SIZE)
        self._reserve(start)
        self._next = start

    @property
    def handed_out(self) -> int:
        """How far ids were handed out: every id below it may be in use."""
        return self._next

    def next_producer_id(self) -> int:
        if self._next >= self._block_end:
            self._reserve(self._next + BLOCK_SIZE)
        producer_id = self._next
        self._next += 1
        return producer_id

    def _reserve(self, block_end: int) -> None:
        document = json.dumps({"version": 1, "next_block_start": block_end}).encode("utf-8")
        self.fs.write_file_atomic(self.path, document)  # temporary file, fsync, rename, directory fsync
        self._block_end = block_end
