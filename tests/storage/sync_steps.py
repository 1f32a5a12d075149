"""What the power-loss property tests of the data sync share: a log driven through a list of
steps (append, data sync, roll, flush), and the record values found in its segment files."""

from __future__ import annotations

from storage_batches import make_batch


def apply_steps(log, steps, value, appended: int) -> tuple[int, int]:
    """Run ``steps`` on ``log``, whose ``appended`` records are all durable, appending
    ``value(i)`` as record i. Returns the records appended and those known durable; checks
    after each step that the log's durable offset covers the latter."""
    synced = appended
    for step in steps:
        if step == "append":
            log.append(make_batch([value(appended)]))
            appended += 1
        elif step == "sync":
            ticket = log.prepare_sync()
            if ticket is not None:
                ticket.sync()
                log.complete_sync(ticket)
            synced = appended
        elif step == "roll":
            log.roll()
        else:
            log.flush()
            synced = appended
        assert log.durable_offset >= synced
    return appended, synced


def values_of(log) -> list[bytes]:
    """The first 12 bytes from ``value-`` of each record batch's value, in log order."""
    found = []
    for segment in log.segments:
        for batch in segment.batches():
            raw = segment.log.pread(batch.size, batch.position)
            found.append(raw[raw.index(b"value-"):][:12])
    return found
