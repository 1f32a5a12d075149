#!/usr/bin/env python3
"""Measure the generated codecs: import times and Produce/Fetch decode/encode speed, compared
with kafka-python 3.0.12 (when installed). Run from the repo root with the dev venv:

    /tmp/venv/bin/python tools/bench_messages.py

Figures are medians of repeated runs on whatever machine runs this; the comparison with
kafka-python is the number that matters (same machine, same process, same bytes).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

CACHE_DIR = tempfile.mkdtemp(prefix="odradek-bench-pyc-")


def import_time(module: str, cached: bool, runs: int = 7) -> float:
    """Median wall time of importing ``module`` in a fresh interpreter, after its dependencies
    (_runtime, which imports uuid) are loaded. ``cached``: with bytecode caches (the normal case
    for an installed package); otherwise compiled from source each time."""
    code = (
        "import time, importlib, odradek.protocol.messages._runtime\n"
        f"t = time.perf_counter(); importlib.import_module({module!r}); print(time.perf_counter() - t)"
    )
    env = dict(os.environ)
    if cached:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = CACHE_DIR
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp()  # empty: nothing cached
    samples = []
    for _ in range(runs + (1 if cached else 0)):
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                             env=env).stdout
        samples.append(float(out))
    return statistics.median(samples[1:] if cached else samples)


def per_call(fn, min_time: float = 0.3) -> float:
    """Median seconds per call over batches lasting ``min_time``."""
    fn()
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 5:
            break
        loops *= 2
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples)


def main() -> int:
    for module in ("odradek.protocol.messages.registry", "odradek.protocol.messages.produce",
                   "odradek.protocol.messages.fetch", "odradek.protocol.messages.metadata"):
        print(f"import {module:45s} {import_time(module, True) * 1e3:7.2f} ms  "
              f"(from source: {import_time(module, False) * 1e3:7.2f} ms)")

    from odradek.protocol.messages.fetch import FetchResponse
    from odradek.protocol.messages.produce import ProduceRequest

    batch = bytes(range(256)) * 4096  # 1 MiB of record batch bytes
    request = ProduceRequest(acks=-1, timeout_ms=30000, topic_data=[ProduceRequest.TopicProduceData(
        name="bench", partition_data=[ProduceRequest.PartitionProduceData(index=0, records=batch)])])
    raw = request.encode(9)
    ours = per_call(lambda: ProduceRequest.decode(raw, 9))
    print(f"decode Produce v9, 1 MiB batch      odradek     {ours * 1e6:9.2f} us")

    small = ProduceRequest(acks=1, timeout_ms=1000, topic_data=[ProduceRequest.TopicProduceData(
        name=f"topic-{t}", partition_data=[ProduceRequest.PartitionProduceData(index=p, records=b"x" * 100)
                                           for p in range(10)]) for t in range(10)])
    small_raw = small.encode(9)
    ours_small = per_call(lambda: ProduceRequest.decode(small_raw, 9))
    ours_small_enc = per_call(lambda: small.encode(9))
    print(f"decode Produce v9, 10x10 partitions odradek     {ours_small * 1e6:9.2f} us")
    print(f"encode Produce v9, 10x10 partitions odradek     {ours_small_enc * 1e6:9.2f} us")

    fetch = FetchResponse(responses=[FetchResponse.FetchableTopicResponse(topic=f"t{t}", partitions=[
        FetchResponse.PartitionData(partition_index=p, high_watermark=100, records=b"y" * 1000)
        for p in range(10)]) for t in range(10)])
    ours_fetch_enc = per_call(lambda: fetch.encode(12))
    print(f"encode Fetch v12, 10x10 partitions  odradek     {ours_fetch_enc * 1e6:9.2f} us")

    try:
        from kafka.protocol.producer import ProduceRequest as KpProduceRequest
    except ImportError:
        print("kafka-python not installed: no comparison")
        return 0
    theirs = per_call(lambda: KpProduceRequest.decode(raw, version=9))
    print(f"decode Produce v9, 1 MiB batch      kafka-python {theirs * 1e6:9.2f} us  ({theirs / ours:.0f}x)")
    theirs_small = per_call(lambda: KpProduceRequest.decode(small_raw, version=9))
    print(f"decode Produce v9, 10x10 partitions kafka-python {theirs_small * 1e6:9.2f} us  "
          f"({theirs_small / ours_small:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
