"""Glue between the coordinator's callbacks and the handler registry's async handlers."""

from __future__ import annotations

import asyncio
from typing import Callable


def answer_when_ready(start: Callable[[Callable[[object], None]], None], build: Callable[[object], object]):
    """Run ``start(respond)``; return ``build(result)`` at once when ``respond`` was called
    synchronously, else an awaitable that waits for it (a JoinGroup or SyncGroup parked until
    the rebalance moves on). A result arriving after the connection went away is dropped."""
    future = asyncio.get_running_loop().create_future()

    def respond(result) -> None:
        if not future.done():
            future.set_result(result)

    start(respond)
    if future.done():
        return build(future.result())

    async def wait():
        return build(await future)

    return wait()


def client_host(peer: str) -> str:
    """Kafka reports a member's host as Java's ``InetAddress.toString()``: "/1.2.3.4"."""
    host = peer.rsplit(":", 1)[0] if ":" in peer else peer
    return "/" + host.strip("[]")
