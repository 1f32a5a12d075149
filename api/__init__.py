"""odradek: a broker that speaks the Apache Kafka wire protocol.

The public API is what this module exports; everything under ``odradek.broker``,
``odradek.storage`` and ``odradek.protocol`` is internal and may change.

* :class:`Broker`: a broker started from Python code, for tests (docs/testing.md)::

      from odradek import Broker

      with Broker() as broker:
          producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
"""

from odradek.broker.embedded import Broker

__all__ = ["Broker"]
