"""The group coordinator: classic consumer groups and committed offsets (see
:mod:`odradek.broker.groups.coordinator`)."""

from .classic import ClassicGroup, GroupState, JoinResult, Member, SyncResult
from .coordinator import CommittedOffset, GroupConfig, GroupCoordinator, JoinRequest, coordinator_partition
from .timer import LoopTimer, ManualTimer

__all__ = ["ClassicGroup", "CommittedOffset", "GroupConfig", "GroupCoordinator", "GroupState", "JoinRequest",
           "JoinResult", "LoopTimer", "ManualTimer", "Member", "SyncResult", "coordinator_partition"]
