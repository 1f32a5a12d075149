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
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
