"""Structured logging (structlog) for the broker: one line per event, key=value, on stderr.

Quiet by default (``warning``): connection open/close lines are ``info``, so they appear with
``--log-level info``; errors always do. The "listening" line the CLI prints is not a log line
(it goes to stdout whatever the level, because tools and tests wait for it).
"""

from __future__ import annotations

import logging
import sys

import structlog

LEVELS = ("debug", "info", "warning", "error", "critical")


class CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing. An embedded broker's log
    lines then follow a test runner's capture (pytest swaps sys.stderr per test, and closes the
    stream it swapped in) instead of writing to the stream there was when logging was configured."""

    def write(self, text: str) -> None:
        if sys.stderr is not None:
            sys.stderr.write(text)

    def flush(self) -> None:
        if sys.stderr is not None:
            sys.stderr.flush()


def configure(level: str = "warning", stream=None) -> None:
    numeric = getattr(logging, level.upper())
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"], drop_missing=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or CurrentStderr()),
        cache_logger_on_first_use=False,
    )
