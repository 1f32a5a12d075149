"""The group coordinator: classic groups (JoinGroup/SyncGroup), consumer groups of the KIP-848
protocol (ConsumerGroupHeartbeat, :mod:`~odradek.broker.groups.consumer_groups`) and committed
offsets, all kept in ``__consumer_offsets`` (:mod:`~odradek.broker.groups.persistence`); see
:mod:`odradek.broker.groups.coordinator`."""

from .classic import ClassicGroup, GroupState, JoinResult, Member, SyncResult
from ..coordinators.runtime import coordinator_partition
from ..coordinators.timer import LoopTimer, ManualTimer
from .coordinator import CommittedOffset, GroupConfig, GroupCoordinator, JoinRequest

__all__ = ["ClassicGroup", "CommittedOffset", "GroupConfig", "GroupCoordinator", "GroupState", "JoinRequest",
           "JoinResult", "LoopTimer", "ManualTimer", "Member", "SyncResult", "coordinator_partition"]
