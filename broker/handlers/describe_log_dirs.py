"""DescribeLogDirs (key 35), versions 0-5.

One result per data directory of ``log.dirs`` (absolute paths, every directory even when it
holds none of the partitions asked for, as Kafka's ReplicaManager answers): for every partition
asked for (all of them when ``topics`` is null) that lives in that directory, its size on disk
in bytes and an offset lag of 0 (the only replica is the leader; a future log exists only
during a directory move, never here). Partitions this broker does not have are left out, as
Kafka does. v4+ report each directory's file system total and usable bytes (``statvfs``; in
memory mode, which has no file system, Kafka's -1 for unknown); v5 ``is_cordoned`` is false.

A partition whose log could not be opened at start is offline alone (Kafka would take its whole
directory offline): it is left out of its data directory's result, and reported by a result of
its own whose ``log_dir`` is the partition directory, with KAFKA_STORAGE_ERROR and no topics
(how Kafka reports an offline log directory).
"""

from __future__ import annotations

import os

from odradek.protocol import error_codes
from odradek.protocol.messages.describe_log_dirs import DescribeLogDirsRequest, DescribeLogDirsResponse

from . import REGISTRY

Result = DescribeLogDirsResponse.DescribeLogDirsResult
TopicResult = Result.DescribeLogDirsTopic
PartitionResult = TopicResult.DescribeLogDirsPartition
# Kafka's DescribeLogDirsResponse.UNKNOWN_VOLUME_BYTES: a volume whose size cannot be told.
UNKNOWN_VOLUME_BYTES = -1


@REGISTRY.handles(DescribeLogDirsRequest, DescribeLogDirsResponse)
def handle_describe_log_dirs(ctx, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    broker = ctx.broker
    if request.topics is None:
        wanted: dict[str, list[int]] = {}
        for topic_name, index in broker.partitions:
            wanted.setdefault(topic_name, []).append(index)
    else:
        wanted = {item.topic: list(item.partitions) for item in request.topics}
    results = []
    for log_dir in broker.log_dirs:
        topics = []
        for topic_name, indexes in sorted(wanted.items()):
            partitions = [
                PartitionResult(partition_index=index, partition_size=partition.log.size_in_bytes, offset_lag=0,
                                is_future_key=False)
                for index in sorted(indexes)
                if (partition := broker.partition(topic_name, index)) is not None and not partition.offline
                and broker.log_dir_of(topic_name, index) == log_dir
            ]
            if partitions:
                topics.append(TopicResult(name=topic_name, partitions=partitions))
        result = Result(error_code=error_codes.NONE, log_dir=log_dir, topics=topics)
        if ctx.api_version >= 4 and broker.in_memory:
            result.total_bytes = result.usable_bytes = UNKNOWN_VOLUME_BYTES
        elif ctx.api_version >= 4:
            stats = os.statvfs(log_dir)
            result.total_bytes = stats.f_blocks * stats.f_frsize
            result.usable_bytes = stats.f_bavail * stats.f_frsize
        results.append(result)
    for topic_name, indexes in sorted(wanted.items()):
        for index in sorted(indexes):
            partition = broker.partition(topic_name, index)
            if partition is not None and partition.offline:
                result = Result(error_code=error_codes.KAFKA_STORAGE_ERROR, log_dir=partition.log.directory, topics=[])
                if ctx.api_version >= 4:
                    result.total_bytes = result.usable_bytes = -1  # Kafka's answer for an offline directory
                results.append(result)
    return DescribeLogDirsResponse(throttle_time_ms=0, error_code=error_codes.NONE, results=results)
