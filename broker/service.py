"""A broker serving on the running event loop: its state, its listeners and its background work,
started and stopped as one. ``odradek serve`` (broker/cli.py) and the embedded broker
(``odradek.Broker``, broker/embedded.py) both run a broker through this.

Start: :meth:`BrokerService.start` opens the state (locks and recovers the data directories),
binds every listener and starts the maintenance task; :meth:`BrokerService.ready` then returns
once the broker is *ready*: listening, and the group and transaction coordinators' background
load of ``__consumer_offsets`` and ``__transaction_state`` finished, so that no request answers
COORDINATOR_LOAD_IN_PROGRESS because the broker had only just started. (Topics can be created
as soon as :meth:`start` returns: the topic table is loaded by then.)

Stop: :meth:`BrokerService.stop` in Kafka's order: stop accepting, answer the requests in
flight, then flush and close the logs (clean-shutdown marker). It is safe to call after a
:meth:`start` that failed part way, and more than once.

Ownership: one service per broker, used on the broker's event loop only.
"""

from __future__ import annotations

import asyncio

from .broker import Broker
from .config import BrokerConfig

# How often ready() looks at the coordinators' load, which runs in slices on this same loop.
READY_POLL_SECONDS = 0.001


class BrokerService:
    def __init__(self, config: BrokerConfig, fs=None):
        """``fs``: the file system of the data directories, None for the real one (the memory
        backend, ``odradek.storage.fs.MemoryFileSystem``, in memory mode)."""
        from .handlers import REGISTRY
        from .server import BrokerServer

        self.broker = Broker(config, fs=fs)
        self.server = BrokerServer(self.broker, REGISTRY)
        self._maintenance: asyncio.Future | None = None
        self._opened = False
        self._stopped = False

    @property
    def bound(self) -> dict[str, tuple[str, int]]:
        """Listener name -> (host, port) bound (the real port also when the configured one is 0)."""
        return self.server.bound

    async def start(self) -> None:
        self.broker.open()
        self._opened = True
        await self.server.start()
        self.broker.set_bound_listeners(self.server.bound)
        self._maintenance = asyncio.ensure_future(self.broker.run_maintenance())

    def coordinators_loaded(self) -> bool:
        return not (self.broker.group_coordinator.runtime.loading
                    or self.broker.transaction_coordinator.runtime.loading)

    async def ready(self) -> None:
        """Return once the coordinators' load finished (at once for an empty data directory)."""
        while not self.coordinators_loaded():
            await asyncio.sleep(READY_POLL_SECONDS)

    async def stop(self) -> None:
        if self._stopped or not self._opened:  # an open() that failed left nothing to stop
            return
        self._stopped = True
        if self._maintenance is not None:
            self._maintenance.cancel()
        try:
            await self.server.shutdown()
        finally:
            self.broker.close()


def address(host: str, port: int) -> str:
    """``host:port`` as clients and Kafka's tools write it (``[::1]:9092`` for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bootstrap_servers(bound: dict[str, tuple[str, int]]) -> str:
    """What a client's ``bootstrap.servers`` takes to reach the bound listeners."""
    return ",".join(address(host, port) for host, port in bound.values())
