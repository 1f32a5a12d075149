"""What a handler gets besides its request: the broker and the request's envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker


@dataclass(slots=True)
class RequestContext:
    """Per request, read-only for handlers.

    ``broker`` owns every piece of mutable broker state (see :class:`~odradek.broker.broker.Broker`);
    handlers read and change it through its methods, on the event loop. ``api_version`` is the
    version the request was decoded at (the response is encoded at the same one);
    ``listener_name`` is the listener the connection came in on (Metadata answers with that
    listener's advertised address, as Kafka does).
    """

    broker: "Broker"
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str
    listener_name: str
    peer: str
