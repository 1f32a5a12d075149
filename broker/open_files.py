"""The process's open-files limit: raised to the hard limit at start, and how many descriptors
the storage engine's files may hold under it (``odradek.log.open.files.max``, see
:class:`odradek.storage.fs.DescriptorBudget`).

Kafka's scripts leave the limit to the operator (its docs ask for 100,000 or more); odradek
raises the soft limit itself as far as the hard one lets it, since a Python broker started
from a shell would otherwise inherit a laptop's default of 1,024. Whatever the limit, the
segment and index files stay within the budget, so the partition count does not depend on it.
"""

from __future__ import annotations

import resource

import structlog

from odradek.storage.fs import default_descriptor_budget, soft_open_files_limit

log = structlog.get_logger("odradek.broker")


def raise_open_files_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit (logged); returns the soft limit now
    (None if unlimited or unknown)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - platforms without the limit
        return None
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as error:  # macOS refuses RLIM_INFINITY (OPEN_MAX caps it)
            log.warning("could not raise the open files limit", soft=soft, hard=hard, error=str(error))
        else:
            log.info("open files limit raised to the hard limit", previous=soft, limit=hard)
    return soft_open_files_limit()


def descriptor_budget(configured: int, limit: int | None) -> int:
    """``odradek.log.open.files.max`` when set (> 0), never above what the limit leaves."""
    derived = default_descriptor_budget(limit)
    return min(configured, derived) if configured > 0 else derived
