"""Producer id allocation for InitProducerId.

Kafka's controller hands brokers blocks of producer ids and records each block in the metadata
log (ProducerIdsRecord: the first id of the next block), so an id is never given out twice,
even across restarts. odradek does the same through its metadata log (broker/topics.py,
:meth:`~odradek.broker.topics.TopicTable.reserve_producer_ids`): a block of ``BLOCK_SIZE`` ids
is reserved (its record appended and fsynced) before any id of it is handed out, so a crash
can waste the rest of a block but never repeat an id.

Before the metadata log, odradek kept the next block's start in ``odradek-producer-ids.json``
(``{"version": 1, "next_block_start": N}``) in the first data directory. A start that finds
the file takes the larger of its block and the log's, records it in the log and renames the
file ``.migrated``; a file that does not parse is renamed ``.damaged`` and the ids go past
every one in use (the owner calls :meth:`ProducerIdManager.skip_past`), as when the topics
were restored from the partition directories (the log lost its end, or could not be read).

Owner: the Broker, on the event loop.
"""

from __future__ import annotations

import json
import os

import structlog

BLOCK_SIZE = 1000
FILE_NAME = "odradek-producer-ids.json"

log = structlog.get_logger("odradek.broker")


class ProducerIdManager:
    def __init__(self, table, directory: str):
        """``table``: the broker's topic table, loaded (its metadata log holds the blocks);
        ``directory``: the first data directory, where an older odradek kept its file."""
        self.table = table
        self._next = self._block_end = table.next_producer_id_block
        self.damaged = False  # the file of an older odradek did not parse: the owner skips past every id in use
        self._migrate(table.fs, os.path.join(directory, FILE_NAME))

    def _migrate(self, fs, path: str) -> None:
        if not fs.exists(path):
            return
        try:
            document = json.loads(fs.read_file(path).decode("utf-8"))
            start = int(document["next_block_start"])
        except (ValueError, KeyError, TypeError) as error:  # JSON and UTF-8 errors are ValueErrors
            log.error("the producer id block file does not parse", file=path, error=repr(error))
            self.damaged = True
            fs.rename(path, path + ".damaged")
            return
        if start > self._block_end:
            self._reserve(start)
            self._next = start
        fs.rename(path, path + ".migrated")
        fs.fsync_dir(os.path.dirname(path))

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
        self.table.reserve_producer_ids(block_end)  # appended to the metadata log and fsynced
        self._block_end = block_end
