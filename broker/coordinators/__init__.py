"""The coordinator runtime shared by the broker's coordinators (groups today, transactions and
share groups next): :mod:`~odradek.broker.coordinators.runtime`, and the timers it runs
(:mod:`~odradek.broker.coordinators.timer`)."""

from .runtime import (CoordinatorLog, CoordinatorResult, CoordinatorRuntime, CoordinatorShard, CoordinatorTopic,
                      coordinator_partition)
from .timer import LoopTimer, ManualTimer

__all__ = ["CoordinatorLog", "CoordinatorResult", "CoordinatorRuntime", "CoordinatorShard", "CoordinatorTopic",
           "LoopTimer", "ManualTimer", "coordinator_partition"]
