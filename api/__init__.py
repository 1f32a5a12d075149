"""odradek: a broker that speaks the Apache Kafka wire protocol.

The public API is what this module exports; everything under ``odradek.broker``,
``odradek.storage`` and ``odradek.protocol`` is internal and may change.

* :class:`Broker`: a broker started from Python code, for tests (docs/testing.md)::

      from odradek import Broker

      with Broker() as broker:
          producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)

* ``odradek.pytest_plugin``: the ``odradek_*`` fixtures, which pytest loads by itself (the
  ``pytest11`` entry point) wherever odradek is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Broker"]

if TYPE_CHECKING:
    from odradek.broker.embedded import Broker


def __getattr__(name: str):
    # Imported on first use, so that importing odradek.protocol (the sans-I/O codecs) does not
    # load the broker and the storage engine through this package.
    if name == "Broker":
        from odradek.broker.embedded import Broker

        return Broker
    raise AttributeError(f"module 'odradek' has no attribute {name!r}")
